//! Two sessions back to back: establishment, route exchange, keepalives, hold expiry,
//! maximum prefixes, restart, and a Loc-RIB fed by two tunnels.

mod common;

use std::net::Ipv4Addr;
use std::time::Duration;

use bgp::wire::notification::{cease_subcode, code};
use bgp::wire::{AsPath, Notification, Origin};
use bgp::{DownReason, Ipv4Prefix, LocRibChange, Rib, SessionEvent, SessionId, State};
use common::*;

fn p(s: &str) -> Ipv4Prefix {
    s.parse().unwrap()
}

fn learned(events: &[SessionEvent]) -> Vec<Ipv4Prefix> {
    events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::RouteLearned { prefix, .. } => Some(*prefix),
            _ => None,
        })
        .collect()
}

fn withdrawn(events: &[SessionEvent]) -> Vec<Ipv4Prefix> {
    events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::RouteWithdrawn { prefix } => Some(*prefix),
            _ => None,
        })
        .collect()
}

fn established_pair() -> Pair {
    let mut pair = Pair::new(customer_config(), cloud_config());
    pair.start();
    assert!(pair.both(State::Established));
    pair
}

#[test]
fn establishes_and_exchanges_routes() {
    let mut pair = established_pair();
    let a_events = pair.a.take_events();
    let est = a_events
        .iter()
        .find(|e| matches!(e, SessionEvent::Established { .. }))
        .unwrap();
    assert_eq!(
        est,
        &SessionEvent::Established {
            peer_asn: CLOUD_ASN,
            peer_router_id: Ipv4Addr::new(10, 0, 0, 1),
            peer_address: Ipv4Addr::new(169, 254, 10, 1),
            hold_time: 30,
        }
    );
    assert_eq!(learned(&a_events), vec![p("172.16.0.0/12")]);
    let Some(SessionEvent::RouteLearned { attributes, .. }) = a_events
        .iter()
        .find(|e| matches!(e, SessionEvent::RouteLearned { .. }))
    else {
        unreachable!()
    };
    assert_eq!(attributes.origin, Some(Origin::Igp));
    assert_eq!(attributes.as_path, Some(AsPath::sequence(vec![CLOUD_ASN])));
    assert_eq!(attributes.next_hop, Some(Ipv4Addr::new(169, 254, 10, 1)));
    let b_events = pair.b.take_events();
    assert_eq!(learned(&b_events), vec![p("10.1.0.0/16"), p("10.2.0.0/16")]);

    let a = pair.a.session.stats();
    assert_eq!(
        (
            a.prefixes_received,
            a.prefixes_accepted,
            a.prefixes_advertised
        ),
        (1, 1, 2)
    );
    assert_eq!(a.established_since, Some(pair.now));
    assert_eq!(a.peer_router_id, Some(Ipv4Addr::new(10, 0, 0, 1)));
    pair.advance(Duration::from_secs(5));
    assert_eq!(
        pair.a.session.stats().uptime(pair.now),
        Some(Duration::from_secs(5))
    );

    // Changing the advertised set sends only the difference.
    let now = pair.now;
    pair.a
        .session
        .set_local_prefixes(now, &[p("10.2.0.0/16"), p("10.3.0.0/16")]);
    pair.drive();
    let b_events = pair.b.take_events();
    assert_eq!(withdrawn(&b_events), vec![p("10.1.0.0/16")]);
    assert_eq!(learned(&b_events), vec![p("10.3.0.0/16")]);
    assert_eq!(pair.b.session.adj_rib_in().len(), 2);
}

#[test]
fn keepalives_hold_the_session_for_hours() {
    let mut pair = established_pair();
    pair.a.take_events();
    let sent_before = pair.a.session.stats().counters.messages_sent;
    pair.advance(Duration::from_secs(3 * 3600));
    assert!(pair.both(State::Established));
    assert!(pair.a.downs().is_empty() && pair.b.downs().is_empty());
    // Hold 30 s: a keepalive every 10 s, from each side.
    let sent = pair.a.session.stats().counters.messages_sent - sent_before;
    assert!((1079..=1081).contains(&sent), "sent {sent}");
}

#[test]
fn hold_timer_expiry_then_automatic_restart() {
    let mut pair = established_pair();
    pair.a.take_events();
    pair.b.take_events();
    pair.blackhole = true;
    pair.advance(Duration::from_secs(29));
    assert!(pair.both(State::Established));
    pair.advance(Duration::from_secs(2));
    for side in [&pair.a, &pair.b] {
        assert_eq!(
            side.downs(),
            vec![&SessionEvent::Down {
                reason: DownReason::HoldTimerExpired
            }]
        );
        assert_eq!(side.session.state(), State::Idle);
        assert_eq!(side.session.stats().prefixes_received, 0);
    }
    // The tunnel comes back: after the idle hold time the sessions reconnect by themselves.
    pair.blackhole = false;
    pair.advance(Duration::from_secs(6));
    assert!(pair.both(State::Established));
    assert_eq!(learned(&pair.a.take_events()), vec![p("172.16.0.0/12")]);
    assert_eq!(pair.a.session.stats().counters.established_transitions, 2);
}

#[test]
fn maximum_prefix_limit_sends_cease() {
    let mut cloud = cloud_config();
    cloud.max_prefixes = Some(1);
    let mut pair = Pair::new(customer_config(), cloud);
    pair.start();
    let b = pair.b.take_events();
    assert!(b.contains(&SessionEvent::Down {
        reason: DownReason::MaxPrefixes(1)
    }));
    let a = pair.a.take_events();
    let mut data = vec![0, 1, 1];
    data.extend_from_slice(&1u32.to_be_bytes());
    assert!(a.contains(&SessionEvent::Down {
        reason: DownReason::PeerNotification(Notification::new(
            code::CEASE,
            cease_subcode::MAX_PREFIXES,
            data
        ))
    }));
    assert_eq!(pair.b.session.state(), State::Idle);
}

#[test]
fn operator_stop_withdraws_and_stays_down() {
    let mut pair = established_pair();
    pair.a.take_events();
    pair.b.take_events();
    let now = pair.now;
    pair.a.session.stop(now);
    pair.drive();
    assert_eq!(
        pair.a.downs(),
        vec![&SessionEvent::Down {
            reason: DownReason::AdminStop
        }]
    );
    assert_eq!(
        pair.b.downs(),
        vec![&SessionEvent::Down {
            reason: DownReason::PeerNotification(Notification::new(6, 2, vec![]))
        }]
    );
    // B retries on its own, A stays down until started.
    pair.advance(Duration::from_secs(120));
    assert_eq!(pair.a.session.state(), State::Idle);
    assert_ne!(pair.b.session.state(), State::Established);
    let now = pair.now;
    pair.a.session.start(now);
    pair.drive();
    pair.advance(Duration::from_secs(31));
    assert!(pair.both(State::Established));
}

#[test]
fn route_refresh_resends_adj_rib_out() {
    let mut pair = established_pair();
    pair.a.take_events();
    let before = pair.b.session.stats().counters.updates_sent;
    assert!(pair.a.session.request_route_refresh());
    pair.drive();
    assert_eq!(pair.b.session.stats().counters.updates_sent, before + 1);
    // Same routes again: nothing changes for A's Loc-RIB consumers.
    assert!(learned(&pair.a.take_events()).is_empty());
}

#[test]
fn zero_hold_time_means_no_keepalives() {
    let mut a = customer_config();
    a.hold_time = 0;
    let mut pair = Pair::new(a, cloud_config());
    pair.start();
    assert!(pair.both(State::Established));
    assert_eq!(pair.a.session.poll_timeout(), None);
    assert_eq!(pair.b.session.poll_timeout(), None);
    pair.blackhole = true;
    pair.advance(Duration::from_secs(86_400));
    assert!(pair.both(State::Established));
}

/// Customer device with two tunnels to two cloud gateways: the Loc-RIB prefers one,
/// and moves to the other when the first tunnel's session goes down.
#[test]
fn loc_rib_fails_over_between_tunnels() {
    let mut t1 = Pair::new(customer_config(), cloud_config());
    let mut c2 = customer_config();
    c2.local_address = Ipv4Addr::new(169, 254, 11, 2);
    c2.peer_address = Ipv4Addr::new(169, 254, 11, 1);
    let mut g2 = cloud_config();
    g2.router_id = Ipv4Addr::new(10, 0, 0, 9);
    g2.local_address = Ipv4Addr::new(169, 254, 11, 1);
    g2.peer_address = Ipv4Addr::new(169, 254, 11, 2);
    let mut t2 = Pair::new(c2, g2);
    t1.start();
    t2.start();
    let mut rib = Rib::new();
    let feed = |rib: &mut Rib, t1: &mut Pair, t2: &mut Pair| {
        for e in t1.a.take_events() {
            rib.apply(SessionId(1), &e);
        }
        for e in t2.a.take_events() {
            rib.apply(SessionId(2), &e);
        }
        std::iter::from_fn(|| rib.poll_change()).collect::<Vec<_>>()
    };
    let changes = feed(&mut rib, &mut t1, &mut t2);
    let prefix = p("172.16.0.0/12");
    // Same path length, origin, MED: the lower router id (10.0.0.1, tunnel 1) wins.
    assert_eq!(rib.best(&prefix).unwrap().session, SessionId(1));
    assert_eq!(
        rib.best(&prefix).unwrap().next_hop,
        Ipv4Addr::new(169, 254, 10, 1)
    );
    assert!(matches!(changes[0], LocRibChange::Added { .. }));

    t1.blackhole = true;
    t1.advance(Duration::from_secs(31));
    t2.advance(Duration::from_secs(31));
    let changes = feed(&mut rib, &mut t1, &mut t2);
    assert_eq!(changes.len(), 1);
    let LocRibChange::Changed { route, .. } = &changes[0] else {
        panic!("expected a change, got {changes:?}")
    };
    assert_eq!(route.session, SessionId(2));
    assert_eq!(route.next_hop, Ipv4Addr::new(169, 254, 11, 1));
}

/// The cloud initiates by default: a passive customer session still comes up, and two
/// passive sessions never do.
#[test]
fn passive_customer_answers_the_cloud() {
    let mut c = customer_config();
    c.passive = true;
    let mut pair = Pair::new(c.clone(), cloud_config());
    pair.start();
    assert!(
        pair.both(State::Established),
        "{:?} {:?} {:?}",
        pair.a.session.state(),
        pair.b.session.state(),
        pair.b.events
    );

    let mut g = cloud_config();
    g.passive = true;
    let mut pair = Pair::new(c, g);
    pair.start();
    pair.advance(Duration::from_secs(600));
    assert!(pair.both(State::Active));
}

/// Thousands of prefixes travel in several 4096-octet UPDATEs and all arrive.
#[test]
fn many_prefixes_span_several_updates() {
    let mut c = customer_config();
    c.local_prefixes = (0..5000u32)
        .map(|i| Ipv4Prefix::new(Ipv4Addr::from(0x0a00_0000 | (i << 8)), 24).unwrap())
        .collect();
    let mut pair = Pair::new(c, cloud_config());
    pair.start();
    assert!(pair.both(State::Established));
    assert_eq!(pair.b.session.stats().prefixes_accepted, 5000);
    // 5000 * 4 octets of NLRI need 5 full messages, plus End-of-RIB.
    assert_eq!(pair.a.session.stats().counters.updates_sent, 6);
    let now = pair.now;
    pair.a.session.set_local_prefixes(now, &[]);
    pair.drive();
    assert_eq!(pair.b.session.stats().prefixes_received, 0);
    assert_eq!(withdrawn(&pair.b.take_events()).len(), 5000);
}

/// A peer that keeps refusing us (wrong AS configured) is retried less and less often.
#[test]
fn idle_hold_backs_off_while_failing() {
    let mut c = customer_config();
    c.peer_asn = 64999;
    let mut pair = Pair::new(c, cloud_config());
    pair.start();
    let t0 = pair.now;
    let first = pair.a.take_events();
    assert!(first.iter().any(|e| matches!(e, SessionEvent::Down { .. })));
    let mut downs = vec![0];
    for _ in 0..400 {
        pair.advance(Duration::from_secs(1));
        let n = pair
            .a
            .take_events()
            .into_iter()
            .filter(|e| matches!(e, SessionEvent::Down { .. }))
            .count();
        if n > 0 {
            downs.push((pair.now - t0).as_secs());
        }
    }
    let gaps: Vec<u64> = downs.windows(2).map(|w| w[1] - w[0]).collect();
    // 5 s, 10 s, 20 s, then capped at 40 s.
    assert_eq!(&gaps[..5], &[5, 10, 20, 40, 40], "downs at {downs:?}");
}

#[test]
fn a_prepending_session_advertises_its_as_that_many_more_times() {
    let mut customer = customer_config();
    customer.as_path_prepend = 2;
    let asn = customer.local_asn;
    let mut pair = Pair::new(customer, cloud_config());
    pair.start();
    assert!(pair.both(State::Established));
    let events = pair.b.take_events();
    let paths: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            SessionEvent::RouteLearned { attributes, .. } => attributes.as_path.clone(),
            _ => None,
        })
        .collect();
    assert_eq!(paths.len(), 2, "{events:?}");
    for path in paths {
        assert_eq!(path, AsPath::sequence(vec![asn; 3]));
        assert_eq!(path.path_len(), 3);
    }
}
