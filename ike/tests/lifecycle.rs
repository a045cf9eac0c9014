//! Rekeys, deletes, DPD, lifetimes and collisions, in simulated time.
mod common;
use common::pair::{config, Pair};
use ike::sa::{DownReason, Dpd, DpdAction, Lifetime};
use ike::wire::{
    protocol, Delete, ExchangeType, Header, Message, Payload, FLAG_INITIATOR, HEADER_LEN,
};
use ike::IkeError;
use std::time::Duration;

fn short(rekey: u64, hard: u64, jitter: u64) -> Lifetime {
    Lifetime {
        rekey: Duration::from_secs(rekey),
        hard: Duration::from_secs(hard),
        jitter: Duration::from_secs(jitter),
    }
}

fn pair(ike: &str, esp: &str, seed: u64, tweak: impl Fn(&mut ike::Config, u8)) -> Pair {
    let mut a = config(1, ike, esp);
    let mut b = config(2, ike, esp);
    tweak(&mut a, 1);
    tweak(&mut b, 2);
    Pair::new(a, b, seed)
}

#[test]
fn child_sa_rekeys_with_pfs_and_old_sa_is_deleted() {
    let mut p = pair(
        "aes128-sha256-modp2048",
        "aes128gcm16-modp2048",
        11,
        |c, me| {
            c.child_lifetime = if me == 1 {
                short(60, 90, 5)
            } else {
                short(300, 400, 5)
            };
        },
    );
    assert!(p.drive_until_up(Duration::from_secs(5)));
    let first = p.a.rec.installs[0].inbound.spi;
    p.drive_for(Duration::from_secs(200));
    assert!(p.a.tunnel.is_up() && p.b.tunnel.is_up());
    assert!(p.a.rec.installs.len() >= 4, "rekeyed about every minute");
    assert!(p.a.rec.deleted.contains(&first), "the old SA was deleted");
    assert_eq!(p.a.rec.active().len(), 1);
    p.assert_keys_match();
    // Never down during the rekeys: the new SA is installed before the old goes.
    assert!(p.a.rec.downs.is_empty() && p.b.rec.downs.is_empty());
    assert_eq!(p.a.rec.ups, 1);
    // The responder (b, for IKE_AUTH and each rekey) installs each new CHILD SA before its
    // response leaves: a's ESP on it may come right behind the response.
    assert!(p.b.rec.installs.len() >= 4);
    assert_eq!(
        (p.a.rec.installed_after_send, p.b.rec.installed_after_send),
        (0, 0)
    );
}

#[test]
fn ike_sa_rekey_keeps_the_child_sa_and_the_tunnel_up() {
    let mut p = pair("aes256-sha256-curve25519", "aes256-sha256", 12, |c, me| {
        c.ike_lifetime = if me == 1 {
            short(100, 1000, 10)
        } else {
            short(500, 1000, 10)
        };
    });
    assert!(p.drive_until_up(Duration::from_secs(5)));
    let child = p.a.rec.installs[0].inbound.spi;
    let spis = p.a.tunnel.ike_spis();
    p.drive_for(Duration::from_secs(350));
    assert_ne!(p.a.tunnel.ike_spis(), spis, "a new IKE SA");
    assert_eq!(p.a.tunnel.ike_spis(), p.b.tunnel.ike_spis());
    assert!(p.a.tunnel.is_up() && p.b.tunnel.is_up());
    assert_eq!(
        p.a.rec.installs.len(),
        1,
        "IKE rekey does not touch the CHILD SA"
    );
    assert!(!p.a.rec.deleted.contains(&child));
    assert!(p.a.rec.downs.is_empty() && p.b.rec.downs.is_empty());
    // The new IKE SA works: a CHILD rekey over it still succeeds and keys match.
    let now = p.now;
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(3);
    p.a.tunnel.delete(now, &mut rng);
    p.drive_for(Duration::from_secs(30));
    assert_eq!(p.b.rec.downs, vec![DownReason::PeerDelete]);
}

#[test]
fn rekeys_converge_under_loss() {
    for seed in 0..8 {
        let mut p = pair(
            "aes128-sha256-ecp256",
            "aes128gcm16-ecp256",
            200 + seed,
            |c, _| {
                c.child_lifetime = short(60, 200, 20);
                c.ike_lifetime = short(150, 600, 30);
            },
        );
        assert!(p.drive_until_up(Duration::from_secs(60)));
        p.loss = 0.2;
        p.duplicate = 0.1;
        p.jitter = Duration::from_millis(200);
        p.drive_for(Duration::from_secs(500));
        p.loss = 0.0;
        p.duplicate = 0.0;
        p.drive_for(Duration::from_secs(30));
        assert!(p.a.tunnel.is_up() && p.b.tunnel.is_up(), "seed {seed}");
        p.assert_keys_match();
    }
}

#[test]
fn simultaneous_child_rekeys_leave_one_sa_pair() {
    // No jitter, and lifetimes set so that each side sends its rekey request before
    // the other's arrives (latency 100 ms): a CHILD SA rekey collision (RFC 7296 2.8.1).
    let mut p = pair("aes128-sha256-ecp256", "aes128gcm16", 13, |c, me| {
        let rekey = if me == 1 { 59_950 } else { 60_000 };
        c.child_lifetime = Lifetime {
            rekey: Duration::from_millis(rekey),
            hard: Duration::from_secs(200),
            jitter: Duration::ZERO,
        };
        c.dpd = None;
    });
    p.latency = Duration::from_millis(100);
    assert!(p.drive_until_up(Duration::from_secs(5)));
    p.drive_for(Duration::from_secs(70));
    assert!(p.a.tunnel.is_up() && p.b.tunnel.is_up());
    // Each side made two new SAs (its own rekey and the peer's) ...
    assert_eq!(p.a.rec.installs.len(), 3, "both rekeys ran");
    assert_eq!(p.b.rec.installs.len(), 3, "both rekeys ran");
    // ... and the redundant one and the old one were deleted.
    assert_eq!(p.a.rec.active().len(), 1, "the redundant SA was deleted");
    p.assert_keys_match();
    assert!(p.a.rec.downs.is_empty() && p.b.rec.downs.is_empty());
}

#[test]
fn dead_peer_is_detected_and_restart_renegotiates() {
    let mut p = pair("aes128-sha256-ecp256", "aes128gcm16", 14, |c, _| {
        c.dpd = Some(Dpd {
            interval: Duration::from_secs(10),
            action: DpdAction::Restart,
        });
    });
    assert!(p.drive_until_up(Duration::from_secs(5)));
    p.b.dead = true;
    p.drive_for(Duration::from_secs(60));
    assert_eq!(p.a.rec.downs, vec![DownReason::PeerDead]);
    p.b.dead = false;
    p.drive_for(Duration::from_secs(120));
    assert!(p.a.tunnel.is_up(), "restarted");
    assert!(p.a.rec.ups >= 2);
}

#[test]
fn dpd_clear_does_not_renegotiate() {
    let mut p = pair("aes128-sha256-ecp256", "aes128gcm16", 15, |c, me| {
        c.dpd = Some(Dpd {
            interval: Duration::from_secs(10),
            action: DpdAction::Clear,
        });
        c.start_action = if me == 1 {
            ike::sa::StartAction::Initiate
        } else {
            ike::sa::StartAction::Respond
        };
    });
    assert!(p.drive_until_up(Duration::from_secs(5)));
    p.a.dead = true;
    p.drive_for(Duration::from_secs(120));
    assert_eq!(p.b.rec.downs, vec![DownReason::PeerDead]);
    assert_eq!(p.b.rec.ups, 1);
}

#[test]
fn hard_lifetime_without_rekey_takes_the_child_down() {
    // Rekey time beyond the hard lifetime: the SA simply expires.
    let mut p = pair("aes128-sha256-ecp256", "aes128gcm16", 16, |c, _| {
        c.child_lifetime = short(1000, 100, 0);
        c.dpd = None;
    });
    assert!(p.drive_until_up(Duration::from_secs(5)));
    p.drive_for(Duration::from_secs(101));
    assert!(p.a.rec.downs.contains(&DownReason::Expired));
    assert!(p.a.rec.active().is_empty());
}

/// A DELETE for the IKE SA sent in the clear: nobody without the keys can close the SA.
#[test]
fn unauthenticated_informational_is_ignored() {
    let mut p = pair("aes128-sha256-ecp256", "aes128gcm16", 17, |_, _| {});
    assert!(p.drive_until_up(Duration::from_secs(5)));
    let (spi_i, spi_r) = p.b.tunnel.ike_spis().unwrap();
    let header = Header {
        spi_i,
        spi_r,
        next_payload: 0,
        version: 0x20,
        exchange: ExchangeType::Informational,
        flags: FLAG_INITIATOR,
        message_id: 1,
        length: HEADER_LEN as u32,
    };
    let forged = Message {
        header,
        payloads: vec![Payload::Delete(Delete {
            protocol: protocol::IKE,
            spi_size: 0,
            spis: vec![],
        })],
    }
    .encode();
    assert!(matches!(
        p.inject(false, forged.clone()),
        Err(IkeError::Crypto(_))
    ));
    // The same with an SK payload of garbage fails the integrity check.
    let mut sk = forged[..HEADER_LEN].to_vec();
    sk[16] = 46;
    sk.extend_from_slice(&[0, 0, 0, 68]);
    sk.extend_from_slice(&[0xab; 64]);
    let len = sk.len() as u32;
    sk[24..28].copy_from_slice(&len.to_be_bytes());
    assert!(matches!(p.inject(false, sk), Err(IkeError::Crypto(_))));
    // Unknown SPIs are dropped too.
    let mut other = forged;
    other[0] ^= 0xff;
    assert_eq!(p.inject(false, other), Err(IkeError::UnknownSpi));
    p.drive_for(Duration::from_secs(5));
    assert!(p.b.tunnel.is_up() && p.a.tunnel.is_up());
    assert!(p.b.rec.downs.is_empty());
    assert_eq!(p.b.tunnel.stats().integrity_failures, 2);
}

/// Both sides rekey the IKE SA at once (RFC 7296 2.8.2): both exchanges complete at
/// once (no TEMPORARY_FAILURE and retry), both sides agree on the survivor, which carries
/// the CHILD SA on, and the redundant and old SAs are deleted.
#[test]
fn simultaneous_ike_rekeys_both_complete_and_agree_on_the_survivor() {
    for (seed, gap) in [(18, 50), (21, 10), (22, 90), (23, 0)] {
        let mut p = pair("aes128-sha256-ecp256", "aes128gcm16", seed, |c, me| {
            let rekey = if me == 1 { 100_000 - gap } else { 100_000 };
            c.ike_lifetime = Lifetime {
                rekey: Duration::from_millis(rekey),
                hard: Duration::from_secs(1000),
                jitter: Duration::ZERO,
            };
            c.child_lifetime = short(150, 400, 0);
            c.dpd = None;
        });
        p.latency = Duration::from_millis(100);
        assert!(p.drive_until_up(Duration::from_secs(5)));
        let spis = p.a.tunnel.ike_spis();
        // Both requests cross; 800 ms later (well before any 1-5 s retry) it is settled.
        p.drive_for(Duration::from_millis(100_800));
        assert_ne!(p.a.tunnel.ike_spis(), spis, "seed {seed}: rekeyed");
        assert_eq!(p.a.tunnel.ike_spis(), p.b.tunnel.ike_spis(), "seed {seed}");
        for e in p.a.rec.errors.iter().chain(&p.b.rec.errors) {
            assert!(
                !matches!(e, IkeError::PeerNotify(43) | IkeError::Unexpected(_)),
                "seed {seed}: {e:?}"
            );
        }
        assert_eq!(p.a.rec.installs.len(), 1, "the CHILD SA moved, untouched");
        // The survivor works: the CHILD SA rekeys over it, then a DELETE closes both.
        p.drive_for(Duration::from_secs(100));
        assert!(p.a.rec.installs.len() >= 2, "seed {seed}: CHILD rekey");
        p.assert_keys_match();
        assert!(p.a.rec.downs.is_empty() && p.b.rec.downs.is_empty());
        let now = p.now;
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(seed);
        p.a.tunnel.delete(now, &mut rng);
        p.drive_for(Duration::from_secs(30));
        assert_eq!(p.b.rec.downs, vec![DownReason::PeerDelete], "seed {seed}");
    }
}

/// IKE and CHILD rekey collisions with loss, duplication and reordering: some seeds see
/// the collision on one side only (the other gets TEMPORARY_FAILURE, or a DELETE of the
/// old SA); every run ends with one IKE SA and one CHILD SA pair and no DOWN.
#[test]
fn rekey_collisions_converge_under_loss() {
    for seed in 0..24u64 {
        let mut p = pair(
            "aes128-sha256-ecp256",
            "aes128gcm16",
            400 + seed,
            |c, me| {
                let off = if me == 1 { 30 } else { 0 };
                c.ike_lifetime = Lifetime {
                    rekey: Duration::from_millis(100_000 - off),
                    hard: Duration::from_secs(2000),
                    jitter: Duration::ZERO,
                };
                c.child_lifetime = Lifetime {
                    rekey: Duration::from_millis(60_000 - off),
                    hard: Duration::from_secs(2000),
                    jitter: Duration::ZERO,
                };
                c.dpd = None;
            },
        );
        p.latency = Duration::from_millis(60);
        assert!(p.drive_until_up(Duration::from_secs(30)), "seed {seed}");
        p.loss = 0.15;
        p.duplicate = 0.1;
        p.jitter = Duration::from_millis(80);
        p.drive_for(Duration::from_secs(130));
        p.loss = 0.0;
        p.duplicate = 0.0;
        p.drive_for(Duration::from_secs(40));
        assert!(p.a.tunnel.is_up() && p.b.tunnel.is_up(), "seed {seed}");
        assert_eq!(p.a.tunnel.ike_spis(), p.b.tunnel.ike_spis(), "seed {seed}");
        assert_eq!(p.a.rec.active().len(), 1, "seed {seed}");
        p.assert_keys_match();
        assert!(
            p.a.rec.downs.is_empty() && p.b.rec.downs.is_empty(),
            "seed {seed}: {:?} {:?} {:?} {:?}",
            p.a.rec.downs,
            p.b.rec.downs,
            p.a.rec.errors,
            p.b.rec.errors
        );
    }
}

#[test]
fn large_messages_are_fragmented_and_reassembled() {
    use ike::wire::TrafficSelector;
    use std::net::{IpAddr, Ipv4Addr};
    // Forty /24 selectors each way make IKE_AUTH well over the 576-byte fragment size.
    let nets = |second: u8| -> Vec<TrafficSelector> {
        (0..40u8)
            .map(|i| TrafficSelector {
                ip_proto: 0,
                start_port: 0,
                end_port: 65535,
                start: IpAddr::V4(Ipv4Addr::new(10, second, i, 0)),
                end: IpAddr::V4(Ipv4Addr::new(10, second, i, 255)),
            })
            .collect()
    };
    let mut p = pair("aes128-sha256-ecp256", "aes128gcm16", 19, |c, me| {
        c.fragment_size = 576;
        let (l, r) = if me == 1 { (10, 20) } else { (20, 10) };
        c.local_ts = nets(l);
        c.remote_ts = nets(r);
    });
    p.jitter = Duration::from_millis(50);
    assert!(p.drive_until_up(Duration::from_secs(10)));
    p.assert_keys_match();
    // IKE_SA_INIT once, then IKE_AUTH in several fragments.
    assert!(p.a.rec.sent >= 3, "{}", p.a.rec.sent);
    assert_eq!(p.a.rec.active()[0].local_ts.len(), 40);
}

#[test]
fn peer_restart_with_initial_contact_replaces_the_old_sa() {
    let mut p = pair("aes128-sha256-ecp256", "aes128gcm16", 20, |c, _| {
        c.dpd = None
    });
    assert!(p.drive_until_up(Duration::from_secs(5)));
    let old = p.b.rec.installs[0].inbound.spi;
    let old_spis = p.b.tunnel.ike_spis();
    p.drive_for(Duration::from_secs(100));
    p.restart_a(common::pair::config(
        1,
        "aes128-sha256-ecp256",
        "aes128gcm16",
    ));
    assert!(p.drive_until_up(Duration::from_secs(5)));
    assert!(p.b.rec.deleted.contains(&old), "the stale CHILD SA went");
    assert_ne!(p.b.tunnel.ike_spis(), old_spis);
    assert_eq!(p.b.rec.active().len(), 1);
    p.assert_keys_match();
    // The tunnel never went down on b: the new CHILD SA came with the new IKE SA.
    assert!(p.b.rec.downs.is_empty());
    assert_eq!(p.b.rec.restarts, 1, "b was told the peer restarted");
}

/// The peer restarts seconds after our SA came up (a crash loop, or an operator
/// restarting it after a config change): its new SA with INITIAL_CONTACT is not a
/// simultaneous initiation, however young ours is, and replaces ours at once. (It used to
/// be taken for one and lost half the time to the SPI comparison, the peer's tunnel going
/// down again until our SA was a minute old.)
#[test]
fn a_peer_restarting_right_after_our_sa_came_up_replaces_it_at_once() {
    for seed in 0..16 {
        let mut p = pair("aes128-sha256-ecp256", "aes128gcm16", 40 + seed, |c, me| {
            c.start_action = if me == 2 {
                ike::sa::StartAction::Initiate
            } else {
                ike::sa::StartAction::Respond
            };
        });
        assert!(p.drive_until_up(Duration::from_secs(5)), "seed {seed}");
        let old = p.b.rec.installs[0].inbound.spi;
        p.drive_for(Duration::from_secs(5));
        let mut restarted = common::pair::config(1, "aes128-sha256-ecp256", "aes128gcm16");
        restarted.start_action = ike::sa::StartAction::Initiate;
        p.restart_a(restarted);
        assert!(p.drive_until_up(Duration::from_secs(3)), "seed {seed}");
        p.drive_for(Duration::from_secs(30));
        assert!(p.a.rec.downs.is_empty(), "seed {seed}: {:?}", p.a.rec.downs);
        assert_eq!(p.a.rec.ups, 1, "seed {seed}: up once, for good");
        assert!(
            p.b.rec.deleted.contains(&old),
            "seed {seed}: the stale CHILD SA went"
        );
        assert!(p.b.rec.downs.is_empty(), "seed {seed}");
        assert_eq!(p.b.rec.restarts, 1, "seed {seed}");
        assert_eq!(p.a.tunnel.ike_spis(), p.b.tunnel.ike_spis(), "seed {seed}");
        p.assert_keys_match();
    }
}

/// Both sides initiate at once (`seed` picks the SPIs and, with `loss`, what is lost):
/// they settle on one IKE SA and one CHILD SA pair, neither taking the other for a
/// restarted peer.
fn simultaneous_initiation_converges(seed: u64, loss: f64) {
    let mut p = pair("aes128-sha256-ecp256", "aes128gcm16", seed, |c, _| {
        c.start_action = ike::sa::StartAction::Initiate;
    });
    p.latency = Duration::from_millis(20);
    p.loss = loss;
    if loss > 0.0 {
        p.jitter = Duration::from_millis(50);
    }
    assert!(p.drive_until_up(Duration::from_secs(60)), "seed {seed}");
    p.loss = 0.0;
    p.drive_for(Duration::from_secs(120));
    assert!(p.a.tunnel.is_up() && p.b.tunnel.is_up(), "seed {seed}");
    assert_eq!(p.a.tunnel.ike_spis(), p.b.tunnel.ike_spis(), "seed {seed}");
    assert_eq!(p.a.rec.active().len(), 1, "seed {seed}");
    let restarts = p.a.rec.restarts + p.b.rec.restarts;
    assert_eq!(restarts, 0, "seed {seed}: a crossing, not a restart");
    p.assert_keys_match();
}

#[test]
fn simultaneous_initiation_converges_on_one_ike_sa() {
    for seed in 300..310 {
        simultaneous_initiation_converges(seed, 0.0);
    }
}

#[test]
fn simultaneous_initiation_converges_under_loss() {
    for seed in 500..520 {
        simultaneous_initiation_converges(seed, 0.25);
    }
}

/// A protected request for an IKE SA the receiver does not know (it restarted, say)
/// gets an unprotected INVALID_IKE_SPI with the request's SPIs and message ID (RFC 7296
/// 2.21.4), at most ten a second; responses and plaintext are not answered, and the
/// notification changes nothing at the peer.
#[test]
fn unknown_ike_spi_gets_rate_limited_invalid_ike_spi() {
    use ike::sa::Action;
    use ike::wire::{notify, PayloadType, FLAG_RESPONSE};
    let mut p = pair("aes128-sha256-ecp256", "aes128gcm16", 24, |c, _| {
        c.dpd = None
    });
    assert!(p.drive_until_up(Duration::from_secs(5)));
    let timeout_before = p.b.tunnel.poll_timeout();
    let header = |flags: u8, next: u8| Header {
        spi_i: [7; 8],
        spi_r: [9; 8],
        next_payload: next,
        version: 0x20,
        exchange: ExchangeType::Informational,
        flags,
        message_id: 5,
        length: HEADER_LEN as u32,
    };
    let protected = |flags: u8| {
        let mut m = Message {
            header: header(flags, PayloadType::SK),
            payloads: vec![],
        }
        .encode();
        m[16] = PayloadType::SK;
        m.extend_from_slice(&[0, 0, 0, 36]);
        m.extend_from_slice(&[0x5a; 32]);
        let len = m.len() as u32;
        m[24..28].copy_from_slice(&len.to_be_bytes());
        m
    };
    let sent = |p: &mut Pair| {
        let mut out = Vec::new();
        while let Some(a) = p.b.tunnel.poll_action() {
            if let Action::Send { bytes, .. } = a {
                out.push(bytes);
            }
        }
        out
    };
    assert_eq!(
        p.inject(false, protected(FLAG_INITIATOR)),
        Err(IkeError::UnknownSpi)
    );
    let replies = sent(&mut p);
    assert_eq!(replies.len(), 1);
    let reply = Message::decode(&replies[0]).unwrap();
    assert_eq!((reply.header.spi_i, reply.header.spi_r), ([7; 8], [9; 8]));
    assert_eq!(reply.header.message_id, 5);
    assert!(reply.header.is_response());
    assert!(matches!(
        reply.payloads.as_slice(),
        [Payload::Notify(n)] if n.ty == notify::INVALID_IKE_SPI
    ));
    // Not for responses, nor for unprotected messages.
    assert_eq!(
        p.inject(false, protected(FLAG_RESPONSE)),
        Err(IkeError::UnknownSpi)
    );
    let plain = Message {
        header: header(FLAG_INITIATOR, 0),
        payloads: vec![],
    }
    .encode();
    assert_eq!(p.inject(false, plain), Err(IkeError::UnknownSpi));
    assert!(sent(&mut p).is_empty());
    // A flood gets ten answers a second.
    for _ in 0..50 {
        let _ = p.inject(false, protected(FLAG_INITIATOR));
    }
    assert_eq!(sent(&mut p).len(), 9, "ten in this second, one sent before");
    assert_eq!(p.b.tunnel.stats().invalid_spi_sent, 10);
    assert_eq!(p.b.tunnel.stats().unknown_spi, 53);
    // No state was created: nothing new to time out, the tunnel as it was.
    assert_eq!(p.b.tunnel.poll_timeout(), timeout_before);
    // The peer ignores an INVALID_IKE_SPI, even one naming its own SA.
    let (spi_i, spi_r) = p.a.tunnel.ike_spis().unwrap();
    let mut h = header(FLAG_RESPONSE, 0);
    (h.spi_i, h.spi_r) = (spi_i, spi_r);
    let notify = Message {
        header: h,
        payloads: vec![Payload::Notify(ike::wire::Notify::new(
            notify::INVALID_IKE_SPI,
            vec![],
        ))],
    }
    .encode();
    assert!(p.inject(true, notify).is_err());
    p.drive_for(Duration::from_secs(5));
    assert!(p.a.tunnel.is_up() && p.b.tunnel.is_up());
    assert!(p.a.rec.downs.is_empty() && p.b.rec.downs.is_empty());
}
