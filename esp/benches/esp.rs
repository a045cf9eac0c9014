//! ESP encap/decap throughput for every suite at 64, 512, 1400 and 8900 bytes,
//! next to raw ring AES-GCM seal/open of the same bytes with the same key size
//! (the floor that ESP framing, sequence numbers and replay checks add to). GCM suites
//! also run with padding to whole AES blocks (`-aes-blocks`, what the gateway uses when
//! the path MTU leaves room), which spares ring a trailing partial block.

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use esp::*;
use ring::aead;

const SIZES: [usize; 4] = [64, 512, 1400, 8900];
/// Packets prepared per timed batch for the inbound side (each packet can be
/// accepted only once by the replay window, and is decrypted in place).
const BATCH: usize = 1024;
const SPI: u32 = 0x1000_0001;

fn label(suite: Suite) -> String {
    match suite {
        Suite::AesGcm16(k) => format!("aes{}gcm16", k.key_bits()),
        Suite::AesCbc(k, i) => format!("aes{}cbc-{:?}", k.key_bits(), i).to_lowercase(),
    }
}

fn keys(suite: Suite) -> SaKeys {
    let km: Vec<u8> = (0..suite.keymat_len()).map(|i| i as u8 ^ 0x5c).collect();
    SaKeys::from_keymat(suite, &km).unwrap()
}

fn inner(len: usize) -> Vec<u8> {
    let mut p: Vec<u8> = (0..len).map(|i| i as u8).collect();
    p[0] = 0x45;
    p
}

fn outbound(suite: Suite, block_pad_limit: Option<usize>) -> OutboundSa {
    let cfg = OutboundConfig {
        block_pad_limit,
        ..OutboundConfig::default()
    };
    OutboundSa::new(SPI, suite, &keys(suite), cfg, IvKey::new([9; 16])).unwrap()
}

fn inbound(suite: Suite) -> InboundSa {
    let cfg = InboundConfig {
        replay_window: 4096,
        ..InboundConfig::default()
    };
    InboundSa::new(SPI, suite, &keys(suite), cfg).unwrap()
}

/// Times `work` over fresh copies of `batch`, copying outside the timed region.
fn timed_batches(iters: u64, batch: &[Vec<u8>], mut work: impl FnMut(&mut [Vec<u8>])) -> Duration {
    let mut total = Duration::ZERO;
    let mut done = 0u64;
    let mut bufs = batch.to_vec();
    while done < iters {
        let n = (iters - done).min(batch.len() as u64) as usize;
        for (b, src) in bufs.iter_mut().zip(batch) {
            b.copy_from_slice(src);
        }
        let t = Instant::now();
        work(&mut bufs[..n]);
        total += t.elapsed();
        done += n as u64;
    }
    total
}

fn bench_suite(c: &mut Criterion, suite: Suite) {
    let mut g = c.benchmark_group(label(suite));
    for size in SIZES {
        g.throughput(Throughput::Bytes(size as u64));
        let pkt_in = inner(size);

        let paddings: &[(&str, Option<usize>)] = match suite {
            Suite::AesGcm16(_) => &[("", None), ("-aes-blocks", Some(usize::MAX))],
            Suite::AesCbc(..) => &[("", None)],
        };
        for &(variant, pad) in paddings {
            bench_encap_decap(&mut g, suite, size, &pkt_in, variant, pad);
        }

        if let Suite::AesGcm16(k) = suite {
            bench_raw_gcm(&mut g, k, size, &pkt_in);
        }
    }
    g.finish();
}

/// ESP encap and decap of `size`-byte inner packets (`variant` names the padding).
fn bench_encap_decap(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    suite: Suite,
    size: usize,
    pkt_in: &[u8],
    variant: &str,
    pad: Option<usize>,
) {
    g.bench_with_input(
        BenchmarkId::new(format!("encap{variant}"), size),
        &size,
        |b, &size| {
            let out = outbound(suite, pad);
            let head = out.headroom();
            let mut buf = vec![0u8; head + size + out.tailroom()];
            buf[head..head + size].copy_from_slice(pkt_in);
            b.iter(|| {
                // encap encrypted the previous inner packet in place; only the
                // version nibble matters for the next round.
                buf[head] = 0x45;
                black_box(out.encap(black_box(&mut buf), head, size).unwrap());
            });
        },
    );

    g.bench_with_input(
        BenchmarkId::new(format!("decap{variant}"), size),
        &size,
        |b, &size| {
            let out = outbound(suite, pad);
            let head = out.headroom();
            let batch: Vec<Vec<u8>> = (0..BATCH)
                .map(|_| {
                    let mut buf = vec![0u8; head + size + out.tailroom()];
                    buf[head..head + size].copy_from_slice(pkt_in);
                    let ok = out.encap(&mut buf, head, size).unwrap();
                    buf[ok.range].to_vec()
                })
                .collect();
            b.iter_custom(|iters| {
                // A fresh SA per batch so every packet passes the replay check.
                let mut sa = inbound(suite);
                let mut first = true;
                timed_batches(iters, &batch, |bufs| {
                    if !first {
                        sa = inbound(suite);
                    }
                    first = false;
                    for p in bufs {
                        black_box(sa.decap(black_box(p)).unwrap());
                    }
                })
            });
        },
    );
}

/// Raw ring AES-GCM over the same bytes: the cost of the cipher alone.
fn bench_raw_gcm(
    g: &mut criterion::BenchmarkGroup<'_, criterion::measurement::WallTime>,
    k: AesKeySize,
    size: usize,
    data: &[u8],
) {
    let alg = match k {
        AesKeySize::Aes128 => &aead::AES_128_GCM,
        AesKeySize::Aes256 => &aead::AES_256_GCM,
    };
    let key_bytes = vec![0x42u8; k.key_len()];
    let key = aead::LessSafeKey::new(aead::UnboundKey::new(alg, &key_bytes).unwrap());
    let nonce_of = |n: u64| {
        let mut b = [0u8; 12];
        b[4..].copy_from_slice(&n.to_be_bytes());
        aead::Nonce::assume_unique_for_key(b)
    };
    let aad = [0u8; 8];

    g.bench_with_input(BenchmarkId::new("raw-seal", size), &size, |b, _| {
        let mut buf = data.to_vec();
        let mut n = 0u64;
        b.iter(|| {
            n += 1;
            let tag = key
                .seal_in_place_separate_tag(nonce_of(n), aead::Aad::from(aad), black_box(&mut buf))
                .unwrap();
            let _tag = black_box(tag);
        });
    });

    g.bench_with_input(BenchmarkId::new("raw-open", size), &size, |b, _| {
        let batch: Vec<Vec<u8>> = (0..BATCH as u64)
            .map(|n| {
                let mut buf = data.to_vec();
                let tag = key
                    .seal_in_place_separate_tag(nonce_of(n), aead::Aad::from(aad), &mut buf)
                    .unwrap();
                buf.extend_from_slice(tag.as_ref());
                buf
            })
            .collect();
        b.iter_custom(|iters| {
            timed_batches(iters, &batch, |bufs| {
                for (n, p) in bufs.iter_mut().enumerate() {
                    let plain = key
                        .open_in_place(nonce_of(n as u64), aead::Aad::from(aad), black_box(p))
                        .unwrap();
                    black_box(plain);
                }
            })
        });
    });
}

fn benches(c: &mut Criterion) {
    for suite in Suite::ALL {
        bench_suite(c, suite);
    }
}

criterion_group!(esp_benches, benches);
criterion_main!(esp_benches);
