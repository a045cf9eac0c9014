//! Property tests: arbitrary input never panics; any tampering is caught.

mod common;

use common::*;
use esp::*;
use proptest::prelude::*;

fn suite_strategy() -> impl Strategy<Value = Suite> {
    (0..Suite::ALL.len()).prop_map(|i| Suite::ALL[i])
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn decap_of_arbitrary_bytes_never_panics(
        suite in suite_strategy(),
        esn in any::<bool>(),
        mut bytes in proptest::collection::vec(any::<u8>(), 0..300),
        spi_matches in any::<bool>(),
    ) {
        if spi_matches && bytes.len() >= 4 {
            bytes[..4].copy_from_slice(&SPI.to_be_bytes());
        }
        let inb = inbound(suite, esn, 64, Limits::default());
        let r = inb.decap(&mut bytes.clone());
        // Random bytes never authenticate.
        prop_assert!(r.is_err());
        let table = SaTable::new();
        table.insert(std::sync::Arc::new(inb));
        prop_assert!(table.decap(&mut bytes).is_err());
        let _ = udp_encap::classify(&bytes);
    }

    #[test]
    fn tampering_with_any_byte_fails_the_icv(
        suite in suite_strategy(),
        esn in any::<bool>(),
        v6 in any::<bool>(),
        len in 1usize..400,
        pos_seed in any::<usize>(),
        flip in 1u8..=255,
    ) {
        let out = outbound(suite, esn, Limits::default());
        let (pkt, _) = seal(&out, &inner_packet(v6, len));
        let pos = pos_seed % pkt.len();
        let mut bad = pkt.clone();
        bad[pos] ^= flip;
        let inb = inbound(suite, esn, 64, Limits::default());
        let r = inb.decap(&mut bad);
        if pos < 4 {
            prop_assert!(matches!(r, Err(DropReason::UnknownSpi(_))));
        } else if pos < 8 && bad[4..8] == [0; 4] && !esn {
            prop_assert_eq!(r, Err(DropReason::OutsideWindow));
        } else {
            prop_assert_eq!(r, Err(DropReason::IcvMismatch));
        }
        // The untouched packet still decapsulates afterwards.
        let mut good = pkt.clone();
        prop_assert!(inb.decap(&mut good).is_ok());
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Whatever offsets and lengths the caller passes, encap either refuses
    /// with a typed error or produces a packet that decapsulates to the input.
    #[test]
    fn encap_with_arbitrary_offsets_never_panics(
        suite in suite_strategy(),
        buf_len in 0usize..600,
        inner_start in 0usize..700,
        inner_len in 0usize..700,
        v6 in any::<bool>(),
    ) {
        let out = outbound(suite, false, Limits::default());
        let mut buf: Vec<u8> = (0..buf_len).map(|i| i as u8).collect();
        if let Some(b) = buf.get_mut(inner_start) {
            *b = if v6 { 0x60 } else { 0x45 };
        }
        let original = buf.clone();
        match out.encap(&mut buf, inner_start, inner_len) {
            Ok(ok) => {
                let inner = &original[inner_start..inner_start + inner_len];
                let inb = inbound(suite, false, 64, Limits::default());
                let mut pkt = buf[ok.range].to_vec();
                let d = inb.decap(&mut pkt).unwrap();
                prop_assert_eq!(&pkt[d.inner], inner);
            }
            Err(e) => {
                let caller_error = matches!(
                    e,
                    EncapError::NotIpPacket
                        | EncapError::HeadroomTooSmall { .. }
                        | EncapError::TailroomTooSmall { .. }
                );
                prop_assert!(caller_error, "unexpected {:?}", e);
            }
        }
    }
}
