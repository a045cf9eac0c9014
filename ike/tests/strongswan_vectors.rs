//! Known-answer tests against four real strongSwan 5.9.8 exchanges (testdata/*.json):
//! codec round trips, SKEYSEED and SK_*, AUTH, SK decryption and re-encryption, CHILD
//! KEYMAT, and the rekeyed IKE SA keys (RFC 7296 2.18).
use ike::crypto::keys::{child_keymat, derive_ike_keys, skeyseed, skeyseed_rekey, IkeKeys};
use ike::crypto::sk::SkCipher;
use ike::crypto::{auth, Secret};
use ike::proposal::{EspSuite, IkeSuite};
use ike::wire::{decode_chain, encode_chain, Message, Payload};
use serde_json::Value;

const SETS: [&str; 4] = [
    include_str!("../testdata/1-aes128-sha256-modp2048.json"),
    include_str!("../testdata/2-aes256gcm16-prfsha384-ecp384.json"),
    include_str!("../testdata/3-aes128-sha1-modp1024.json"),
    include_str!("../testdata/4-aes256-sha256-curve25519.json"),
];

/// Looks up a key by its prefix (the vector keys carry their provenance in the name).
fn get<'a>(v: &'a Value, prefix: &str) -> &'a Value {
    v.as_object()
        .and_then(|o| {
            o.iter()
                .find(|(k, _)| k.as_str() == prefix || k.starts_with(&format!("{prefix} ")))
        })
        .map(|(_, v)| v)
        .unwrap_or_else(|| panic!("no key {prefix}"))
}

fn hx(v: &Value, prefix: &str) -> Vec<u8> {
    hex::decode(
        get(v, prefix)
            .as_str()
            .unwrap_or_else(|| panic!("{prefix} not a string")),
    )
    .unwrap()
}

fn sets() -> Vec<Value> {
    SETS.iter()
        .map(|s| serde_json::from_str(s).unwrap())
        .collect()
}

fn messages(v: &Value) -> &Vec<Value> {
    v["messages"].as_array().unwrap()
}

fn raw(m: &Value) -> Vec<u8> {
    hx(m, "udp_payload_hex")
}

/// The negotiated IKE suite, read from the responder's IKE_SA_INIT SA payload.
fn ike_suite(v: &Value) -> IkeSuite {
    let resp = Message::decode(&raw(&messages(v)[1])).unwrap();
    let Some(Payload::Sa(props)) = resp.payloads.first() else {
        panic!("no SA payload")
    };
    IkeSuite::from_wire(&props[0]).expect("suite")
}

fn ike_keys(v: &Value, idx: usize) -> (IkeKeys, Secret) {
    let suite = ike_suite(v);
    let sa = &v["ike_sas"][idx];
    let ni = hx(sa, "ni");
    let nr = hx(sa, "nr");
    let g = hx(sa, "g_ir");
    let seed = if idx == 0 {
        skeyseed(suite.prf, &ni, &nr, &g)
    } else {
        skeyseed_rekey(suite.prf, &hx(sa, "old_SK_d"), &g, &ni, &nr)
    };
    let spi_i: [u8; 8] = hx(sa, "spi_i").try_into().unwrap();
    let spi_r: [u8; 8] = hx(sa, "spi_r").try_into().unwrap();
    let keys = derive_ike_keys(
        suite.prf,
        suite.encr,
        suite.integ,
        &seed,
        &ni,
        &nr,
        (&spi_i, &spi_r),
    );
    (keys, seed)
}

#[test]
fn every_message_round_trips_through_the_codec() {
    for v in sets() {
        for m in messages(&v) {
            let bytes = raw(m);
            let msg = Message::decode(&bytes).unwrap();
            assert_eq!(
                msg.encode(),
                bytes,
                "outer re-encoding of message {}",
                m["index"]
            );
            if let Some(sk) = m.get("sk") {
                let Some(Payload::Sk(e)) = msg.payloads.last() else {
                    panic!("no SK payload")
                };
                let plain = hx(sk, "decrypted_inner_payloads_hex");
                let inner = decode_chain(e.inner_first, &plain).unwrap();
                let mut again = Vec::new();
                encode_chain(&inner, &mut again);
                assert_eq!(again, plain, "inner re-encoding of message {}", m["index"]);
                let names: Vec<String> = get(sk, "inner_payloads")
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_string())
                    .collect();
                assert_eq!(
                    names.len(),
                    inner.len(),
                    "payload count of message {}",
                    m["index"]
                );
            }
        }
    }
}

#[test]
fn skeyseed_and_all_sk_keys_match_strongswan() {
    for v in sets() {
        for idx in 0..2 {
            let sa = &v["ike_sas"][idx];
            let (k, seed) = ike_keys(&v, idx);
            assert_eq!(
                seed.expose(),
                hx(sa, "SKEYSEED"),
                "{} SKEYSEED {idx}",
                v["name"]
            );
            assert_eq!(k.sk_d.expose(), hx(sa, "SK_d"));
            assert_eq!(k.sk_pi.expose(), hx(sa, "SK_pi"));
            assert_eq!(k.sk_pr.expose(), hx(sa, "SK_pr"));
            assert_eq!(k.sk_ei.expose(), hx(sa, "SK_ei"));
            assert_eq!(k.sk_er.expose(), hx(sa, "SK_er"));
            let ai = get(sa, "SK_ai")
                .as_str()
                .map(|s| hex::decode(s).unwrap())
                .unwrap_or_default();
            let ar = get(sa, "SK_ar")
                .as_str()
                .map(|s| hex::decode(s).unwrap())
                .unwrap_or_default();
            assert_eq!(k.sk_ai.expose(), ai);
            assert_eq!(k.sk_ar.expose(), ar);
        }
    }
}

#[test]
fn psk_auth_octets_and_values_match_strongswan() {
    for v in sets() {
        let suite = ike_suite(&v);
        let (k, _) = ike_keys(&v, 0);
        let psk = hx(&v["config"], "psk_hex");
        let msgs = messages(&v);
        let ni = hx(&v["ike_sas"][0], "ni");
        let nr = hx(&v["ike_sas"][0], "nr");
        for (who, real, nonce, skp) in [
            ("initiator", raw(&msgs[0]), &nr, &k.sk_pi),
            ("responder", raw(&msgs[1]), &ni, &k.sk_pr),
        ] {
            let a = &v["auth"][who];
            let id = hx(a, "id_payload_body_hex");
            let octets = auth::signed_octets(suite.prf, &real, nonce, skp.expose(), &id);
            assert_eq!(octets, hx(a, "signed_octets"), "{} {who} octets", v["name"]);
            let value = auth::psk_auth(suite.prf, &psk, &octets);
            assert_eq!(
                value.expose(),
                hx(a, "auth_data"),
                "{} {who} AUTH",
                v["name"]
            );
            assert!(auth::verify_psk_auth(
                suite.prf,
                &psk,
                &octets,
                &hx(a, "auth_data")
            ));
            assert!(!auth::verify_psk_auth(
                suite.prf,
                b"wrong",
                &octets,
                &hx(a, "auth_data")
            ));
        }
    }
}

#[test]
fn every_sk_payload_decrypts_and_reencrypts_bit_exact() {
    for v in sets() {
        let suite = ike_suite(&v);
        let keys = [ike_keys(&v, 0).0, ike_keys(&v, 1).0];
        for m in messages(&v) {
            let Some(sk) = m.get("sk") else { continue };
            let k = if m["ike_sa"] == "IKE_SA 1" {
                &keys[0]
            } else {
                &keys[1]
            };
            let from_initiator = m["direction"].as_str().unwrap().starts_with("initiator->");
            let (ek, ak) = if from_initiator {
                (&k.sk_ei, &k.sk_ai)
            } else {
                (&k.sk_er, &k.sk_ar)
            };
            let c = SkCipher {
                encr: suite.encr,
                integ: suite.integ,
                encr_key: ek.expose(),
                integ_key: ak.expose(),
            };
            let bytes = raw(m);
            let opened = c.open(&bytes).unwrap();
            assert_eq!(opened.plaintext, hx(sk, "decrypted_inner_payloads_hex"));
            let padding = hx(sk, "padding_incl_pad_length_byte");
            let again = c
                .seal_with(
                    &opened.header,
                    opened.inner_first,
                    None,
                    &opened.plaintext,
                    &hx(sk, "iv"),
                    &padding[..padding.len() - 1],
                )
                .unwrap();
            assert_eq!(again, bytes, "{} message {}", v["name"], m["index"]);
            let mut tampered = bytes.clone();
            let last = tampered.len() - 1;
            tampered[last] ^= 1;
            assert!(c.open(&tampered).is_err(), "tampered ICV must fail");
        }
    }
}

#[test]
fn child_sa_keymat_matches_strongswan_with_and_without_pfs() {
    for v in sets() {
        let suite = ike_suite(&v);
        for c in v["child_sas"].as_array().unwrap() {
            let msg_id = get(c, "message_ids").as_array().unwrap()[0]
                .as_u64()
                .unwrap();
            // The ESP suite as negotiated: the responder's SA payload of that exchange.
            let resp = messages(&v)
                .iter()
                .find(|m| {
                    m["message_id"] == msg_id && m["response"] == true && m["ike_sa"] == "IKE_SA 1"
                })
                .unwrap();
            let (keys, _) = ike_keys(&v, 0);
            let from_initiator = false;
            let k = if from_initiator {
                &keys.sk_ei
            } else {
                &keys.sk_er
            };
            let cipher = SkCipher {
                encr: suite.encr,
                integ: suite.integ,
                encr_key: k.expose(),
                integ_key: keys.sk_ar.expose(),
            };
            let opened = cipher.open(&raw(resp)).unwrap();
            let inner = decode_chain(opened.inner_first, &opened.plaintext).unwrap();
            let esp = inner
                .iter()
                .find_map(|p| match p {
                    Payload::Sa(props) => EspSuite::from_wire(&props[0]),
                    _ => None,
                })
                .unwrap();
            let g = get(c, "g_ir").as_str().map(|s| hex::decode(s).unwrap());
            assert_eq!(
                g.is_some(),
                esp.dh.is_some(),
                "PFS iff a DH group was negotiated"
            );
            let km = child_keymat(
                suite.prf,
                &hx(c, "SK_d_used"),
                g.as_deref(),
                &hx(c, "ni"),
                &hx(c, "nr"),
                esp.encr,
                esp.integ,
            );
            assert_eq!(
                km.encr_i.expose(),
                hx(&c["esp_initiator_to_responder"], "encryption_key")
            );
            assert_eq!(
                km.encr_r.expose(),
                hx(&c["esp_responder_to_initiator"], "encryption_key")
            );
            let integ = |d: &str| {
                get(&c[d], "integrity_key")
                    .as_str()
                    .map(|s| hex::decode(s).unwrap())
                    .unwrap_or_default()
            };
            assert_eq!(km.integ_i.expose(), integ("esp_initiator_to_responder"));
            assert_eq!(km.integ_r.expose(), integ("esp_responder_to_initiator"));
        }
    }
}
