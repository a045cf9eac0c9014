//! Complete IKE_SA_INIT + IKE_AUTH handshakes in-process, per DH group.
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::time::Duration;

#[path = "../tests/common/pair.rs"]
mod pair;

fn handshakes(c: &mut Criterion) {
    let mut g = c.benchmark_group("handshake");
    g.throughput(Throughput::Elements(1));
    g.sample_size(10);
    for (name, ike, esp) in [
        (
            "curve25519",
            "aes128gcm16-prfsha256-curve25519",
            "aes128gcm16",
        ),
        ("ecp256", "aes128gcm16-prfsha256-ecp256", "aes128gcm16"),
        ("ecp384", "aes256gcm16-prfsha384-ecp384", "aes256gcm16"),
        ("ecp521", "aes256gcm16-prfsha512-ecp521", "aes256gcm16"),
        ("modp2048", "aes128-sha256-modp2048", "aes128gcm16"),
        ("modp3072", "aes128-sha256-modp3072", "aes128gcm16"),
        ("modp4096", "aes256-sha512-modp4096", "aes256gcm16"),
    ] {
        let mut seed = 0;
        g.bench_function(BenchmarkId::from_parameter(name), |b| {
            b.iter(|| {
                seed += 1;
                let mut p =
                    pair::Pair::new(pair::config(1, ike, esp), pair::config(2, ike, esp), seed);
                assert!(p.drive_until_up(Duration::from_secs(5)));
            })
        });
    }
    g.finish();
}

criterion_group!(benches, handshakes);
criterion_main!(benches);
