//! Anti-replay through the public API: window checked before and updated only
//! after the ICV passes.

mod common;

use common::*;
use esp::*;

fn packets(suite: Suite, n: usize) -> Vec<Vec<u8>> {
    let out = outbound(suite, false, Limits::default());
    (0..n)
        .map(|i| seal(&out, &inner_packet(i % 2 == 0, 60)).0)
        .collect()
}

#[test]
fn duplicates_and_old_packets_are_dropped() {
    for suite in [Suite::AesGcm16(AesKeySize::Aes128), Suite::ALL[3]] {
        let pkts = packets(suite, 200);
        let inb = inbound(suite, false, 64, Limits::default());
        // Deliver 1..=100 in order, then 150, then replays and old ones.
        for p in &pkts[..100] {
            inb.decap(&mut p.clone()).unwrap();
        }
        assert_eq!(inb.decap(&mut pkts[149].clone()).unwrap().seq, 150);
        assert_eq!(inb.decap(&mut pkts[99].clone()), Err(DropReason::Replayed));
        // 150 - 64 = 86 is outside the window, 87..=100 were seen, 101.. are new.
        assert_eq!(
            inb.decap(&mut pkts[85].clone()),
            Err(DropReason::OutsideWindow)
        );
        assert_eq!(inb.decap(&mut pkts[86].clone()), Err(DropReason::Replayed));
        for p in &pkts[100..149] {
            inb.decap(&mut p.clone()).unwrap();
        }
        assert_eq!(inb.decap(&mut pkts[149].clone()), Err(DropReason::Replayed));
        let st = inb.stats();
        assert_eq!(st.packets, 150);
        assert_eq!(st.drops.replayed, 3);
        assert_eq!(st.drops.outside_window, 1);
        assert_eq!(st.highest_seq, 150);
    }
}

#[test]
fn reversed_delivery_within_window_sizes() {
    let suite = Suite::AesGcm16(AesKeySize::Aes256);
    let pkts = packets(suite, 300);
    for window in [32u32, 64, 100, 256] {
        let inb = inbound(suite, false, window, Limits::default());
        let mut accepted = 0;
        for p in pkts.iter().rev() {
            if inb.decap(&mut p.clone()).is_ok() {
                accepted += 1;
            }
        }
        // Newest first: exactly the window's worth is accepted.
        assert_eq!(accepted, window.min(300) as usize, "window {window}");
    }
}

#[test]
fn large_windows() {
    let suite = Suite::AesGcm16(AesKeySize::Aes128);
    let pkts = packets(suite, 5000);
    let inb = inbound(suite, false, 4096, Limits::default());
    inb.decap(&mut pkts[4999].clone()).unwrap();
    // 5000 - 4096 + 1 = 905 is the oldest number still in the window.
    assert_eq!(
        inb.decap(&mut pkts[903].clone()),
        Err(DropReason::OutsideWindow)
    );
    for p in pkts[904..4999].iter().rev() {
        inb.decap(&mut p.clone()).unwrap();
    }
    assert_eq!(inb.stats().packets, 4096);
}

#[test]
fn forged_packet_does_not_move_the_window() {
    for suite in Suite::ALL {
        let pkts = packets(suite, 5);
        let inb = inbound(suite, false, 64, Limits::default());
        inb.decap(&mut pkts[0].clone()).unwrap();
        // A forgery claiming sequence number 1_000_000 with a broken ICV.
        let mut forged = pkts[1].clone();
        forged[4..8].copy_from_slice(&1_000_000u32.to_be_bytes());
        assert_eq!(inb.decap(&mut forged), Err(DropReason::IcvMismatch));
        assert_eq!(inb.stats().highest_seq, 1);
        // Genuine packets 2..5 are still accepted.
        for p in &pkts[1..] {
            inb.decap(&mut p.clone()).unwrap();
        }
        // A replay with a broken ICV is reported as a replay (checked first).
        let mut replay = pkts[2].clone();
        let last = replay.len() - 1;
        replay[last] ^= 1;
        assert_eq!(inb.decap(&mut replay), Err(DropReason::Replayed));
    }
}

#[test]
fn sequence_number_zero_is_refused() {
    let suite = Suite::AesGcm16(AesKeySize::Aes128);
    let mut p = packets(suite, 1).remove(0);
    p[4..8].copy_from_slice(&[0; 4]);
    let inb = inbound(suite, false, 64, Limits::default());
    assert_eq!(inb.decap(&mut p), Err(DropReason::OutsideWindow));
}
