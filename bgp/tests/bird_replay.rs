//! Replays what BIRD 2 sent in the captured sessions (testdata/README.md) into a
//! Session, byte by byte, and checks what the session makes of it.

use std::net::Ipv4Addr;
use std::time::Instant;

use bgp::wire::{CodecContext, Framer, Message, Notification};
use bgp::{Direction, DownReason, Ipv4Prefix, Session, SessionConfig, SessionEvent, State};

const OUT: Direction = Direction::Outbound;

fn messages(fixture: &str) -> Vec<Vec<u8>> {
    fixture
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| hex::decode(l.trim()).unwrap())
        .collect()
}

fn p(s: &str) -> Ipv4Prefix {
    s.parse().unwrap()
}

/// The customer side of the capture: AS 65001, router id 10.0.0.2 on 10.99.0.2.
fn config(peer_asn: u32) -> SessionConfig {
    let mut c = SessionConfig::new(
        65001,
        Ipv4Addr::new(10, 0, 0, 2),
        Ipv4Addr::new(10, 99, 0, 2),
        Ipv4Addr::new(10, 99, 0, 1),
    );
    c.peer_asn = peer_asn;
    c.local_prefixes = vec![p("10.20.0.0/16")];
    c
}

fn drain(s: &mut Session) -> Vec<SessionEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

fn sent(s: &mut Session) -> Vec<Vec<u8>> {
    let mut f = Framer::new();
    f.push(&s.poll_transmit(OUT).unwrap_or_default());
    std::iter::from_fn(|| f.next_message().unwrap()).collect()
}

fn feed_bytewise(s: &mut Session, now: Instant, msg: &[u8]) {
    for b in msg {
        s.handle_bytes(now, OUT, std::slice::from_ref(b));
    }
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

/// Opens a session and plays BIRD's OPEN and KEEPALIVE; returns what we sent.
fn establish(s: &mut Session, now: Instant, bird: &[Vec<u8>]) -> Vec<Vec<u8>> {
    s.start(now);
    s.handle_connected(now, OUT).unwrap();
    let mut out = sent(s);
    feed_bytewise(s, now, &bird[0]);
    assert_eq!(s.state(), State::OpenConfirm);
    feed_bytewise(s, now, &bird[1]);
    assert_eq!(s.state(), State::Established);
    out.extend(sent(s));
    out
}

#[test]
fn two_octet_session_replay() {
    let bird = messages(include_str!("../testdata/bird2_two_octet_session.hex"));
    let now = Instant::now();
    let mut s = Session::new(config(65000)).unwrap();
    let out = establish(&mut s, now, &bird);
    // Our OPEN, KEEPALIVE, UPDATE and End-of-RIB. The OPEN and the UPDATE are byte for
    // byte what the capture peer sent and BIRD accepted (it installed 10.20.0.0/16 via
    // 10.99.0.2, AS path 65001).
    assert_eq!(
        hex::encode(&out[0]),
        "ffffffffffffffffffffffffffffffff002d0104fde9005a0a00000210020e010400010001020041040000fde9"
    );
    assert_eq!(
        hex::encode(&out[2]),
        "ffffffffffffffffffffffffffffffff002e02000000144001010040020602010000fde94003040a630002100a14"
    );
    assert_eq!(
        hex::encode(&out[3]),
        "ffffffffffffffffffffffffffffffff00170200000000"
    );
    let est = drain(&mut s);
    assert!(est.contains(&SessionEvent::Established {
        peer_asn: 65000,
        peer_router_id: Ipv4Addr::new(192, 0, 2, 1),
        peer_address: Ipv4Addr::new(10, 99, 0, 1),
        hold_time: 90,
    }));

    for m in &bird[2..5] {
        feed_bytewise(&mut s, now, m);
    }
    let ev = drain(&mut s);
    assert_eq!(
        learned(&ev),
        vec![p("192.168.128.0/17"), p("10.11.0.0/24"), p("10.10.0.0/16")]
    );
    assert_eq!(s.stats().prefixes_accepted, 3);

    // ROUTE-REFRESH: we answer with our Adj-RIB-Out.
    feed_bytewise(&mut s, now, &bird[5]);
    let again = sent(&mut s);
    assert_eq!(again, vec![out[2].clone()]);

    feed_bytewise(&mut s, now, &bird[6]);
    assert_eq!(
        withdrawn(&drain(&mut s)),
        vec![p("192.168.128.0/17"), p("10.11.0.0/24"), p("10.10.0.0/16")]
    );
    assert_eq!(s.stats().prefixes_received, 0);

    feed_bytewise(&mut s, now, &bird[7]);
    assert!(drain(&mut s).contains(&SessionEvent::Down {
        reason: DownReason::PeerNotification(Notification::new(6, 2, vec![]))
    }));
    assert_eq!(s.state(), State::Idle);
    assert_eq!(s.poll_transmit(OUT), None, "no reply to a NOTIFICATION");
}

#[test]
fn malformed_attribute_in_real_update_is_treat_as_withdraw() {
    let bird = messages(include_str!("../testdata/bird2_two_octet_session.hex"));
    let now = Instant::now();
    let mut s = Session::new(config(65000)).unwrap();
    establish(&mut s, now, &bird);
    feed_bytewise(&mut s, now, &bird[3]);
    assert_eq!(learned(&drain(&mut s)), vec![p("10.10.0.0/16")]);
    // Same UPDATE with an undefined ORIGIN value (7).
    let mut bad = bird[3].clone();
    let origin = bad.windows(3).position(|w| w == [0x40, 1, 1]).unwrap() + 3;
    bad[origin] = 7;
    feed_bytewise(&mut s, now, &bad);
    assert_eq!(withdrawn(&drain(&mut s)), vec![p("10.10.0.0/16")]);
    assert_eq!(s.state(), State::Established);
    assert_eq!(s.poll_transmit(OUT), None);
    assert_eq!(s.stats().counters.updates_treated_as_withdraw, 1);
    // A broken NLRI field, on the other hand, resets the session (RFC 7606 section 5.3).
    let mut bad = bird[3].clone();
    let last = bad.len() - 3;
    bad[last] = 40;
    feed_bytewise(&mut s, now, &bad);
    assert_eq!(s.state(), State::Idle);
    let notif = Message::decode(&sent(&mut s)[0], CodecContext::default()).unwrap();
    assert_eq!(
        notif,
        Message::Notification(Notification::new(3, 10, vec![]))
    );
}

#[test]
fn four_octet_session_replay_with_loop_detection() {
    let bird = messages(include_str!("../testdata/bird2_four_octet_session.hex"));
    let now = Instant::now();
    let mut s = Session::new(config(4_200_000_001)).unwrap();
    establish(&mut s, now, &bird);
    assert_eq!(s.peer().unwrap().asn, 4_200_000_001);
    assert_eq!(s.peer().unwrap().hold_time, 90);
    drain(&mut s);
    for m in &bird[2..6] {
        feed_bytewise(&mut s, now, m);
    }
    // 10.20.0.0/16 came back with AS path 4200000001 65001: our own AS, a loop.
    assert_eq!(
        learned(&drain(&mut s)),
        vec![p("192.168.128.0/17"), p("10.11.0.0/24"), p("10.10.0.0/16")]
    );
    let st = s.stats();
    assert_eq!((st.prefixes_received, st.prefixes_accepted), (4, 3));
    assert_eq!(st.counters.routes_rejected, 1);
    feed_bytewise(&mut s, now, bird.last().unwrap());
    assert_eq!(
        s.stats().last_error,
        Some(DownReason::PeerNotification(Notification::new(
            1,
            3,
            vec![9]
        )))
    );
}

#[test]
fn wrong_peer_as_is_refused_like_bird_does() {
    let bird = messages(include_str!("../testdata/bird2_bad_peer_as.hex"));
    let now = Instant::now();
    // We expect AS 65002 but BIRD is AS 65000.
    let mut s = Session::new(config(65002)).unwrap();
    s.start(now);
    s.handle_connected(now, OUT).unwrap();
    sent(&mut s);
    feed_bytewise(&mut s, now, &bird[0]);
    let out = sent(&mut s);
    let msg = Message::decode(&out[0], CodecContext::default()).unwrap();
    assert!(matches!(msg, Message::Notification(ref n) if (n.code, n.subcode) == (2, 2)));
    assert_eq!(
        s.stats().last_error,
        Some(DownReason::BadPeerAs {
            expected: 65002,
            received: 65000
        })
    );
}
