//! Encap/decap round trips for every suite, IPv4 and IPv6 inner packets.

mod common;

use common::*;
use esp::*;

#[test]
fn every_suite_v4_and_v6_many_sizes() {
    for suite in Suite::ALL {
        for esn in [false, true] {
            let out = outbound(suite, esn, Limits::default());
            let inb = inbound(suite, esn, DEFAULT_REPLAY_WINDOW, Limits::default());
            let mut expected_seq = 0;
            for v6 in [false, true] {
                for len in (1..70).chain([576, 1400, 1500, 8900]) {
                    let inner = inner_packet(v6, len);
                    let (mut pkt, ok) = seal(&out, &inner);
                    expected_seq += 1;
                    assert_eq!(ok.seq, expected_seq);
                    assert_eq!(ok.event, None);
                    // Layout: SPI, seq, IV, aligned ciphertext, ICV.
                    assert_eq!(pkt.len(), suite.overhead(len) + len);
                    assert_eq!(&pkt[..4], &SPI.to_be_bytes());
                    assert_eq!(&pkt[4..8], &(expected_seq as u32).to_be_bytes());
                    let ct_len = pkt.len() - suite.headroom() - suite.icv_len();
                    assert_eq!(ct_len % suite.block_size(), 0);
                    assert_eq!(ct_len % 4, 0);
                    // The plaintext does not appear in the packet.
                    if len >= 16 {
                        assert!(!pkt.windows(16).any(|w| w == &inner[..16]));
                    }
                    let d = inb.decap(&mut pkt).unwrap();
                    assert_eq!(&pkt[d.inner.clone()], &inner[..], "{suite:?} len {len}");
                    assert_eq!(
                        d.proto,
                        if v6 {
                            InnerProto::Ipv6
                        } else {
                            InnerProto::Ipv4
                        }
                    );
                    assert_eq!(d.seq, expected_seq);
                    assert_eq!(d.owner, 7, "the caller's number comes back");
                }
            }
            let st = inb.stats();
            assert_eq!(st.packets, expected_seq);
            assert_eq!(st.drops, DropCounts::default());
            assert_eq!(out.stats().packets, expected_seq);
            assert_eq!(out.stats().bytes, st.bytes);
        }
    }
}

/// With a block padding limit the encrypted part fills whole AES blocks while the packet
/// stays within the limit (and the buffer), the least padding otherwise; the receiver
/// takes both.
#[test]
fn block_padding_fills_aes_blocks_within_the_limit() {
    for suite in Suite::ALL {
        // What a 1500-byte IPv4 underlay leaves after the IP and UDP headers.
        let limit = 1472;
        let out = OutboundSa::new(
            SPI,
            suite,
            &keys(suite, 1),
            OutboundConfig {
                block_pad_limit: Some(limit),
                ..OutboundConfig::default()
            },
            IvKey::new([0x11; 16]),
        )
        .unwrap();
        let inb = inbound(suite, false, DEFAULT_REPLAY_WINDOW, Limits::default());
        let fixed = suite.headroom() + suite.icv_len();
        for len in (1..80).chain(1380..1460) {
            let inner = inner_packet(len % 2 == 0, len);
            let (mut pkt, _) = seal(&out, &inner);
            let ct_len = pkt.len() - fixed;
            let least = len + suite.overhead(len) - fixed;
            let wide = (len + 2).div_ceil(16) * 16;
            if wide + fixed <= limit {
                assert_eq!(ct_len, wide, "{suite:?} len {len}");
            } else {
                assert_eq!(ct_len, least, "{suite:?} len {len}: over the limit");
            }
            let d = inb.decap(&mut pkt).unwrap();
            assert_eq!(&pkt[d.inner.clone()], &inner[..], "{suite:?} len {len}");
        }
        // A buffer without room for the wider padding gets the least.
        let inner = inner_packet(false, 100);
        let head = out.headroom();
        let mut buf = vec![0u8; head + inner.len() + suite.tailroom()];
        buf[head..head + inner.len()].copy_from_slice(&inner);
        let ok = out.encap(&mut buf, head, inner.len()).unwrap();
        assert_eq!(ok.range.len(), inner.len() + suite.overhead(inner.len()));
        let mut pkt = buf[ok.range].to_vec();
        assert!(inb.decap(&mut pkt).is_ok());
    }
}

#[test]
fn gcm_explicit_iv_is_the_sequence_number() {
    for size in [AesKeySize::Aes128, AesKeySize::Aes256] {
        let out = outbound(Suite::AesGcm16(size), true, Limits::default());
        for n in 1..=3u64 {
            let (pkt, _) = seal(&out, &inner_packet(false, 40));
            assert_eq!(&pkt[8..16], &n.to_be_bytes());
        }
    }
}

#[test]
fn cbc_ivs_differ_per_packet_and_per_iv_key() {
    let suite = Suite::AesCbc(AesKeySize::Aes128, Integrity::HmacSha256_128);
    let out = outbound(suite, false, Limits::default());
    let other = OutboundSa::new(
        SPI,
        suite,
        &keys(suite, 1),
        OutboundConfig::default(),
        IvKey::new([0x22; 16]),
    )
    .unwrap();
    let inner = inner_packet(false, 100);
    let (a, _) = seal(&out, &inner);
    let (b, _) = seal(&out, &inner);
    let (c, _) = seal(&other, &inner);
    assert_ne!(a[8..24], b[8..24]);
    assert_ne!(a[8..24], c[8..24]);
    // Same plaintext, different IVs: different ciphertexts.
    assert_ne!(a[24..40], b[24..40]);
}

#[test]
fn encap_into_larger_buffer_with_extra_headroom() {
    let suite = Suite::AesGcm16(AesKeySize::Aes128);
    let out = outbound(suite, false, Limits::default());
    let inb = inbound(suite, false, 64, Limits::default());
    let inner = inner_packet(true, 300);
    let start = 64; // room for outer IP/UDP headers too
    let mut buf = vec![0xee; start + inner.len() + 200];
    buf[start..start + inner.len()].copy_from_slice(&inner);
    let ok = out.encap(&mut buf, start, inner.len()).unwrap();
    assert_eq!(ok.range.start, start - out.headroom());
    assert!(buf[..ok.range.start].iter().all(|&b| b == 0xee));
    assert!(buf[ok.range.end..].iter().all(|&b| b == 0xee));
    let mut pkt = buf[ok.range].to_vec();
    let d = inb.decap(&mut pkt).unwrap();
    assert_eq!(&pkt[d.inner], &inner[..]);
}

#[test]
fn encap_rejects_bad_buffers_and_non_ip() {
    let suite = Suite::AesCbc(AesKeySize::Aes256, Integrity::HmacSha512_256);
    let out = outbound(suite, false, Limits::default());
    let inner = inner_packet(false, 50);
    let head = out.headroom();
    let mut buf = vec![0u8; head + inner.len() + out.tailroom()];
    buf[head..head + inner.len()].copy_from_slice(&inner);
    assert_eq!(
        out.encap(&mut buf, head - 1, inner.len()).unwrap_err(),
        EncapError::NotIpPacket
    );
    let mut short_head = buf[1..].to_vec();
    assert_eq!(
        out.encap(&mut short_head, head - 1, inner.len())
            .unwrap_err(),
        EncapError::HeadroomTooSmall {
            need: head,
            have: head - 1
        }
    );
    // encap needs only this packet's padding, not the worst case of tailroom().
    let need_tail = suite.overhead(inner.len()) - head;
    let mut short_tail = buf[..head + inner.len() + need_tail - 1].to_vec();
    assert!(matches!(
        out.encap(&mut short_tail, head, inner.len()).unwrap_err(),
        EncapError::TailroomTooSmall { need, have } if need == need_tail && have == need_tail - 1
    ));
    let mut exact_tail = buf[..head + inner.len() + need_tail].to_vec();
    out.encap(&mut exact_tail, head, inner.len()).unwrap();
    assert_eq!(
        out.encap(&mut buf, head, 0).unwrap_err(),
        EncapError::NotIpPacket
    );
    assert_eq!(
        out.encap(&mut buf, head, usize::MAX).unwrap_err(),
        EncapError::NotIpPacket
    );
    assert_eq!(
        out.encap(&mut buf, usize::MAX, 1).unwrap_err(),
        EncapError::NotIpPacket
    );
    buf[head] = 0x20;
    assert_eq!(
        out.encap(&mut buf, head, inner.len()).unwrap_err(),
        EncapError::NotIpPacket
    );
    // None of the refused ones consumed a sequence number.
    assert_eq!(out.stats().last_seq, 1);
    assert_eq!(out.stats().refused_invalid, 7);
}

#[test]
fn wrong_keys_or_spi_are_refused() {
    let suite = Suite::AesGcm16(AesKeySize::Aes256);
    let out = outbound(suite, false, Limits::default());
    let (pkt, _) = seal(&out, &inner_packet(false, 64));
    let other_keys = InboundSa::new(SPI, suite, &keys(suite, 2), InboundConfig::default()).unwrap();
    assert_eq!(
        other_keys.decap(&mut pkt.clone()),
        Err(DropReason::IcvMismatch)
    );
    let other_spi =
        InboundSa::new(SPI + 1, suite, &keys(suite, 1), InboundConfig::default()).unwrap();
    assert_eq!(
        other_spi.decap(&mut pkt.clone()),
        Err(DropReason::UnknownSpi(SPI))
    );
    assert_eq!(other_keys.stats().drops.icv_mismatch, 1);
}

#[test]
fn sa_construction_errors() {
    let suite = Suite::AesGcm16(AesKeySize::Aes128);
    assert_eq!(
        InboundSa::new(0, suite, &keys(suite, 1), InboundConfig::default()).err(),
        Some(SaError::ReservedSpi)
    );
    for w in [0, MAX_REPLAY_WINDOW + 1] {
        let cfg = InboundConfig {
            replay_window: w,
            ..InboundConfig::default()
        };
        assert_eq!(
            InboundSa::new(1, suite, &keys(suite, 1), cfg).err(),
            Some(SaError::ReplayWindow(w))
        );
    }
    assert!(OutboundSa::new(
        0,
        suite,
        &keys(suite, 1),
        OutboundConfig::default(),
        IvKey::new([0; 16])
    )
    .is_err());
}

#[test]
fn sas_are_send_and_sync() {
    fn check<T: Send + Sync>() {}
    check::<OutboundSa>();
    check::<InboundSa>();
    check::<SaTable>();
}

#[test]
fn debug_output_has_no_key_material() {
    let suite = Suite::AesGcm16(AesKeySize::Aes128);
    let out = format!("{:?}", outbound(suite, false, Limits::default()));
    let inb = format!("{:?}", inbound(suite, false, 64, Limits::default()));
    assert!(
        out.contains("0xc0de0001") && inb.contains("AesGcm16"),
        "{out} {inb}"
    );
    // Only identity and state fields: nothing from the transform or keys.
    for d in [&out, &inb] {
        assert!(
            !d.contains("key") && !d.contains("transform") && !d.contains('['),
            "{d}"
        );
    }
}
