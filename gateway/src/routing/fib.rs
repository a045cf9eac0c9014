//! The forwarding snapshot read by the dataplane: longest-prefix match, then a next hop.
//!
//! Built by `Rib::build` with DOWN tunnels already removed, so a lookup is a walk over the
//! prefix lengths present (longest first) with one binary search each. No allocation, no lock.

use super::flow::flow_hash;
use super::{SelectionMode, TunnelId};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The usable (UP) next hops of a prefix: one or two tunnels, in preference order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NextHops {
    tunnels: [TunnelId; 2],
    len: u8,
    mode: SelectionMode,
}

impl NextHops {
    /// `None` for an empty list; at most the first two tunnels are kept.
    pub fn new(tunnels: &[TunnelId], mode: SelectionMode) -> Option<NextHops> {
        let first = *tunnels.first()?;
        let second = tunnels.get(1).copied();
        Some(NextHops {
            tunnels: [first, second.unwrap_or(first)],
            len: if second.is_some() { 2 } else { 1 },
            mode,
        })
    }

    pub fn tunnels(&self) -> &[TunnelId] {
        &self.tunnels[..usize::from(self.len)]
    }

    pub fn mode(&self) -> SelectionMode {
        self.mode
    }

    /// Active-standby: the first; ECMP: chosen by the flow hash.
    pub fn select(&self, flow_hash: u32) -> TunnelId {
        match self.mode {
            SelectionMode::ActiveStandby => self.tunnels[0],
            SelectionMode::Ecmp => self.tunnels[(flow_hash as usize) % usize::from(self.len)],
        }
    }
}

/// One prefix length: networks sorted for binary search.
#[derive(Debug, Clone)]
struct Level<A> {
    prefix_len: u8,
    entries: Box<[(A, NextHops)]>,
}

/// Immutable forwarding table.
#[derive(Debug, Clone, Default)]
pub struct Fib {
    v4: Box<[Level<u32>]>,
    v6: Box<[Level<u128>]>,
}

fn mask4(len: u8) -> u32 {
    u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0)
}

fn mask6(len: u8) -> u128 {
    u128::MAX.checked_shl(128 - u32::from(len)).unwrap_or(0)
}

fn levels<A: Ord + Copy>(mut routes: Vec<(A, u8, NextHops)>) -> Box<[Level<A>]> {
    // Longest prefix first, then by network so each level is sorted.
    routes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut out: Vec<Level<A>> = Vec::new();
    let mut current: Vec<(A, NextHops)> = Vec::new();
    let mut current_len = None;
    for (net, len, hops) in routes {
        if current_len != Some(len) {
            if let Some(prefix_len) = current_len {
                out.push(Level {
                    prefix_len,
                    entries: std::mem::take(&mut current).into(),
                });
            }
            current_len = Some(len);
        }
        current.push((net, hops));
    }
    if let Some(prefix_len) = current_len {
        out.push(Level {
            prefix_len,
            entries: current.into(),
        });
    }
    out.into()
}

fn find<A: Ord + Copy>(
    levels: &[Level<A>],
    dst: A,
    mask: impl Fn(u8) -> A,
    and: impl Fn(A, A) -> A,
) -> Option<&NextHops> {
    levels.iter().find_map(|level| {
        let key = and(dst, mask(level.prefix_len));
        level
            .entries
            .binary_search_by(|(net, _)| net.cmp(&key))
            .ok()
            .and_then(|i| level.entries.get(i))
            .map(|(_, hops)| hops)
    })
}

impl Fib {
    /// Builds from (network, prefix length, next hops); networks must have zero host bits and
    /// appear once (the RIB guarantees both).
    pub fn new(v4: Vec<(Ipv4Addr, u8, NextHops)>, v6: Vec<(Ipv6Addr, u8, NextHops)>) -> Fib {
        Fib {
            v4: levels(
                v4.into_iter()
                    .map(|(a, l, h)| (u32::from(a) & mask4(l), l, h))
                    .collect(),
            ),
            v6: levels(
                v6.into_iter()
                    .map(|(a, l, h)| (u128::from(a) & mask6(l), l, h))
                    .collect(),
            ),
        }
    }

    /// The next hops of the longest prefix containing `dst`.
    pub fn next_hops(&self, dst: IpAddr) -> Option<&NextHops> {
        match dst {
            IpAddr::V4(a) => find(&self.v4, u32::from(a), mask4, |x, m| x & m),
            IpAddr::V6(a) => find(&self.v6, u128::from(a), mask6, |x, m| x & m),
        }
    }

    /// The tunnel for `dst`; `flow_hash` picks among ECMP next hops.
    pub fn lookup(&self, dst: IpAddr, flow_hash: u32) -> Option<TunnelId> {
        self.next_hops(dst).map(|h| h.select(flow_hash))
    }

    /// The tunnel for an IPv4/IPv6 packet, by its destination and 5-tuple.
    pub fn route_packet(&self, pkt: &[u8]) -> Option<TunnelId> {
        let hops = self.next_hops(crate::packet::destination(pkt)?)?;
        Some(match hops.mode() {
            SelectionMode::ActiveStandby => hops.select(0),
            SelectionMode::Ecmp => hops.select(flow_hash(pkt)),
        })
    }

    /// Number of prefixes (both families).
    pub fn len(&self) -> usize {
        self.v4.iter().map(|l| l.entries.len()).sum::<usize>()
            + self.v6.iter().map(|l| l.entries.len()).sum::<usize>()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const A: TunnelId = TunnelId(0);
    const B: TunnelId = TunnelId(1);

    fn hops(t: &[TunnelId], mode: SelectionMode) -> NextHops {
        NextHops::new(t, mode).unwrap()
    }

    #[test]
    fn longest_prefix_wins_and_default_route_catches_the_rest() {
        let fib = Fib::new(
            vec![
                (
                    "0.0.0.0".parse().unwrap(),
                    0,
                    hops(&[B], SelectionMode::ActiveStandby),
                ),
                (
                    "10.0.0.0".parse().unwrap(),
                    8,
                    hops(&[A], SelectionMode::ActiveStandby),
                ),
                (
                    "10.1.0.0".parse().unwrap(),
                    16,
                    hops(&[B], SelectionMode::ActiveStandby),
                ),
                (
                    "10.1.2.3".parse().unwrap(),
                    32,
                    hops(&[A], SelectionMode::ActiveStandby),
                ),
            ],
            vec![(
                "2001:db8::".parse().unwrap(),
                32,
                hops(&[A, B], SelectionMode::ActiveStandby),
            )],
        );
        let l = |s: &str| fib.lookup(s.parse().unwrap(), 0);
        assert_eq!(l("10.9.9.9"), Some(A));
        assert_eq!(l("10.1.9.9"), Some(B));
        assert_eq!(l("10.1.2.3"), Some(A));
        assert_eq!(l("10.1.2.4"), Some(B));
        assert_eq!(l("192.0.2.1"), Some(B));
        assert_eq!(l("2001:db8:1::1"), Some(A));
        assert_eq!(l("2001:db9::1"), None);
        assert_eq!(fib.len(), 5);
    }

    #[test]
    fn ecmp_uses_the_hash_active_standby_does_not() {
        let ecmp = hops(&[A, B], SelectionMode::Ecmp);
        assert_eq!(ecmp.select(0), A);
        assert_eq!(ecmp.select(1), B);
        let standby = hops(&[A, B], SelectionMode::ActiveStandby);
        assert!((0..100).all(|h| standby.select(h) == A));
        assert_eq!(hops(&[B], SelectionMode::Ecmp).select(7), B);
        assert_eq!(NextHops::new(&[], SelectionMode::Ecmp), None);
    }

    #[test]
    fn route_packet_reads_the_destination() {
        let fib = Fib::new(
            vec![(
                "10.99.0.0".parse().unwrap(),
                16,
                hops(&[B], SelectionMode::Ecmp),
            )],
            vec![],
        );
        let mut pkt = [0u8; 28];
        pkt[0] = 0x45;
        pkt[9] = 17;
        pkt[16..20].copy_from_slice(&[10, 99, 1, 1]);
        assert_eq!(fib.route_packet(&pkt), Some(B));
        pkt[16] = 11;
        assert_eq!(fib.route_packet(&pkt), None);
        assert_eq!(fib.route_packet(&pkt[..10]), None);
        assert_eq!(fib.route_packet(&[]), None);
    }
}
