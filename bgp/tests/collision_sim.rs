//! Simultaneous dials: two speakers each dial the other at once, and the segments of
//! both TCP connections are delivered in many random orders (connection set-up at
//! either end, bytes, FINs). Both must end Established on the same connection with no
//! failure on the way: no session down, no second dial.
//!
//! Against another vpngw `Session`, and against a model of RFC 4271 6.8 as BIRD does it
//! (answers every OPEN with a KEEPALIVE at once; resolves when an OPEN arrives while the
//! other connection is in OpenConfirm, keeping the one initiated by the higher BGP
//! Identifier; closes a connection whose OPEN arrives while the other is Established).

mod common;

use std::collections::VecDeque;
use std::net::Ipv4Addr;
use std::time::Instant;

use bgp::wire::{CodecContext, Framer, Message, Open};
use bgp::{collision_notification, Direction, Session, SessionEvent, State};
use common::*;

const OUT: Direction = Direction::Outbound;
const IN: Direction = Direction::Inbound;

/// One end of the simulated network.
trait Endpoint {
    /// A connection is up: Err carries what to write before closing it (refused).
    fn connected(&mut self, now: Instant, d: Direction) -> Result<(), Option<Vec<u8>>>;
    fn bytes(&mut self, now: Instant, d: Direction, bytes: &[u8]);
    fn disconnected(&mut self, now: Instant, d: Direction);
    fn transmit(&mut self, d: Direction) -> Option<Vec<u8>>;
    /// Connections it closes, after the bytes already taken.
    fn closes(&mut self) -> Vec<Direction>;
    fn established_on(&self) -> Option<Direction>;
    /// Why the run is not clean (session down, dialed again), if it is not.
    fn failure(&self) -> Option<String>;
}

struct Vpngw {
    session: Session,
    events: Vec<SessionEvent>,
}

impl Endpoint for Vpngw {
    fn connected(&mut self, now: Instant, d: Direction) -> Result<(), Option<Vec<u8>>> {
        self.session
            .handle_connected(now, d)
            .map_err(|r| r.farewell())
    }

    fn bytes(&mut self, now: Instant, d: Direction, bytes: &[u8]) {
        self.session.handle_bytes(now, d, bytes);
    }

    fn disconnected(&mut self, now: Instant, d: Direction) {
        self.session.handle_disconnected(now, d);
    }

    fn transmit(&mut self, d: Direction) -> Option<Vec<u8>> {
        self.session.poll_transmit(d)
    }

    fn closes(&mut self) -> Vec<Direction> {
        let mut closes = Vec::new();
        while let Some(ev) = self.session.poll_event() {
            if let SessionEvent::Disconnect(d) = ev {
                closes.push(d);
            }
            self.events.push(ev);
        }
        closes
    }

    fn established_on(&self) -> Option<Direction> {
        (self.session.state() == State::Established)
            .then(|| self.session.connection())
            .flatten()
    }

    fn failure(&self) -> Option<String> {
        let bad = self.events.iter().any(|e| {
            matches!(
                e,
                SessionEvent::Down { .. }
                    | SessionEvent::StateChanged {
                        to: State::Idle,
                        ..
                    }
            )
        });
        let dials = self
            .events
            .iter()
            .filter(|e| **e == SessionEvent::Connect)
            .count();
        if self.session.stats().counters.connection_collisions == 0 {
            return Some("no collision seen".into());
        }
        (bad || dials != 1).then(|| format!("{:?}", self.events))
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnState {
    None,
    OpenSent,
    OpenConfirm,
    Established,
    Closed,
}

/// RFC 4271 6.8 as BIRD does it, per connection; the cloud side (AS 65000).
struct RfcPeer {
    router_id: Ipv4Addr,
    /// The customer's identifier and AS, to tell who is dominant.
    other: (Ipv4Addr, u32),
    conns: [ConnState; 2],
    framers: [Framer; 2],
    tx: [Vec<u8>; 2],
    closes: Vec<Direction>,
    failure: Option<String>,
}

fn ix(d: Direction) -> usize {
    match d {
        Direction::Outbound => 0,
        Direction::Inbound => 1,
    }
}

impl RfcPeer {
    fn new(router_id: Ipv4Addr) -> Self {
        let c = customer_config();
        Self {
            router_id,
            other: (c.router_id, c.local_asn),
            conns: [ConnState::None; 2],
            framers: [Framer::new(), Framer::new()],
            tx: [Vec::new(), Vec::new()],
            closes: Vec::new(),
            failure: None,
        }
    }

    fn send(&mut self, d: Direction, m: &Message) {
        self.tx[ix(d)].extend(m.encode(CodecContext::default()));
    }

    fn close(&mut self, d: Direction, cease: bool) {
        if cease {
            self.send(d, &Message::Notification(collision_notification()));
        }
        if self.conns[ix(d)] == ConnState::Established {
            self.failure = Some(format!("Established connection {d} closed"));
        }
        self.conns[ix(d)] = ConnState::Closed;
        self.closes.push(d);
    }

    fn message(&mut self, d: Direction, m: Message) {
        let other = d.other();
        match (self.conns[ix(d)], m) {
            (ConnState::OpenSent, Message::Open(_)) => {
                match self.conns[ix(other)] {
                    ConnState::OpenConfirm => {
                        let neighbour_dominant = (u32::from(self.other.0), self.other.1)
                            > (u32::from(self.router_id), CLOUD_ASN);
                        // Keep the connection the dominant speaker initiated.
                        if neighbour_dominant == (d == IN) {
                            self.close(other, true);
                        } else {
                            return self.close(d, true);
                        }
                    }
                    ConnState::Established => return self.close(d, true),
                    _ => {}
                }
                self.send(d, &Message::Keepalive);
                self.conns[ix(d)] = ConnState::OpenConfirm;
            }
            (ConnState::OpenConfirm, Message::Keepalive) => {
                self.conns[ix(d)] = ConnState::Established;
            }
            (ConnState::Established, Message::Keepalive | Message::Update(_)) => {}
            (ConnState::Closed, _) => {}
            (_, Message::Notification(_)) => self.close(d, false),
            (state, m) => {
                self.failure = Some(format!("{m:?} in {state:?} on {d}"));
                self.close(d, false);
            }
        }
    }
}

impl Endpoint for RfcPeer {
    fn connected(&mut self, _now: Instant, d: Direction) -> Result<(), Option<Vec<u8>>> {
        if self.conns[ix(d)] != ConnState::None {
            return Err(None);
        }
        self.conns[ix(d)] = ConnState::OpenSent;
        let open = Open::ours(CLOUD_ASN, 90, self.router_id);
        self.send(d, &Message::Open(open));
        Ok(())
    }

    fn bytes(&mut self, _now: Instant, d: Direction, bytes: &[u8]) {
        self.framers[ix(d)].push(bytes);
        while let Ok(Some(raw)) = self.framers[ix(d)].next_message() {
            let ctx = CodecContext {
                four_octet_as: true,
                ebgp: true,
            };
            match Message::decode(&raw, ctx) {
                Ok(m) => self.message(d, m),
                Err(e) => self.failure = Some(format!("undecodable from vpngw: {e}")),
            }
        }
    }

    fn disconnected(&mut self, _now: Instant, d: Direction) {
        if self.conns[ix(d)] == ConnState::Established {
            self.failure = Some(format!("Established connection {d} lost"));
        }
        self.conns[ix(d)] = ConnState::Closed;
    }

    fn transmit(&mut self, d: Direction) -> Option<Vec<u8>> {
        let t = std::mem::take(&mut self.tx[ix(d)]);
        (!t.is_empty()).then_some(t)
    }

    fn closes(&mut self) -> Vec<Direction> {
        std::mem::take(&mut self.closes)
    }

    fn established_on(&self) -> Option<Direction> {
        [OUT, IN]
            .into_iter()
            .find(|&d| self.conns[ix(d)] == ConnState::Established)
    }

    fn failure(&self) -> Option<String> {
        self.failure.clone()
    }
}

/// What travels on a connection towards one side.
enum Item {
    Bytes(Vec<u8>),
    Fin,
}

/// One TCP connection between sides 0 and 1.
#[derive(Default)]
struct Conn {
    /// Side i has not been told of the connection yet.
    unannounced: [bool; 2],
    /// Side i has the connection (taken and not closed).
    open: [bool; 2],
    /// In flight towards side i, each with its sender's sequence number.
    to: [VecDeque<(u64, Item)>; 2],
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Order {
    /// Each connection on its own: a later segment on one connection may be read before
    /// an earlier one on the other.
    Any,
    /// What a sender sends on either connection is read in the order it was sent, once
    /// the receiver has taken the connection: one path, one event loop.
    Sent,
}

struct Net {
    sides: [Box<dyn Endpoint>; 2],
    /// conns[k] was dialed by side k: side k's outbound, the other's inbound.
    conns: [Conn; 2],
    /// Next sequence number of each sender.
    seq: [u64; 2],
    order: Order,
}

fn direction(side: usize, conn: usize) -> Direction {
    if side == conn {
        OUT
    } else {
        IN
    }
}

fn conn_of(side: usize, d: Direction) -> usize {
    match d {
        Direction::Outbound => side,
        Direction::Inbound => 1 - side,
    }
}

enum Step {
    Announce,
    Deliver,
}

impl Net {
    fn new(sides: [Box<dyn Endpoint>; 2], order: Order) -> Self {
        let mut net = Self {
            sides,
            conns: Default::default(),
            seq: [0; 2],
            order,
        };
        for c in &mut net.conns {
            c.unannounced = [true, true];
        }
        net
    }

    /// `from` sends `item` on `conn`.
    fn send(&mut self, from: usize, conn: usize, item: Item) {
        self.seq[from] += 1;
        let seq = self.seq[from];
        self.conns[conn].to[1 - from].push_back((seq, item));
    }

    fn close(&mut self, side: usize, conn: usize) {
        if std::mem::take(&mut self.conns[conn].open[side]) {
            self.conns[conn].to[side].clear();
            self.send(side, conn, Item::Fin);
        }
    }

    /// Moves what `side` wants sent into the connections and closes what it closes.
    fn pump(&mut self, side: usize) {
        for d in [OUT, IN] {
            let conn = conn_of(side, d);
            while let Some(bytes) = self.sides[side].transmit(d) {
                if self.conns[conn].open[side] {
                    self.send(side, conn, Item::Bytes(bytes));
                }
            }
        }
        for d in self.sides[side].closes() {
            self.close(side, conn_of(side, d));
        }
    }

    fn ready(&self) -> Vec<(usize, usize, Step)> {
        let mut steps = Vec::new();
        for side in 0..2 {
            // The oldest segment towards `side` on a connection it has taken.
            let oldest = self
                .conns
                .iter()
                .filter(|c| !c.unannounced[side])
                .filter_map(|c| c.to[side].front().map(|(seq, _)| *seq))
                .min();
            for (conn, c) in self.conns.iter().enumerate() {
                if c.unannounced[side] {
                    steps.push((side, conn, Step::Announce));
                } else if let Some((seq, _)) = c.to[side].front() {
                    if self.order == Order::Any || Some(*seq) == oldest {
                        steps.push((side, conn, Step::Deliver));
                    }
                }
            }
        }
        steps
    }

    fn step(&mut self, (side, conn, step): (usize, usize, Step), now: Instant) {
        let d = direction(side, conn);
        match step {
            Step::Announce => {
                self.conns[conn].unannounced[side] = false;
                match self.sides[side].connected(now, d) {
                    Ok(()) => self.conns[conn].open[side] = true,
                    Err(farewell) => {
                        if let Some(bytes) = farewell {
                            self.send(side, conn, Item::Bytes(bytes));
                        }
                        self.send(side, conn, Item::Fin);
                    }
                }
            }
            Step::Deliver => {
                let open = self.conns[conn].open[side];
                match self.conns[conn].to[side].pop_front() {
                    Some((_, Item::Bytes(bytes))) if open => self.sides[side].bytes(now, d, &bytes),
                    Some((_, Item::Fin)) if open => {
                        self.close(side, conn);
                        self.sides[side].disconnected(now, d);
                    }
                    _ => {}
                }
            }
        }
        self.pump(side);
    }
}

/// xorshift64*: a fixed, dependency-free source of delivery orders.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed >> 12;
    *seed ^= *seed << 25;
    *seed ^= *seed >> 27;
    seed.wrapping_mul(0x2545_F491_4F6C_DD1D)
}

fn vpngw(config: bgp::SessionConfig, now: Instant) -> Box<dyn Endpoint> {
    let mut session = Session::new(config).unwrap();
    session.start(now);
    Box::new(Vpngw {
        session,
        events: Vec::new(),
    })
}

/// 400 random orders of one simultaneous dial between the customer vpngw (identifier
/// 10.0.0.2) and a cloud speaker made by `cloud`.
fn simultaneous_dial(order: Order, cloud: impl Fn(Instant) -> Box<dyn Endpoint>) {
    let now = Instant::now();
    for run in 0..400u64 {
        let mut net = Net::new([vpngw(customer_config(), now), cloud(now)], order);
        net.pump(0);
        net.pump(1);
        let mut seed = run.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
        for _ in 0..1000 {
            let mut ready = net.ready();
            if ready.is_empty() {
                break;
            }
            let pick = (next(&mut seed) % ready.len() as u64) as usize;
            let step = ready.swap_remove(pick);
            net.step(step, now);
        }
        for side in 0..2 {
            let s = &net.sides[side];
            assert_eq!(s.failure(), None, "{order:?} run {run}, side {side}");
            assert!(
                s.established_on().is_some(),
                "{order:?} run {run}, side {side}"
            );
        }
        // Both on the same connection, and the other one closed at both ends.
        let used = |side: usize| conn_of(side, net.sides[side].established_on().unwrap());
        assert_eq!(used(0), used(1), "{order:?} run {run}");
        let other = &net.conns[1 - used(0)];
        assert_eq!(other.open, [false, false], "{order:?} run {run}");
    }
}

fn vpngw_cloud(router_id: [u8; 4]) -> impl Fn(Instant) -> Box<dyn Endpoint> {
    move |now| {
        let mut c = cloud_config();
        c.router_id = router_id.into();
        vpngw(c, now)
    }
}

fn rfc_cloud(router_id: [u8; 4]) -> impl Fn(Instant) -> Box<dyn Endpoint> {
    move |_| Box::new(RfcPeer::new(router_id.into()))
}

const LOWER: [u8; 4] = [10, 0, 0, 1];
const HIGHER: [u8; 4] = [10, 0, 0, 9];
const EQUAL: [u8; 4] = [10, 0, 0, 2];

#[test]
fn two_vpngw_in_any_order() {
    for id in [LOWER, HIGHER, EQUAL] {
        simultaneous_dial(Order::Any, vpngw_cloud(id));
        simultaneous_dial(Order::Sent, vpngw_cloud(id));
    }
}

/// Only in send order: when one side sent its KEEPALIVE on its only connection and then
/// its OPEN on a new one, an RFC speaker that reads the OPEN first resolves by
/// identifiers while one that reads the KEEPALIVE first is Established already, and
/// nothing the other side sees tells the two apart (two RFC speakers have the same race).
#[test]
fn vpngw_and_an_rfc_speaker_in_send_order() {
    for id in [LOWER, HIGHER, EQUAL] {
        simultaneous_dial(Order::Sent, rfc_cloud(id));
    }
}
