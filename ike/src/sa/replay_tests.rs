//! Replays of real strongSwan messages (testdata/*.json) through our SA state machine,
//! with the recorded keys put in place of our own DH: both roles of IKE_AUTH (AUTH
//! values must equal strongSwan's bit for bit), CHILD and IKE rekeys, and DELETEs.
use super::ike_sa::{Ctx, IkeSa, IkeState, Outcome, Pending};
use super::{Action, Config, Identity, Psk};
use crate::crypto::keys::{derive_ike_keys, skeyseed};
use crate::crypto::sk::SkCipher;
use crate::proposal::{EspProposal, IkeProposal, IkeSuite};
use crate::wire::{decode_chain, Message, Payload};
use rand::SeedableRng;
use serde_json::Value;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::Instant;

const SETS: [&str; 4] = [
    include_str!("../../testdata/1-aes128-sha256-modp2048.json"),
    include_str!("../../testdata/2-aes256gcm16-prfsha384-ecp384.json"),
    include_str!("../../testdata/3-aes128-sha1-modp1024.json"),
    include_str!("../../testdata/4-aes256-sha256-curve25519.json"),
];

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
    hex::decode(get(v, prefix).as_str().unwrap()).unwrap()
}

fn msg(v: &Value, i: usize) -> Vec<u8> {
    hx(&v["messages"][i], "udp_payload_hex")
}

fn sock(s: &str) -> SocketAddr {
    s.parse().unwrap()
}

/// The config of one side of the recording: "customer" 192.0.2.2 (responder) or "cloud".
fn config(v: &Value, responder: bool) -> Config {
    let (me, peer) = if responder {
        ("192.0.2.2", "192.0.2.1")
    } else {
        ("192.0.2.1", "192.0.2.2")
    };
    let cfgv = &v["config"];
    let ike = get(cfgv, "ike_proposal").as_str().unwrap();
    let esp = get(cfgv, "esp_proposal").as_str().unwrap();
    Config::new(
        sock(&format!("{me}:500")),
        sock(&format!("{peer}:500")),
        Identity::Addr(me.parse().unwrap()),
        Identity::Addr(peer.parse().unwrap()),
        Psk::new(get(cfgv, "psk").as_str().unwrap().as_bytes()),
        vec![IkeProposal::parse(ike, true).unwrap()],
        vec![EspProposal::parse(esp, true).unwrap()],
    )
}

/// An SA in the state right after IKE_SA_INIT, keyed as strongSwan was.
fn sa_after_init(v: &Value, we_initiator: bool, now: Instant) -> IkeSa {
    let sa = &v["ike_sas"][0];
    let resp = Message::decode(&msg(v, 1)).unwrap();
    let Some(Payload::Sa(props)) = resp.payloads.first() else {
        panic!()
    };
    let suite = IkeSuite::from_wire(&props[0]).unwrap();
    let (local, remote) = if we_initiator {
        (sock("192.0.2.1:4500"), sock("192.0.2.2:4500"))
    } else {
        (sock("192.0.2.2:4500"), sock("192.0.2.1:4500"))
    };
    let mut s = IkeSa::new(we_initiator, local, remote, now);
    s.spi_i = hx(sa, "spi_i").try_into().unwrap();
    s.spi_r = hx(sa, "spi_r").try_into().unwrap();
    s.ni = hx(sa, "ni");
    s.nr = hx(sa, "nr");
    let seed = skeyseed(suite.prf, &s.ni, &s.nr, &hx(sa, "g_ir"));
    s.keys = Some(derive_ike_keys(
        suite.prf,
        suite.encr,
        suite.integ,
        &seed,
        &s.ni,
        &s.nr,
        (&s.spi_i, &s.spi_r),
    ));
    s.suite = Some(suite);
    s.floated = true;
    s.udp_encap = true;
    s.init_req = msg(v, 0);
    s.init_resp = msg(v, 1);
    s
}

/// Decrypts what we sent, as the peer would.
fn peer_view(sa: &IkeSa, bytes: &[u8]) -> Vec<Payload> {
    let k = sa.keys.as_ref().unwrap();
    let suite = sa.suite.unwrap();
    let (e, a) = if sa.initiator {
        (&k.sk_ei, &k.sk_ai)
    } else {
        (&k.sk_er, &k.sk_ar)
    };
    let c = SkCipher {
        encr: suite.encr,
        integ: suite.integ,
        encr_key: e.expose(),
        integ_key: a.expose(),
    };
    let raw = bytes.strip_prefix(&[0u8; 4][..]).unwrap();
    let o = c.open(raw).unwrap();
    decode_chain(o.inner_first, &o.plaintext).unwrap()
}

fn sent(out: &mut VecDeque<Action>) -> Vec<Vec<u8>> {
    out.iter()
        .filter_map(|a| match a {
            Action::Send { bytes, .. } => Some(bytes.clone()),
            _ => None,
        })
        .collect()
}

fn auth_of(p: &[Payload]) -> Vec<u8> {
    p.iter()
        .find_map(|x| match x {
            Payload::Auth { data, .. } => Some(data.clone()),
            _ => None,
        })
        .expect("AUTH payload")
}

#[test]
fn responder_verifies_strongswan_auth_and_answers_with_the_same_auth() {
    for text in SETS {
        let v: Value = serde_json::from_str(text).unwrap();
        let now = Instant::now();
        let cfg = config(&v, true);
        let mut rng = rand::rngs::StdRng::seed_from_u64(1);
        let mut out = VecDeque::new();
        let mut ctx = Ctx::new(&cfg, now, &mut rng, &mut out);
        let mut sa = sa_after_init(&v, false, now);
        sa.state = IkeState::HalfOpen;
        sa.peer_mid = 1;
        let r = sa.on_encrypted(&mut ctx, &msg(&v, 2));
        assert!(
            matches!(
                r,
                Ok(Outcome::Established {
                    initial_contact: true
                })
            ),
            "{r:?}"
        );
        assert!(sa.is_established());
        let reply = peer_view(&sa, &sent(&mut out)[0]);
        let theirs = hx(&v["auth"]["responder"], "auth_data");
        assert_eq!(
            auth_of(&reply),
            theirs,
            "{}: our AUTH equals strongSwan's",
            v["name"]
        );
        // The CHILD SA: the initiator's SPI as outbound, keys in strongSwan's order.
        let inst = out
            .iter()
            .find_map(|a| match a {
                Action::InstallChildSa(i) => Some(i.clone()),
                _ => None,
            })
            .unwrap();
        let c = &v["child_sas"][0];
        assert_eq!(inst.outbound.spi.to_be_bytes().to_vec(), hx(c, "spi_i"));
        assert!(inst.udp_encap.is_some());
    }
}

#[test]
fn initiator_verifies_strongswan_auth_and_derives_its_child_keys() {
    for text in SETS {
        let v: Value = serde_json::from_str(text).unwrap();
        let now = Instant::now();
        let cfg = config(&v, false);
        let mut rng = rand::rngs::StdRng::seed_from_u64(2);
        let mut out = VecDeque::new();
        let mut ctx = Ctx::new(&cfg, now, &mut rng, &mut out);
        let mut sa = sa_after_init(&v, true, now);
        sa.next_mid = 1;
        // Our own IKE_AUTH request must carry strongSwan's initiator AUTH value.
        sa.start_auth(&mut ctx).unwrap();
        let req = peer_view(&sa, &sent(ctx.out)[0]);
        assert_eq!(auth_of(&req), hx(&v["auth"]["initiator"], "auth_data"));
        // Pretend our CHILD SPI was strongSwan's, then take its real response.
        let c = &v["child_sas"][0];
        let spi = u32::from_be_bytes(hx(c, "spi_i").try_into().unwrap());
        sa.outstanding.as_mut().unwrap().kind = Pending::Auth { child_spi: spi };
        ctx.out.clear();
        let r = sa.on_encrypted(&mut ctx, &msg(&v, 3));
        assert!(r.is_ok(), "{}: {r:?}", v["name"]);
        let inst = out
            .iter()
            .find_map(|a| match a {
                Action::InstallChildSa(i) => Some(i.clone()),
                _ => None,
            })
            .expect("CHILD SA");
        let i2r = &c["esp_initiator_to_responder"];
        let r2i = &c["esp_responder_to_initiator"];
        assert_eq!(inst.outbound.spi.to_be_bytes().to_vec(), hx(i2r, "spi"));
        assert_eq!(inst.outbound.encr_key.expose(), hx(i2r, "encryption_key"));
        assert_eq!(inst.inbound.encr_key.expose(), hx(r2i, "encryption_key"));
        let integ = |d: &Value| {
            get(d, "integrity_key")
                .as_str()
                .map(|s| hex::decode(s).unwrap())
                .unwrap_or_default()
        };
        assert_eq!(inst.outbound.integ_key.expose(), integ(i2r));
        assert_eq!(inst.inbound.integ_key.expose(), integ(r2i));
    }
}

#[test]
fn responder_handles_strongswan_rekeys_and_deletes() {
    for text in SETS {
        let v: Value = serde_json::from_str(text).unwrap();
        let now = Instant::now();
        let cfg = config(&v, true);
        let mut rng = rand::rngs::StdRng::seed_from_u64(3);
        let mut out = VecDeque::new();
        let mut ctx = Ctx::new(&cfg, now, &mut rng, &mut out);
        let mut sa = sa_after_init(&v, false, now);
        sa.state = IkeState::HalfOpen;
        sa.peer_mid = 1;
        sa.on_encrypted(&mut ctx, &msg(&v, 2)).unwrap();
        // strongSwan's CHILD SA 1 in place of ours, so that its REKEY_SA matches.
        let c1 = &v["child_sas"][0];
        let ours = u32::from_be_bytes(hx(c1, "spi_r").try_into().unwrap());
        sa.children[0].inbound_spi = ours;
        ctx.out.clear();
        // Message 5: CREATE_CHILD_SA rekeying CHILD SA 1 (with PFS in sets 1, 2, 4).
        sa.on_encrypted(&mut ctx, &msg(&v, 4)).unwrap();
        let reply = peer_view(&sa, &sent(ctx.out)[0]);
        let pfs = !get(&v["child_sas"][1], "g_ir").is_null();
        assert_eq!(
            reply.iter().any(|p| matches!(p, Payload::Ke { .. })),
            pfs,
            "{}: KE iff PFS",
            v["name"]
        );
        assert!(
            reply.iter().any(|p| matches!(p, Payload::Sa(_))),
            "{reply:?}"
        );
        assert_eq!(sa.children.len(), 2);
        // Message 7: strongSwan deletes CHILD SA 1; we answer with our inbound SPI.
        ctx.out.clear();
        sa.on_encrypted(&mut ctx, &msg(&v, 6)).unwrap();
        let reply = peer_view(&sa, &sent(ctx.out)[0]);
        let Some(Payload::Delete(d)) = reply.first() else {
            panic!("no DELETE in {reply:?}")
        };
        assert_eq!(d.spis, vec![ours.to_be_bytes().to_vec()]);
        assert!(ctx.out.iter().any(
            |a| matches!(a, Action::DeleteChildSa { inbound_spi, .. } if *inbound_spi == ours)
        ));
        assert_eq!(sa.children.len(), 1);
        // Message 9: CREATE_CHILD_SA rekeying the IKE SA.
        ctx.out.clear();
        let r = sa.on_encrypted(&mut ctx, &msg(&v, 8)).unwrap();
        let Outcome::Rekeyed { new, .. } = r else {
            panic!("not rekeyed")
        };
        assert_eq!(
            new.children.len(),
            1,
            "the CHILD SA moved to the new IKE SA"
        );
        assert!(sa.children.is_empty());
        // Message 11: DELETE of the old IKE SA, answered with an empty INFORMATIONAL.
        ctx.out.clear();
        let r = sa.on_encrypted(&mut ctx, &msg(&v, 10)).unwrap();
        assert!(matches!(r, Outcome::Dead));
        assert!(peer_view(&sa, &sent(ctx.out)[0]).is_empty());
        // A retransmission of message 11 gets the cached response again.
        ctx.out.clear();
        let r = sa.on_encrypted(&mut ctx, &msg(&v, 10)).unwrap();
        assert!(matches!(r, Outcome::Retransmission));
        assert_eq!(sent(ctx.out).len(), 1);
    }
}

#[test]
fn tunnel_answers_strongswan_ike_sa_init_with_its_proposal() {
    for text in SETS {
        let v: Value = serde_json::from_str(text).unwrap();
        let now = Instant::now();
        let mut cfg = config(&v, true);
        cfg.allow_weak_groups = true;
        let mut rng = rand::rngs::StdRng::seed_from_u64(4);
        let mut t = super::Tunnel::new(cfg, now, &mut rng).unwrap();
        let req = msg(&v, 0);
        t.handle_datagram(
            now,
            sock("192.0.2.2:500"),
            sock("192.0.2.1:500"),
            &req,
            &mut rng,
        )
        .unwrap();
        let Some(Action::Send { bytes, remote, .. }) = t.poll_action() else {
            panic!("no response")
        };
        assert_eq!(remote, sock("192.0.2.1:500"));
        let ours = Message::decode(&bytes).unwrap();
        let theirs = Message::decode(&msg(&v, 1)).unwrap();
        // The same selected proposal as strongSwan's responder, and a KE of its group.
        assert_eq!(ours.payloads[0], theirs.payloads[0], "{}", v["name"]);
        let (
            Payload::Ke {
                group: g1,
                data: d1,
            },
            Payload::Ke {
                group: g2,
                data: d2,
            },
        ) = (&ours.payloads[1], &theirs.payloads[1])
        else {
            panic!()
        };
        assert_eq!((g1, d1.len()), (g2, d2.len()));
        // strongSwan forced encapsulation: its NAT_DETECTION_SOURCE_IP does not match, so
        // a CHILD SA from this SA will use UDP encapsulation.
        assert!(t.negotiating[0].udp_encap);
        // A retransmitted request gets the identical response.
        t.handle_datagram(
            now,
            sock("192.0.2.2:500"),
            sock("192.0.2.1:500"),
            &req,
            &mut rng,
        )
        .unwrap();
        let Some(Action::Send { bytes: again, .. }) = t.poll_action() else {
            panic!()
        };
        assert_eq!(again, bytes);
        // Without allow_weak_groups a modp1024 config is refused outright.
        if v["set"] == 3 {
            let cfg = config(&v, true);
            assert_eq!(
                super::Tunnel::new(cfg, now, &mut rng).err(),
                Some(super::ConfigError::WeakGroup(2))
            );
        }
    }
}

/// Seals `inner` as the peer (strongSwan, the initiator) would, for message ID `mid`.
fn as_initiator(
    sa: &IkeSa,
    exchange: crate::wire::ExchangeType,
    mid: u32,
    first: u8,
    inner: &[u8],
) -> Vec<u8> {
    let k = sa.keys.as_ref().unwrap();
    let suite = sa.suite.unwrap();
    let c = SkCipher {
        encr: suite.encr,
        integ: suite.integ,
        encr_key: k.sk_ei.expose(),
        integ_key: k.sk_ai.expose(),
    };
    let mut h = sa.header(exchange, mid, false);
    h.flags = crate::wire::FLAG_INITIATOR;
    let mut rng = rand::rngs::StdRng::seed_from_u64(9);
    c.seal(&h, first, None, inner, &mut rng).unwrap()
}

#[test]
fn authentic_but_malformed_requests_get_the_notify_the_rfc_asks_for() {
    use crate::wire::{encode_chain, notify as nt, ExchangeType, PayloadType};
    let v: Value = serde_json::from_str(SETS[0]).unwrap();
    let now = Instant::now();
    let cfg = config(&v, true);
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    let mut out = VecDeque::new();
    let mut ctx = Ctx::new(&cfg, now, &mut rng, &mut out);
    let mut sa = sa_after_init(&v, false, now);
    sa.state = IkeState::HalfOpen;
    sa.peer_mid = 1;
    sa.on_encrypted(&mut ctx, &msg(&v, 2)).unwrap();
    let info = ExchangeType::Informational;
    let notify_of = |p: &[Payload]| match p.first() {
        Some(Payload::Notify(n)) => Some(n.ty),
        _ => None,
    };
    // A nonce of 3 bytes: INVALID_SYNTAX.
    ctx.out.clear();
    let bad = as_initiator(&sa, info, 2, PayloadType::NONCE, &[0, 0, 0, 7, 1, 2, 3]);
    assert!(matches!(
        sa.on_encrypted(&mut ctx, &bad),
        Err(super::IkeError::Decode(_))
    ));
    let reply = peer_view(&sa, &sent(ctx.out)[0]);
    assert_eq!(notify_of(&reply), Some(nt::INVALID_SYNTAX));
    // An unknown payload marked critical: UNSUPPORTED_CRITICAL_PAYLOAD naming its type.
    ctx.out.clear();
    let mut inner = Vec::new();
    encode_chain(
        &[Payload::Unknown {
            ty: 200,
            critical: true,
            body: vec![1, 2, 3],
        }],
        &mut inner,
    );
    let crit = as_initiator(&sa, info, 3, 200, &inner);
    assert_eq!(
        sa.on_encrypted(&mut ctx, &crit).unwrap_err(),
        super::IkeError::UnsupportedCritical(200)
    );
    let reply = peer_view(&sa, &sent(ctx.out)[0]);
    let Some(Payload::Notify(n)) = reply.first() else {
        panic!()
    };
    assert_eq!(
        (n.ty, n.data.as_slice()),
        (nt::UNSUPPORTED_CRITICAL_PAYLOAD, &[200u8][..])
    );
    // The same payload not marked critical is skipped: an empty answer, SA untouched.
    ctx.out.clear();
    let mut inner = Vec::new();
    encode_chain(
        &[Payload::Unknown {
            ty: 200,
            critical: false,
            body: vec![1, 2, 3],
        }],
        &mut inner,
    );
    let skip = as_initiator(&sa, info, 4, 200, &inner);
    sa.on_encrypted(&mut ctx, &skip).unwrap();
    assert!(peer_view(&sa, &sent(ctx.out)[0]).is_empty());
    assert!(sa.is_established() && sa.children.len() == 1);
    // A request far outside the window is dropped without an answer.
    ctx.out.clear();
    let far = as_initiator(&sa, info, 40, 0, &[]);
    assert_eq!(
        sa.on_encrypted(&mut ctx, &far).unwrap_err(),
        super::IkeError::OutOfWindow(40)
    );
    assert!(sent(ctx.out).is_empty());
}
