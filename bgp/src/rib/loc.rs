//! Loc-RIB: merges the accepted routes of all sessions, picks the best per prefix and
//! queues the changes for the gateway's routing table.

use std::collections::{BTreeMap, VecDeque};
use std::net::Ipv4Addr;
use std::sync::Arc;

use super::best_path::{compare, equal_cost, PeerInfo};
use crate::session::SessionEvent;
use crate::wire::PathAttributes;
use crate::Ipv4Prefix;

/// Names a session inside the `Rib`; the gateway picks it (e.g. the tunnel index).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u32);

/// The route chosen for a prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BestRoute {
    pub session: SessionId,
    pub next_hop: Ipv4Addr,
    pub attributes: Arc<PathAttributes>,
    /// Further sessions whose routes are as good (see [`Rib::set_multipath_group`]):
    /// traffic may be spread over them too. In session order; empty without multipath.
    pub multipath: Vec<(SessionId, Ipv4Addr)>,
}

/// A change of the best route of one prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LocRibChange {
    Added {
        prefix: Ipv4Prefix,
        route: BestRoute,
    },
    Changed {
        prefix: Ipv4Prefix,
        route: BestRoute,
    },
    Removed {
        prefix: Ipv4Prefix,
    },
}

/// Peers not yet known (no Established seen) lose every tie-break.
const UNKNOWN_PEER: PeerInfo = PeerInfo {
    router_id: Ipv4Addr::BROADCAST,
    address: Ipv4Addr::BROADCAST,
};

#[derive(Debug, Default)]
pub struct Rib {
    peers: BTreeMap<SessionId, PeerInfo>,
    /// Sessions that may share prefixes with the others of their group.
    multipath: BTreeMap<SessionId, u32>,
    /// Local ranks of sessions (absent: 0), a tie-break before the peer's identifier.
    ranks: BTreeMap<SessionId, u16>,
    candidates: BTreeMap<Ipv4Prefix, BTreeMap<SessionId, Arc<PathAttributes>>>,
    best: BTreeMap<Ipv4Prefix, BestRoute>,
    changes: VecDeque<LocRibChange>,
}

impl Rib {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds one event polled from session `id`; events that do not touch routes are ignored.
    pub fn apply(&mut self, id: SessionId, event: &SessionEvent) {
        match event {
            SessionEvent::Established {
                peer_router_id,
                peer_address,
                ..
            } => self.peer_up(
                id,
                PeerInfo {
                    router_id: *peer_router_id,
                    address: *peer_address,
                },
            ),
            SessionEvent::RouteLearned { prefix, attributes } => {
                self.learn(id, *prefix, attributes.clone())
            }
            SessionEvent::RouteWithdrawn { prefix } => self.withdraw(id, *prefix),
            SessionEvent::Down { .. } => self.peer_down(id),
            _ => {}
        }
    }

    pub fn peer_up(&mut self, id: SessionId, peer: PeerInfo) {
        self.peers.insert(id, peer);
    }

    /// Puts session `id` in multipath group `group` (`None`: in none, the default). A
    /// prefix's best route then lists, as [`BestRoute::multipath`], the other sessions of
    /// its group whose routes are equal-cost ([`super::best_path::equal_cost`]): e.g. the
    /// two tunnels of one VPN connection, both to the same provider AS. Takes effect for
    /// routes learned from then on (set it before the session comes up).
    pub fn set_multipath_group(&mut self, id: SessionId, group: Option<u32>) {
        match group {
            Some(g) => self.multipath.insert(id, g),
            None => self.multipath.remove(&id),
        };
    }

    /// Gives session `id` a local rank: among routes equal by their attributes, the
    /// session with the lowest rank wins before the peers' identifiers decide (0, the
    /// default, for all: identifiers alone). E.g. an active-standby VPN connection's
    /// tunnels by their order, so that our traffic takes the tunnel the peer is told to
    /// prefer. Takes effect for routes learned from then on (set it before the session
    /// comes up).
    pub fn set_rank(&mut self, id: SessionId, rank: u16) {
        if rank == 0 {
            self.ranks.remove(&id);
        } else {
            self.ranks.insert(id, rank);
        }
    }

    pub fn learn(&mut self, id: SessionId, prefix: Ipv4Prefix, attributes: Arc<PathAttributes>) {
        self.candidates
            .entry(prefix)
            .or_default()
            .insert(id, attributes);
        self.reselect(prefix);
    }

    pub fn withdraw(&mut self, id: SessionId, prefix: Ipv4Prefix) {
        if let Some(c) = self.candidates.get_mut(&prefix) {
            if c.remove(&id).is_some() {
                if c.is_empty() {
                    self.candidates.remove(&prefix);
                }
                self.reselect(prefix);
            }
        }
    }

    /// A session that has ended for good: its routes go, and its group and rank.
    pub fn forget(&mut self, id: SessionId) {
        self.peer_down(id);
        self.multipath.remove(&id);
        self.ranks.remove(&id);
    }

    /// Removes every route of a session that went down.
    pub fn peer_down(&mut self, id: SessionId) {
        self.peers.remove(&id);
        let affected: Vec<Ipv4Prefix> = self
            .candidates
            .iter()
            .filter(|(_, c)| c.contains_key(&id))
            .map(|(p, _)| *p)
            .collect();
        for prefix in affected {
            self.withdraw(id, prefix);
        }
    }

    pub fn poll_change(&mut self) -> Option<LocRibChange> {
        self.changes.pop_front()
    }

    pub fn best(&self, prefix: &Ipv4Prefix) -> Option<&BestRoute> {
        self.best.get(prefix)
    }

    /// The whole Loc-RIB, in prefix order.
    pub fn best_routes(&self) -> impl Iterator<Item = (&Ipv4Prefix, &BestRoute)> {
        self.best.iter()
    }

    pub fn len(&self) -> usize {
        self.best.len()
    }

    pub fn is_empty(&self) -> bool {
        self.best.is_empty()
    }

    fn peer(&self, id: SessionId) -> &PeerInfo {
        self.peers.get(&id).unwrap_or(&UNKNOWN_PEER)
    }

    fn rank(&self, id: SessionId) -> u16 {
        self.ranks.get(&id).copied().unwrap_or(0)
    }

    fn reselect(&mut self, prefix: Ipv4Prefix) {
        let winner = self.candidates.get(&prefix).and_then(|c| {
            let usable = || c.iter().filter(|(_, a)| a.next_hop.is_some());
            let (id, a) = usable().min_by(|(ia, a), (ib, b)| {
                compare(
                    (a, self.rank(**ia), self.peer(**ia)),
                    (b, self.rank(**ib), self.peer(**ib)),
                )
            })?;
            let group = self.multipath.get(id);
            let multipath = usable()
                .filter(|(other, b)| {
                    *other != id
                        && group.is_some()
                        && self.multipath.get(other) == group
                        && equal_cost(a, b)
                })
                .filter_map(|(other, b)| Some((*other, b.next_hop?)))
                .collect();
            Some(BestRoute {
                session: *id,
                next_hop: a.next_hop?,
                attributes: a.clone(),
                multipath,
            })
        });
        let change = match (self.best.get(&prefix), winner) {
            (None, None) => None,
            (Some(_), None) => {
                self.best.remove(&prefix);
                Some(LocRibChange::Removed { prefix })
            }
            (None, Some(route)) => {
                self.best.insert(prefix, route.clone());
                Some(LocRibChange::Added { prefix, route })
            }
            (Some(old), Some(route)) if *old == route => None,
            (Some(_), Some(route)) => {
                self.best.insert(prefix, route.clone());
                Some(LocRibChange::Changed { prefix, route })
            }
        };
        self.changes.extend(change);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::{AsPath, Origin};

    fn attrs(path: Vec<u32>, nh: [u8; 4]) -> Arc<PathAttributes> {
        Arc::new(PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence(path)),
            next_hop: Some(Ipv4Addr::from(nh)),
            ..Default::default()
        })
    }

    fn drain(rib: &mut Rib) -> Vec<LocRibChange> {
        std::iter::from_fn(|| rib.poll_change()).collect()
    }

    #[test]
    fn best_route_moves_between_sessions() {
        let mut rib = Rib::new();
        let (s1, s2) = (SessionId(1), SessionId(2));
        rib.peer_up(
            s1,
            PeerInfo {
                router_id: Ipv4Addr::new(1, 1, 1, 1),
                address: Ipv4Addr::new(169, 254, 10, 1),
            },
        );
        rib.peer_up(
            s2,
            PeerInfo {
                router_id: Ipv4Addr::new(2, 2, 2, 2),
                address: Ipv4Addr::new(169, 254, 11, 1),
            },
        );
        let p: Ipv4Prefix = "172.16.0.0/16".parse().unwrap();
        let a1 = attrs(vec![65000], [169, 254, 10, 1]);
        let a2 = attrs(vec![65000], [169, 254, 11, 1]);
        rib.learn(s2, p, a2.clone());
        rib.learn(s1, p, a1.clone());
        let changes = drain(&mut rib);
        assert_eq!(changes.len(), 2);
        // Equal paths: the lower router id (session 1) wins.
        assert_eq!(rib.best(&p).unwrap().session, s1);
        assert!(matches!(&changes[1], LocRibChange::Changed { route, .. } if route.session == s1));
        // Tunnel 1 goes down: traffic moves to tunnel 2.
        rib.peer_down(s1);
        assert_eq!(
            drain(&mut rib),
            vec![LocRibChange::Changed {
                prefix: p,
                route: BestRoute {
                    session: s2,
                    next_hop: Ipv4Addr::new(169, 254, 11, 1),
                    attributes: a2,
                    multipath: vec![],
                }
            }]
        );
        rib.withdraw(s2, p);
        assert_eq!(drain(&mut rib), vec![LocRibChange::Removed { prefix: p }]);
        assert!(rib.is_empty());
        // A withdraw of something unknown changes nothing.
        rib.withdraw(s2, p);
        assert!(drain(&mut rib).is_empty());
    }

    #[test]
    fn a_lower_rank_wins_equal_routes_but_not_better_ones() {
        let mut rib = Rib::new();
        let (s1, s2) = (SessionId(1), SessionId(2));
        for (s, id) in [(s1, 9), (s2, 1)] {
            rib.peer_up(
                s,
                PeerInfo {
                    router_id: Ipv4Addr::new(id, id, id, id),
                    address: Ipv4Addr::new(169, 254, id, 1),
                },
            );
        }
        rib.set_rank(s2, 1);
        let p: Ipv4Prefix = "172.16.0.0/16".parse().unwrap();
        rib.learn(s1, p, attrs(vec![65000], [169, 254, 9, 1]));
        rib.learn(s2, p, attrs(vec![65000], [169, 254, 1, 1]));
        // Session 2's peer has the lower identifier, but session 1 ranks first.
        assert_eq!(rib.best(&p).map(|b| b.session), Some(s1));
        // A shorter path still beats the rank.
        rib.learn(s1, p, attrs(vec![65000, 65001], [169, 254, 9, 1]));
        assert_eq!(rib.best(&p).map(|b| b.session), Some(s2));
        // Forgotten, a session's rank is gone with it.
        rib.forget(s2);
        assert!(rib.ranks.is_empty());
        assert_eq!(rib.best(&p).map(|b| b.session), Some(s1));
    }

    #[test]
    fn same_route_again_is_no_change() {
        let mut rib = Rib::new();
        let p: Ipv4Prefix = "172.16.0.0/16".parse().unwrap();
        let a = attrs(vec![65000], [169, 254, 10, 1]);
        rib.learn(SessionId(1), p, a.clone());
        rib.learn(SessionId(1), p, a);
        assert_eq!(drain(&mut rib).len(), 1);
        // Shorter path from another session takes over.
        rib.learn(SessionId(2), p, attrs(vec![], [169, 254, 11, 1]));
        assert!(matches!(
            drain(&mut rib)[..],
            [LocRibChange::Changed { .. }]
        ));
    }

    #[test]
    fn sessions_of_one_multipath_group_share_equal_cost_prefixes() {
        let mut rib = Rib::new();
        let (s1, s2, s3) = (SessionId(1), SessionId(2), SessionId(3));
        for s in [s1, s2] {
            rib.set_multipath_group(s, Some(7));
        }
        let p: Ipv4Prefix = "172.16.0.0/16".parse().unwrap();
        let nh2 = Ipv4Addr::new(169, 254, 11, 1);
        rib.learn(s1, p, attrs(vec![65000], [169, 254, 10, 1]));
        rib.learn(s2, p, attrs(vec![65000], nh2.octets()));
        // Not in the group: never shares, even when equal.
        rib.learn(s3, p, attrs(vec![65000], [169, 254, 12, 1]));
        let best = rib.best(&p).unwrap();
        assert_eq!((best.session, &best.multipath[..]), (s1, &[(s2, nh2)][..]));
        let changes = drain(&mut rib);
        assert!(
            matches!(&changes[1], LocRibChange::Changed { route, .. } if route.multipath.len() == 1)
        );
        // A longer path on s2 is no longer equal: s2 leaves the set, s1 stays best.
        rib.learn(s2, p, attrs(vec![65000, 65000], nh2.octets()));
        let best = rib.best(&p).unwrap();
        assert_eq!((best.session, best.multipath.len()), (s1, 0));
        assert_eq!(drain(&mut rib).len(), 1);
        // Out of the group, a session's equal route is not shared either.
        rib.set_multipath_group(s2, None);
        rib.learn(s2, p, attrs(vec![65000], nh2.octets()));
        assert!(rib.best(&p).unwrap().multipath.is_empty());
    }
}
