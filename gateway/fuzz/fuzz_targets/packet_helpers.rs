#![no_main]
//! Every per-packet helper on arbitrary bytes: no panic, outputs within bounds.

use gateway::packet::{clamp_mss, icmp_too_big, needs_too_big, DscpCopy, Ipv4Fragmenter, Qos};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&[m0, m1, s0, s1], pkt)) = data.split_first_chunk::<4>().map(|(h, p)| (h, p)) else {
        return;
    };
    let mtu = u16::from_be_bytes([m0, m1]);
    let mss = u16::from_be_bytes([s0, s1]);
    let mut copy = pkt.to_vec();
    let _ = clamp_mss(&mut copy, mss);
    assert_eq!(copy.len(), pkt.len());
    let mut out = [0u8; 1500];
    for from in ["192.0.2.1", "2001:db8::1"] {
        if let Ok(n) = icmp_too_big(pkt, mtu, from.parse().unwrap(), &mut out) {
            assert!(n <= 1280);
        }
    }
    let _ = needs_too_big(pkt, mtu);
    if let Ok(mut f) = Ipv4Fragmenter::new(pkt, mtu) {
        let mut buf = vec![0u8; 65536];
        let mut count = 0usize;
        while let Some(r) = f.next_into(&mut buf) {
            let Ok(n) = r else { break };
            assert!(n <= usize::from(mtu).max(pkt.len()));
            count += 1;
            assert!(count <= 8192);
        }
    }
    let _ = gateway::routing::flow_hash(pkt);
    // DSCP/ECN across the tunnel, every setting, with the MTU bytes as the outer TOS: the
    // length never changes, and an IPv4 header checksum that was right stays right.
    for dscp in [DscpCopy::Out, DscpCopy::In, DscpCopy::Both, DscpCopy::No] {
        for ecn in [true, false] {
            let q = Qos { dscp, ecn };
            let _ = q.outer_tos(pkt);
            let mut copy = pkt.to_vec();
            let valid = header_checksum_ok(&copy);
            let _ = q.decapsulate(m0, &mut copy);
            assert_eq!(copy.len(), pkt.len());
            if valid {
                assert!(header_checksum_ok(&copy));
            }
        }
    }
});

/// An IPv4 packet whose 20-byte header sums to zero.
fn header_checksum_ok(p: &[u8]) -> bool {
    p.len() >= 20
        && p[0] == 0x45
        && gateway::packet::checksum::checksum(&p[..20]) == 0
}
