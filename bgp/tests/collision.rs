//! Connection collisions (RFC 4271 section 6.8): one session against a scripted peer,
//! a test per rule. `collision_sim.rs` runs whole simultaneous dials.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bgp::wire::{CodecContext, Framer, Message, Open};
use bgp::{Direction, Session, SessionEvent, State};
use common::*;

const OUT: Direction = Direction::Outbound;
const IN: Direction = Direction::Inbound;
const CEASE_COLLISION: (u8, u8) = (6, 7);

/// The customer session's identifier is 10.0.0.2: a peer below it loses, above it wins.
const LOWER: [u8; 4] = [10, 0, 0, 1];
const HIGHER: [u8; 4] = [10, 0, 0, 9];
/// Equal identifiers: the higher AS (ours, 65001 against 65000) wins (RFC 6286).
const EQUAL: [u8; 4] = [10, 0, 0, 2];

fn peer_open(id: [u8; 4]) -> Vec<u8> {
    Message::Open(Open::ours(CLOUD_ASN, 90, Ipv4Addr::from(id))).encode(CodecContext::default())
}

fn went_down(events: &[SessionEvent]) -> bool {
    events.iter().any(|e| {
        matches!(
            e,
            SessionEvent::Down { .. }
                | SessionEvent::StateChanged {
                    to: State::Idle,
                    ..
                }
        )
    })
}

/// A customer session with `first` in OpenSent and a second connection, the other
/// direction, just taken: both have sent our OPEN.
fn two_connections(first: Direction) -> (Session, Instant) {
    let t0 = Instant::now();
    let mut s = Session::new(customer_config()).unwrap();
    s.start(t0);
    s.handle_connected(t0, first).unwrap();
    s.handle_connected(t0, first.other()).unwrap();
    for d in [first, first.other()] {
        assert!(matches!(sent_on(&mut s, d).as_slice(), [Message::Open(_)]));
    }
    assert_eq!(s.state(), State::OpenSent);
    assert_eq!(s.connection(), Some(first));
    assert_eq!(s.stats().counters.connection_collisions, 1);
    drain(&mut s);
    (s, t0)
}

#[test]
fn higher_identifier_keeps_the_connection_it_initiated_in_every_order() {
    for (peer_id, survivor) in [(LOWER, OUT), (HIGHER, IN), (EQUAL, OUT)] {
        for first in [OUT, IN] {
            // The peer's OPEN arrives first on the first connection, or on the second.
            for open_first in [first, first.other()] {
                let label = format!("peer {peer_id:?}, first {first}, open first on {open_first}");
                let (mut s, t0) = two_connections(first);
                s.handle_bytes(t0, open_first, &peer_open(peer_id));
                // No KEEPALIVE while it is not known which connection stays.
                for d in [OUT, IN] {
                    assert_eq!(sent_on(&mut s, d), vec![], "{label}");
                }
                assert_eq!(s.state(), State::OpenSent, "{label}");
                s.handle_bytes(t0, open_first.other(), &peer_open(peer_id));
                let loser = survivor.other();
                assert_eq!(
                    sent_on(&mut s, survivor),
                    vec![Message::Keepalive],
                    "{label}"
                );
                assert_eq!(
                    notification(&sent_on(&mut s, loser)),
                    Some(CEASE_COLLISION),
                    "{label}"
                );
                let ev = drain(&mut s);
                assert!(ev.contains(&SessionEvent::Disconnect(loser)), "{label}");
                assert!(!ev.contains(&SessionEvent::Disconnect(survivor)), "{label}");
                assert!(!went_down(&ev), "{label}: {ev:?}");
                assert_eq!(s.connection(), Some(survivor), "{label}");
                assert_eq!(s.state(), State::OpenConfirm, "{label}");
                // The loser's late bytes are ignored; the survivor goes on.
                s.handle_bytes(t0, loser, &keepalive());
                assert_eq!(s.state(), State::OpenConfirm, "{label}");
                s.handle_bytes(t0, survivor, &keepalive());
                assert_eq!(s.state(), State::Established, "{label}");
                assert_eq!(s.peer().map(|p| p.router_id), Some(peer_id.into()));
                assert_eq!(s.stats().counters.connection_collisions, 1, "{label}");
            }
        }
    }
}

#[test]
fn keepalive_received_while_held_back_makes_the_survivor_established() {
    let (mut s, t0) = two_connections(OUT);
    // The peer (higher identifier) answered our OPEN on its own connection already.
    let mut both = peer_open(HIGHER);
    both.extend(keepalive());
    s.handle_bytes(t0, IN, &both);
    assert_eq!(s.state(), State::OpenSent);
    s.handle_bytes(t0, OUT, &peer_open(HIGHER));
    assert_eq!(s.state(), State::Established);
    assert_eq!(s.connection(), Some(IN));
    assert_eq!(notification(&sent_on(&mut s, OUT)), Some(CEASE_COLLISION));
    let msgs = sent_on(&mut s, IN);
    assert_eq!(msgs.first(), Some(&Message::Keepalive));
    assert!(msgs.iter().any(|m| matches!(m, Message::Update(_))));
}

#[test]
fn a_connection_while_established_is_refused_with_cease_7() {
    let (mut s, t0) = two_connections(OUT);
    s.handle_bytes(t0, IN, &peer_open(LOWER));
    s.handle_bytes(t0, OUT, &peer_open(LOWER));
    s.handle_bytes(t0, OUT, &keepalive());
    assert_eq!(s.state(), State::Established);
    drain(&mut s);
    let refused = s.handle_connected(t0, IN).unwrap_err();
    assert_eq!(refused.state, State::Established);
    let mut f = Framer::new();
    f.push(&refused.farewell().unwrap());
    let raw = f.next_message().unwrap().unwrap();
    let Ok(Message::Notification(n)) = Message::decode(&raw, CodecContext::default()) else {
        panic!("not a NOTIFICATION")
    };
    assert_eq!((n.code, n.subcode), CEASE_COLLISION);
    assert_eq!(s.state(), State::Established);
    assert!(drain(&mut s).is_empty());
    assert_eq!(s.stats().counters.connection_collisions, 2);
}

#[test]
fn a_third_connection_is_refused() {
    let (mut s, t0) = two_connections(OUT);
    for d in [OUT, IN] {
        let refused = s.handle_connected(t0, d).unwrap_err();
        assert_eq!(refused.state, State::OpenSent);
        assert!(refused.farewell().is_some());
    }
    assert_eq!(s.stats().counters.connection_collisions, 3);
    assert_eq!(s.connection(), Some(OUT));
}

#[test]
fn link_established_before_the_contender_answered_closes_the_contender() {
    let t0 = Instant::now();
    let mut s = Session::new(customer_config()).unwrap();
    s.start(t0);
    s.handle_connected(t0, OUT).unwrap();
    // The OPEN comes before the second connection: our KEEPALIVE goes out on it.
    s.handle_bytes(t0, OUT, &peer_open(HIGHER));
    assert_eq!(s.state(), State::OpenConfirm);
    s.handle_connected(t0, IN).unwrap();
    sent_on(&mut s, OUT);
    sent_on(&mut s, IN);
    // The peer may be Established on the first connection already: identifiers are
    // not compared (the peer's would make the second one win) and we wait.
    s.handle_bytes(t0, IN, &peer_open(HIGHER));
    assert_eq!(sent_on(&mut s, IN), vec![]);
    assert_eq!(s.connection(), Some(OUT));
    s.handle_bytes(t0, OUT, &keepalive());
    assert_eq!(s.state(), State::Established);
    assert_eq!(notification(&sent_on(&mut s, IN)), Some(CEASE_COLLISION));
    assert!(drain(&mut s).contains(&SessionEvent::Disconnect(IN)));
}

#[test]
fn link_closed_by_the_peer_hands_over_to_the_other_connection() {
    let t0 = Instant::now();
    let mut s = Session::new(customer_config()).unwrap();
    s.start(t0);
    s.handle_connected(t0, OUT).unwrap();
    s.handle_bytes(t0, OUT, &peer_open(HIGHER));
    s.handle_connected(t0, IN).unwrap();
    s.handle_bytes(t0, IN, &peer_open(HIGHER));
    sent_on(&mut s, OUT);
    sent_on(&mut s, IN);
    drain(&mut s);
    // The peer resolved the collision its way: Cease/7 on our first connection.
    let cease = Message::Notification(bgp::collision_notification());
    s.handle_bytes(t0, OUT, &cease.encode(CodecContext::default()));
    let ev = drain(&mut s);
    assert!(ev.contains(&SessionEvent::Disconnect(OUT)), "{ev:?}");
    assert!(!went_down(&ev), "{ev:?}");
    assert_eq!(sent_on(&mut s, OUT), vec![], "no answer to a NOTIFICATION");
    assert_eq!(s.connection(), Some(IN));
    assert_eq!(s.state(), State::OpenConfirm);
    assert_eq!(sent_on(&mut s, IN), vec![Message::Keepalive]);
    s.handle_bytes(t0, IN, &keepalive());
    assert_eq!(s.state(), State::Established);
    assert_eq!(s.stats().last_error, None);
}

#[test]
fn losing_the_second_connection_lets_the_first_answer_its_open() {
    let (mut s, t0) = two_connections(IN);
    s.handle_bytes(t0, IN, &peer_open(LOWER));
    assert_eq!(sent_on(&mut s, IN), vec![]);
    s.handle_disconnected(t0, OUT);
    assert_eq!(sent_on(&mut s, IN), vec![Message::Keepalive]);
    assert_eq!(s.state(), State::OpenConfirm);
    assert!(!went_down(&drain(&mut s)));
}

#[test]
fn bad_messages_on_the_second_connection_close_only_it() {
    let (mut s, t0) = two_connections(OUT);
    let update = Message::Update(Default::default()).encode(CodecContext::default());
    s.handle_bytes(t0, IN, &update);
    assert_eq!(notification(&sent_on(&mut s, IN)), Some((5, 1)));
    let ev = drain(&mut s);
    assert_eq!(ev, vec![SessionEvent::Disconnect(IN)]);
    assert_eq!(s.state(), State::OpenSent);
    assert_eq!(s.connection(), Some(OUT));
    // Its late bytes change nothing; the first connection goes on alone.
    s.handle_bytes(t0, IN, &peer_open(LOWER));
    s.handle_bytes(t0, OUT, &peer_open(LOWER));
    assert_eq!(sent_on(&mut s, OUT), vec![Message::Keepalive]);
}

#[test]
fn stop_closes_both_connections() {
    let (mut s, t0) = two_connections(OUT);
    s.stop(t0);
    for d in [OUT, IN] {
        assert_eq!(notification(&sent_on(&mut s, d)), Some((6, 2)), "{d}");
    }
    let ev = drain(&mut s);
    assert!(ev.contains(&SessionEvent::Disconnect(OUT)));
    assert!(ev.contains(&SessionEvent::Disconnect(IN)));
    assert_eq!(s.state(), State::Idle);
}

/// `s` has two connections open since `t0`, the peer's OPEN arrived on `answered` only:
/// a third of the hold time later the silent one is closed (Hold Timer Expired) and the
/// session goes on with `answered` alone, without going down.
fn silent_connection_closes_after_a_third_of_the_hold_time(
    mut s: Session,
    t0: Instant,
    answered: Direction,
) {
    let silent = answered.other();
    // Hold time 90 s offered by both: 30 s, well before the peer's own 90 s run out.
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(30)));
    s.handle_timeout(t0 + Duration::from_secs(30));
    assert_eq!(notification(&sent_on(&mut s, silent)), Some((4, 0)));
    assert_eq!(sent_on(&mut s, answered), vec![Message::Keepalive]);
    let ev = drain(&mut s);
    assert!(ev.contains(&SessionEvent::Disconnect(silent)));
    assert!(!went_down(&ev), "{ev:?}");
    assert_eq!(s.state(), State::OpenConfirm);
    assert_eq!(s.connection(), Some(answered));
}

#[test]
fn a_second_connection_that_never_sends_open_is_closed_after_a_third_of_the_hold_time() {
    let (mut s, t0) = two_connections(OUT);
    s.handle_bytes(t0, OUT, &peer_open(HIGHER));
    assert_eq!(sent_on(&mut s, OUT), vec![]);
    silent_connection_closes_after_a_third_of_the_hold_time(s, t0, OUT);
}

#[test]
fn a_first_connection_that_never_sends_open_hands_over_after_a_third_of_the_hold_time() {
    let (mut s, t0) = two_connections(OUT);
    s.handle_bytes(t0, IN, &peer_open(LOWER));
    silent_connection_closes_after_a_third_of_the_hold_time(s, t0, IN);
}

#[test]
fn losing_the_answered_second_connection_gives_the_first_its_full_open_wait_again() {
    let (mut s, t0) = two_connections(OUT);
    s.handle_bytes(t0, IN, &peer_open(LOWER));
    assert_eq!(s.poll_timeout(), Some(t0 + Duration::from_secs(30)));
    let t1 = t0 + Duration::from_secs(10);
    s.handle_disconnected(t1, IN);
    assert_eq!(s.poll_timeout(), Some(t1 + Duration::from_secs(240)));
    assert_eq!(s.state(), State::OpenSent);
}
