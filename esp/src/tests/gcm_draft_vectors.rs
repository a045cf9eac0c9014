//! AES-GCM ESP known answers from draft-mcgrew-gcm-test-01 section 4.
//!
//! The draft's payloads are transport-mode (next header 1, 4 or 17, padding
//! included), so they are checked at the transform level: the same code that
//! `encap`/`decap` run, with the draft's IV instead of the sequence number.

use serde_json::Value;

use crate::keys::SaKeys;
use crate::suite::{AesKeySize, Suite};
use crate::transform::Transform;

const VECTORS: &str = include_str!("../../testdata/gcm_draft_mcgrew.json");

struct Case {
    suite: Suite,
    keys: SaKeys,
    seq_hi: Option<u32>,
    plaintext: Vec<u8>,
    packet: Vec<u8>,
}

fn hex_field(v: &Value, name: &str) -> Vec<u8> {
    hex::decode(v[name].as_str().unwrap()).unwrap()
}

fn cases() -> Vec<Case> {
    let doc: Value = serde_json::from_str(VECTORS).unwrap();
    doc["cases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let key = hex_field(c, "key_and_salt");
            let suite = match key.len() {
                20 => Suite::AesGcm16(AesKeySize::Aes128),
                36 => Suite::AesGcm16(AesKeySize::Aes256),
                n => panic!("unexpected key length {n}"),
            };
            let seq = u64::from_str_radix(c["seq"].as_str().unwrap(), 16).unwrap();
            let esn = c["esn"].as_bool().unwrap();
            Case {
                suite,
                keys: SaKeys::from_keymat(suite, &key).unwrap(),
                seq_hi: esn.then_some((seq >> 32) as u32),
                plaintext: hex_field(c, "plaintext"),
                packet: hex_field(c, "packet"),
            }
        })
        .collect()
}

#[test]
fn seal_reproduces_every_draft_packet() {
    let cases = cases();
    assert_eq!(cases.len(), 13);
    for (i, c) in cases.iter().enumerate() {
        let t = Transform::new(c.suite, &c.keys).unwrap();
        // Header and IV as transmitted, then plaintext, then room for the ICV.
        let mut pkt = c.packet[..16].to_vec();
        pkt.extend_from_slice(&c.plaintext);
        pkt.extend_from_slice(&[0; 16]);
        t.seal(&mut pkt, c.seq_hi).unwrap();
        assert_eq!(hex::encode(&pkt), hex::encode(&c.packet), "case {i}");
    }
}

#[test]
fn open_recovers_every_draft_plaintext() {
    for (i, c) in cases().iter().enumerate() {
        let t = Transform::new(c.suite, &c.keys).unwrap();
        let mut pkt = c.packet.clone();
        t.open(&mut pkt, c.seq_hi).unwrap();
        assert_eq!(&pkt[16..pkt.len() - 16], &c.plaintext[..], "case {i}");
    }
}

#[test]
fn open_rejects_any_flipped_bit_and_wrong_esn_high_bits() {
    for (i, c) in cases().iter().enumerate() {
        let t = Transform::new(c.suite, &c.keys).unwrap();
        for pos in 0..c.packet.len() {
            let mut pkt = c.packet.clone();
            pkt[pos] ^= 0x01;
            assert!(t.open(&mut pkt, c.seq_hi).is_err(), "case {i} byte {pos}");
        }
        let wrong_hi = Some(c.seq_hi.map_or(1, |h| h ^ 1));
        assert!(t.open(&mut c.packet.clone(), wrong_hi).is_err(), "case {i}");
    }
}
