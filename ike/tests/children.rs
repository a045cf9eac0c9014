//! Additional CHILD SAs through CREATE_CHILD_SA (RFC 7296 1.3.1), in simulated time.
mod common;
use common::pair::{config, Pair};
use ike::sa::{Dpd, DpdAction, Lifetime};
use ike::wire::TrafficSelector;
use ike::IkeError;
use rand::SeedableRng;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

fn net(a: u8, b: u8, c: u8, len_24_or_16: bool) -> TrafficSelector {
    let (start, end) = if len_24_or_16 {
        (Ipv4Addr::new(a, b, c, 0), Ipv4Addr::new(a, b, c, 255))
    } else {
        (Ipv4Addr::new(a, b, 0, 0), Ipv4Addr::new(a, b, 255, 255))
    };
    TrafficSelector {
        ip_proto: 0,
        start_port: 0,
        end_port: 65535,
        start: IpAddr::V4(start),
        end: IpAddr::V4(end),
    }
}

fn pair(seed: u64, tweak: impl Fn(&mut ike::Config, u8)) -> Pair {
    let mut a = config(1, "aes128-sha256-ecp256", "aes128gcm16-ecp256");
    let mut b = config(2, "aes128-sha256-ecp256", "aes128gcm16-ecp256");
    tweak(&mut a, 1);
    tweak(&mut b, 2);
    Pair::new(a, b, seed)
}

fn request(p: &mut Pair, local: Vec<TrafficSelector>, remote: Vec<TrafficSelector>) {
    let now = p.now;
    let mut rng = rand::rngs::StdRng::seed_from_u64(99);
    assert_eq!(
        p.a.tunnel.create_child(now, local, remote, &mut rng),
        Ok(true)
    );
}

#[test]
fn additional_child_sa_is_narrowed_to_the_responders_selectors() {
    // b offers 10.2.0.0/24 and any v6 only; a asks for 10.2.0.0/16 behind b.
    let mut p = pair(30, |c, me| {
        if me == 2 {
            c.local_ts = vec![net(10, 2, 0, true), TrafficSelector::any(true)];
        }
    });
    // The first CHILD SA (any <-> any) is narrowed too: b's side becomes 10.2.0.0/24.
    assert!(p.drive_until_up(Duration::from_secs(5)));
    request(
        &mut p,
        vec![net(10, 1, 0, false)],
        vec![net(10, 2, 0, false)],
    );
    p.drive_for(Duration::from_secs(2));
    assert_eq!(p.a.rec.active().len(), 2, "{:?}", p.a.rec.errors);
    assert_eq!(p.b.rec.active().len(), 2);
    p.assert_keys_match();
    let extra = p.a.rec.installs.last().unwrap();
    assert_eq!(extra.local_ts, vec![net(10, 1, 0, false)]);
    assert_eq!(extra.remote_ts, vec![net(10, 2, 0, true)], "narrowed by b");
    let mirror = p.b.rec.installs.last().unwrap();
    assert_eq!(mirror.local_ts, extra.remote_ts);
    assert_eq!(mirror.remote_ts, extra.local_ts);
    assert_eq!(p.a.rec.ups, 1);
    assert!(p.a.rec.downs.is_empty() && p.b.rec.downs.is_empty());
}

#[test]
fn additional_child_sa_is_refused_when_configured_to() {
    let mut p = pair(31, |c, me| {
        if me == 2 {
            c.additional_children = false;
        }
    });
    assert!(p.drive_until_up(Duration::from_secs(5)));
    request(
        &mut p,
        vec![net(10, 1, 0, false)],
        vec![net(10, 2, 0, false)],
    );
    p.drive_for(Duration::from_secs(2));
    // NO_ADDITIONAL_SAS (35): nothing new, and the tunnel stays up.
    assert!(p.a.rec.errors.contains(&IkeError::PeerNotify(35)));
    assert_eq!(p.a.rec.active().len(), 1);
    assert_eq!(p.b.rec.active().len(), 1);
    assert!(p.a.tunnel.is_up() && p.b.tunnel.is_up());
}

#[test]
fn additional_child_sa_outside_the_selectors_gets_ts_unacceptable() {
    let mut p = pair(32, |c, me| {
        if me == 2 {
            c.local_ts = vec![net(10, 2, 0, true)];
        }
    });
    assert!(p.drive_until_up(Duration::from_secs(5)));
    request(
        &mut p,
        vec![net(10, 1, 0, false)],
        vec![net(10, 9, 0, false)],
    );
    p.drive_for(Duration::from_secs(2));
    assert!(p.a.rec.errors.contains(&IkeError::PeerNotify(38)));
    assert_eq!(p.a.rec.active().len(), 1);
    assert!(p.a.tunnel.is_up() && p.b.tunnel.is_up());
}

#[test]
fn not_established_means_no_request() {
    let mut p = pair(33, |_, _| {});
    let now = p.now;
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let r =
        p.a.tunnel
            .create_child(now, vec![net(10, 1, 0, false)], vec![], &mut rng);
    assert_eq!(r, Ok(false));
}

/// Two extra CHILD SAs requested back to back, then CHILD and IKE rekeys under loss:
/// every CHILD SA is rekeyed on its own selectors and all three survive the IKE rekey.
#[test]
fn additional_child_sas_rekey_on_their_own_and_survive_ike_rekeys_under_loss() {
    for seed in 0..6u64 {
        let mut p = pair(500 + seed, |c, _| {
            c.child_lifetime = Lifetime {
                rekey: Duration::from_secs(60),
                hard: Duration::from_secs(300),
                jitter: Duration::from_secs(20),
            };
            c.ike_lifetime = Lifetime {
                rekey: Duration::from_secs(150),
                hard: Duration::from_secs(900),
                jitter: Duration::from_secs(30),
            };
            c.dpd = Some(Dpd {
                interval: Duration::from_secs(20),
                action: DpdAction::Restart,
            });
        });
        assert!(p.drive_until_up(Duration::from_secs(5)));
        request(
            &mut p,
            vec![net(10, 1, 0, false)],
            vec![net(10, 2, 0, false)],
        );
        request(
            &mut p,
            vec![net(10, 3, 0, false)],
            vec![net(10, 4, 0, false)],
        );
        p.drive_for(Duration::from_secs(3));
        assert_eq!(p.a.rec.active().len(), 3, "seed {seed}");
        p.loss = 0.1;
        p.duplicate = 0.05;
        p.jitter = Duration::from_millis(100);
        p.drive_for(Duration::from_secs(400));
        p.loss = 0.0;
        p.duplicate = 0.0;
        p.drive_for(Duration::from_secs(40));
        assert!(p.a.tunnel.is_up() && p.b.tunnel.is_up(), "seed {seed}");
        assert_eq!(p.a.tunnel.ike_spis(), p.b.tunnel.ike_spis(), "seed {seed}");
        let active = p.a.rec.active();
        assert_eq!(
            active.len(),
            3,
            "seed {seed}: one SA per selector set: {:?} b {:?}",
            active
                .iter()
                .map(|i| (i.inbound.spi, i.remote_ts[0].start))
                .collect::<Vec<_>>(),
            p.b.rec
                .active()
                .iter()
                .map(|i| (i.outbound.spi, i.local_ts[0].start))
                .collect::<Vec<_>>()
        );
        let mut remotes: Vec<_> = active.iter().map(|i| i.remote_ts.clone()).collect();
        remotes.sort_by_key(|t| format!("{t:?}"));
        remotes.dedup();
        assert_eq!(remotes.len(), 3, "seed {seed}");
        assert!(p.a.rec.installs.len() > 6, "seed {seed}: rekeyed");
        p.assert_keys_match();
        assert!(
            p.a.rec.downs.is_empty() && p.b.rec.downs.is_empty(),
            "seed {seed}"
        );
    }
}

/// A lifetime event names an SA by SPI: that CHILD SA is rekeyed, not the newest one.
#[test]
fn rekey_by_spi_picks_that_child_sa() {
    let mut p = pair(34, |_, _| {});
    assert!(p.drive_until_up(Duration::from_secs(5)));
    request(
        &mut p,
        vec![net(10, 1, 0, false)],
        vec![net(10, 2, 0, false)],
    );
    p.drive_for(Duration::from_secs(2));
    let first = p.a.rec.installs[0].clone();
    let now = p.now;
    let mut rng = rand::rngs::StdRng::seed_from_u64(3);
    let r =
        p.a.tunnel
            .rekey_child_spi(now, Some(first.outbound.spi), &mut rng);
    assert_eq!(r, Ok(ike::ChildRekey::Started(first.inbound.spi)));
    p.drive_for(Duration::from_secs(2));
    assert!(p.a.rec.deleted.contains(&first.inbound.spi));
    let active = p.a.rec.active();
    assert_eq!(active.len(), 2);
    assert!(active.iter().any(|i| i.remote_ts == first.remote_ts));
    assert!(active
        .iter()
        .any(|i| i.remote_ts == vec![net(10, 2, 0, false)]));
    p.assert_keys_match();
}

/// Both sides ask for the same additional CHILD SA (`here` and `there` as a sees them)
/// at the same moment.
fn both_ask(p: &mut Pair, seed: u64, here: TrafficSelector, there: TrafficSelector) {
    let now = p.now;
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let a =
        p.a.tunnel
            .create_child(now, vec![here], vec![there], &mut rng);
    let b =
        p.b.tunnel
            .create_child(now, vec![there], vec![here], &mut rng);
    assert_eq!((a, b), (Ok(true), Ok(true)));
}

/// Both sides configured the same additional CHILD SA and ask for it when the tunnel
/// comes up: the requests cross, both SAs get made, and the redundant one (made with the
/// lowest of the four nonces, RFC 7296 2.8.1 as for rekeys) is deleted by its initiator.
/// Asked for one after the other, the second side finds it there and does not ask.
#[test]
fn the_same_additional_child_sa_asked_for_by_both_sides_is_made_once() {
    let (here, there) = (net(10, 1, 0, false), net(10, 2, 0, false));
    for seed in 0..8u64 {
        let mut p = pair(700 + seed, |_, _| {});
        assert!(p.drive_until_up(Duration::from_secs(5)));
        both_ask(&mut p, seed, here, there);
        p.drive_for(Duration::from_secs(3));
        for (side, s) in [("a", &p.a), ("b", &p.b)] {
            assert_eq!(
                s.rec.active().len(),
                2,
                "seed {seed}, {side}: {:?}",
                s.rec.errors
            );
        }
        p.assert_keys_match();
        assert!(p.a.rec.downs.is_empty() && p.b.rec.downs.is_empty());
    }
    // One after the other.
    let mut p = pair(720, |_, _| {});
    assert!(p.drive_until_up(Duration::from_secs(5)));
    request(&mut p, vec![here], vec![there]);
    p.drive_for(Duration::from_secs(2));
    let now = p.now;
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let _ =
        p.b.tunnel
            .create_child(now, vec![there], vec![here], &mut rng);
    p.drive_for(Duration::from_secs(2));
    assert_eq!((p.a.rec.active().len(), p.b.rec.active().len()), (2, 2));
    assert_eq!(p.b.rec.installs.len(), 2, "b made no second one");
}

#[test]
fn a_duplicate_additional_child_sa_is_settled_when_only_one_side_saw_the_crossing() {
    // a's request is lost; b's arrives while a's is outstanding (a sees the crossing)
    // and completes; a's retransmission then reaches b, whose own request is done (b
    // sees no crossing). Both SAs get made; exactly one must go, whichever side has to
    // delete it (the seeds cover both).
    let (here, there) = (net(10, 1, 0, false), net(10, 2, 0, false));
    let mut deleted_by = [0, 0];
    for seed in 0..12u64 {
        let mut p = pair(740 + seed, |_, _| {});
        assert!(p.drive_until_up(Duration::from_secs(5)));
        both_ask(&mut p, seed, here, there);
        p.drop_from_a = 1;
        p.drive_for(Duration::from_secs(10));
        for (side, s) in [("a", &p.a), ("b", &p.b)] {
            assert_eq!(
                s.rec.active().len(),
                2,
                "seed {seed}, {side}: {} installed, {} deleted, {:?}",
                s.rec.installs.len(),
                s.rec.deleted.len(),
                s.rec.errors
            );
        }
        p.assert_keys_match();
        assert!(p.a.rec.downs.is_empty() && p.b.rec.downs.is_empty());
        // Which side deleted the redundant one.
        let a_made_it = |spi: &u32| {
            p.a.rec
                .installs
                .iter()
                .any(|i| i.inbound.spi == *spi && i.we_initiated)
        };
        if p.a.rec.deleted.iter().any(a_made_it) {
            deleted_by[0] += 1;
        } else {
            deleted_by[1] += 1;
        }
    }
    assert!(
        deleted_by[0] > 0 && deleted_by[1] > 0,
        "both outcomes: {deleted_by:?}"
    );
}

#[test]
fn additional_child_sas_beyond_the_limit_get_no_additional_sas() {
    let mut p = pair(33, |c, me| {
        if me == 2 {
            c.max_children = 3;
        }
    });
    assert!(p.drive_until_up(Duration::from_secs(5)));
    for third in 1..=4 {
        request(
            &mut p,
            vec![net(10, 1, third, true)],
            vec![net(10, 2, third, true)],
        );
        p.drive_for(Duration::from_secs(2));
    }
    // The first CHILD SA and two more; the last two requests were refused.
    assert_eq!(p.b.rec.active().len(), 3);
    assert_eq!(p.a.rec.active().len(), 3);
    let refused =
        p.a.rec
            .errors
            .iter()
            .filter(|e| **e == IkeError::PeerNotify(35));
    assert_eq!(refused.count(), 2, "{:?}", p.a.rec.errors);
    // Rekeys do not count against the limit: an hour and a half later all three were
    // rekeyed and are still there.
    p.drive_for(Duration::from_secs(5400));
    assert_eq!(p.b.rec.active().len(), 3);
    assert!(p.b.rec.installs.len() >= 6, "rekeyed");
    assert!(p.a.tunnel.is_up() && p.b.tunnel.is_up());
}
