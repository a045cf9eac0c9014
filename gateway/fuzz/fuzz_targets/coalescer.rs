#![no_main]
//! The TUN-write coalescer on arbitrary decrypted packets: no panic, every buffer within
//! the kernel's limits, and the segments the kernel would cut add up to the packets taken.

use gateway::dataplane::gro::{gather, Coalescer, Span, MAX_SEGS, VNET_HDR_LEN};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Some((&flags, mut rest)) = data.split_first() else {
        return;
    };
    let batch = usize::from(flags & 0x0f) + 1;
    let mut c = Coalescer::new(batch, flags & 0x10 == 0).with_udp(flags & 0x20 == 0);
    // Packets are length-prefixed (two bytes); the last one takes what is left. With
    // 0x40 set a chunk only steers a well-formed TCP or UDP packet of a few flows, so
    // merging (not just parsing) gets exercised.
    let mut pkts = Vec::new();
    while !rest.is_empty() {
        let (pkt, tail) = match rest.split_first_chunk::<2>() {
            Some((len, tail)) => {
                let n = usize::from(u16::from_be_bytes(*len)).min(tail.len());
                tail.split_at(n)
            }
            None => (rest, &[][..]),
        };
        rest = tail;
        pkts.push(if flags & 0x40 != 0 {
            shaped(pkt)
        } else {
            pkt.to_vec()
        });
    }
    let mut seen = 0usize;
    let mut check = |c: &mut Coalescer| {
        for (head, parts) in c.finish() {
            assert!(parts.len() <= MAX_SEGS);
            let b = gather(head, parts, &pkts);
            assert!(b.len() >= VNET_HDR_LEN && b.len() <= VNET_HDR_LEN + 65535);
            let (h, ip) = b.split_at(VNET_HDR_LEN);
            if h[1] == 0 {
                seen += 1;
                continue;
            }
            let hdr_len = usize::from(u16::from_ne_bytes([h[2], h[3]]));
            let gso = usize::from(u16::from_ne_bytes([h[4], h[5]]));
            assert!(gso > 0 && hdr_len < ip.len());
            let segs = (ip.len() - hdr_len).div_ceil(gso);
            assert!(segs >= 2);
            seen += segs;
        }
    };
    let mut taken = 0usize;
    for (i, pkt) in pkts.iter().enumerate() {
        let at = Span {
            buf: i,
            start: 0,
            end: pkt.len(),
        };
        if !c.push(pkt, at) {
            if !c.is_full() {
                continue;
            }
            check(&mut c);
            assert!(c.push(pkt, at));
        }
        taken += 1;
    }
    check(&mut c);
    assert_eq!(seen, taken);
});

/// A valid IPv4 TCP or UDP packet (checksums aside) shaped by `b`: flow, sequence number,
/// flags and payload length come from it.
fn shaped(b: &[u8]) -> Vec<u8> {
    let at = |i: usize| b.get(i).copied().unwrap_or(0);
    let udp = at(0) & 1 == 1;
    let payload = usize::from(u16::from_be_bytes([at(1), at(2)]) % 1500);
    let l4 = if udp { 8 } else { 20 };
    let total = 20 + l4 + payload;
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[4..6].copy_from_slice(&u16::from(at(3)).to_be_bytes());
    p[6] = 0x40;
    p[8] = 64;
    p[9] = if udp { 17 } else { 6 };
    p[12..16].copy_from_slice(&[10, 0, 0, 1]);
    p[16..20].copy_from_slice(&[10, 0, 1, at(4) & 1]);
    p[20..22].copy_from_slice(&[0x13, at(5) & 3]);
    p[22..24].copy_from_slice(&[0x14, 0x51]);
    if udp {
        p[24..26].copy_from_slice(&((8 + payload) as u16).to_be_bytes());
        p[26..28].copy_from_slice(&[at(6), at(7) | 1]);
    } else {
        let seq = u32::from(at(6)) * 1400;
        p[24..28].copy_from_slice(&seq.to_be_bytes());
        p[32] = 0x50;
        p[33] = at(7);
    }
    p
}
