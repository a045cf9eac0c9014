//! State the session tasks share: the Loc-RIB with its outgoing channel, and the stats.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use bgp::{Rib, SessionEvent, SessionId, SessionStats};
use tokio::sync::mpsc::UnboundedSender;

use super::routes::{BgpRouteChange, Translator};
use super::status::{BgpSessionStatus, StatusEntry};
use super::SessionSpec;
use crate::routing::TunnelId;

struct RibState {
    rib: Rib,
    translator: Translator,
    /// Closed receiver = nobody routes any more; changes are then dropped.
    out: UnboundedSender<Vec<BgpRouteChange>>,
    /// Sessions told to stop whose tasks still run (saying goodbye): their routes are
    /// gone already and what they still report is ignored.
    stopping: BTreeSet<SessionId>,
}

pub(crate) struct Shared {
    rib: Mutex<RibState>,
    status: Mutex<BTreeMap<TunnelId, StatusEntry>>,
}

/// A panic elsewhere must not take routing down with it: the data under these locks is
/// always consistent between calls.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The Loc-RIB's name for one session: its tunnel in the low 16 bits (what routes are
/// translated back to), its generation above.
pub(crate) fn session_id(tunnel: TunnelId, generation: u16) -> SessionId {
    SessionId(u32::from(generation) << 16 | u32::from(tunnel.0))
}

/// The tunnel of a Loc-RIB session.
pub(crate) fn tunnel_of(session: SessionId) -> TunnelId {
    TunnelId((session.0 & 0xffff) as u16)
}

impl Shared {
    pub fn new(out: UnboundedSender<Vec<BgpRouteChange>>) -> Self {
        Self {
            rib: Mutex::new(RibState {
                rib: Rib::new(),
                translator: Translator::default(),
                out,
                stopping: BTreeSet::new(),
            }),
            status: Mutex::new(BTreeMap::new()),
        }
    }

    /// Feeds session events (what one read of the peer produced, e.g. the prefixes of an
    /// UPDATE) to the Loc-RIB and publishes what changed, as one batch. Under one lock,
    /// so changes leave in the order the Loc-RIB made them.
    pub fn apply(&self, spec: &SessionSpec, events: &[SessionEvent]) {
        let mut st = lock(&self.rib);
        let id = session_id(spec.tunnel, spec.generation);
        if st.stopping.contains(&id) {
            return;
        }
        for event in events {
            st.rib.apply(id, event);
        }
        Self::publish(&mut st);
    }

    /// Takes the routes of that session of `tunnel` out of the Loc-RIB now, as it is told
    /// to stop: its tunnel went down, so nothing it learned carries traffic, and the
    /// other tunnel's routes must take over at once, not when the session has finished
    /// saying goodbye (up to half a second of Cease and FIN).
    pub fn stopping(&self, tunnel: TunnelId, generation: u16) {
        let mut st = lock(&self.rib);
        let id = session_id(tunnel, generation);
        st.stopping.insert(id);
        st.rib.peer_down(id);
        Self::publish(&mut st);
    }

    /// The session's multipath group and rank: see [`bgp::Rib::set_multipath_group`] and
    /// [`bgp::Rib::set_rank`].
    pub fn set_selection(&self, spec: &SessionSpec) {
        let id = session_id(spec.tunnel, spec.generation);
        let rib = &mut lock(&self.rib).rib;
        rib.set_multipath_group(id, spec.multipath_group);
        rib.set_rank(id, spec.rank);
    }

    /// Forgets every route of that session of `tunnel` (it ended), and shows it stopped
    /// unless a newer one runs.
    pub fn session_gone(&self, tunnel: TunnelId, generation: u16) {
        {
            let mut st = lock(&self.rib);
            let id = session_id(tunnel, generation);
            st.stopping.remove(&id);
            st.rib.forget(id);
            Self::publish(&mut st);
        }
        if let Some(e) = lock(&self.status)
            .get_mut(&tunnel)
            .filter(|e| e.spec.generation == generation)
        {
            e.running = false;
        }
    }

    /// Sends what the last event changed as one batch: an UPDATE of a thousand prefixes,
    /// or a session's whole table going, is one rebuild of the forwarding table, not a
    /// thousand.
    fn publish(st: &mut RibState) {
        let mut batch = Vec::new();
        while let Some(change) = st.rib.poll_change() {
            for c in st.translator.translate(&change) {
                tracing::debug!(change = ?c, "bgp route change");
                batch.push(c);
            }
        }
        if !batch.is_empty() {
            // A closed receiver means the daemon is shutting down.
            let _ = st.out.send(batch);
        }
    }

    /// Records a session's stats, unless a newer session of its tunnel has started.
    pub fn set_status(&self, spec: &SessionSpec, stats: SessionStats, running: bool) {
        let mut status = lock(&self.status);
        if status.get(&spec.tunnel).is_some_and(|e| {
            e.spec.generation != spec.generation && !newer(spec.generation, e.spec.generation)
        }) {
            return;
        }
        status.insert(
            spec.tunnel,
            StatusEntry {
                spec: spec.clone(),
                stats,
                running,
            },
        );
    }

    pub fn status(&self) -> Vec<BgpSessionStatus> {
        let now = Instant::now();
        lock(&self.status).values().map(|e| e.report(now)).collect()
    }

    /// The Loc-RIB: prefix, tunnel and next hop of every best route.
    pub fn best_routes(&self) -> Vec<(bgp::Ipv4Prefix, TunnelId, std::net::Ipv4Addr)> {
        lock(&self.rib)
            .rib
            .best_routes()
            .map(|(p, r)| (*p, tunnel_of(r.session), r.next_hop))
            .collect()
    }
}

/// Whether generation `a` came after `b` (they wrap; two sessions of one tunnel alive at
/// once are a few apart at most).
fn newer(a: u16, b: u16) -> bool {
    let d = a.wrapping_sub(b);
    d != 0 && d < u16::MAX / 2
}

#[cfg(test)]
mod tests {
    use super::*;
    use bgp::wire::attrs::PathAttributes;
    use bgp::{Ipv4Prefix, Session, SessionConfig};
    use std::net::Ipv4Addr;
    use std::sync::Arc;

    fn spec(generation: u16) -> SessionSpec {
        let (local, peer) = (
            Ipv4Addr::new(169, 254, 10, 2),
            Ipv4Addr::new(169, 254, 10, 1),
        );
        SessionSpec {
            tunnel: TunnelId(3),
            name: "tun1".into(),
            session: SessionConfig::new(65010, local, local, peer),
            port: 179,
            multipath_group: None,
            rank: 0,
            generation,
        }
    }

    fn stats(spec: &SessionSpec) -> SessionStats {
        Session::new(spec.session.clone()).expect("session").stats()
    }

    fn established(shared: &Shared, spec: &SessionSpec) {
        shared.apply(
            spec,
            &[SessionEvent::Established {
                peer_asn: 65000,
                peer_router_id: Ipv4Addr::new(169, 254, 10, 1),
                peer_address: Ipv4Addr::new(169, 254, 10, 1),
                hold_time: 30,
            }],
        );
    }

    /// A tunnel flapped: its old session ends (Cease sent, waiting for a FIN that may
    /// never come) while the next one has already learned the peer's routes. The old
    /// one's end must take only its own routes and status with it.
    #[test]
    fn an_ending_session_leaves_the_next_one_of_its_tunnel_alone() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let shared = Shared::new(tx);
        let (old, new) = (spec(7), spec(8));
        shared.set_status(&old, stats(&old), true);
        established(&shared, &old);
        // The next session starts before the old one is gone, and learns a route.
        shared.set_status(&new, stats(&old), true);
        established(&shared, &new);
        let prefix: Ipv4Prefix = "10.20.0.0/24".parse().unwrap();
        learn(&shared, &new, prefix);
        assert_eq!(shared.best_routes().len(), 1);
        assert!(matches!(
            rx.try_recv().as_deref(),
            Ok([BgpRouteChange::Announce {
                tunnel: TunnelId(3),
                ..
            }])
        ));
        // Now the old one ends: its last status report and its goodbye.
        shared.set_status(&old, stats(&old), false);
        shared.session_gone(old.tunnel, old.generation);
        assert_eq!(
            shared.best_routes().len(),
            1,
            "the new session's route stays"
        );
        assert!(rx.try_recv().is_err(), "no route change");
        let status = shared.status();
        assert!(status[0].running, "the new session still shows running");
        // The new one's own end does take them.
        shared.session_gone(new.tunnel, new.generation);
        assert!(shared.best_routes().is_empty());
        assert!(!shared.status()[0].running);
    }

    fn learn(shared: &Shared, spec: &SessionSpec, prefix: Ipv4Prefix) {
        let attributes = PathAttributes {
            next_hop: Some(Ipv4Addr::new(169, 254, 10, 1)),
            ..PathAttributes::default()
        };
        shared.apply(
            spec,
            &[SessionEvent::RouteLearned {
                prefix,
                attributes: Arc::new(attributes),
            }],
        );
    }

    /// Tunnel 3 goes down while tunnel 4's session has the same route: the route moves
    /// to tunnel 4 the moment tunnel 3's session is told to stop, and what that session
    /// still reports while it says goodbye changes nothing.
    #[test]
    fn a_stopping_sessions_routes_go_at_once() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let shared = Shared::new(tx);
        let first = spec(7);
        let second = SessionSpec {
            tunnel: TunnelId(4),
            ..spec(8)
        };
        let prefix: Ipv4Prefix = "10.20.0.0/24".parse().unwrap();
        for s in [&first, &second] {
            established(&shared, s);
            learn(&shared, s, prefix);
        }
        let best = |shared: &Shared| shared.best_routes().first().map(|r| r.1);
        assert_eq!(best(&shared), Some(TunnelId(3)));
        while rx.try_recv().is_ok() {}

        shared.stopping(first.tunnel, first.generation);
        assert_eq!(best(&shared), Some(TunnelId(4)));
        let changes: Vec<_> = std::iter::from_fn(|| rx.try_recv().ok())
            .flatten()
            .collect();
        assert!(
            changes.iter().any(|c| matches!(
                c,
                BgpRouteChange::Announce {
                    tunnel: TunnelId(4),
                    ..
                }
            )),
            "{changes:?}"
        );
        // Still running: a late UPDATE of the stopping session is ignored.
        learn(&shared, &first, prefix);
        assert_eq!(best(&shared), Some(TunnelId(4)));
        assert!(rx.try_recv().is_err());
        // Its end changes nothing more.
        shared.session_gone(first.tunnel, first.generation);
        assert_eq!(best(&shared), Some(TunnelId(4)));
        assert!(rx.try_recv().is_err());
    }

    /// The prefixes of one read of the peer (a large UPDATE) leave as one batch, so the
    /// daemon rebuilds its forwarding table once for them, not once per prefix.
    #[test]
    fn the_events_of_one_read_are_one_batch() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let shared = Shared::new(tx);
        let s = spec(7);
        established(&shared, &s);
        let attributes = Arc::new(PathAttributes {
            next_hop: Some(Ipv4Addr::new(169, 254, 10, 1)),
            ..PathAttributes::default()
        });
        let events: Vec<SessionEvent> = (0..1000u32)
            .map(|i| SessionEvent::RouteLearned {
                prefix: Ipv4Prefix::new(Ipv4Addr::from(0x0a00_0000 + (i << 8)), 24).unwrap(),
                attributes: attributes.clone(),
            })
            .collect();
        shared.apply(&s, &events);
        let batch = rx.try_recv().expect("one batch");
        assert_eq!(batch.len(), 1000);
        assert!(rx.try_recv().is_err(), "and only one");
        // Withdrawing them all at once is one batch too.
        shared.stopping(s.tunnel, s.generation);
        assert_eq!(rx.try_recv().map(|b| b.len()), Ok(1000));
        assert!(rx.try_recv().is_err());
    }

    #[test]
    fn generations_wrap() {
        assert!(newer(1, 0));
        assert!(newer(0, u16::MAX));
        assert!(!newer(0, 1));
        assert!(!newer(5, 5));
    }
}
