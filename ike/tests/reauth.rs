//! Reauthentication, make-before-break (RFC 7296 2.8.3), in simulated time: a new
//! IKE_SA_INIT + IKE_AUTH next to the old IKE SA, then the old one is deleted; the
//! tunnel never goes down and always has a CHILD SA.
mod common;
use common::pair::{config, Pair};
use ike::sa::Lifetime;
use ike::wire::TrafficSelector;
use rand::SeedableRng;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

fn pair(seed: u64, tweak: impl Fn(&mut ike::Config, u8)) -> Pair {
    let mut a = config(1, "aes128-sha256-ecp256", "aes128gcm16");
    let mut b = config(2, "aes128-sha256-ecp256", "aes128gcm16");
    tweak(&mut a, 1);
    tweak(&mut b, 2);
    Pair::new(a, b, seed)
}

fn assert_replaced_without_gap(p: &Pair, old: Option<([u8; 8], [u8; 8])>, what: &str) {
    let new = p.a.tunnel.ike_spis();
    assert!(p.a.tunnel.is_up() && p.b.tunnel.is_up(), "{what}");
    assert_eq!(new, p.b.tunnel.ike_spis(), "{what}: same IKE SA");
    let (old, new) = (old.unwrap(), new.unwrap());
    // A new IKE_SA_INIT: both SPIs are new (an IKE rekey would do that too; the
    // installs below tell them apart: a rekey keeps the CHILD SA).
    assert!(old.0 != new.0 && old.1 != new.1, "{what}: new IKE SA");
    assert!(
        p.a.rec.installs.len() >= 2,
        "{what}: a CHILD SA came with IKE_AUTH"
    );
    assert_eq!(
        p.a.rec.active().len(),
        1,
        "{what}: the old CHILD SA is gone"
    );
    p.assert_keys_match();
    for s in [&p.a, &p.b] {
        assert!(s.rec.downs.is_empty(), "{what}: {:?}", s.rec.downs);
        assert_eq!(s.rec.ups, 1, "{what}");
        assert_eq!(s.rec.gaps, 0, "{what}: a moment without a CHILD SA");
    }
}

#[test]
fn initiator_reauthenticates_make_before_break() {
    let mut p = pair(40, |c, me| {
        if me == 1 {
            c.reauth_time = Some(Duration::from_secs(100));
        }
    });
    assert!(p.drive_until_up(Duration::from_secs(5)));
    let old = p.a.tunnel.ike_spis();
    p.drive_for(Duration::from_secs(150));
    assert_replaced_without_gap(&p, old, "a reauthenticates");
    // The old IKE SA was deleted by a, not left to expire.
    assert!(p.a.rec.errors.is_empty() && p.b.rec.errors.is_empty());
    // And again, on the new SA's own schedule.
    let second = p.a.tunnel.ike_spis();
    p.drive_for(Duration::from_secs(100));
    assert_ne!(p.a.tunnel.ike_spis(), second);
    assert_eq!(p.a.rec.active().len(), 1);
    assert!(p.a.rec.downs.is_empty() && p.b.rec.downs.is_empty());
}

/// The responder of the first IKE SA reauthenticates: the other side sees a new
/// IKE_SA_INIT from its peer while its SA is up (no INITIAL_CONTACT), takes the new SA
/// and keeps the old CHILD SA until the peer deletes it.
#[test]
fn responder_reauthenticates_and_the_peer_accepts_it() {
    let mut p = pair(41, |c, me| {
        if me == 2 {
            c.reauth_time = Some(Duration::from_secs(100));
        }
        c.ike_lifetime = Lifetime {
            rekey: Duration::from_secs(60),
            hard: Duration::from_secs(1000),
            jitter: Duration::from_secs(10),
        };
    });
    assert!(p.drive_until_up(Duration::from_secs(5)));
    // IKE rekeys every minute do not restart the reauth clock.
    p.drive_for(Duration::from_secs(90));
    let old = p.a.tunnel.ike_spis();
    p.drive_for(Duration::from_secs(30));
    assert_replaced_without_gap(&p, old, "b reauthenticates");
}

/// The peer narrows our selectors (we offer IPv4 and IPv6, it takes IPv4 only, as a
/// strongSwan with `0.0.0.0/0` does): the CHILD SA that IKE_AUTH brings is that same
/// narrowed one, so nothing is requested again beside it.
#[test]
fn reauthentication_does_not_duplicate_a_narrowed_child_sa() {
    let mut p = pair(43, |c, me| {
        if me == 1 {
            c.reauth_time = Some(Duration::from_secs(100));
        } else {
            c.local_ts = vec![TrafficSelector::any(false)];
            c.remote_ts = vec![TrafficSelector::any(false)];
        }
    });
    assert!(p.drive_until_up(Duration::from_secs(5)));
    let old = p.a.tunnel.ike_spis();
    p.drive_for(Duration::from_secs(150));
    assert_replaced_without_gap(&p, old, "a reauthenticates");
    assert_eq!(p.a.rec.installs.len(), 2, "one CHILD SA per IKE SA");
    assert_eq!(p.b.rec.active().len(), 1);
}

#[test]
fn reauthentication_brings_additional_child_sas_along() {
    let net = |x: u8| TrafficSelector {
        ip_proto: 0,
        start_port: 0,
        end_port: 65535,
        start: IpAddr::V4(Ipv4Addr::new(10, x, 0, 0)),
        end: IpAddr::V4(Ipv4Addr::new(10, x, 255, 255)),
    };
    let mut p = pair(42, |c, me| {
        if me == 1 {
            c.reauth_time = Some(Duration::from_secs(100));
        }
    });
    assert!(p.drive_until_up(Duration::from_secs(5)));
    let now = p.now;
    let mut rng = rand::rngs::StdRng::seed_from_u64(5);
    assert_eq!(
        p.a.tunnel
            .create_child(now, vec![net(1)], vec![net(2)], &mut rng),
        Ok(true)
    );
    p.drive_for(Duration::from_secs(150));
    let active = p.a.rec.active();
    assert_eq!(active.len(), 2, "both CHILD SAs on the new IKE SA");
    assert!(active.iter().any(|i| i.remote_ts == vec![net(2)]));
    assert!(active
        .iter()
        .all(|i| i.inbound.spi != p.a.rec.installs[1].inbound.spi));
    p.assert_keys_match();
    assert!(p.a.rec.downs.is_empty() && p.b.rec.downs.is_empty());
}

#[test]
fn reauthentication_converges_under_loss() {
    for seed in 0..12u64 {
        let mut p = pair(600 + seed, |c, me| {
            c.reauth_time = Some(Duration::from_secs(if me == 1 { 100 } else { 130 }));
            c.child_lifetime = Lifetime {
                rekey: Duration::from_secs(70),
                hard: Duration::from_secs(400),
                jitter: Duration::from_secs(20),
            };
        });
        assert!(p.drive_until_up(Duration::from_secs(10)), "seed {seed}");
        p.loss = 0.15;
        p.duplicate = 0.1;
        p.jitter = Duration::from_millis(100);
        p.drive_for(Duration::from_secs(400));
        p.loss = 0.0;
        p.duplicate = 0.0;
        p.drive_for(Duration::from_secs(60));
        assert!(p.a.tunnel.is_up() && p.b.tunnel.is_up(), "seed {seed}");
        assert_eq!(p.a.tunnel.ike_spis(), p.b.tunnel.ike_spis(), "seed {seed}");
        assert_eq!(p.a.rec.active().len(), 1, "seed {seed}");
        p.assert_keys_match();
        assert!(
            p.a.rec.downs.is_empty() && p.b.rec.downs.is_empty(),
            "seed {seed}: {:?} {:?}",
            p.a.rec.downs,
            p.b.rec.downs
        );
    }
}
