//! Turns Loc-RIB changes into the BGP inputs of the gateway's routing table.
//!
//! `bgp::Rib` keeps one best route per prefix, with the equal-cost routes of the other
//! tunnels of its multipath group (a connection in ECMP mode); `routing::Rib` keeps, per
//! prefix, the set of tunnels that announced it. The translation puts exactly those
//! tunnels in the routing table (the best route's, and the equal-cost ones), so a
//! changed best route withdraws the tunnels it no longer uses before announcing the new.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use bgp::wire::AsSegment;
use bgp::{BestRoute, Ipv4Prefix, LocRibChange};
use ipnet::{IpNet, Ipv4Net};

use crate::routing::{Rib, RouteError, TunnelId};

/// One edit of the routing table's BGP routes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BgpRouteChange {
    /// `prefix` is best reached through `tunnel` (the session that taught us the route).
    Announce {
        prefix: IpNet,
        tunnel: TunnelId,
        next_hop: Ipv4Addr,
        /// The AS_PATH flattened (sets included), for logs and `vpngw routes`.
        as_path: Vec<u32>,
    },
    /// `tunnel` no longer carries `prefix`.
    Withdraw { prefix: IpNet, tunnel: TunnelId },
}

impl BgpRouteChange {
    pub fn prefix(&self) -> IpNet {
        match self {
            Self::Announce { prefix, .. } | Self::Withdraw { prefix, .. } => *prefix,
        }
    }

    /// Applies the change to the routing table (the caller then rebuilds its FIB).
    pub fn apply(&self, rib: &mut Rib) -> Result<(), RouteError> {
        match self {
            Self::Announce { prefix, tunnel, .. } => rib.bgp_announce(*prefix, *tunnel),
            Self::Withdraw { prefix, tunnel } => {
                rib.bgp_withdraw(*prefix, *tunnel);
                Ok(())
            }
        }
    }
}

/// Remembers which tunnels each prefix was announced through.
#[derive(Debug, Default)]
pub struct Translator {
    announced: BTreeMap<Ipv4Prefix, Vec<TunnelId>>,
}

impl Translator {
    /// The routing-table edits for one Loc-RIB change, in order.
    pub fn translate(&mut self, change: &LocRibChange) -> Vec<BgpRouteChange> {
        let mut out = Vec::with_capacity(2);
        match change {
            LocRibChange::Added { prefix, route } | LocRibChange::Changed { prefix, route } => {
                let mut hops: Vec<(TunnelId, Ipv4Addr)> = Vec::new();
                // Two sessions of one tunnel (one ending, the next starting) are one hop.
                for (s, nh) in std::iter::once((route.session, route.next_hop))
                    .chain(route.multipath.iter().copied())
                {
                    let tunnel = super::shared::tunnel_of(s);
                    if !hops.iter().any(|(t, _)| *t == tunnel) {
                        hops.push((tunnel, nh));
                    }
                }
                let tunnels: Vec<TunnelId> = hops.iter().map(|(t, _)| *t).collect();
                let old = self.announced.insert(*prefix, tunnels.clone());
                // New tunnels first, then the ones no longer used: the prefix always
                // has a route (no kernel route removed and added again).
                for (tunnel, next_hop) in hops {
                    out.push(announce(prefix, tunnel, next_hop, route));
                }
                for gone in old.iter().flatten().filter(|t| !tunnels.contains(t)) {
                    out.push(BgpRouteChange::Withdraw {
                        prefix: net(prefix),
                        tunnel: *gone,
                    });
                }
            }
            LocRibChange::Removed { prefix } => {
                for old in self.announced.remove(prefix).into_iter().flatten() {
                    out.push(BgpRouteChange::Withdraw {
                        prefix: net(prefix),
                        tunnel: old,
                    });
                }
            }
        }
        out
    }
}

/// The announcement of `route` (its attributes: equal-cost routes share the AS path)
/// through `tunnel` with that tunnel's next hop.
fn announce(
    prefix: &Ipv4Prefix,
    tunnel: TunnelId,
    next_hop: Ipv4Addr,
    route: &BestRoute,
) -> BgpRouteChange {
    let as_path = route
        .attributes
        .as_path
        .iter()
        .flat_map(|p| p.segments.iter())
        .flat_map(|s| match s {
            AsSegment::Sequence(v) | AsSegment::Set(v) => v.iter().copied(),
        })
        .collect();
    BgpRouteChange::Announce {
        prefix: net(prefix),
        tunnel,
        next_hop,
        as_path,
    }
}

fn net(prefix: &Ipv4Prefix) -> IpNet {
    // An Ipv4Prefix length is at most 32, so this cannot fail; fall back to a host
    // route rather than panic.
    Ipv4Net::new(prefix.addr(), prefix.len())
        .unwrap_or_else(|_| Ipv4Net::from(prefix.addr()))
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SelectionMode;
    use bgp::wire::{AsPath, Origin, PathAttributes};
    use bgp::SessionId;
    use std::sync::Arc;

    fn route(session: u32, next_hop: [u8; 4], path: &[u32]) -> BestRoute {
        let attributes = PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence(path.to_vec())),
            next_hop: Some(next_hop.into()),
            ..PathAttributes::default()
        };
        BestRoute {
            session: SessionId(session),
            next_hop: next_hop.into(),
            attributes: Arc::new(attributes),
            multipath: vec![],
        }
    }

    fn p(s: &str) -> Ipv4Prefix {
        s.parse().unwrap()
    }

    #[test]
    fn best_route_moving_between_tunnels_withdraws_the_old_one() {
        let mut t = Translator::default();
        let prefix = p("10.20.0.0/24");
        let net: IpNet = "10.20.0.0/24".parse().unwrap();
        let first = t.translate(&LocRibChange::Added {
            prefix,
            route: route(0, [169, 254, 10, 1], &[65000]),
        });
        assert_eq!(
            first,
            vec![BgpRouteChange::Announce {
                prefix: net,
                tunnel: TunnelId(0),
                next_hop: [169, 254, 10, 1].into(),
                as_path: vec![65000],
            }]
        );
        let moved = t.translate(&LocRibChange::Changed {
            prefix,
            route: route(1, [169, 254, 11, 1], &[65000, 65001]),
        });
        // The new tunnel first, so the prefix is never without a route.
        assert!(
            matches!(moved[0], BgpRouteChange::Announce { tunnel: TunnelId(1), ref as_path, .. } if as_path == &[65000, 65001])
        );
        assert_eq!(
            moved[1],
            BgpRouteChange::Withdraw {
                prefix: net,
                tunnel: TunnelId(0)
            }
        );
        // Attributes changed on the same tunnel: announce again, nothing withdrawn.
        let same = t.translate(&LocRibChange::Changed {
            prefix,
            route: route(1, [169, 254, 11, 1], &[65000]),
        });
        assert_eq!(same.len(), 1);
        let gone = t.translate(&LocRibChange::Removed { prefix });
        assert_eq!(
            gone,
            vec![BgpRouteChange::Withdraw {
                prefix: net,
                tunnel: TunnelId(1)
            }]
        );
        assert!(t.translate(&LocRibChange::Removed { prefix }).is_empty());
    }

    #[test]
    fn equal_cost_tunnels_are_announced_and_withdrawn_one_by_one() {
        let mut t = Translator::default();
        let prefix = p("10.20.0.0/24");
        let net: IpNet = "10.20.0.0/24".parse().unwrap();
        let nh2 = Ipv4Addr::new(169, 254, 11, 1);
        let mut both = route(0, [169, 254, 10, 1], &[65000]);
        both.multipath = vec![(SessionId(1), nh2)];
        let first = t.translate(&LocRibChange::Added {
            prefix,
            route: both,
        });
        assert_eq!(first.len(), 2);
        assert!(
            matches!(first[1], BgpRouteChange::Announce { tunnel: TunnelId(1), next_hop, .. } if next_hop == nh2)
        );
        // Tunnel 0's route goes: tunnel 1 stays, alone, and is announced again.
        let alone = t.translate(&LocRibChange::Changed {
            prefix,
            route: route(1, nh2.octets(), &[65000]),
        });
        assert!(matches!(
            alone[0],
            BgpRouteChange::Announce {
                tunnel: TunnelId(1),
                ..
            }
        ));
        assert_eq!(
            alone[1..],
            [BgpRouteChange::Withdraw {
                prefix: net,
                tunnel: TunnelId(0)
            }]
        );
        let gone = t.translate(&LocRibChange::Removed { prefix });
        assert_eq!(gone.len(), 1);
    }

    #[test]
    fn changes_drive_the_routing_table_and_static_routes_still_win() {
        let (a, b) = (TunnelId(0), TunnelId(1));
        let mut rib = Rib::new();
        rib.add_tunnel(a, SelectionMode::ActiveStandby);
        rib.add_tunnel(b, SelectionMode::ActiveStandby);
        rib.set_tunnel_up(a, true).unwrap();
        rib.set_tunnel_up(b, true).unwrap();
        rib.add_static("10.30.0.0/16".parse().unwrap(), &[a])
            .unwrap();

        let mut t = Translator::default();
        let mut feed = |rib: &mut Rib, change: LocRibChange| {
            for c in t.translate(&change) {
                c.apply(rib).unwrap();
            }
        };
        feed(
            &mut rib,
            LocRibChange::Added {
                prefix: p("10.20.0.0/24"),
                route: route(1, [169, 254, 11, 1], &[65000]),
            },
        );
        feed(
            &mut rib,
            LocRibChange::Added {
                prefix: p("10.30.0.0/16"),
                route: route(1, [169, 254, 11, 1], &[65000]),
            },
        );
        let fib = rib.build();
        assert_eq!(fib.lookup("10.20.0.9".parse().unwrap(), 0), Some(b));
        assert_eq!(
            fib.lookup("10.30.1.1".parse().unwrap(), 0),
            Some(a),
            "the static route wins over BGP"
        );
        feed(
            &mut rib,
            LocRibChange::Removed {
                prefix: p("10.20.0.0/24"),
            },
        );
        assert_eq!(rib.build().lookup("10.20.0.9".parse().unwrap(), 0), None);
    }

    #[test]
    fn unknown_tunnel_is_a_typed_error() {
        let mut rib = Rib::new();
        let change = BgpRouteChange::Announce {
            prefix: "10.0.0.0/8".parse().unwrap(),
            tunnel: TunnelId(7),
            next_hop: Ipv4Addr::LOCALHOST,
            as_path: vec![],
        };
        assert_eq!(
            change.apply(&mut rib),
            Err(RouteError::UnknownTunnel(TunnelId(7)))
        );
    }
}
