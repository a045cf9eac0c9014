//! One session against a scripted peer: every FSM transition, with a simulated clock.

mod common;

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bgp::wire::{Capability, CodecContext, Message, Notification, Open, Update};
use bgp::{ConnectionRefused, Direction, DownReason, Session, SessionEvent, State};

const OUT: Direction = Direction::Outbound;
use common::*;

const SECS: fn(u64) -> Duration = Duration::from_secs;

/// What the session sent on its one (outbound) connection.
fn sent(s: &mut Session) -> Vec<Message> {
    sent_on(s, OUT)
}

fn cloud_open(hold: u16) -> Vec<u8> {
    Message::Open(Open::ours(CLOUD_ASN, hold, Ipv4Addr::new(10, 0, 0, 1)))
        .encode(CodecContext::default())
}

/// A customer session in OpenSent at `t0`.
fn open_sent() -> (Session, Instant) {
    let t0 = Instant::now();
    let mut s = Session::new(customer_config()).unwrap();
    s.start(t0);
    s.handle_connected(t0, OUT).unwrap();
    assert_eq!(s.state(), State::OpenSent);
    drain(&mut s);
    (s, t0)
}

fn open_confirm(hold: u16) -> (Session, Instant) {
    let (mut s, t0) = open_sent();
    sent(&mut s);
    s.handle_bytes(t0, OUT, &cloud_open(hold));
    assert_eq!(s.state(), State::OpenConfirm);
    assert_eq!(sent(&mut s), vec![Message::Keepalive]);
    drain(&mut s);
    (s, t0)
}

fn established() -> (Session, Instant) {
    let (mut s, t0) = open_confirm(90);
    s.handle_bytes(t0, OUT, &keepalive());
    assert_eq!(s.state(), State::Established);
    sent(&mut s);
    drain(&mut s);
    (s, t0)
}

#[test]
fn idle_connect_active_cycle() {
    let t0 = Instant::now();
    let mut s = Session::new(customer_config()).unwrap();
    assert_eq!(s.state(), State::Idle);
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(
        s.handle_connected(t0, OUT),
        Err(ConnectionRefused {
            state: State::Idle,
            notification: None
        })
    );

    s.start(t0);
    assert_eq!(
        drain(&mut s),
        vec![
            SessionEvent::Connect,
            SessionEvent::StateChanged {
                from: State::Idle,
                to: State::Connect
            }
        ]
    );
    // ConnectRetry expires in Connect: abandon the attempt and dial again.
    assert_eq!(s.poll_timeout(), Some(t0 + SECS(30)));
    s.handle_timeout(t0 + SECS(30));
    assert_eq!(
        drain(&mut s),
        vec![SessionEvent::Disconnect(OUT), SessionEvent::Connect]
    );
    assert_eq!(s.state(), State::Connect);
    // The attempt fails: Active, and a new try when ConnectRetry expires.
    let t1 = t0 + SECS(31);
    s.handle_disconnected(t1, OUT);
    assert_eq!(s.state(), State::Active);
    assert_eq!(s.poll_timeout(), Some(t1 + SECS(30)));
    s.handle_timeout(t1 + SECS(30));
    assert!(drain(&mut s).contains(&SessionEvent::Connect));
    assert_eq!(s.state(), State::Connect);
    // Failures in Active go back to Idle, then the idle hold timer restarts the session.
    let t2 = t1 + SECS(31);
    s.handle_disconnected(t2, OUT);
    s.handle_disconnected(t2, OUT);
    assert_eq!(s.state(), State::Idle);
    assert_eq!(s.stats().last_error, Some(DownReason::ConnectionClosed));
    assert_eq!(s.poll_timeout(), Some(t2 + SECS(5)));
    s.handle_timeout(t2 + SECS(5));
    assert_eq!(s.state(), State::Connect);
}

/// After a failure the session sits in Idle for the idle hold; a connection from the peer
/// in that time is taken at once (it used to be refused, and two vpngw speakers whose
/// doubling idle holds alternated never met). An operator-stopped session still refuses.
#[test]
fn idle_after_a_failure_takes_the_peers_connection() {
    let (mut s, t0) = open_sent();
    s.handle_disconnected(t0, OUT);
    assert_eq!(s.state(), State::Idle);
    assert_eq!(s.poll_timeout(), Some(t0 + SECS(5)));
    drain(&mut s);
    let t1 = t0 + SECS(1);
    s.handle_connected(t1, OUT).unwrap();
    assert_eq!(s.state(), State::OpenSent);
    assert!(matches!(sent(&mut s).as_slice(), [Message::Open(_)]));
    assert!(
        !drain(&mut s).contains(&SessionEvent::Connect),
        "no second dial"
    );
    s.handle_bytes(t1, OUT, &cloud_open(90));
    s.handle_bytes(t1, OUT, &keepalive());
    assert_eq!(s.state(), State::Established);

    s.stop(t1);
    assert_eq!(s.state(), State::Idle);
    assert_eq!(
        s.handle_connected(t1, OUT),
        Err(ConnectionRefused {
            state: State::Idle,
            notification: None
        })
    );
}

#[test]
fn passive_session_waits_for_the_peer() {
    let t0 = Instant::now();
    let mut cfg = customer_config();
    cfg.passive = true;
    let mut s = Session::new(cfg).unwrap();
    s.start(t0);
    assert_eq!(s.state(), State::Active);
    assert!(!drain(&mut s).contains(&SessionEvent::Connect));
    s.handle_connected(t0, OUT).unwrap();
    let msgs = sent(&mut s);
    let [Message::Open(open)] = msgs.as_slice() else {
        panic!("{msgs:?}")
    };
    assert_eq!(open.asn(), CUSTOMER_ASN);
    assert_eq!(open.hold_time, 90);
    assert_eq!(open.bgp_id, Ipv4Addr::new(10, 0, 0, 2));
    assert!(open.capabilities.contains(&Capability::RouteRefresh));
    // A second connection of the same direction is refused: a collision (Cease/7).
    assert_eq!(
        s.handle_connected(t0, OUT),
        Err(ConnectionRefused {
            state: State::OpenSent,
            notification: Some(bgp::collision_notification())
        })
    );
}

#[test]
fn open_sent_hold_timer_is_four_minutes() {
    let (mut s, t0) = open_sent();
    sent(&mut s);
    s.handle_timeout(t0 + SECS(239));
    assert_eq!(s.state(), State::OpenSent);
    s.handle_timeout(t0 + SECS(240));
    assert_eq!(notification(&sent(&mut s)), Some((4, 0)));
    assert_eq!(s.state(), State::Idle);
    let ev = drain(&mut s);
    assert!(ev.contains(&SessionEvent::Disconnect(OUT)));
    assert!(ev.contains(&SessionEvent::Down {
        reason: DownReason::HoldTimerExpired
    }));
}

#[test]
fn open_sent_refuses_bad_opens() {
    // Wrong AS.
    let (mut s, t0) = open_sent();
    sent(&mut s);
    let other = Message::Open(Open::ours(64999, 90, Ipv4Addr::new(1, 1, 1, 1)));
    s.handle_bytes(t0, OUT, &other.encode(CodecContext::default()));
    assert_eq!(notification(&sent(&mut s)), Some((2, 2)));
    // Hold time 2.
    let (mut s, t0) = open_sent();
    sent(&mut s);
    let mut open = Open::ours(CLOUD_ASN, 90, Ipv4Addr::new(1, 1, 1, 1));
    open.hold_time = 2;
    s.handle_bytes(
        t0,
        OUT,
        &Message::Open(open).encode(CodecContext::default()),
    );
    assert_eq!(notification(&sent(&mut s)), Some((2, 6)));
    // Identifier 0.0.0.0.
    let (mut s, t0) = open_sent();
    sent(&mut s);
    let open = Open::ours(CLOUD_ASN, 90, Ipv4Addr::UNSPECIFIED);
    s.handle_bytes(
        t0,
        OUT,
        &Message::Open(open).encode(CodecContext::default()),
    );
    assert_eq!(notification(&sent(&mut s)), Some((2, 3)));
    // IPv6 only.
    let (mut s, t0) = open_sent();
    sent(&mut s);
    let mut open = Open::ours(CLOUD_ASN, 90, Ipv4Addr::new(1, 1, 1, 1));
    open.capabilities[0] = Capability::Multiprotocol { afi: 2, safi: 1 };
    s.handle_bytes(
        t0,
        OUT,
        &Message::Open(open).encode(CodecContext::default()),
    );
    let msgs = sent(&mut s);
    assert_eq!(
        msgs.last(),
        Some(&Message::Notification(Notification::new(
            2,
            7,
            vec![1, 4, 0, 1, 0, 1]
        )))
    );
    assert_eq!(s.stats().last_error, Some(DownReason::NoIpv4Unicast));
}

#[test]
fn unexpected_messages_are_fsm_errors() {
    let (mut s, t0) = open_sent();
    sent(&mut s);
    s.handle_bytes(t0, OUT, &keepalive());
    assert_eq!(notification(&sent(&mut s)), Some((5, 1)));

    let (mut s, t0) = open_sent();
    sent(&mut s);
    s.handle_bytes(
        t0,
        OUT,
        &Message::Update(Update::default()).encode(CodecContext::default()),
    );
    assert_eq!(notification(&sent(&mut s)), Some((5, 1)));

    let (mut s, t0) = open_confirm(90);
    s.handle_bytes(t0, OUT, &cloud_open(90));
    assert_eq!(notification(&sent(&mut s)), Some((5, 2)));
    assert_eq!(
        s.stats().last_error,
        Some(DownReason::UnexpectedMessage(State::OpenConfirm))
    );

    let (mut s, t0) = established();
    s.handle_bytes(t0, OUT, &cloud_open(90));
    assert_eq!(notification(&sent(&mut s)), Some((5, 3)));
    assert_eq!(s.state(), State::Idle);
}

#[test]
fn open_confirm_timers_and_notification() {
    // Negotiated hold is the smaller offer: 9 s, keepalive every 3 s.
    let (mut s, t0) = open_confirm(9);
    assert_eq!(s.peer().unwrap().hold_time, 9);
    assert_eq!(s.poll_timeout(), Some(t0 + SECS(3)));
    s.handle_timeout(t0 + SECS(3));
    assert_eq!(sent(&mut s), vec![Message::Keepalive]);
    s.handle_timeout(t0 + SECS(9));
    let msgs = sent(&mut s);
    assert_eq!(notification(&msgs), Some((4, 0)));
    assert_eq!(s.state(), State::Idle);

    // A NOTIFICATION is never answered.
    let (mut s, t0) = open_confirm(90);
    let n = Message::Notification(Notification::new(6, 4, vec![])).encode(CodecContext::default());
    s.handle_bytes(t0, OUT, &n);
    assert_eq!(s.state(), State::Idle);
    assert_eq!(s.poll_transmit(OUT), None);
}

#[test]
fn established_keepalive_hold_and_header_errors() {
    let (mut s, t0) = established();
    // Keepalive every 30 s (hold 90 / 3); each one received restarts the hold timer.
    assert_eq!(s.poll_timeout(), Some(t0 + SECS(30)));
    for i in 1..=10u64 {
        let t = t0 + SECS(30 * i);
        s.handle_timeout(t);
        assert_eq!(sent(&mut s), vec![Message::Keepalive]);
        s.handle_bytes(t, OUT, &keepalive());
    }
    assert_eq!(s.state(), State::Established);
    // Hold timer: 90 s after the last keepalive received.
    let last = t0 + SECS(300);
    s.handle_timeout(last + SECS(89));
    assert_eq!(s.state(), State::Established);
    sent(&mut s);
    s.handle_timeout(last + SECS(90));
    assert_eq!(notification(&sent(&mut s)), Some((4, 0)));

    // Broken marker: Connection Not Synchronized.
    let (mut s, t0) = established();
    let mut bad = keepalive();
    bad[0] = 0;
    s.handle_bytes(t0, OUT, &bad);
    assert_eq!(notification(&sent(&mut s)), Some((1, 1)));
    // Unknown type: Bad Message Type with the type as data.
    let (mut s, t0) = established();
    let mut bad = keepalive();
    bad[18] = 9;
    s.handle_bytes(t0, OUT, &bad);
    let msgs = sent(&mut s);
    assert_eq!(
        msgs.last(),
        Some(&Message::Notification(Notification::new(1, 3, vec![9])))
    );
    // KEEPALIVE with a body: Bad Message Length with the length as data.
    let (mut s, t0) = established();
    let mut bad = keepalive();
    bad[17] = 20;
    bad.push(0);
    s.handle_bytes(t0, OUT, &bad);
    let msgs = sent(&mut s);
    assert_eq!(
        msgs.last(),
        Some(&Message::Notification(Notification::new(1, 2, vec![0, 20])))
    );
}

#[test]
fn connection_loss_in_established() {
    let (mut s, t0) = established();
    s.handle_disconnected(t0, OUT);
    assert_eq!(s.state(), State::Idle);
    assert_eq!(s.poll_transmit(OUT), None);
    let ev = drain(&mut s);
    assert!(!ev.contains(&SessionEvent::Disconnect(OUT)));
    assert!(ev.contains(&SessionEvent::Down {
        reason: DownReason::ConnectionClosed
    }));
    // Restarts after the idle hold time.
    s.handle_timeout(t0 + SECS(5));
    assert_eq!(s.state(), State::Connect);
}

#[test]
fn stop_sends_cease_and_stays_idle() {
    let (mut s, t0) = established();
    s.stop(t0);
    assert_eq!(
        sent(&mut s),
        vec![Message::Notification(Notification::new(6, 2, vec![]))]
    );
    assert_eq!(s.state(), State::Idle);
    assert_eq!(s.poll_timeout(), None);
    assert_eq!(s.stats().last_error, Some(DownReason::AdminStop));
}

#[test]
fn sending_an_update_postpones_the_keepalive() {
    let (mut s, t0) = established();
    let t = t0 + SECS(20);
    s.set_local_prefixes(t, &["10.9.0.0/16".parse().unwrap()]);
    assert!(matches!(
        sent(&mut s).as_slice(),
        [Message::Update(_), Message::Update(_)]
    ));
    assert_eq!(s.poll_timeout(), Some(t + SECS(30)));
}

#[test]
fn ebgp_peer_may_share_our_identifier() {
    // RFC 6286 section 2.2: only an internal peer with our identifier is refused.
    let (mut s, t0) = open_sent();
    sent(&mut s);
    let open = Open::ours(CLOUD_ASN, 90, Ipv4Addr::new(10, 0, 0, 2));
    s.handle_bytes(
        t0,
        OUT,
        &Message::Open(open).encode(CodecContext::default()),
    );
    assert_eq!(s.state(), State::OpenConfirm);
}

#[test]
fn long_notification_data_is_cut_to_the_message_limit() {
    let n = Message::Notification(Notification::new(6, 0, vec![7; 5000]));
    let bytes = n.encode(CodecContext::default());
    assert_eq!(bytes.len(), 4096);
    assert_eq!(&bytes[16..18], &4096u16.to_be_bytes());
    assert!(Message::decode(&bytes, CodecContext::default()).is_ok());
}
