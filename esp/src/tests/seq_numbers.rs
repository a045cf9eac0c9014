//! Sequence-number exhaustion and ESN wrap, using the hook that moves an
//! outbound SA's counter close to the limits.

use crate::*;

fn pair(suite: Suite, esn: bool) -> (OutboundSa, InboundSa) {
    let keys = SaKeys::from_keymat(suite, &vec![0x5a; suite.keymat_len()]).unwrap();
    let out = OutboundSa::new(
        0x0100_0001,
        suite,
        &keys,
        OutboundConfig {
            esn,
            limits: Limits::default(),
            ..OutboundConfig::default()
        },
        IvKey::new([3; 16]),
    )
    .unwrap();
    let inb = InboundSa::new(
        0x0100_0001,
        suite,
        &keys,
        InboundConfig {
            esn,
            replay_window: 64,
            limits: Limits::default(),
            owner: 0,
        },
    )
    .unwrap();
    (out, inb)
}

const INNER: [u8; 28] = [
    0x45, 0, 0, 28, 0, 1, 0, 0, 64, 1, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 8, 0, 0, 0, 0, 0, 0, 0,
];

fn encap(out: &OutboundSa) -> Result<(Vec<u8>, EncapOk), EncapError> {
    let mut buf = vec![0u8; MAX_HEADROOM + INNER.len() + MAX_TAILROOM];
    buf[MAX_HEADROOM..MAX_HEADROOM + INNER.len()].copy_from_slice(&INNER);
    let ok = out.encap(&mut buf, MAX_HEADROOM, INNER.len())?;
    Ok((buf[ok.range.clone()].to_vec(), ok))
}

#[test]
fn exhaustion_without_esn_at_2_pow_32_minus_1() {
    for suite in [Suite::AesGcm16(AesKeySize::Aes128), Suite::ALL[2]] {
        let (out, _) = pair(suite, false);
        let max = u64::from(u32::MAX);
        out.set_last_seq(max - 2);
        let (_, ok) = encap(&out).unwrap();
        assert_eq!(ok.seq, max - 1);
        let (pkt, ok) = encap(&out).unwrap();
        assert_eq!(ok.seq, max);
        assert_eq!(
            ok.event,
            Some(LifetimeEvent::Hard(LimitKind::SequenceNumber))
        );
        assert_eq!(&pkt[4..8], &[0xff; 4]);
        assert!(out.is_expired());
        for _ in 0..3 {
            assert_eq!(
                encap(&out).unwrap_err(),
                EncapError::SaExpired(LimitKind::SequenceNumber)
            );
        }
        assert_eq!(out.stats().refused_expired, 3);
        assert_eq!(out.stats().last_seq, max);
    }
}

#[test]
fn exhaustion_with_esn_at_2_pow_64_minus_1() {
    let (out, _) = pair(Suite::AesGcm16(AesKeySize::Aes256), true);
    out.set_last_seq(u64::MAX - 1);
    let (_, ok) = encap(&out).unwrap();
    assert_eq!(ok.seq, u64::MAX);
    assert_eq!(
        ok.event,
        Some(LifetimeEvent::Hard(LimitKind::SequenceNumber))
    );
    assert_eq!(
        encap(&out).unwrap_err(),
        EncapError::SaExpired(LimitKind::SequenceNumber)
    );
}

#[test]
fn soft_event_before_the_sequence_space_runs_out() {
    let (out, _) = pair(Suite::AesGcm16(AesKeySize::Aes128), false);
    let max = u64::from(u32::MAX);
    let soft = max - max / 8;
    out.set_last_seq(soft - 2);
    assert_eq!(encap(&out).unwrap().1.event, None);
    assert_eq!(
        encap(&out).unwrap().1.event,
        Some(LifetimeEvent::Soft(LimitKind::SequenceNumber))
    );
    assert_eq!(encap(&out).unwrap().1.event, None);
    assert!(!out.is_expired());
}

#[test]
fn esn_wraps_across_2_pow_32_in_order_and_out_of_order() {
    for suite in Suite::ALL {
        let (out, inb) = pair(suite, true);
        let start = (1u64 << 32) - 6;
        out.set_last_seq(start);
        let mut pkts: Vec<(Vec<u8>, u64)> = (0..12)
            .map(|_| {
                let (p, ok) = encap(&out).unwrap();
                (p, ok.seq)
            })
            .collect();
        assert_eq!(pkts.last().unwrap().1, (1 << 32) + 6);
        // Only the low 32 bits travel.
        assert_eq!(&pkts[6].0[4..8], &[0, 0, 0, 1]);
        // Deliver: odd ones first (crossing the boundary), then the even ones late.
        let (odd, even): (Vec<_>, Vec<_>) =
            pkts.drain(..).enumerate().partition(|(i, _)| i % 2 == 1);
        for (_, (mut p, seq)) in odd.into_iter().chain(even) {
            let d = inb
                .decap(&mut p)
                .unwrap_or_else(|e| panic!("{suite:?} seq {seq:#x}: {e}"));
            assert_eq!(d.seq, seq);
            assert_eq!(&p[d.inner], &INNER[..]);
        }
        assert_eq!(inb.stats().highest_seq, (1 << 32) + 6);
    }
}

#[test]
fn esn_high_bits_are_authenticated() {
    // A receiver that believes it is in another 2^32 subspace infers other high
    // bits, and the ICV must then fail.
    for suite in Suite::ALL {
        let (out, _) = pair(suite, true);
        out.set_last_seq(5 << 32);
        let (mut p, ok) = encap(&out).unwrap();
        assert_eq!(ok.seq, (5 << 32) + 1);
        let (_, fresh_inb) = pair(suite, true);
        assert_eq!(
            fresh_inb.decap(&mut p),
            Err(DropReason::IcvMismatch),
            "{suite:?}"
        );
    }
}
