//! In-process IKE_SA_INIT + IKE_AUTH between two tunnels over a simulated network.
mod common;
use common::pair::{config, Pair};
use ike::sa::{Action, DownReason};
use ike::wire::notify;
use ike::IkeError;
use std::time::Duration;

const SUITES: &[(&str, &str)] = &[
    ("aes128-sha256-modp2048", "aes128gcm16"),
    ("aes256gcm16-prfsha384-ecp384", "aes256gcm16-ecp384"),
    ("aes128-sha1-modp1024", "aes128-sha1"),
    ("aes256-sha256-curve25519", "aes256-sha256-curve25519"),
    ("aes128gcm16-prfsha256-ecp256", "aes128gcm16-esn"),
    ("aes256-sha512-ecp521", "aes256-sha512"),
    ("aes192-sha384-modp3072", "aes192-sha384"),
];

#[test]
fn handshake_installs_mirrored_keys_for_every_suite() {
    for (i, (ike, esp)) in SUITES.iter().enumerate() {
        let mut p = Pair::new(config(1, ike, esp), config(2, ike, esp), i as u64);
        assert!(p.drive_until_up(Duration::from_secs(5)), "{ike} / {esp}");
        p.assert_keys_match();
        assert_eq!(p.a.rec.ups, 1);
        assert_eq!(p.b.rec.ups, 1);
        let x = p.a.rec.active()[0];
        assert_eq!(x.udp_encap, None, "no NAT, no forced encapsulation");
        assert!(p.a.rec.errors.is_empty() && p.b.rec.errors.is_empty());
    }
}

#[test]
fn wrong_psk_gives_authentication_failed_and_no_sa() {
    let a = config(1, "aes128-sha256-modp2048", "aes128gcm16");
    let mut b = config(2, "aes128-sha256-modp2048", "aes128gcm16");
    b.psk = ike::sa::Psk::new("not the right key");
    let mut p = Pair::new(a, b, 1);
    p.drive_for(Duration::from_secs(3));
    assert!(!p.a.tunnel.is_up() && !p.b.tunnel.is_up());
    assert!(p.a.rec.installs.is_empty() && p.b.rec.installs.is_empty());
    assert!(p.b.rec.errors.contains(&IkeError::AuthenticationFailed));
    assert!(p
        .a
        .rec
        .errors
        .contains(&IkeError::PeerNotify(notify::AUTHENTICATION_FAILED)));
}

#[test]
fn invalid_ke_payload_makes_the_initiator_retry_with_the_responder_group() {
    let a = config(1, "aes128-sha256-modp2048-ecp256", "aes128gcm16");
    let b = config(2, "aes128-sha256-ecp256", "aes128gcm16");
    let mut p = Pair::new(a, b, 2);
    assert!(p.drive_until_up(Duration::from_secs(5)));
    p.assert_keys_match();
}

#[test]
fn disjoint_proposals_give_no_proposal_chosen() {
    let a = config(1, "aes128-sha256-modp2048", "aes128gcm16");
    let b = config(2, "aes256-sha512-ecp384", "aes128gcm16");
    let mut p = Pair::new(a, b, 3);
    p.drive_for(Duration::from_secs(3));
    assert!(!p.a.tunnel.is_up());
    assert!(p
        .a
        .rec
        .errors
        .contains(&IkeError::PeerNotify(notify::NO_PROPOSAL_CHOSEN)));
}

#[test]
fn esp_mismatch_fails_the_tunnel_but_not_silently() {
    let a = config(1, "aes128-sha256-modp2048", "aes128gcm16");
    let b = config(2, "aes128-sha256-modp2048", "aes256-sha256");
    let mut p = Pair::new(a, b, 4);
    p.drive_for(Duration::from_secs(3));
    assert!(!p.a.tunnel.is_up() && !p.b.tunnel.is_up());
    assert!(p.a.rec.errors.contains(&IkeError::NoProposalChosen));
}

#[test]
fn cookie_is_demanded_past_the_threshold_and_honoured() {
    let a = config(1, "aes128-sha256-ecp256", "aes128gcm16");
    let mut b = config(2, "aes128-sha256-ecp256", "aes128gcm16");
    b.cookie_threshold = 0;
    let mut p = Pair::new(a, b, 5);
    let up = p.drive_until_up(Duration::from_secs(5));
    assert!(up, "a: {:?} b: {:?}", p.a.rec.errors, p.b.rec.errors);
    p.assert_keys_match();
    // The first response was the COOKIE request: a sends IKE_SA_INIT twice, then IKE_AUTH.
    assert_eq!(p.a.rec.sent, 3);
}

#[test]
fn forced_encapsulation_moves_to_4500_and_installs_esp_in_udp() {
    let mut a = config(1, "aes128-sha256-modp2048", "aes128gcm16");
    a.force_encap = true;
    let b = config(2, "aes128-sha256-modp2048", "aes128gcm16");
    let mut p = Pair::new(a, b, 6);
    assert!(p.drive_until_up(Duration::from_secs(5)));
    p.assert_keys_match();
    for side in [&p.a, &p.b] {
        let (l, r) = side.rec.active()[0].udp_encap.expect("udp encap");
        assert_eq!((l.port(), r.port()), (4500, 4500));
    }
}

#[test]
fn handshake_survives_loss_duplication_and_reordering() {
    for seed in 0..20 {
        let mut p = Pair::new(
            config(1, "aes128-sha256-ecp256", "aes128gcm16"),
            config(2, "aes128-sha256-ecp256", "aes128gcm16"),
            100 + seed,
        );
        p.loss = 0.3;
        p.duplicate = 0.2;
        p.jitter = Duration::from_millis(300);
        assert!(p.drive_until_up(Duration::from_secs(300)), "seed {seed}");
        p.assert_keys_match();
    }
}

#[test]
fn retransmissions_back_off_and_give_up() {
    let mut p = Pair::new(
        config(1, "aes128-sha256-ecp256", "aes128gcm16"),
        config(2, "aes128-sha256-ecp256", "aes128gcm16"),
        7,
    );
    p.b.dead = true;
    let start = p.now;
    let mut sends = Vec::new();
    while p.now < start + Duration::from_secs(120) {
        let before = p.a.rec.sent;
        if !p.step() {
            break;
        }
        if p.a.rec.sent > before {
            sends.push(p.now - start);
        }
    }
    // 1 + 5 retransmissions at 1, 2, 4, 8, 16 s after the previous one (16 s cap).
    let gaps: Vec<u64> = sends.windows(2).map(|w| (w[1] - w[0]).as_secs()).collect();
    assert_eq!(&gaps[..5], &[1, 2, 4, 8, 16]);
    // Then it gave up; with start action initiate it tries again after retry_interval.
    assert!(gaps.len() >= 6 && gaps[5] >= 16);
}

#[test]
fn delete_takes_both_sides_down_and_removes_child_sas() {
    let mut p = Pair::new(
        config(1, "aes128-sha256-ecp256", "aes128gcm16"),
        config(2, "aes128-sha256-ecp256", "aes128gcm16"),
        8,
    );
    assert!(p.drive_until_up(Duration::from_secs(5)));
    let now = p.now;
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(1);
    p.a.tunnel.delete(now, &mut rng);
    p.drive_for(Duration::from_secs(60));
    assert!(!p.a.tunnel.is_up() && !p.b.tunnel.is_up());
    assert_eq!(p.a.rec.downs, vec![DownReason::LocalDelete]);
    assert_eq!(p.b.rec.downs, vec![DownReason::PeerDelete]);
    assert!(p.a.rec.active().is_empty() && p.b.rec.active().is_empty());
    // Disabled: no renegotiation happened.
    assert_eq!(p.a.rec.ups, 1);
    // And enable again.
    let now = p.now;
    p.a.tunnel.initiate(now, &mut rng).unwrap();
    assert!(p.drive_until_up(Duration::from_secs(5)));
    p.assert_keys_match();
}

#[test]
fn responder_can_initiate_too() {
    let mut a = config(1, "aes128-sha256-ecp256", "aes128gcm16");
    a.start_action = ike::sa::StartAction::Respond;
    let mut b = config(2, "aes128-sha256-ecp256", "aes128gcm16");
    b.start_action = ike::sa::StartAction::Initiate;
    let mut p = Pair::new(a, b, 9);
    assert!(p.drive_until_up(Duration::from_secs(5)));
    p.assert_keys_match();
    assert!(matches!(p.b.rec.downs.as_slice(), []));
    let _ = Action::Up;
}

#[test]
fn key_id_identities_authenticate_and_a_wrong_one_is_refused() {
    use ike::sa::Identity;
    let mut a = config(1, "aes128-sha256-ecp256", "aes128gcm16");
    let mut b = config(2, "aes128-sha256-ecp256", "aes128gcm16");
    a.local_id = Identity::KeyId(b"site-a".to_vec());
    b.remote_id = Identity::KeyId(b"site-a".to_vec());
    b.local_id = Identity::KeyId(vec![0, 1, 0xfe]);
    a.remote_id = Identity::KeyId(vec![0, 1, 0xfe]);
    let mut p = Pair::new(a.clone(), b.clone(), 40);
    assert!(p.drive_until_up(Duration::from_secs(5)));
    p.assert_keys_match();
    // The same bytes as an FQDN are another identity.
    b.remote_id = Identity::Fqdn("site-a".into());
    let mut p = Pair::new(a, b, 41);
    p.drive_for(Duration::from_secs(3));
    assert!(!p.b.tunnel.is_up());
    assert!(p.b.rec.errors.contains(&IkeError::AuthenticationFailed));
}

/// Window size 1 (RFC 7296 2.3): the last request seen again gets the cached response,
/// an older one is dropped and counted.
#[test]
fn old_requests_are_dropped_and_the_last_one_is_answered_from_the_cache() {
    let a = config(1, "aes128-sha256-ecp256", "aes128gcm16");
    let b = config(2, "aes128-sha256-ecp256", "aes128gcm16");
    let mut p = Pair::new(a, b, 42);
    assert!(p.drive_until_up(Duration::from_secs(5)));
    let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(7);
    // Take a's CHILD rekey request off the wire to replay it later.
    let now = p.now;
    p.a.tunnel.rekey_child(now, &mut rng).unwrap();
    let request = std::iter::from_fn(|| p.a.tunnel.poll_action())
        .find_map(|x| match x {
            Action::Send { bytes, .. } => Some(bytes),
            _ => None,
        })
        .unwrap();
    let sent_by_b = |p: &mut Pair| -> Vec<Vec<u8>> {
        std::iter::from_fn(|| p.b.tunnel.poll_action())
            .filter_map(|x| match x {
                Action::Send { bytes, .. } => Some(bytes),
                _ => None,
            })
            .collect()
    };
    p.inject(false, request.clone()).unwrap();
    let response = sent_by_b(&mut p);
    assert_eq!(response.len(), 1);
    p.inject(false, request.clone()).unwrap();
    assert_eq!(
        sent_by_b(&mut p),
        response,
        "the cached response, byte for byte"
    );
    assert_eq!(p.b.tunnel.stats().retransmits_answered, 1);
    p.drive_for(Duration::from_secs(10));
    assert!(p.a.tunnel.is_up());
    // Two more exchanges from a (the old SA's DELETE ran already; now another rekey).
    let now = p.now;
    p.a.tunnel.rekey_child(now, &mut rng).unwrap();
    p.drive_for(Duration::from_secs(10));
    assert!(matches!(
        p.inject(false, request),
        Err(IkeError::OutOfWindow(_))
    ));
    assert_eq!(p.b.tunnel.stats().out_of_window, 1);
    p.drive_for(Duration::from_secs(5));
    assert!(p.a.tunnel.is_up() && p.b.tunnel.is_up());
    p.assert_keys_match();
}
