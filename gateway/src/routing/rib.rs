//! Control-plane routing state: static and BGP routes plus tunnel UP/DOWN; builds `Fib`s.
//!
//! Resolution per prefix: the static route if one of its tunnels is UP, else the BGP route via
//! its UP tunnels, else nothing (the lookup falls through to a shorter prefix). So a static
//! route wins over BGP, and routes via a DOWN tunnel move traffic to the other tunnel.

use super::fib::{Fib, NextHops};
use super::{SelectionMode, TunnelId};
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RouteError {
    #[error("tunnel {0:?} is not registered")]
    UnknownTunnel(TunnelId),
    #[error("a route needs one or two next-hop tunnels, got {0}")]
    NextHopCount(usize),
    #[error("tunnel {0:?} is named twice as next hop")]
    DuplicateNextHop(TunnelId),
    #[error("no tunnel is named `{0}`")]
    UnknownTunnelName(String),
    #[error("more than 65536 tunnels")]
    TooManyTunnels,
}

#[derive(Debug, Clone, Copy)]
struct TunnelState {
    up: bool,
    /// The selection mode of the tunnel's connection.
    mode: SelectionMode,
}

#[derive(Debug, Clone, Default)]
pub struct Rib {
    tunnels: BTreeMap<TunnelId, TunnelState>,
    statics: BTreeMap<IpNet, Vec<TunnelId>>,
    bgp: BTreeMap<IpNet, BTreeSet<TunnelId>>,
}

impl Rib {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a tunnel (initially DOWN) with its connection's selection mode.
    pub fn add_tunnel(&mut self, id: TunnelId, mode: SelectionMode) {
        self.tunnels.insert(id, TunnelState { up: false, mode });
    }

    pub fn set_tunnel_up(&mut self, id: TunnelId, up: bool) -> Result<(), RouteError> {
        let t = self
            .tunnels
            .get_mut(&id)
            .ok_or(RouteError::UnknownTunnel(id))?;
        t.up = up;
        Ok(())
    }

    /// Adds or replaces the static route for `prefix` (host bits are cleared).
    pub fn add_static(&mut self, prefix: IpNet, via: &[TunnelId]) -> Result<(), RouteError> {
        if !(1..=2).contains(&via.len()) {
            return Err(RouteError::NextHopCount(via.len()));
        }
        if let [a, b] = via {
            if a == b {
                return Err(RouteError::DuplicateNextHop(*a));
            }
        }
        if let Some(t) = via.iter().find(|t| !self.tunnels.contains_key(t)) {
            return Err(RouteError::UnknownTunnel(*t));
        }
        self.statics.insert(prefix.trunc(), via.to_vec());
        Ok(())
    }

    pub fn remove_static(&mut self, prefix: IpNet) -> bool {
        self.statics.remove(&prefix.trunc()).is_some()
    }

    /// A BGP UPDATE received over `via`'s session announced `prefix`.
    pub fn bgp_announce(&mut self, prefix: IpNet, via: TunnelId) -> Result<(), RouteError> {
        if !self.tunnels.contains_key(&via) {
            return Err(RouteError::UnknownTunnel(via));
        }
        self.bgp.entry(prefix.trunc()).or_default().insert(via);
        Ok(())
    }

    pub fn bgp_withdraw(&mut self, prefix: IpNet, via: TunnelId) {
        let key = prefix.trunc();
        if let Some(set) = self.bgp.get_mut(&key) {
            set.remove(&via);
            if set.is_empty() {
                self.bgp.remove(&key);
            }
        }
    }

    /// The BGP session over `via` went down: forget everything it taught us.
    pub fn bgp_withdraw_all(&mut self, via: TunnelId) {
        self.bgp.retain(|_, set| {
            set.remove(&via);
            !set.is_empty()
        });
    }

    fn up(&self, t: TunnelId) -> Option<TunnelState> {
        self.tunnels.get(&t).copied().filter(|s| s.up)
    }

    /// Usable next hops for `prefix`, by the resolution rule above.
    fn resolve(&self, prefix: &IpNet) -> Option<NextHops> {
        let pick = |tunnels: &mut dyn Iterator<Item = TunnelId>| {
            let live: Vec<(TunnelId, SelectionMode)> = tunnels
                .filter_map(|t| self.up(t).map(|s| (t, s.mode)))
                .take(2)
                .collect();
            let mode = live.first()?.1;
            let ids: Vec<TunnelId> = live.iter().map(|(t, _)| *t).collect();
            NextHops::new(&ids, mode)
        };
        let from_static = self
            .statics
            .get(prefix)
            .and_then(|via| pick(&mut via.iter().copied()));
        from_static.or_else(|| {
            self.bgp
                .get(prefix)
                .and_then(|set| pick(&mut set.iter().copied()))
        })
    }

    /// A forwarding snapshot of the current state.
    pub fn build(&self) -> Fib {
        let prefixes: BTreeSet<&IpNet> = self.statics.keys().chain(self.bgp.keys()).collect();
        let (mut v4, mut v6) = (Vec::new(), Vec::new());
        for prefix in prefixes {
            let Some(hops) = self.resolve(prefix) else {
                continue;
            };
            match prefix {
                IpNet::V4(n) => v4.push((n.network(), n.prefix_len(), hops)),
                IpNet::V6(n) => v6.push((n.network(), n.prefix_len(), hops)),
            }
        }
        Fib::new(v4, v6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: TunnelId = TunnelId(0);
    const B: TunnelId = TunnelId(1);

    fn net(s: &str) -> IpNet {
        s.parse().unwrap()
    }

    fn rib(mode: SelectionMode) -> Rib {
        let mut r = Rib::new();
        r.add_tunnel(A, mode);
        r.add_tunnel(B, mode);
        r.set_tunnel_up(A, true).unwrap();
        r.set_tunnel_up(B, true).unwrap();
        r
    }

    fn via(r: &Rib, dst: &str) -> Option<TunnelId> {
        r.build().lookup(dst.parse().unwrap(), 0)
    }

    #[test]
    fn active_standby_fails_over_and_back() {
        let mut r = rib(SelectionMode::ActiveStandby);
        r.add_static(net("172.16.0.0/16"), &[A, B]).unwrap();
        assert_eq!(via(&r, "172.16.1.1"), Some(A));
        r.set_tunnel_up(A, false).unwrap();
        assert_eq!(via(&r, "172.16.1.1"), Some(B));
        r.set_tunnel_up(B, false).unwrap();
        assert_eq!(via(&r, "172.16.1.1"), None);
        r.set_tunnel_up(A, true).unwrap();
        assert_eq!(via(&r, "172.16.1.1"), Some(A));
    }

    #[test]
    fn static_wins_over_bgp_while_usable() {
        let mut r = rib(SelectionMode::ActiveStandby);
        r.add_static(net("172.16.0.0/16"), &[A]).unwrap();
        r.bgp_announce(net("172.16.0.0/16"), B).unwrap();
        assert_eq!(via(&r, "172.16.0.1"), Some(A));
        r.set_tunnel_up(A, false).unwrap();
        assert_eq!(
            via(&r, "172.16.0.1"),
            Some(B),
            "static unusable: BGP route serves"
        );
        r.remove_static(net("172.16.0.0/16"));
        r.set_tunnel_up(A, true).unwrap();
        assert_eq!(via(&r, "172.16.0.1"), Some(B));
    }

    #[test]
    fn bgp_routes_via_a_down_tunnel_fall_through_to_shorter_prefixes() {
        let mut r = rib(SelectionMode::ActiveStandby);
        r.bgp_announce(net("10.10.0.0/16"), A).unwrap();
        r.bgp_announce(net("10.0.0.0/8"), B).unwrap();
        assert_eq!(via(&r, "10.10.1.1"), Some(A));
        r.set_tunnel_up(A, false).unwrap();
        assert_eq!(via(&r, "10.10.1.1"), Some(B));
        r.set_tunnel_up(A, true).unwrap();
        r.bgp_withdraw_all(A);
        assert_eq!(via(&r, "10.10.1.1"), Some(B));
        r.bgp_withdraw(net("10.0.0.0/8"), B);
        assert!(r.build().is_empty());
    }

    #[test]
    fn ecmp_spreads_over_both_up_tunnels() {
        let mut r = rib(SelectionMode::Ecmp);
        r.bgp_announce(net("2001:db8::/32"), A).unwrap();
        r.bgp_announce(net("2001:db8::/32"), B).unwrap();
        let fib = r.build();
        let dst = "2001:db8::5".parse().unwrap();
        let picks: BTreeSet<_> = (0..16).map(|h| fib.lookup(dst, h)).collect();
        assert_eq!(picks, [Some(A), Some(B)].into_iter().collect());
        r.set_tunnel_up(B, false).unwrap();
        let fib = r.build();
        assert!((0..16).all(|h| fib.lookup(dst, h) == Some(A)));
    }

    #[test]
    fn bad_routes_are_refused() {
        let mut r = rib(SelectionMode::Ecmp);
        let p = net("10.0.0.0/8");
        assert_eq!(r.add_static(p, &[]), Err(RouteError::NextHopCount(0)));
        assert_eq!(
            r.add_static(p, &[A, B, A]),
            Err(RouteError::NextHopCount(3))
        );
        assert_eq!(
            r.add_static(p, &[A, A]),
            Err(RouteError::DuplicateNextHop(A))
        );
        assert_eq!(
            r.add_static(p, &[TunnelId(9)]),
            Err(RouteError::UnknownTunnel(TunnelId(9)))
        );
        assert_eq!(
            r.bgp_announce(p, TunnelId(9)),
            Err(RouteError::UnknownTunnel(TunnelId(9)))
        );
        assert_eq!(
            r.set_tunnel_up(TunnelId(9), true),
            Err(RouteError::UnknownTunnel(TunnelId(9)))
        );
    }

    #[test]
    fn host_bits_are_cleared() {
        let mut r = rib(SelectionMode::ActiveStandby);
        r.add_static(net("10.1.2.3/16"), &[B]).unwrap();
        assert_eq!(via(&r, "10.1.200.1"), Some(B));
        assert!(r.remove_static(net("10.1.0.0/16")));
    }
}
