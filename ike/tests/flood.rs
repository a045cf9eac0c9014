//! A flood of IKE_SA_INIT requests from the peer's address that echo our COOKIEs (as one
//! on the path could send, or a broken peer): the DH work it causes is bounded by
//! `Config::init_rate`, the established IKE SA is not disturbed, the real peer gets a new
//! SA at once after the flood, and our own negotiations are never pushed out.
mod common;

use common::pair::{addr, config, Pair};
use ike::sa::{Action, Config, StartAction};
use ike::wire::{Message, Payload};
use ike::Tunnel;
use rand::rngs::StdRng;
use rand::SeedableRng;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

const IKE: &str = "aes128-sha256-ecp256";
const ESP: &str = "aes128gcm16";

/// What the victim answered to one flood.
#[derive(Debug, Default)]
struct Answered {
    /// IKE_SA_INIT responses with a KE payload: each cost the victim a DH computation.
    created: usize,
    cookies: usize,
    /// Requests (first or with the cookie) that got no answer.
    unanswered: usize,
    /// Actions of the victim not addressed to a flooder.
    others: Vec<Action>,
}

/// `n` fresh initiators on the peer's address (ports 40000 + i) each send IKE_SA_INIT to
/// `victim` at `now` and send it again with the COOKIE if one is demanded; they never go
/// on to IKE_AUTH, so every SA the victim creates stays half-open.
fn flood(victim: &mut Tunnel, n: u16, now: Instant, rng: &mut StdRng) -> Answered {
    let mut seen = Answered::default();
    let target = victim.config().local;
    for i in 0..n {
        let from = SocketAddr::new(victim.config().remote.ip(), 40000 + i);
        let mut cfg: Config = config(1, IKE, ESP);
        cfg.local = from;
        cfg.remote = target;
        cfg.start_action = StartAction::Initiate;
        let Ok(mut flooder) = Tunnel::new(cfg, now, rng) else {
            panic!("flooder config refused");
        };
        flooder.handle_timeout(now, rng);
        // The first request, and the one with the cookie if it is demanded.
        for _ in 0..2 {
            let Some(request) = sent_to(&mut flooder, target) else {
                break;
            };
            let _ = victim.handle_datagram(now, target, from, &request, rng);
            let Some(reply) = answer_to(victim, from, &mut seen.others) else {
                seen.unanswered += 1;
                break;
            };
            if has_ke(&reply) {
                seen.created += 1;
                break;
            }
            seen.cookies += 1;
            let _ = flooder.handle_datagram(now, from, target, &reply, rng);
        }
    }
    seen
}

/// The next datagram `t` sends to `to`.
fn sent_to(t: &mut Tunnel, to: SocketAddr) -> Option<Vec<u8>> {
    while let Some(a) = t.poll_action() {
        if let Action::Send { remote, bytes, .. } = a {
            if remote == to {
                return Some(bytes);
            }
        }
    }
    None
}

/// The victim's reply to `flooder`; its other actions go to `others`.
fn answer_to(
    victim: &mut Tunnel,
    flooder: SocketAddr,
    others: &mut Vec<Action>,
) -> Option<Vec<u8>> {
    let mut reply = None;
    while let Some(a) = victim.poll_action() {
        match a {
            Action::Send { remote, bytes, .. } if remote == flooder => reply = Some(bytes),
            other => others.push(other),
        }
    }
    reply
}

fn has_ke(bytes: &[u8]) -> bool {
    Message::decode(bytes)
        .map(|m| m.payloads.iter().any(|p| matches!(p, Payload::Ke { .. })))
        .unwrap_or(false)
}

#[test]
fn a_cookie_echoing_flood_costs_at_most_the_init_rate_and_the_tunnel_stays_up() {
    let mut p = Pair::new(config(1, IKE, ESP), config(2, IKE, ESP), 31);
    assert!(p.drive_until_up(Duration::from_secs(5)));
    let rate = p.b.tunnel.config().init_rate as usize;
    let mut rng = StdRng::seed_from_u64(32);

    let now = p.now;
    let first = flood(&mut p.b.tunnel, 2000, now, &mut rng);
    // Without a limit every request would cost a DH computation (2000 here). One token
    // went to a's own IKE_SA_INIT a moment ago.
    assert!((rate - 1..=rate).contains(&first.created), "{first:?}");
    assert_eq!(first.unanswered, 2000 - first.created, "{first:?}");
    assert!(first.others.is_empty(), "{:?}", first.others);
    assert_eq!(p.b.tunnel.stats().init_refused as usize, first.unanswered);

    // A second later the bucket holds `rate` again, and no more; the half-open SAs of the
    // first flood now make b demand cookies, which the flood echoes.
    let later = p.now + Duration::from_secs(1);
    let second = flood(&mut p.b.tunnel, 500, later, &mut rng);
    assert_eq!(second.created, rate, "{second:?}");
    assert!(second.cookies >= 500 - rate, "{second:?}");
    let s = p.b.tunnel.stats();
    assert_eq!(s.cookies_sent as usize, first.cookies + second.cookies);
    assert_eq!(
        s.init_refused as usize,
        first.unanswered + second.unanswered
    );

    // The established SAs carry on: DPD and a CHILD SA rekey later, both still up.
    p.drive_for(Duration::from_secs(2 * 3600));
    assert!(p.a.tunnel.is_up() && p.b.tunnel.is_up());
    assert!(p.a.rec.downs.is_empty() && p.b.rec.downs.is_empty());
    assert!(p.b.rec.installs.len() > 1, "the CHILD SA was rekeyed");
}

#[test]
fn the_real_peer_gets_a_new_sa_at_once_after_a_flood() {
    let mut p = Pair::new(config(1, IKE, ESP), config(2, IKE, ESP), 33);
    assert!(p.drive_until_up(Duration::from_secs(5)));
    let mut rng = StdRng::seed_from_u64(34);
    let now = p.now;
    let f = flood(&mut p.b.tunnel, 1000, now, &mut rng);
    assert!(f.unanswered > 0, "{f:?}");
    // The flood's half-open SAs are still there (they time out after 30 s), and the peer
    // reboots a second later: its IKE_SA_INIT needs a cookie, which it echoes, and gets in.
    p.drive_for(Duration::from_secs(1));
    p.restart_a(config(1, IKE, ESP));
    assert!(
        p.drive_until_up(Duration::from_secs(5)),
        "a: {:?}",
        p.a.rec.errors
    );
    p.assert_keys_match();
}

#[test]
fn a_long_flood_never_pushes_out_our_own_negotiation() {
    // b initiates towards a peer that never answers, and is flooded meanwhile for long
    // enough (at `init_rate` a second) to fill its half-open table many times.
    let mut rng = StdRng::seed_from_u64(35);
    let mut cfg = config(2, IKE, ESP);
    cfg.start_action = StartAction::Initiate;
    cfg.init_rate = 100;
    let start = Instant::now();
    let Ok(mut b) = Tunnel::new(cfg, start, &mut rng) else {
        panic!("config refused");
    };
    b.handle_timeout(start, &mut rng);
    let peer = addr(1);
    assert!(sent_to(&mut b, peer).is_some(), "b initiates");
    let mut evicted_before = 0;
    let mut retransmits = 0;
    for second in 1..=20 {
        let now = start + Duration::from_secs(second);
        let f = flood(&mut b, 150, now, &mut rng);
        assert!(f.created <= 100, "{f:?}");
        // b's own IKE_SA_INIT retransmissions (1, 2, 4, 8, 16 s) were held back by the
        // flooder loop; the ones to the peer are among the other actions.
        retransmits += f
            .others
            .iter()
            .filter(|a| matches!(a, Action::Send { remote, .. } if *remote == peer))
            .count();
        if b.poll_timeout().is_some_and(|t| t <= now) {
            b.handle_timeout(now, &mut rng);
        }
        while let Some(a) = b.poll_action() {
            if matches!(&a, Action::Send { remote, .. } if *remote == peer) {
                retransmits += 1;
            }
        }
        evicted_before = b.stats().half_open_evicted;
    }
    assert!(evicted_before > 0, "the half-open table was full");
    assert!(
        retransmits >= 4,
        "our own negotiation went on: {retransmits} retransmissions"
    );
}
