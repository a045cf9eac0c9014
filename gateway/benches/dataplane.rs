//! The dataplane's per-byte work outside ESP: the Internet checksum sum (every coalesced
//! payload is verified with it) and the coalescer taking the decrypted segments of one
//! TCP super-packet, as a UDP receive batch hands them over.

use std::hint::black_box;
use std::net::Ipv4Addr;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use gateway::dataplane::gro::{Coalescer, Span};
use gateway::packet::checksum::{finish, pseudo_header, sum};

/// TCP payload per segment: a 1400-byte tunnel MTU less IPv4 and TCP with timestamps.
const MSS: usize = 1348;
/// Segments of one 64 KiB TSO super-packet at that MSS.
const SEGMENTS: usize = 48;

/// IPv4 + TCP (20 + 32 bytes with options) segment `i` of one flow, checksums valid.
fn tcp_segment(i: usize) -> Vec<u8> {
    let (src, dst) = (Ipv4Addr::new(10, 101, 0, 10), Ipv4Addr::new(10, 102, 0, 10));
    let total = 20 + 32 + MSS;
    let mut p = vec![0u8; total];
    p[0] = 0x45;
    p[2..4].copy_from_slice(&(total as u16).to_be_bytes());
    p[6] = 0x40; // DF
    p[8] = 64;
    p[9] = 6;
    p[12..16].copy_from_slice(&src.octets());
    p[16..20].copy_from_slice(&dst.octets());
    let ip_csum = finish(sum(0, &p[..20]));
    p[10..12].copy_from_slice(&ip_csum.to_be_bytes());
    let tcp = &mut p[20..];
    tcp[0..2].copy_from_slice(&40000u16.to_be_bytes());
    tcp[2..4].copy_from_slice(&5201u16.to_be_bytes());
    tcp[4..8].copy_from_slice(&((i * MSS) as u32).to_be_bytes());
    tcp[12] = 8 << 4; // 32-byte header
    tcp[13] = 0x10; // ACK
    tcp[14..16].copy_from_slice(&512u16.to_be_bytes());
    tcp[20..32].copy_from_slice(&[1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2]);
    for (j, b) in tcp[32..].iter_mut().enumerate() {
        *b = (i * 7 + j) as u8;
    }
    let acc = pseudo_header(src.into(), dst.into(), 6, (32 + MSS) as u32);
    let csum = finish(sum(acc, tcp));
    tcp[16..18].copy_from_slice(&csum.to_be_bytes());
    p
}

fn checksum_sum(c: &mut Criterion) {
    let mut g = c.benchmark_group("checksum_sum");
    for len in [20usize, 1400, 65000] {
        let data: Vec<u8> = (0..len).map(|i| i as u8).collect();
        g.throughput(Throughput::Bytes(len as u64));
        g.bench_with_input(BenchmarkId::from_parameter(len), &data, |b, d| {
            b.iter(|| sum(0, black_box(d)))
        });
    }
    g.finish();
}

fn coalesce_super_packet(c: &mut Criterion) {
    let segments: Vec<Vec<u8>> = (0..SEGMENTS).map(tcp_segment).collect();
    let mut gro = Coalescer::new(128, true);
    let mut g = c.benchmark_group("coalescer");
    g.throughput(Throughput::Bytes((SEGMENTS * MSS) as u64));
    g.bench_function("tcp_48x1348", |b| {
        b.iter(|| {
            for (i, s) in segments.iter().enumerate() {
                let at = Span {
                    buf: i,
                    start: 0,
                    end: s.len(),
                };
                assert!(gro.push(black_box(s), at));
            }
            let writes = gro.finish().count();
            assert_eq!(writes, 1, "one super-packet");
            black_box(writes)
        })
    });
    g.finish();
}

criterion_group!(benches, checksum_sum, coalesce_super_packet);
criterion_main!(benches);
