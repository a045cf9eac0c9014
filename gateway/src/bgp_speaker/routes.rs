//! Turns Loc-RIB changes into the BGP inputs of the gateway's routing table.
//!
//! `bgp::Rib` keeps one best route per prefix; `routing::Rib` keeps, per prefix, the set of
//! tunnels that announced it. The translation keeps exactly one tunnel per BGP prefix in
//! the routing table (the best route's), so a changed best route withdraws the old tunnel
//! before announcing the new one.

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

/// Remembers which tunnel each prefix was announced through.
#[derive(Debug, Default)]
pub struct Translator {
    announced: BTreeMap<Ipv4Prefix, TunnelId>,
}

impl Translator {
    /// The routing-table edits for one Loc-RIB change, in order. Sessions whose id does
    /// not fit a `TunnelId` cannot exist (the speaker numbers them by tunnel).
    pub fn translate(&mut self, change: &LocRibChange) -> Vec<BgpRouteChange> {
        let mut out = Vec::with_capacity(2);
        match change {
            LocRibChange::Added { prefix, route } | LocRibChange::Changed { prefix, route } => {
                let Ok(tunnel) = u16::try_from(route.session.0).map(TunnelId) else {
                    return out;
                };
                if let Some(old) = self.announced.insert(*prefix, tunnel) {
                    if old != tunnel {
                        out.push(BgpRouteChange::Withdraw {
                            prefix: net(prefix),
                            tunnel: old,
                        });
                    }
                }
                out.push(announce(prefix, tunnel, route));
            }
            LocRibChange::Removed { prefix } => {
                if let Some(old) = self.announced.remove(prefix) {
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

fn announce(prefix: &Ipv4Prefix, tunnel: TunnelId, route: &BestRoute) -> BgpRouteChange {
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
        next_hop: route.next_hop,
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
        assert_eq!(
            moved[0],
            BgpRouteChange::Withdraw {
                prefix: net,
                tunnel: TunnelId(0)
            }
        );
        assert!(
            matches!(moved[1], BgpRouteChange::Announce { tunnel: TunnelId(1), ref as_path, .. } if as_path == &[65000, 65001])
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
