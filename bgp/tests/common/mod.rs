//! Test harness: two sessions wired back to back over a simulated TCP connection,
//! with a simulated clock (quinn-proto's `Pair` idea).
#![allow(dead_code)]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bgp::wire::{CodecContext, Framer, Message};
use bgp::{Direction, Session, SessionConfig, SessionEvent, State};

pub const CLOUD_ASN: u32 = 65000;
pub const CUSTOMER_ASN: u32 = 65001;

/// The messages `s` queued for the peer on its connection `d`, decoded.
pub fn sent_on(s: &mut Session, d: Direction) -> Vec<Message> {
    let mut f = Framer::new();
    f.push(&s.poll_transmit(d).unwrap_or_default());
    std::iter::from_fn(|| f.next_message().unwrap())
        .map(|m| Message::decode(&m, CodecContext::default()).unwrap())
        .collect()
}

/// The events `s` reported since the last call.
pub fn drain(s: &mut Session) -> Vec<SessionEvent> {
    std::iter::from_fn(|| s.poll_event()).collect()
}

pub fn keepalive() -> Vec<u8> {
    Message::Keepalive.encode(CodecContext::default())
}

/// Code and subcode of the first NOTIFICATION among `msgs`.
pub fn notification(msgs: &[Message]) -> Option<(u8, u8)> {
    msgs.iter().find_map(|m| match m {
        Message::Notification(n) => Some((n.code, n.subcode)),
        _ => None,
    })
}

pub fn customer_config() -> SessionConfig {
    let mut c = SessionConfig::new(
        CUSTOMER_ASN,
        Ipv4Addr::new(10, 0, 0, 2),
        Ipv4Addr::new(169, 254, 10, 2),
        Ipv4Addr::new(169, 254, 10, 1),
    );
    c.local_prefixes = vec![
        "10.1.0.0/16".parse().unwrap(),
        "10.2.0.0/16".parse().unwrap(),
    ];
    c
}

pub fn cloud_config() -> SessionConfig {
    let mut c = SessionConfig::new(
        CLOUD_ASN,
        Ipv4Addr::new(10, 0, 0, 1),
        Ipv4Addr::new(169, 254, 10, 1),
        Ipv4Addr::new(169, 254, 10, 2),
    );
    c.peer_asn = CUSTOMER_ASN;
    c.hold_time = 30;
    c.local_prefixes = vec!["172.16.0.0/12".parse().unwrap()];
    c
}

pub struct Side {
    pub session: Session,
    pub events: Vec<SessionEvent>,
}

impl Side {
    /// Events recorded since the last call.
    pub fn take_events(&mut self) -> Vec<SessionEvent> {
        std::mem::take(&mut self.events)
    }

    pub fn downs(&self) -> Vec<&SessionEvent> {
        self.events
            .iter()
            .filter(|e| matches!(e, SessionEvent::Down { .. }))
            .collect()
    }
}

pub struct Pair {
    pub now: Instant,
    pub a: Side,
    pub b: Side,
    pub connected: bool,
    /// Which end `a` is of the connection: it dialed (Outbound) or accepted it.
    pub a_end: Direction,
    /// Drop bytes silently in both directions (a dead tunnel: no FIN, no RST).
    pub blackhole: bool,
}

impl Pair {
    pub fn new(a: SessionConfig, b: SessionConfig) -> Self {
        Self {
            now: Instant::now(),
            a: Side {
                session: Session::new(a).unwrap(),
                events: Vec::new(),
            },
            b: Side {
                session: Session::new(b).unwrap(),
                events: Vec::new(),
            },
            connected: false,
            a_end: Direction::Outbound,
            blackhole: false,
        }
    }

    /// Starts both sessions and runs until nothing moves.
    pub fn start(&mut self) {
        self.a.session.start(self.now);
        self.b.session.start(self.now);
        self.drive();
    }

    /// One round: carry bytes both ways, then act on I/O events. True if anything moved.
    pub fn step(&mut self) -> bool {
        let now = self.now;
        let mut moved = false;
        for from_a in [true, false] {
            let (src, dst, end) = if from_a {
                (&mut self.a, &mut self.b, self.a_end)
            } else {
                (&mut self.b, &mut self.a, self.a_end.other())
            };
            if let Some(bytes) = src.session.poll_transmit(end) {
                moved = true;
                if self.connected && !self.blackhole {
                    dst.session.handle_bytes(now, end.other(), &bytes);
                }
            }
        }
        for from_a in [true, false] {
            let (src, dst) = if from_a {
                (&mut self.a, &mut self.b)
            } else {
                (&mut self.b, &mut self.a)
            };
            let end = if from_a {
                self.a_end
            } else {
                self.a_end.other()
            };
            while let Some(ev) = src.session.poll_event() {
                moved = true;
                match ev {
                    SessionEvent::Connect if !self.connected => {
                        let accepts = matches!(dst.session.state(), State::Connect | State::Active);
                        if accepts {
                            self.connected = true;
                            self.a_end = if from_a {
                                Direction::Outbound
                            } else {
                                Direction::Inbound
                            };
                            src.session
                                .handle_connected(now, Direction::Outbound)
                                .unwrap();
                            dst.session
                                .handle_connected(now, Direction::Inbound)
                                .unwrap();
                        } else {
                            src.session.handle_disconnected(now, Direction::Outbound);
                        }
                    }
                    SessionEvent::Disconnect(d) if self.connected && d == end => {
                        // Flush what is still queued, then close.
                        if let Some(bytes) = src.session.poll_transmit(end) {
                            if !self.blackhole {
                                dst.session.handle_bytes(now, end.other(), &bytes);
                            }
                        }
                        self.connected = false;
                        dst.session.handle_disconnected(now, end.other());
                    }
                    _ => {}
                }
                src.events.push(ev);
            }
        }
        moved
    }

    pub fn drive(&mut self) {
        for _ in 0..10_000 {
            if !self.step() {
                return;
            }
        }
        panic!("pair did not settle");
    }

    /// Moves the clock forward by `d`, firing every timer on the way.
    pub fn advance(&mut self, d: Duration) {
        let until = self.now + d;
        loop {
            let next = [self.a.session.poll_timeout(), self.b.session.poll_timeout()]
                .into_iter()
                .flatten()
                .min();
            match next {
                Some(t) if t <= until => {
                    self.now = self.now.max(t);
                    self.a.session.handle_timeout(self.now);
                    self.b.session.handle_timeout(self.now);
                    self.drive();
                }
                _ => break,
            }
        }
        self.now = until;
        self.drive();
    }

    pub fn both(&self, state: State) -> bool {
        self.a.session.state() == state && self.b.session.state() == state
    }
}
