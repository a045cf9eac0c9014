//! Arbitrary bytes (as from the TUN or a peer) never make a packet helper panic, and helpers
//! never write outside the packet or claim more output than the buffer holds.

use super::fixtures::hex_lines;
use super::*;
use proptest::prelude::*;

/// Real packets with random bytes overwritten, plus pure noise.
fn packets() -> impl Strategy<Value = Vec<u8>> {
    let names = [
        "tcp4_syn",
        "tcp6_syn",
        "udp4_df_2000",
        "udp6_2000",
        "udp4_kernel_fragments",
    ];
    let seeds: Vec<Vec<u8>> = names.iter().flat_map(|n| hex_lines(n)).collect();
    prop_oneof![
        proptest::collection::vec(any::<u8>(), 0..200),
        (
            proptest::sample::select(seeds),
            proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 0..8),
            any::<prop::sample::Index>()
        )
            .prop_map(|(mut p, edits, cut)| {
                for (i, b) in edits {
                    let i = i.index(p.len());
                    p[i] = b;
                }
                let keep = cut.index(p.len() + 1);
                p.truncate(keep.max(p.len() / 2));
                p
            }),
    ]
}

proptest! {
    #[test]
    fn helpers_never_panic(pkt in packets(), mtu in 0u16..3000, mss in any::<u16>()) {
        let mut m = pkt.clone();
        let _ = clamp_mss(&mut m, mss);
        prop_assert_eq!(m.len(), pkt.len());

        let mut out = [0u8; 1500];
        // ICMPv4 errors stay within 576 bytes, ICMPv6 ones within 1280, whatever the
        // family of the tunnel's address.
        let limit = if pkt.first().is_some_and(|b| b >> 4 == 4) { 576 } else { 1280 };
        for from in ["192.0.2.1", "2001:db8::1"] {
            if let Ok(n) = icmp_too_big(&pkt, mtu, from.parse().unwrap(), &mut out) {
                prop_assert!(n <= limit);
            }
        }
        let _ = needs_too_big(&pkt, mtu);

        if let Ok(mut f) = Ipv4Fragmenter::new(&pkt, mtu) {
            let mut buf = [0u8; 3000];
            let mut count = 0;
            while let Some(r) = f.next_into(&mut buf) {
                match r {
                    Ok(n) => prop_assert!(n <= usize::from(mtu).max(pkt.len())),
                    Err(_) => break,
                }
                count += 1;
                prop_assert!(count <= 400);
            }
        }
        let _ = crate::routing::flow_hash(&pkt);
    }
}
