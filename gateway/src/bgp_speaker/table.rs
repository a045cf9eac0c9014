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

#[derive(Debug, Default)]
pub struct BgpRouteTable {
    routes: BTreeMap<IpNet, BgpRouteEntry>,
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
                match self.routes.insert(*prefix, entry) {
                    None => KernelEdit::Add(*prefix),
                    Some(_) => KernelEdit::Nothing,
                }
            }
            BgpRouteChange::Withdraw { prefix, tunnel } => {
                if self.routes.get(prefix).is_some_and(|e| e.tunnel == *tunnel) {
                    self.routes.remove(prefix);
                    KernelEdit::Remove(*prefix)
                } else {
                    KernelEdit::Nothing
                }
            }
        })
    }

    /// Every BGP route, in prefix order.
    pub fn entries(&self) -> impl Iterator<Item = &BgpRouteEntry> {
        self.routes.values()
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

    #[test]
    fn kernel_routes_follow_the_first_announce_and_the_last_withdraw() {
        let (a, b) = (TunnelId(0), TunnelId(1));
        let mut rib = Rib::new();
        rib.add_tunnel(a, SelectionMode::ActiveStandby);
        rib.add_tunnel(b, SelectionMode::ActiveStandby);
        rib.set_tunnel_up(a, true).unwrap();
        rib.set_tunnel_up(b, true).unwrap();
        let prefix: IpNet = "10.20.0.0/24".parse().unwrap();
        let announce = |tunnel| BgpRouteChange::Announce {
            prefix,
            tunnel,
            next_hop: Ipv4Addr::new(169, 254, 10, 1),
            as_path: vec![65000],
        };
        let mut t = BgpRouteTable::new();
        assert_eq!(t.apply(&announce(a), &mut rib), Ok(KernelEdit::Add(prefix)));
        assert_eq!(rib.build().lookup("10.20.0.1".parse().unwrap(), 0), Some(a));
        // The best route moves to b: the translator withdraws a first, then announces b.
        assert_eq!(
            t.apply(&BgpRouteChange::Withdraw { prefix, tunnel: a }, &mut rib),
            Ok(KernelEdit::Remove(prefix))
        );
        assert_eq!(t.apply(&announce(b), &mut rib), Ok(KernelEdit::Add(prefix)));
        assert_eq!(t.apply(&announce(b), &mut rib), Ok(KernelEdit::Nothing));
        assert_eq!(rib.build().lookup("10.20.0.1".parse().unwrap(), 0), Some(b));
        // A stale withdraw for the other tunnel leaves the route alone.
        assert_eq!(
            t.apply(&BgpRouteChange::Withdraw { prefix, tunnel: a }, &mut rib),
            Ok(KernelEdit::Nothing)
        );
        assert_eq!(t.entries().next().map(|e| e.tunnel), Some(b));
        assert_eq!(
            t.apply(&BgpRouteChange::Withdraw { prefix, tunnel: b }, &mut rib),
            Ok(KernelEdit::Remove(prefix))
        );
        assert!(t.is_empty());
        assert!(rib.build().is_empty());
    }
}
