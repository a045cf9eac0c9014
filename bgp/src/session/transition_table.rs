//! Every (state, event) pair of the FSM against an expected table: the next state and
//! the NOTIFICATION sent, if any.

use std::net::Ipv4Addr;
use std::time::Instant;

use super::{Direction, Session};

const OUT: Direction = Direction::Outbound;
use crate::config::SessionConfig;
use crate::fsm::{Event, State};
use crate::wire::{
    CodecContext, DecodeError, Framer, Message, Notification, Open, RouteRefresh, Update,
};

fn config() -> SessionConfig {
    SessionConfig::new(
        65001,
        Ipv4Addr::new(10, 0, 0, 2),
        Ipv4Addr::new(169, 254, 10, 2),
        Ipv4Addr::new(169, 254, 10, 1),
    )
}

fn peer_open() -> Open {
    Open::ours(65000, 90, Ipv4Addr::new(10, 0, 0, 1))
}

/// A session brought to `state` through the public API.
fn in_state(state: State, now: Instant) -> Session {
    let mut s = Session::new(config()).unwrap();
    s.start(now);
    match state {
        State::Idle => {
            s.handle_disconnected(now, OUT);
            s.handle_disconnected(now, OUT);
        }
        State::Connect => {}
        State::Active => s.handle_disconnected(now, OUT),
        _ => {
            s.handle_connected(now, OUT).unwrap();
            let ctx = CodecContext::default();
            if state != State::OpenSent {
                s.handle_bytes(now, OUT, &Message::Open(peer_open()).encode(ctx));
            }
            if state == State::Established {
                s.handle_bytes(now, OUT, &Message::Keepalive.encode(ctx));
            }
        }
    }
    assert_eq!(s.state(), state);
    while s.poll_event().is_some() {}
    s.poll_transmit(OUT);
    s
}

fn events() -> Vec<Event> {
    vec![
        Event::ManualStart,
        Event::ManualStop,
        Event::ConnectRetryTimerExpires,
        Event::HoldTimerExpires,
        Event::KeepaliveTimerExpires,
        Event::IdleHoldTimerExpires,
        Event::TcpConnectionConfirmed(OUT),
        Event::TcpConnectionFails,
        Event::BgpOpen(peer_open()),
        Event::MessageError(DecodeError::BadMarker),
        Event::NotifMsg(Notification::new(6, 4, vec![])),
        Event::KeepAliveMsg,
        Event::UpdateMsg(Update::default()),
        Event::RouteRefreshMsg(RouteRefresh {
            afi: 1,
            subtype: 0,
            safi: 1,
        }),
    ]
}

type Row = [(State, Option<(u8, u8)>); 14];

fn expected(state: State) -> Row {
    use State::*;
    let same = (state, None);
    let down = |n: Option<(u8, u8)>| (Idle, n);
    match state {
        Idle => [
            (Connect, None),
            same,
            same,
            same,
            same,
            (Connect, None),
            same,
            same,
            same,
            same,
            same,
            same,
            same,
            same,
        ],
        Connect => [
            same,
            down(None),
            same,
            same,
            same,
            same,
            (OpenSent, None),
            (Active, None),
            same,
            same,
            same,
            same,
            same,
            same,
        ],
        Active => [
            same,
            down(None),
            (Connect, None),
            same,
            same,
            same,
            (OpenSent, None),
            down(None),
            same,
            same,
            same,
            same,
            same,
            same,
        ],
        OpenSent => [
            same,
            down(Some((6, 2))),
            same,
            down(Some((4, 0))),
            same,
            same,
            same,
            down(None),
            (OpenConfirm, None),
            down(Some((1, 1))),
            down(None),
            down(Some((5, 1))),
            down(Some((5, 1))),
            down(Some((5, 1))),
        ],
        OpenConfirm => [
            same,
            down(Some((6, 2))),
            same,
            down(Some((4, 0))),
            same,
            same,
            same,
            down(None),
            down(Some((5, 2))),
            down(Some((1, 1))),
            down(None),
            (Established, None),
            down(Some((5, 2))),
            down(Some((5, 2))),
        ],
        Established => [
            same,
            down(Some((6, 2))),
            same,
            down(Some((4, 0))),
            same,
            same,
            same,
            down(None),
            down(Some((5, 3))),
            down(Some((1, 1))),
            down(None),
            same,
            same,
            same,
        ],
    }
}

fn sent_notification(s: &mut Session) -> Option<(u8, u8)> {
    let mut f = Framer::new();
    f.push(&s.poll_transmit(OUT).unwrap_or_default());
    let mut found = None;
    while let Ok(Some(m)) = f.next_message() {
        if let Ok(Message::Notification(n)) = Message::decode(&m, CodecContext::default()) {
            found = Some((n.code, n.subcode));
        }
    }
    found
}

#[test]
fn every_state_and_event() {
    use State::*;
    let now = Instant::now();
    for state in [Idle, Connect, Active, OpenSent, OpenConfirm, Established] {
        for (event, (next, notification)) in events().into_iter().zip(expected(state)) {
            let mut s = in_state(state, now);
            let label = format!("{state} + {event:?}");
            s.handle_event(now, event);
            assert_eq!(s.state(), next, "{label}");
            assert_eq!(sent_notification(&mut s), notification, "{label}");
        }
    }
}
