//! Arbitrary bytes never make the decoders or the state machine panic.
mod common;
use common::pair::{config, Pair};
use ike::crypto::sk::SkCipher;
use ike::crypto::{EncrAlg, IntegAlg};
use ike::wire::{decode_chain, Message};
use proptest::prelude::*;
use std::time::Duration;

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn message_decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
        let _ = Message::decode(&bytes);
    }

    #[test]
    fn payload_chains_never_panic(first in 0u8..60, bytes in proptest::collection::vec(any::<u8>(), 0..400)) {
        let _ = decode_chain(first, &bytes);
    }

    /// Valid header and generic payload structure, random bodies: reaches the body parsers.
    #[test]
    fn structured_payloads_never_panic(ty in 33u8..54, body in proptest::collection::vec(any::<u8>(), 0..200)) {
        let mut chain = vec![0u8, 0];
        chain.extend_from_slice(&((body.len() + 4) as u16).to_be_bytes());
        chain.extend_from_slice(&body);
        if let Ok(p) = decode_chain(ty, &chain) {
            // What decodes re-encodes to the same bytes (critical bit aside).
            let mut again = Vec::new();
            ike::wire::encode_chain(&p, &mut again);
            prop_assert_eq!(again.len(), chain.len());
        }
    }

    #[test]
    fn sk_open_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300), gcm in any::<bool>()) {
        let c = if gcm {
            SkCipher { encr: EncrAlg::AesGcm16(128), integ: None, encr_key: &[7; 20], integ_key: &[] }
        } else {
            SkCipher { encr: EncrAlg::AesCbc(128), integ: Some(IntegAlg::HmacSha256_128), encr_key: &[7; 16], integ_key: &[9; 32] }
        };
        let mut m = bytes.clone();
        // Make many inputs look like an SK message so the checks past the header run.
        if m.len() >= 28 {
            m[16] = 46;
            m[17] = 0x20;
            let len = m.len() as u32;
            m[24..28].copy_from_slice(&len.to_be_bytes());
        }
        prop_assert!(c.open(&m).is_err());
    }
}

/// Random datagrams to a responder and to both ends of an established tunnel: no panic,
/// and the established tunnel stays up.
#[test]
fn random_datagrams_do_not_disturb_the_tunnel() {
    use proptest::test_runner::{Config, TestRunner};
    let mut p = Pair::new(
        config(1, "aes128-sha256-ecp256", "aes128gcm16"),
        config(2, "aes128-sha256-ecp256", "aes128gcm16"),
        77,
    );
    assert!(p.drive_until_up(Duration::from_secs(5)));
    let (spi_i, spi_r) = p.a.tunnel.ike_spis().unwrap();
    let _ = &mut p;
    let mut runner = TestRunner::new(Config::with_cases(3000));
    let p = std::cell::RefCell::new(p);
    let strategy = (
        proptest::collection::vec(any::<u8>(), 0..400),
        any::<bool>(),
        0u8..3,
    );
    runner
        .run(&strategy, |(mut bytes, to_a, mode)| {
            // mode 1: with the live SPIs; mode 2: also a plausible header.
            if mode >= 1 && bytes.len() >= 28 {
                bytes[..8].copy_from_slice(&spi_i);
                bytes[8..16].copy_from_slice(&spi_r);
            }
            if mode == 2 && bytes.len() >= 28 {
                bytes[16] = 46;
                bytes[17] = 0x20;
                let len = bytes.len() as u32;
                bytes[24..28].copy_from_slice(&len.to_be_bytes());
            }
            let _ = p.borrow_mut().inject(to_a, bytes);
            Ok(())
        })
        .unwrap();
    let mut p = p.into_inner();
    p.drive_for(Duration::from_secs(5));
    assert!(p.a.tunnel.is_up() && p.b.tunnel.is_up());
    assert!(p.a.rec.downs.is_empty() && p.b.rec.downs.is_empty());
}
