//! SA table: lookup by SPI, copy-on-write updates, use from several threads.

mod common;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::*;
use esp::*;

fn sa(spi: u32, suite: Suite) -> Arc<InboundSa> {
    // Wide enough that parallel readers, which reorder packets, stay inside it.
    let cfg = InboundConfig {
        replay_window: 4096,
        ..InboundConfig::default()
    };
    Arc::new(InboundSa::new(spi, suite, &keys(suite, 1), cfg).unwrap())
}

#[test]
fn insert_lookup_remove() {
    let suite = Suite::AesGcm16(AesKeySize::Aes128);
    let t = SaTable::new();
    assert!(t.is_empty());
    assert!(t.insert(sa(SPI, suite)).is_none());
    assert!(t.insert(sa(7, suite)).is_none());
    assert!(t.insert(sa(7, suite)).is_some());
    assert_eq!(t.len(), 2);
    assert_eq!(t.get(SPI).unwrap().spi(), SPI);

    let out = outbound(suite, false, Limits::default());
    let inner = inner_packet(false, 80);
    let (mut p, _) = seal(&out, &inner);
    let (spi, d) = t.decap(&mut p).unwrap();
    assert_eq!(spi, SPI);
    assert_eq!(&p[d.inner], &inner[..]);

    assert!(t.remove(SPI).is_some());
    assert!(t.remove(SPI).is_none());
    let (mut p, _) = seal(&out, &inner);
    assert_eq!(t.decap(&mut p), Err(DropReason::UnknownSpi(SPI)));
    assert_eq!(t.decap(&mut [1, 2]), Err(DropReason::Truncated));
    assert_eq!(t.unknown_spi_drops(), 1);
    assert_eq!(t.stats().iter().map(|(s, _)| *s).collect::<Vec<_>>(), [7]);
}

#[test]
fn readers_keep_working_while_sas_are_installed_and_removed() {
    let suite = Suite::AesGcm16(AesKeySize::Aes128);
    let t = Arc::new(SaTable::new());
    t.insert(sa(SPI, suite));
    let out = outbound(suite, false, Limits::default());
    let inner = inner_packet(false, 200);
    let pkts: Vec<Vec<u8>> = (0..4000).map(|_| seal(&out, &inner).0).collect();
    let stop = Arc::new(AtomicBool::new(false));

    let writer = {
        let (t, stop) = (t.clone(), stop.clone());
        std::thread::spawn(move || {
            let mut spi = 1000;
            while !stop.load(Ordering::Relaxed) {
                t.insert(sa(spi, suite));
                t.remove(spi - 1);
                spi += 1;
            }
        })
    };
    let readers: Vec<_> = pkts
        .chunks(1000)
        .map(|chunk| {
            let (t, chunk) = (t.clone(), chunk.to_vec());
            std::thread::spawn(move || {
                for mut p in chunk {
                    let (_, d) = t.decap(&mut p).unwrap_or_else(|e| panic!("{e}"));
                    assert_eq!(d.inner.len(), 200);
                }
            })
        })
        .collect();
    for r in readers {
        r.join().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    assert_eq!(t.get(SPI).unwrap().stats().packets, 4000);
}

#[test]
fn a_snapshot_sees_the_table_as_it_was_taken() {
    let suite = Suite::AesGcm16(AesKeySize::Aes128);
    let t = SaTable::new();
    let out = outbound(suite, false, Limits::default());
    let inner = inner_packet(false, 80);
    let before = t.snapshot();
    t.insert(sa(SPI, suite));
    let (mut p, _) = seal(&out, &inner);
    assert_eq!(before.decap(&mut p), Err(DropReason::UnknownSpi(SPI)));
    assert_eq!(t.unknown_spi_drops(), 1);
    drop(before);
    let (mut p, _) = seal(&out, &inner);
    let (spi, d) = t.snapshot().decap(&mut p).unwrap();
    assert_eq!(spi, SPI);
    assert_eq!(&p[d.inner], &inner[..]);
}

/// A packet held back for an SA being installed: not counted as an unknown SPI until
/// the holder gives up, and the generation tells it when to try again.
#[test]
fn held_packets_are_counted_by_the_holder_and_generations_mark_changes() {
    let suite = Suite::AesGcm16(AesKeySize::Aes128);
    let t = SaTable::new();
    let out = outbound(suite, false, Limits::default());
    let inner = inner_packet(false, 80);
    let (mut p, _) = seal(&out, &inner);
    let g0 = t.generation();
    assert_eq!(
        t.snapshot().decap_held(&mut p.clone()),
        Err(DropReason::UnknownSpi(SPI))
    );
    assert_eq!(t.unknown_spi_drops(), 0);
    t.insert(sa(SPI, suite));
    let g1 = t.generation();
    assert_ne!(g0, g1);
    let (spi, d) = t.snapshot().decap_held(&mut p).unwrap();
    assert_eq!((spi, &p[d.inner]), (SPI, &inner[..]));
    t.remove(SPI);
    assert_ne!(t.generation(), g1);
    t.count_unknown_spi();
    assert_eq!(t.unknown_spi_drops(), 1);
}
