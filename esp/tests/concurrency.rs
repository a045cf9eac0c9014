//! One SA used by several worker threads at once.

mod common;

use std::collections::HashSet;
use std::sync::Arc;

use common::*;
use esp::*;

#[test]
fn parallel_encap_hands_out_unique_sequence_numbers() {
    for suite in [Suite::AesGcm16(AesKeySize::Aes128), Suite::ALL[7]] {
        let out = Arc::new(outbound(suite, false, Limits::default()));
        let handles: Vec<_> = (0..4)
            .map(|_| {
                let out = out.clone();
                std::thread::spawn(move || {
                    let inner = inner_packet(false, 64);
                    (0..2000).map(|_| seal(&out, &inner)).collect::<Vec<_>>()
                })
            })
            .collect();
        let all: Vec<_> = handles
            .into_iter()
            .flat_map(|h| h.join().unwrap())
            .collect();
        let seqs: HashSet<u64> = all.iter().map(|(_, ok)| ok.seq).collect();
        assert_eq!(seqs.len(), 8000);
        assert_eq!(seqs.iter().max(), Some(&8000));
        // IVs are unique too.
        let ivs: HashSet<Vec<u8>> = all
            .iter()
            .map(|(p, _)| p[8..suite.headroom()].to_vec())
            .collect();
        assert_eq!(ivs.len(), 8000);
    }
}

#[test]
fn parallel_decap_accepts_each_packet_exactly_once() {
    let suite = Suite::AesGcm16(AesKeySize::Aes256);
    let out = outbound(suite, false, Limits::default());
    let inb = Arc::new(inbound(suite, false, 4096, Limits::default()));
    let pkts: Vec<Vec<u8>> = (0..3000)
        .map(|_| seal(&out, &inner_packet(true, 100)).0)
        .collect();
    // Four workers each get every packet: exactly one copy of each may pass.
    let handles: Vec<_> = (0..4)
        .map(|w| {
            let (inb, mut pkts) = (inb.clone(), pkts.clone());
            if w % 2 == 1 {
                pkts.reverse();
            }
            std::thread::spawn(move || {
                pkts.into_iter()
                    .filter_map(|mut p| inb.decap(&mut p).ok().map(|d| d.seq))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    let mut accepted: Vec<u64> = handles
        .into_iter()
        .flat_map(|h| h.join().unwrap())
        .collect();
    accepted.sort_unstable();
    assert_eq!(accepted, (1..=3000).collect::<Vec<_>>());
    let st = inb.stats();
    assert_eq!(st.packets, 3000);
    assert_eq!(st.drops.replayed + st.drops.outside_window, 9000);
}
