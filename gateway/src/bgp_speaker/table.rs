//! The daemon's view of its BGP routes: applies [`BgpRouteChange`]s to `routing::Rib` and
//! says which kernel routes (towards the TUN device) to add or remove, and lists the routes
//! for `vpngw routes` (source `bgp`).

use std::collections::BTreeMap;
use std::net::Ipv4Addr;

use ipnet::IpNet;

use super::BgpRouteChange;
use crate::routing::{Rib, RouteError, TunnelId};

/// A BGP route the routing table holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpRouteEntry {
    pub prefix: IpNet,
    pub tunnel: TunnelId,
    pub next_hop: Ipv4Addr,
    pub as_path: Vec<u32>,
}

/// What the kernel routing table needs after a change: the prefix must point at the TUN
/// device (or no longer). The daemon keeps a kernel route that a static route also needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KernelEdit {
    Add(IpNet),
    Remove(IpNet),
    Nothing,
}

/// Per prefix, its route through each tunnel that carries it (one, or the equal-cost
/// tunnels of an ECMP connection).
#[derive(Debug, Default)]
pub struct BgpRouteTable {
    routes: BTreeMap<IpNet, Vec<BgpRouteEntry>>,
}

impl BgpRouteTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies `change` to `rib` and to this table (the caller then publishes the FIB).
    pub fn apply(
        &mut self,
        change: &BgpRouteChange,
        rib: &mut Rib,
    ) -> Result<KernelEdit, RouteError> {
        change.apply(rib)?;
        Ok(match change {
            BgpRouteChange::Announce {
                prefix,
                tunnel,
                next_hop,
                as_path,
            } => {
                let entry = BgpRouteEntry {
                    prefix: *prefix,
                    tunnel: *tunnel,
                    next_hop: *next_hop,
                    as_path: as_path.clone(),
                };
                let list = self.routes.entry(*prefix).or_default();
                let first = list.is_empty();
                match list.iter_mut().find(|e| e.tunnel == *tunnel) {
                    Some(e) => *e = entry,
                    None => {
                        list.push(entry);
                        list.sort_by_key(|e| e.tunnel);
                    }
                }
                if first {
                    KernelEdit::Add(*prefix)
                } else {
                    KernelEdit::Nothing
                }
            }
            BgpRouteChange::Withdraw { prefix, tunnel } => {
                let Some(list) = self.routes.get_mut(prefix) else {
                    return Ok(KernelEdit::Nothing);
                };
                list.retain(|e| e.tunnel != *tunnel);
                if list.is_empty() {
                    self.routes.remove(prefix);
                    KernelEdit::Remove(*prefix)
                } else {
                    KernelEdit::Nothing
                }
            }
        })
    }

    /// Every BGP prefix, in order, with its routes (in tunnel order).
    pub fn entries(&self) -> impl Iterator<Item = (&IpNet, &[BgpRouteEntry])> {
        self.routes.iter().map(|(p, l)| (p, l.as_slice()))
    }

    pub fn len(&self) -> usize {
        self.routes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::SelectionMode;

    const A: TunnelId = TunnelId(0);
    const B: TunnelId = TunnelId(1);

    fn prefix() -> IpNet {
        "10.20.0.0/24".parse().unwrap()
    }

    /// A routing table with tunnels A and B, both UP.
    fn rib(mode: SelectionMode) -> Rib {
        let mut rib = Rib::new();
        for t in [A, B] {
            rib.add_tunnel(t, mode);
            rib.set_tunnel_up(t, true).unwrap();
        }
        rib
    }

    fn announce(tunnel: TunnelId) -> BgpRouteChange {
        BgpRouteChange::Announce {
            prefix: prefix(),
            tunnel,
            next_hop: Ipv4Addr::new(169, 254, 10, 1),
            as_path: vec![65000],
        }
    }

    fn withdraw(tunnel: TunnelId) -> BgpRouteChange {
        BgpRouteChange::Withdraw {
            prefix: prefix(),
            tunnel,
        }
    }

    fn tunnels(t: &BgpRouteTable) -> Vec<TunnelId> {
        t.entries()
            .flat_map(|(_, l)| l.iter().map(|e| e.tunnel))
            .collect()
    }

    #[test]
    fn kernel_routes_follow_the_first_announce_and_the_last_withdraw() {
        let mut rib = rib(SelectionMode::ActiveStandby);
        let p = prefix();
        let mut t = BgpRouteTable::new();
        assert_eq!(t.apply(&announce(A), &mut rib), Ok(KernelEdit::Add(p)));
        assert_eq!(rib.build().lookup("10.20.0.1".parse().unwrap(), 0), Some(A));
        // The best route moves to B: the translator announces B first, then withdraws A,
        // so the kernel route stays.
        assert_eq!(t.apply(&announce(B), &mut rib), Ok(KernelEdit::Nothing));
        assert_eq!(t.apply(&withdraw(A), &mut rib), Ok(KernelEdit::Nothing));
        assert_eq!(t.apply(&announce(B), &mut rib), Ok(KernelEdit::Nothing));
        assert_eq!(rib.build().lookup("10.20.0.1".parse().unwrap(), 0), Some(B));
        // A stale withdraw for the other tunnel leaves the route alone.
        assert_eq!(t.apply(&withdraw(A), &mut rib), Ok(KernelEdit::Nothing));
        assert_eq!(tunnels(&t), [B]);
        assert_eq!(t.apply(&withdraw(B), &mut rib), Ok(KernelEdit::Remove(p)));
        assert!(t.is_empty());
        assert!(rib.build().is_empty());
    }

    #[test]
    fn an_equal_cost_prefix_keeps_its_kernel_route_until_its_last_tunnel_goes() {
        let mut rib = rib(SelectionMode::Ecmp);
        let mut t = BgpRouteTable::new();
        assert_eq!(
            t.apply(&announce(B), &mut rib),
            Ok(KernelEdit::Add(prefix()))
        );
        assert_eq!(t.apply(&announce(A), &mut rib), Ok(KernelEdit::Nothing));
        assert_eq!(tunnels(&t), [A, B]);
        // Flows are spread over both.
        let fib = rib.build();
        let used: std::collections::BTreeSet<_> = (0..64u32)
            .filter_map(|h| fib.lookup("10.20.0.1".parse().unwrap(), h))
            .collect();
        assert_eq!(used.len(), 2);
        assert_eq!(t.apply(&withdraw(A), &mut rib), Ok(KernelEdit::Nothing));
        assert_eq!(
            t.apply(&withdraw(B), &mut rib),
            Ok(KernelEdit::Remove(prefix()))
        );
        assert!(t.is_empty());
    }
}
