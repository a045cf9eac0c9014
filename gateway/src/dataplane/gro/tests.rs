//! The coalescer against a reference: the kernel's view of each written buffer (a
//! super-packet split again as TSO or USO would) must be exactly the packets pushed, per
//! flow in order.

use super::*;
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Seg {
    v6: bool,
    sport: u16,
    seq: u32,
    flags: u8,
    window: u16,
    /// Timestamp option value (none when 0).
    ts: u32,
    id: u16,
    df: bool,
    payload: Vec<u8>,
}

/// The reference's own checksum arithmetic, word by word as RFC 1071 defines it, so it
/// does not lean on the code under test: the unfolded sum of big-endian 16-bit words.
fn sum(b: &[u8]) -> u64 {
    b.chunks(2)
        .map(|c| u64::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
        .sum()
}

fn fold(mut s: u64) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

fn build(s: &Seg) -> Vec<u8> {
    let opts: Vec<u8> = if s.ts != 0 {
        let mut o = vec![1, 1, 8, 10];
        o.extend_from_slice(&s.ts.to_be_bytes());
        o.extend_from_slice(&7u32.to_be_bytes());
        o
    } else {
        Vec::new()
    };
    let l4 = 20 + opts.len();
    let mut p = Vec::new();
    let l3 = if s.v6 {
        p.extend_from_slice(&[0x60, 0, 0, 0]);
        p.extend_from_slice(&((l4 + s.payload.len()) as u16).to_be_bytes());
        p.extend_from_slice(&[6, 64]);
        p.extend_from_slice(&[0xfd; 16]);
        p.extend_from_slice(&[0xfe; 16]);
        40
    } else {
        p.extend_from_slice(&[0x45, 0]);
        p.extend_from_slice(&((20 + l4 + s.payload.len()) as u16).to_be_bytes());
        p.extend_from_slice(&s.id.to_be_bytes());
        p.extend_from_slice(&[if s.df { 0x40 } else { 0 }, 0, 64, 6, 0, 0]);
        p.extend_from_slice(&[10, 0, 0, 1, 10, 0, 1, 1]);
        20
    };
    p.extend_from_slice(&s.sport.to_be_bytes());
    p.extend_from_slice(&5201u16.to_be_bytes());
    p.extend_from_slice(&s.seq.to_be_bytes());
    p.extend_from_slice(&1234u32.to_be_bytes());
    p.extend_from_slice(&[((l4 / 4) as u8) << 4, s.flags]);
    p.extend_from_slice(&s.window.to_be_bytes());
    p.extend_from_slice(&[0, 0, 0, 0]);
    p.extend_from_slice(&opts);
    p.extend_from_slice(&s.payload);
    if !s.v6 {
        let c = !fold(sum(&p[..20]));
        p[10..12].copy_from_slice(&c.to_be_bytes());
    }
    let c = l4_checksum(&p, s.v6, l3, PROTO_TCP);
    p[l3 + 16..l3 + 18].copy_from_slice(&c.to_be_bytes());
    p
}

/// A UDP datagram of flow `sport` (IPv4 with `id` and DF, or IPv6).
fn build_udp(v6: bool, sport: u16, id: u16, payload: &[u8]) -> Vec<u8> {
    let ulen = UDP_HDR_LEN + payload.len();
    let mut p = Vec::new();
    let l3 = if v6 {
        p.extend_from_slice(&[0x60, 0, 0, 0]);
        p.extend_from_slice(&(ulen as u16).to_be_bytes());
        p.extend_from_slice(&[PROTO_UDP, 64]);
        p.extend_from_slice(&[0xfd; 16]);
        p.extend_from_slice(&[0xfe; 16]);
        40
    } else {
        p.extend_from_slice(&[0x45, 0]);
        p.extend_from_slice(&((20 + ulen) as u16).to_be_bytes());
        p.extend_from_slice(&id.to_be_bytes());
        p.extend_from_slice(&[0x40, 0, 64, PROTO_UDP, 0, 0]);
        p.extend_from_slice(&[10, 0, 0, 1, 10, 0, 1, 1]);
        let c = !fold(sum(&p[..20]));
        p[10..12].copy_from_slice(&c.to_be_bytes());
        20
    };
    p.extend_from_slice(&sport.to_be_bytes());
    p.extend_from_slice(&5201u16.to_be_bytes());
    p.extend_from_slice(&(ulen as u16).to_be_bytes());
    p.extend_from_slice(&[0, 0]);
    p.extend_from_slice(payload);
    let c = l4_checksum(&p, v6, l3, PROTO_UDP);
    p[l3 + 6..l3 + 8].copy_from_slice(&c.to_be_bytes());
    p
}

/// A transport checksum as a sender computes it (0 is sent as 0xffff for UDP).
fn l4_checksum(ip: &[u8], v6: bool, l3: usize, proto: u8) -> u16 {
    let addrs = if v6 { 8..40 } else { 12..20 };
    let s = sum(&ip[addrs]) + u64::from(proto) + (ip.len() - l3) as u64 + sum(&ip[l3..]);
    match !fold(s) {
        0 if proto == PROTO_UDP => 0xffff,
        c => c,
    }
}

/// A super-packet's IP header as the coalescer must leave it: lengths that cover the
/// whole packet and (IPv4) a valid header checksum.
fn assert_ip_header_covers(ip: &[u8], v6: bool) {
    if v6 {
        assert_eq!(
            usize::from(u16::from_be_bytes([ip[4], ip[5]])) + 40,
            ip.len()
        );
    } else {
        assert_eq!(usize::from(u16::from_be_bytes([ip[2], ip[3]])), ip.len());
        assert_eq!(fold(sum(&ip[..20])), 0xffff, "IPv4 header checksum");
    }
}

/// What segmentation writes into the IP header of the `i`th segment `p`: its length and
/// (IPv4) the ID counting up from `id0`, with the header checksum redone.
fn fix_segment_ip_header(p: &mut [u8], v6: bool, id0: u16, i: usize) {
    if v6 {
        let len = (p.len() - 40) as u16;
        p[4..6].copy_from_slice(&len.to_be_bytes());
    } else {
        let len = p.len() as u16;
        p[2..4].copy_from_slice(&len.to_be_bytes());
        p[4..6].copy_from_slice(&id0.wrapping_add(i as u16).to_be_bytes());
        p[10..12].fill(0);
        let c = !fold(sum(&p[..20]));
        p[10..12].copy_from_slice(&c.to_be_bytes());
    }
}

/// Recomputes the transport checksum at `l3 + off` in full.
fn fix_l4_checksum(p: &mut [u8], v6: bool, l3: usize, proto: u8, off: usize) {
    p[l3 + off..l3 + off + 2].fill(0);
    let c = l4_checksum(p, v6, l3, proto);
    p[l3 + off..l3 + off + 2].copy_from_slice(&c.to_be_bytes());
}

fn ne16(b: &[u8]) -> usize {
    usize::from(u16::from_ne_bytes([b[0], b[1]]))
}

/// What the kernel makes of one written buffer: a GSO super-packet split as TSO would
/// (full checksums, IPv4 IDs counting up, PSH/FIN on the last segment only).
fn kernel_view(buf: &[u8]) -> Vec<Vec<u8>> {
    let (hdr, ip) = buf.split_at(VNET_HDR_LEN);
    if hdr[1] == 0 {
        assert!(hdr.iter().all(|b| *b == 0), "non-GSO header not zero");
        return vec![ip.to_vec()];
    }
    if hdr[1] == GSO_UDP_L4 {
        return udp_kernel_view(hdr, ip);
    }
    let v6 = hdr[1] == GSO_TCPV6;
    assert!(v6 || hdr[1] == GSO_TCPV4);
    assert_eq!(hdr[0], F_NEEDS_CSUM);
    let l3 = if v6 { 40 } else { 20 };
    assert_eq!(ne16(&hdr[6..8]), l3, "csum_start");
    assert_eq!(ne16(&hdr[8..10]), TCP_CSUM_OFF, "csum_offset");
    let l4 = usize::from(ip[l3 + 12] >> 4) * 4;
    assert_eq!(ne16(&hdr[2..4]), l3 + l4, "hdr_len");
    assert_ip_header_covers(ip, v6);
    // CHECKSUM_PARTIAL: completing the sum from csum_start gives a valid checksum.
    let addrs = if v6 { 8..40 } else { 12..20 };
    let pseudo = fold(sum(&ip[addrs]) + 6 + (ip.len() - l3) as u64);
    assert_eq!(u16::from_be_bytes([ip[l3 + 16], ip[l3 + 17]]), pseudo);
    let gso = ne16(&hdr[4..6]);
    assert!(gso > 0);
    let head = &ip[..l3 + l4];
    let seq0 = u32::from_be_bytes([ip[l3 + 4], ip[l3 + 5], ip[l3 + 6], ip[l3 + 7]]);
    let id0 = u16::from_be_bytes([ip[4], ip[5]]);
    let chunks: Vec<&[u8]> = ip[l3 + l4..].chunks(gso).collect();
    assert!(chunks.len() >= 2, "GSO header on a single segment");
    let n = chunks.len();
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut p = head.to_vec();
            p.extend_from_slice(c);
            let off: usize = chunks[..i].iter().map(|c| c.len()).sum();
            p[l3 + 4..l3 + 8].copy_from_slice(&seq0.wrapping_add(off as u32).to_be_bytes());
            if i + 1 < n {
                p[l3 + 13] &= !(TCP_PSH | 0x01);
            }
            fix_segment_ip_header(&mut p, v6, id0, i);
            fix_l4_checksum(&mut p, v6, l3, PROTO_TCP, TCP_CSUM_OFF);
            p
        })
        .collect()
}

/// A UDP super-packet split as USO would: each datagram with its own UDP length and full
/// checksum, IPv4 IDs counting up.
fn udp_kernel_view(hdr: &[u8], ip: &[u8]) -> Vec<Vec<u8>> {
    assert_eq!(hdr[0], F_NEEDS_CSUM);
    let v6 = ip[0] >> 4 == 6;
    let l3 = if v6 { 40 } else { 20 };
    assert_eq!(ip[if v6 { 6 } else { 9 }], PROTO_UDP);
    assert_eq!(ne16(&hdr[2..4]), l3 + UDP_HDR_LEN, "hdr_len");
    assert_eq!(ne16(&hdr[6..8]), l3, "csum_start");
    assert_eq!(ne16(&hdr[8..10]), UDP_CSUM_OFF, "csum_offset");
    assert_ip_header_covers(ip, v6);
    let ulen = ip.len() - l3;
    assert_eq!(
        usize::from(u16::from_be_bytes([ip[l3 + 4], ip[l3 + 5]])),
        ulen
    );
    let addrs = if v6 { 8..40 } else { 12..20 };
    let pseudo = fold(sum(&ip[addrs]) + u64::from(PROTO_UDP) + ulen as u64);
    assert_eq!(u16::from_be_bytes([ip[l3 + 6], ip[l3 + 7]]), pseudo);
    let gso = ne16(&hdr[4..6]);
    let head = &ip[..l3 + UDP_HDR_LEN];
    let id0 = u16::from_be_bytes([ip[4], ip[5]]);
    let chunks: Vec<&[u8]> = ip[l3 + UDP_HDR_LEN..].chunks(gso).collect();
    assert!(chunks.len() >= 2, "GSO header on a single datagram");
    assert!(chunks.len() <= MAX_SEGS);
    chunks
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let mut p = head.to_vec();
            p.extend_from_slice(c);
            let ulen = (UDP_HDR_LEN + c.len()) as u16;
            p[l3 + 4..l3 + 6].copy_from_slice(&ulen.to_be_bytes());
            fix_segment_ip_header(&mut p, v6, id0, i);
            fix_l4_checksum(&mut p, v6, l3, PROTO_UDP, UDP_CSUM_OFF);
            p
        })
        .collect()
}

/// Flow of a packet for the per-flow comparison (all test flows differ in version,
/// protocol or port).
fn flow(p: &[u8]) -> (u8, Vec<u8>) {
    let (l3, proto) = match p.first().map(|b| b >> 4) {
        Some(6) if p.len() > 6 => (40, p[6]),
        _ if p.len() > 9 => (20, p[9]),
        _ => (20, 0),
    };
    let mut key = vec![proto];
    key.extend_from_slice(p.get(l3..l3 + 2).unwrap_or(&[]));
    (p.first().map_or(0, |b| b >> 4), key)
}

fn per_flow(pkts: &[Vec<u8>]) -> std::collections::BTreeMap<(u8, Vec<u8>), Vec<Vec<u8>>> {
    let mut m = std::collections::BTreeMap::<_, Vec<Vec<u8>>>::new();
    for p in pkts {
        m.entry(flow(p)).or_default().push(p.clone());
    }
    m
}

/// Where packet `i` of a test lies: its own buffer.
fn span_of(pkts: &[Vec<u8>], i: usize) -> Span {
    Span {
        buf: i,
        start: 0,
        end: pkts[i].len(),
    }
}

/// The bytes of each write `finish` returns, gathered.
fn written(c: &mut Coalescer, pkts: &[Vec<u8>]) -> Vec<Vec<u8>> {
    c.finish()
        .map(|(head, parts)| gather(head, parts, pkts))
        .collect()
}

/// Pushes all packets (finishing when full) and returns the written buffers.
fn run(c: &mut Coalescer, pkts: &[Vec<u8>]) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    for (i, p) in pkts.iter().enumerate() {
        if !c.push(p, span_of(pkts, i)) {
            assert!(c.is_full());
            out.extend(written(c, pkts));
            assert!(c.push(p, span_of(pkts, i)));
        }
    }
    out.extend(written(c, pkts));
    out
}

fn bulk(v6: bool, n: usize, len: usize) -> Vec<Vec<u8>> {
    (0..n)
        .map(|i| {
            build(&Seg {
                v6,
                sport: 40000,
                seq: 1_000 + (i * len) as u32,
                flags: TCP_ACK,
                window: 500,
                ts: 99,
                id: i as u16,
                df: true,
                payload: vec![i as u8; len],
            })
        })
        .collect()
}

#[test]
fn bulk_segments_become_one_super_packet() {
    for v6 in [false, true] {
        let pkts = bulk(v6, 40, 1388);
        let out = run(&mut Coalescer::new(8, true), &pkts);
        assert_eq!(out.len(), 1, "v6={v6}");
        assert_eq!(out[0][1], if v6 { GSO_TCPV6 } else { GSO_TCPV4 });
        assert_eq!(ne16(&out[0][4..6]), 1388);
        assert_eq!(kernel_view(&out[0]), pkts);
    }
}

#[test]
fn super_packet_stops_at_64k() {
    let pkts = bulk(false, 60, 1400);
    let out = run(&mut Coalescer::new(8, true), &pkts);
    assert!(out.len() >= 2);
    assert!(out.iter().all(|b| b.len() - VNET_HDR_LEN <= MAX_IP_LEN));
    let seen: Vec<Vec<u8>> = out.iter().flat_map(|b| kernel_view(b)).collect();
    assert_eq!(seen, pkts);
}

#[test]
fn gap_psh_and_changed_window_split() {
    let mut s = Seg {
        v6: false,
        sport: 1,
        seq: 0,
        flags: TCP_ACK,
        window: 9,
        ts: 0,
        id: 0,
        df: true,
        payload: vec![1; 100],
    };
    let mut pkts = Vec::new();
    for (seq, flags, window) in [
        (0, TCP_ACK, 9),
        (100, TCP_ACK, 9),
        (300, TCP_ACK, 9), // gap
        (400, TCP_ACK | TCP_PSH, 9),
        (500, TCP_ACK, 9),  // after PSH
        (600, TCP_ACK, 10), // window changed
    ] {
        s.seq = seq;
        s.flags = flags;
        s.window = window;
        s.id = s.id.wrapping_add(1);
        pkts.push(build(&s));
    }
    let out = run(&mut Coalescer::new(8, true), &pkts);
    let segs: Vec<usize> = out.iter().map(|b| kernel_view(b).len()).collect();
    assert_eq!(segs, vec![2, 2, 1, 1]);
}

#[test]
fn without_offloads_nothing_coalesces() {
    let pkts = bulk(false, 10, 1000);
    let out = run(&mut Coalescer::new(4, false), &pkts);
    assert_eq!(out.len(), 10);
    assert!(out
        .iter()
        .all(|b| b[..VNET_HDR_LEN].iter().all(|x| *x == 0)));
}

#[test]
fn odd_input_passes_through_unchanged() {
    let mut c = Coalescer::new(4, true);
    let junk = [
        vec![],
        vec![0x45],
        vec![0x60; 39],
        vec![0x45; 60],
        vec![0xff; 1500],
    ];
    let out = run(&mut c, &junk);
    let back: Vec<Vec<u8>> = out.iter().map(|b| b[VNET_HDR_LEN..].to_vec()).collect();
    assert_eq!(back, junk);
    let huge = vec![vec![0x45; MAX_IP_LEN + 1]];
    assert!(!c.push(&huge[0], span_of(&huge, 0)));
    // A span that does not match the packet's length is refused too.
    let small = vec![vec![0x45; 40]];
    let wrong = Span {
        end: 39,
        ..span_of(&small, 0)
    };
    assert!(!c.push(&small[0], wrong));
}

#[test]
fn udp_datagrams_of_one_size_become_one_super_packet() {
    for v6 in [false, true] {
        let pkts: Vec<Vec<u8>> = (0..40)
            .map(|i| build_udp(v6, 7000, i as u16, &[i as u8; 1372]))
            .collect();
        let out = run(&mut Coalescer::new(8, true), &pkts);
        assert_eq!(out.len(), 1, "v6={v6}");
        assert_eq!(out[0][1], GSO_UDP_L4);
        assert_eq!(ne16(&out[0][4..6]), 1372);
        assert_eq!(kernel_view(&out[0]), pkts);
    }
}

#[test]
fn udp_super_packets_stop_at_the_segment_limit_and_a_short_datagram() {
    let mut pkts: Vec<Vec<u8>> = (0..MAX_SEGS + 5)
        .map(|i| build_udp(false, 7000, i as u16, &[1; 64]))
        .collect();
    let n = pkts.len() as u16;
    pkts.push(build_udp(false, 7000, n, &[2; 10]));
    pkts.push(build_udp(false, 7000, n + 1, &[3; 64]));
    let out = run(&mut Coalescer::new(8, true), &pkts);
    let segs: Vec<usize> = out.iter().map(|b| kernel_view(b).len()).collect();
    assert_eq!(segs, vec![MAX_SEGS, 6, 1]);
    let seen: Vec<Vec<u8>> = out.iter().flat_map(|b| kernel_view(b)).collect();
    assert_eq!(seen, pkts);
}

#[test]
fn tcp_super_packets_stop_at_the_segment_limit_too() {
    // Small segments: 70 would fit 64 KiB, but a write has at most MAX_SEGS payloads.
    let pkts = bulk(false, MAX_SEGS + 6, 200);
    let out = run(&mut Coalescer::new(8, true), &pkts);
    let segs: Vec<usize> = out.iter().map(|b| kernel_view(b).len()).collect();
    assert_eq!(segs, vec![MAX_SEGS, 6]);
    let seen: Vec<Vec<u8>> = out.iter().flat_map(|b| kernel_view(b)).collect();
    assert_eq!(seen, pkts);
}

#[test]
fn udp_without_checksum_or_udp_offload_is_written_as_is() {
    let mut pkts: Vec<Vec<u8>> = (0..4)
        .map(|i| build_udp(false, 7000, i, &[1; 100]))
        .collect();
    for p in &mut pkts {
        p[26..28].fill(0);
    }
    let out = run(&mut Coalescer::new(8, true), &pkts);
    assert_eq!(out.len(), 4);
    let pkts: Vec<Vec<u8>> = (0..4)
        .map(|i| build_udp(false, 7000, i, &[1; 100]))
        .collect();
    let out = run(&mut Coalescer::new(8, true).with_udp(false), &pkts);
    assert_eq!(out.len(), 4);
    assert!(out.iter().all(|b| b[1] == 0));
}

#[test]
fn udp_and_tcp_on_the_same_ports_stay_apart() {
    let mut pkts = Vec::new();
    for i in 0..6u16 {
        pkts.push(build(&Seg {
            v6: false,
            sport: 7000,
            seq: 100 * u32::from(i),
            flags: TCP_ACK,
            window: 9,
            ts: 0,
            id: i,
            df: true,
            payload: vec![1; 100],
        }));
        pkts.push(build_udp(false, 7000, i, &[2; 100]));
    }
    let out = run(&mut Coalescer::new(8, true), &pkts);
    assert_eq!(out.len(), 2);
    let seen: Vec<Vec<u8>> = out.iter().flat_map(|b| kernel_view(b)).collect();
    assert_eq!(per_flow(&seen), per_flow(&pkts));
}

fn seg_strategy() -> impl Strategy<Value = ((usize, u8, u8, bool, bool, usize), bool)> {
    let seg = (
        0usize..6, // flow
        prop_oneof![8 => Just(TCP_ACK), 1 => Just(TCP_ACK | TCP_PSH), 1 => Just(0x02u8), 1 => Just(TCP_ACK | 0x01)],
        0u8..3,                         // payload class
        proptest::bool::weighted(0.05), // sequence gap
        proptest::bool::weighted(0.05), // window/ts change
        0usize..1400,                   // odd length
    );
    (seg, proptest::bool::weighted(0.03)) // corrupted in transit
}

proptest! {
    #[test]
    fn kernel_sees_exactly_what_was_pushed(
        events in proptest::collection::vec(seg_strategy(), 1..300),
        batch in 1usize..20,
    ) {
        // Flows: 0, 1 IPv4 (1 without DF), 2 IPv6; 3 UDP without checksum; 4, 5 UDP
        // over IPv4 and IPv6.
        let mut udp_ids = [0u16; 2];
        let mut state: Vec<Seg> = (0..3).map(|f| Seg {
            v6: f == 2,
            sport: 1000 + f as u16,
            seq: u32::MAX - 5000,
            flags: TCP_ACK,
            window: 100,
            ts: 5,
            id: 65530,
            df: f != 1,
            payload: Vec::new(),
        }).collect();
        let mut pkts = Vec::new();
        for (i, ((f, flags, class, gap, change, odd), corrupt)) in events.into_iter().enumerate() {
            // Flip a bit past the headers: a bad TCP/UDP checksum (packets without payload
            // are left alone).
            let corrupt = |mut p: Vec<u8>| {
                let at = p.len() - 1;
                if corrupt && p.len() > 60 {
                    p[at] ^= 0x04;
                }
                p
            };
            if f >= 4 {
                let len = match class {
                    0 | 1 => 1200,
                    _ => odd,
                };
                let id = &mut udp_ids[f - 4];
                pkts.push(corrupt(build_udp(f == 5, 3000, *id, &vec![i as u8; len])));
                *id = id.wrapping_add(1);
                continue;
            }
            let Some(s) = state.get_mut(f) else {
                let mut udp = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 1, 1];
                udp.extend_from_slice(&[0, 53, 0, 53, 0, 8, 0, 0]);
                pkts.push(udp);
                continue;
            };
            s.flags = flags;
            s.payload = match class {
                0 | 1 => vec![i as u8; 1200],
                _ => vec![i as u8; odd],
            };
            if gap {
                s.seq = s.seq.wrapping_add(7);
            }
            if change {
                s.window = s.window.wrapping_add(1);
                s.ts = s.ts.wrapping_add(1) | 1;
            }
            pkts.push(corrupt(build(s)));
            s.seq = s.seq.wrapping_add(s.payload.len() as u32);
            s.id = s.id.wrapping_add(1);
        }
        let out = run(&mut Coalescer::new(batch, true), &pkts);
        prop_assert!(out.len() <= pkts.len());
        let seen: Vec<Vec<u8>> = out.iter().flat_map(|b| kernel_view(b)).collect();
        prop_assert_eq!(per_flow(&seen), per_flow(&pkts));
    }
}

#[test]
fn a_corrupt_checksum_is_not_merged() {
    // Payload corrupted after the checksum was computed (TCP), a bad UDP checksum, and a
    // bad IPv4 header checksum: each is written alone, unchanged, for its receiver to drop.
    let mut tcp = bulk(false, 4, 500);
    tcp[2][60] ^= 0x01;
    let out = run(&mut Coalescer::new(8, true), &tcp);
    let views: Vec<Vec<Vec<u8>>> = out.iter().map(|b| kernel_view(b)).collect();
    assert_eq!(
        views.iter().map(Vec::len).collect::<Vec<_>>(),
        vec![2, 1, 1]
    );
    assert_eq!(views[1][0], tcp[2]);

    let mut udp: Vec<Vec<u8>> = (0..4).map(|i| build_udp(true, 9, i, &[7; 300])).collect();
    udp[1][46] ^= 0x80;
    let out = run(&mut Coalescer::new(8, true), &udp);
    assert_eq!(out.len(), 3);
    assert_eq!(&out[1][VNET_HDR_LEN..], &udp[1][..]);
    // Nothing after it overtook it.
    let seen: Vec<Vec<u8>> = out.iter().flat_map(|b| kernel_view(b)).collect();
    assert_eq!(seen, udp);

    let mut ip = bulk(false, 3, 500);
    ip[0][10] ^= 0x01;
    let out = run(&mut Coalescer::new(8, true), &ip);
    assert_eq!(out.len(), 2);
    assert_eq!(&out[0][VNET_HDR_LEN..], &ip[0][..]);
}
