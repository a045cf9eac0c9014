//! Real ESP-in-UDP packets captured between two strongSwan 5.9.8 peers
//! (AES-GCM-128, AES-GCM-256, AES-CBC-128 + HMAC-SHA1-96,
//! AES-CBC-256 + HMAC-SHA-256-128), with the keys from charon's logs.

use std::collections::HashMap;

use serde_json::Value;

use crate::inbound::{InboundConfig, InboundSa, InnerProto};
use crate::keys::{IvKey, SaKeys};
use crate::outbound::{OutboundConfig, OutboundSa};
use crate::suite::{AesKeySize, Integrity, Suite};
use crate::udp_encap::{classify, UdpPayload};

const VECTORS: &str = include_str!("../../testdata/strongswan_esp.json");

fn suite_of(proposal: &str) -> Suite {
    let p = proposal;
    if p.starts_with("ENCR_AES_GCM_16_128") {
        Suite::AesGcm16(AesKeySize::Aes128)
    } else if p.starts_with("ENCR_AES_GCM_16_256") {
        Suite::AesGcm16(AesKeySize::Aes256)
    } else if p.starts_with("ENCR_AES_CBC_128/AUTH_HMAC_SHA1_96") {
        Suite::AesCbc(AesKeySize::Aes128, Integrity::HmacSha1_96)
    } else if p.starts_with("ENCR_AES_CBC_256/AUTH_HMAC_SHA2_256_128") {
        Suite::AesCbc(AesKeySize::Aes256, Integrity::HmacSha256_128)
    } else {
        panic!("proposal not covered: {p}")
    }
}

struct CapturedSa {
    suite: Suite,
    keys: SaKeys,
}

fn hex_of(v: &Value, name: &str) -> Vec<u8> {
    hex::decode(v[name].as_str().unwrap()).unwrap()
}

fn load() -> Vec<(String, HashMap<u32, CapturedSa>, Vec<Value>)> {
    let doc: Value = serde_json::from_str(VECTORS).unwrap();
    doc.as_array()
        .unwrap()
        .iter()
        .map(|set| {
            let sas = set["sas"]
                .as_array()
                .unwrap()
                .iter()
                .map(|sa| {
                    let suite = suite_of(sa["proposal"].as_str().unwrap());
                    let keys =
                        SaKeys::new(suite, &hex_of(sa, "encr_key"), &hex_of(sa, "integ_key"))
                            .unwrap();
                    let spi = u32::from_str_radix(sa["spi"].as_str().unwrap(), 16).unwrap();
                    (spi, CapturedSa { suite, keys })
                })
                .collect();
            let packets = set["packets"].as_array().unwrap().clone();
            (set["set"].as_str().unwrap().to_owned(), sas, packets)
        })
        .collect()
}

#[test]
fn decap_every_captured_packet() {
    let mut total = 0;
    let mut suites = Vec::new();
    for (name, sas, packets) in load() {
        // One inbound SA per SPI, fed the packets in capture order.
        let inbound: HashMap<u32, InboundSa> = sas
            .iter()
            .map(|(spi, sa)| {
                (
                    *spi,
                    InboundSa::new(*spi, sa.suite, &sa.keys, InboundConfig::default()).unwrap(),
                )
            })
            .collect();
        for p in &packets {
            let mut payload = hex_of(p, "udp_payload");
            let spi = match classify(&payload) {
                Ok(UdpPayload::Esp { spi }) => spi,
                other => panic!("{name}: not ESP: {other:?}"),
            };
            let sa = &inbound[&spi];
            let d = sa
                .decap(&mut payload)
                .unwrap_or_else(|e| panic!("{name} spi {spi:08x}: {e}"));
            assert_eq!(
                hex::encode(&payload[d.inner.clone()]),
                p["inner"].as_str().unwrap(),
                "{name}"
            );
            assert_eq!(d.seq, p["seq"].as_u64().unwrap());
            assert_eq!(
                d.proto.next_header(),
                p["next_header"].as_u64().unwrap() as u8
            );
            assert_eq!(d.proto, InnerProto::Ipv4);
            // The same packet again is a replay.
            let mut again = hex_of(p, "udp_payload");
            assert_eq!(sa.decap(&mut again), Err(crate::DropReason::Replayed));
            total += 1;
        }
        for sa in inbound.values() {
            let st = sa.stats();
            assert_eq!(st.drops.replayed, st.packets);
            suites.push(sa.suite());
        }
    }
    assert_eq!(total, 64);
    for s in [
        Suite::AesGcm16(AesKeySize::Aes128),
        Suite::AesGcm16(AesKeySize::Aes256),
        Suite::AesCbc(AesKeySize::Aes128, Integrity::HmacSha1_96),
        Suite::AesCbc(AesKeySize::Aes256, Integrity::HmacSha256_128),
    ] {
        assert!(suites.contains(&s), "{s:?} not exercised");
    }
}

#[test]
fn encap_reproduces_every_captured_packet() {
    for (name, sas, packets) in load() {
        for p in &packets {
            let spi = u32::from_str_radix(p["spi"].as_str().unwrap(), 16).unwrap();
            let sa = &sas[&spi];
            let out = OutboundSa::new(
                spi,
                sa.suite,
                &sa.keys,
                OutboundConfig::default(),
                IvKey::new([0; 16]),
            )
            .unwrap();
            let inner = hex_of(p, "inner");
            let head = out.headroom();
            let mut buf = vec![0u8; head + inner.len() + out.tailroom()];
            buf[head..head + inner.len()].copy_from_slice(&inner);
            let seq = p["seq"].as_u64().unwrap();
            let range = out
                .encap_at(&mut buf, head, inner.len(), seq, &hex_of(p, "iv"))
                .unwrap();
            assert_eq!(
                hex::encode(&buf[range]),
                p["udp_payload"].as_str().unwrap(),
                "{name} spi {spi:08x} seq {seq}"
            );
        }
    }
}
