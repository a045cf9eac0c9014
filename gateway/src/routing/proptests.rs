//! The RIB->FIB->lookup pipeline against a naive reference: scan every route, keep those whose
//! prefix contains the destination and that have an UP tunnel, prefer static, take the longest.

use super::*;
use ipnet::{IpNet, Ipv4Net, Ipv6Net};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

const TUNNELS: u16 = 4;

#[derive(Debug, Clone)]
enum Op {
    Static(IpNet, Vec<TunnelId>),
    Bgp(IpNet, TunnelId),
}

/// Addresses from a small space so that prefixes overlap and destinations hit them.
fn v4() -> impl Strategy<Value = Ipv4Addr> {
    (0u8..4, any::<u8>(), any::<u8>()).prop_map(|(a, b, c)| Ipv4Addr::new(10, a, b & 0x0f, c))
}

fn v6() -> impl Strategy<Value = Ipv6Addr> {
    (0u16..4, 0u16..16, any::<u16>())
        .prop_map(|(a, b, c)| Ipv6Addr::new(0x2001, 0xdb8, a, b, 0, 0, 0, c))
}

fn prefix() -> impl Strategy<Value = IpNet> {
    prop_oneof![
        (v4(), 0u8..=32).prop_map(|(a, l)| IpNet::V4(Ipv4Net::new(a, l).unwrap().trunc())),
        (v6(), 0u8..=128).prop_map(|(a, l)| IpNet::V6(Ipv6Net::new(a, l).unwrap().trunc())),
    ]
}

fn tunnel() -> impl Strategy<Value = TunnelId> {
    (0..TUNNELS).prop_map(TunnelId)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        (prefix(), tunnel(), proptest::option::of(tunnel())).prop_map(|(p, a, b)| {
            let mut via = vec![a];
            via.extend(b.filter(|b| *b != a));
            Op::Static(p, via)
        }),
        (prefix(), tunnel()).prop_map(|(p, t)| Op::Bgp(p, t)),
    ]
}

fn mode_of(t: TunnelId, ecmp: u8) -> SelectionMode {
    if ecmp & (1 << t.0) != 0 {
        SelectionMode::Ecmp
    } else {
        SelectionMode::ActiveStandby
    }
}

/// Straightforward reimplementation of the documented rules.
fn reference(ops: &[Op], up: u8, ecmp: u8, dst: IpAddr, hash: u32) -> Option<TunnelId> {
    let is_up = |t: &TunnelId| up & (1 << t.0) != 0;
    // Last static per prefix wins (add_static replaces).
    let mut statics: Vec<(IpNet, Vec<TunnelId>)> = Vec::new();
    let mut bgp: Vec<(IpNet, TunnelId)> = Vec::new();
    for op in ops {
        match op {
            Op::Static(p, via) => {
                statics.retain(|(q, _)| q != p);
                statics.push((*p, via.clone()));
            }
            Op::Bgp(p, t) => bgp.push((*p, *t)),
        }
    }
    let mut best: Option<(u8, Vec<TunnelId>)> = None;
    let mut consider = |p: &IpNet, live: Vec<TunnelId>| {
        if p.contains(&dst)
            && !live.is_empty()
            && best.as_ref().is_none_or(|(l, _)| p.prefix_len() > *l)
        {
            best = Some((p.prefix_len(), live));
        }
    };
    let mut prefixes: Vec<IpNet> = statics
        .iter()
        .map(|s| s.0)
        .chain(bgp.iter().map(|b| b.0))
        .collect();
    prefixes.sort();
    prefixes.dedup();
    for p in &prefixes {
        let st: Vec<TunnelId> = statics
            .iter()
            .filter(|(q, _)| q == p)
            .flat_map(|(_, via)| via.iter().copied().filter(is_up))
            .collect();
        if !st.is_empty() {
            consider(p, st);
            continue;
        }
        let mut b: Vec<TunnelId> = bgp
            .iter()
            .filter(|(q, t)| q == p && is_up(t))
            .map(|(_, t)| *t)
            .collect();
        b.sort();
        b.dedup();
        b.truncate(2);
        consider(p, b);
    }
    let (_, live) = best?;
    Some(match mode_of(live[0], ecmp) {
        SelectionMode::ActiveStandby => live[0],
        SelectionMode::Ecmp => live[hash as usize % live.len()],
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn fib_lookup_matches_naive_reference(
        ops in proptest::collection::vec(op(), 0..40),
        up in any::<u8>(),
        ecmp in any::<u8>(),
        dsts in proptest::collection::vec(prop_oneof![v4().prop_map(IpAddr::V4), v6().prop_map(IpAddr::V6)], 1..30),
        hash in any::<u32>(),
    ) {
        let mut rib = Rib::new();
        for t in 0..TUNNELS {
            let id = TunnelId(t);
            rib.add_tunnel(id, mode_of(id, ecmp));
            rib.set_tunnel_up(id, up & (1 << t) != 0).unwrap();
        }
        for op in &ops {
            match op {
                Op::Static(p, via) => rib.add_static(*p, via).unwrap(),
                Op::Bgp(p, t) => rib.bgp_announce(*p, *t).unwrap(),
            }
        }
        let fib = rib.build();
        for dst in dsts {
            prop_assert_eq!(fib.lookup(dst, hash), reference(&ops, up, ecmp, dst, hash), "dst {}", dst);
        }
    }
}
