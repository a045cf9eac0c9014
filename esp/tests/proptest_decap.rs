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
