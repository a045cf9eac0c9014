//! One BGP session: the caller feeds connection events, stream bytes and timeouts in,
//! and takes bytes to write, events and the next deadline out.

mod collision;
mod events;
mod handlers;
mod timers;
#[cfg(test)]
mod transition_table;

use std::collections::{BTreeSet, VecDeque};
use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

pub use collision::{collision_notification, survivor, Direction, Speaker};
pub use events::{ConnectionRefused, DownReason, SessionEvent};

use crate::config::{ConfigError, SessionConfig};
use crate::fsm::{Event, State};
use crate::rib::AdjRibIn;
use crate::stats::{Counters, SessionStats};
use crate::wire::{CodecContext, Framer, Message};
use crate::Ipv4Prefix;
use collision::{Contender, Pending};
use timers::{Timer, Timers};

/// Hold time while waiting for the peer's OPEN (RFC 4271 section 8.2.2 suggests 4 minutes).
const OPEN_HOLD_TIME: Duration = Duration::from_secs(240);

/// What we learned from the peer's OPEN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerOpen {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    /// Negotiated: the smaller of both offers.
    pub hold_time: u16,
    pub route_refresh: bool,
    pub four_octet_as: bool,
}

/// A sans-IO BGP session (RFC 4271 FSM). See the crate docs for the driving loop.
#[derive(Debug)]
pub struct Session {
    config: SessionConfig,
    state: State,
    timers: Timers,
    framer: Framer,
    ctx: CodecContext,
    peer: Option<PeerOpen>,
    /// The connection the FSM runs on, from OpenSent on.
    link: Option<Direction>,
    /// A second connection during a collision (see `collision`).
    contender: Option<Contender>,
    /// The link's OPEN while its KEEPALIVE is held back for a collision.
    link_pending: Pending,
    adj_in: AdjRibIn,
    local_prefixes: BTreeSet<Ipv4Prefix>,
    /// Bytes to write, per connection.
    transmit: [Vec<u8>; 2],
    events: VecDeque<SessionEvent>,
    counters: Counters,
    /// Stopped by the operator: no automatic restart.
    admin_down: bool,
    established_since: Option<Instant>,
    last_error: Option<DownReason>,
    /// Failures since the last Established, for the idle hold back-off.
    failures_in_a_row: u32,
}

impl Session {
    /// A stopped session (Idle); call `start` to begin.
    pub fn new(config: SessionConfig) -> Result<Self, ConfigError> {
        config.validate()?;
        let local_prefixes = config.local_prefixes.iter().copied().collect();
        Ok(Self {
            config,
            state: State::Idle,
            timers: Timers::default(),
            framer: Framer::new(),
            ctx: CodecContext::default(),
            peer: None,
            link: None,
            contender: None,
            link_pending: Pending::default(),
            adj_in: AdjRibIn::new(),
            local_prefixes,
            transmit: [Vec::new(), Vec::new()],
            events: VecDeque::new(),
            counters: Counters::default(),
            admin_down: true,
            established_since: None,
            last_error: None,
            failures_in_a_row: 0,
        })
    }

    /// ManualStart: leave Idle and connect (or wait for the peer if passive).
    pub fn start(&mut self, now: Instant) {
        self.handle_event(now, Event::ManualStart);
    }

    /// ManualStop: Cease/Administrative Shutdown to the peer, then stay Idle.
    pub fn stop(&mut self, now: Instant) {
        self.handle_event(now, Event::ManualStop);
    }

    /// A TCP connection to (`Outbound`) or from (`Inbound`) the peer is up. Refused
    /// (close it, after writing the refusal's NOTIFICATION if it has one) when the
    /// session is Idle after a stop, or already uses a connection of that direction, or
    /// both, or is Established (a collision, RFC 4271 section 6.8). While the session is
    /// in OpenSent or OpenConfirm, a connection of the other direction is taken and the
    /// collision is resolved once the peer's OPEN has come on both.
    pub fn handle_connected(
        &mut self,
        now: Instant,
        direction: Direction,
    ) -> Result<(), ConnectionRefused> {
        let refused = |state, notification| {
            Err(ConnectionRefused {
                state,
                notification,
            })
        };
        match self.state {
            State::Connect | State::Active => {
                self.handle_event(now, Event::TcpConnectionConfirmed(direction));
                Ok(())
            }
            // The peer dials while we wait out the idle hold after a failure: take the
            // connection (automatic start with passive TCP establishment, RFC 4271 8.1.1,
            // event 5). Refusing it lets two speakers whose idle holds alternate and double
            // never meet.
            State::Idle if !self.admin_down => {
                self.timers.stop(Timer::IdleHold);
                self.set_state(State::Active);
                self.handle_event(now, Event::TcpConnectionConfirmed(direction));
                Ok(())
            }
            State::Idle => refused(State::Idle, None),
            state => {
                self.counters.connection_collisions += 1;
                let free = self.link != Some(direction) && self.contender.is_none();
                if free && state != State::Established {
                    self.add_contender(direction);
                    Ok(())
                } else {
                    tracing::info!(peer = %self.config.peer_address, %direction, %state, "bgp connection collision: new connection closed");
                    refused(state, Some(collision_notification()))
                }
            }
        }
    }

    /// The TCP connection of `direction` closed, or the connection attempt failed.
    pub fn handle_disconnected(&mut self, now: Instant, direction: Direction) {
        if self
            .contender
            .as_ref()
            .is_some_and(|c| c.direction == direction)
        {
            self.contender_lost(now);
        } else if self.link == Some(direction)
            || (self.link.is_none() && direction == Direction::Outbound)
        {
            self.handle_event(now, Event::TcpConnectionFails);
        }
    }

    /// Bytes read from the TCP stream of `direction`, any amount, cut anywhere.
    pub fn handle_bytes(&mut self, now: Instant, direction: Direction, bytes: &[u8]) {
        if self
            .contender
            .as_ref()
            .is_some_and(|c| c.direction == direction)
        {
            // Promoted to the link, it may hold messages the link must now read.
            self.contender_bytes(now, bytes);
            if self.link == Some(direction) {
                self.link_messages(now);
            }
            return;
        }
        if self.link != Some(direction) || !self.state.is_connected() {
            return;
        }
        self.framer.push(bytes);
        self.link_messages(now);
    }

    fn link_messages(&mut self, now: Instant) {
        while self.state.is_connected() {
            let event = match self.framer.next_message() {
                Ok(None) => break,
                Ok(Some(raw)) => {
                    self.counters.messages_received += 1;
                    match Message::decode(&raw, self.ctx) {
                        Ok(msg) => message_event(msg),
                        Err(e) => Event::MessageError(e),
                    }
                }
                Err(e) => Event::MessageError(e),
            };
            self.handle_event(now, event);
        }
    }

    /// Fires every timer due at `now`.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(timer) = self.timers.take_expired(now) {
            let event = match timer {
                Timer::ConnectRetry => Event::ConnectRetryTimerExpires,
                Timer::Hold => Event::HoldTimerExpires,
                Timer::Keepalive => Event::KeepaliveTimerExpires,
                Timer::IdleHold => Event::IdleHoldTimerExpires,
            };
            self.handle_event(now, event);
        }
    }

    /// Everything to write to the TCP stream of `direction`, in order.
    pub fn poll_transmit(&mut self, direction: Direction) -> Option<Vec<u8>> {
        let t = self.transmit_mut(direction);
        if t.is_empty() {
            None
        } else {
            Some(std::mem::take(t))
        }
    }

    pub fn poll_event(&mut self) -> Option<SessionEvent> {
        self.events.pop_front()
    }

    /// When `handle_timeout` must be called next.
    pub fn poll_timeout(&self) -> Option<Instant> {
        self.timers.next()
    }

    /// Replaces the prefixes we advertise; an Established session sends the difference.
    pub fn set_local_prefixes(&mut self, now: Instant, prefixes: &[Ipv4Prefix]) {
        let new: BTreeSet<Ipv4Prefix> = prefixes.iter().copied().collect();
        let removed: Vec<Ipv4Prefix> = self.local_prefixes.difference(&new).copied().collect();
        let added: Vec<Ipv4Prefix> = new.difference(&self.local_prefixes).copied().collect();
        self.local_prefixes = new;
        if self.state == State::Established {
            self.send_withdrawals(now, &removed);
            self.send_announcements(now, &added);
        }
    }

    /// Asks the peer to resend its routes (RFC 2918), if it supports that.
    pub fn request_route_refresh(&mut self) -> bool {
        let supported = self.peer.is_some_and(|p| p.route_refresh);
        if self.state == State::Established && supported {
            self.send(&Message::RouteRefresh(crate::wire::RouteRefresh {
                afi: crate::wire::open::AFI_IPV4,
                subtype: 0,
                safi: crate::wire::open::SAFI_UNICAST,
            }));
        }
        self.state == State::Established && supported
    }

    pub fn state(&self) -> State {
        self.state
    }

    pub fn config(&self) -> &SessionConfig {
        &self.config
    }

    /// The connection the session runs on, once connected.
    pub fn connection(&self) -> Option<Direction> {
        self.link
    }

    /// The peer's OPEN, once received on the current connection.
    pub fn peer(&self) -> Option<&PeerOpen> {
        self.peer.as_ref()
    }

    pub fn adj_rib_in(&self) -> &AdjRibIn {
        &self.adj_in
    }

    pub fn stats(&self) -> SessionStats {
        SessionStats {
            state: self.state,
            established_since: self.established_since,
            peer_router_id: self.peer.map(|p| p.router_id),
            prefixes_received: self.adj_in.len(),
            prefixes_accepted: self.adj_in.accepted(),
            prefixes_advertised: if self.state == State::Established {
                self.local_prefixes.len()
            } else {
                0
            },
            last_error: self.last_error.clone(),
            counters: self.counters.clone(),
        }
    }

    fn set_state(&mut self, to: State) {
        if to != self.state {
            let from = std::mem::replace(&mut self.state, to);
            tracing::debug!(peer = %self.config.peer_address, %from, %to, "bgp state");
            self.events
                .push_back(SessionEvent::StateChanged { from, to });
        }
    }

    /// Sends on the link; without one there is no one to send to.
    fn send(&mut self, msg: &Message) {
        if let Some(d) = self.link {
            self.send_on(d, msg);
        }
    }

    fn send_on(&mut self, direction: Direction, msg: &Message) {
        let bytes = msg.encode(self.ctx);
        self.transmit_mut(direction).extend(bytes);
        self.counters.messages_sent += 1;
    }

    fn transmit_mut(&mut self, direction: Direction) -> &mut Vec<u8> {
        let [outbound, inbound] = &mut self.transmit;
        match direction {
            Direction::Outbound => outbound,
            Direction::Inbound => inbound,
        }
    }
}

fn message_event(msg: Message) -> Event {
    match msg {
        Message::Open(o) => Event::BgpOpen(o),
        Message::Update(u) => Event::UpdateMsg(u),
        Message::Notification(n) => Event::NotifMsg(n),
        Message::Keepalive => Event::KeepAliveMsg,
        Message::RouteRefresh(rr) => Event::RouteRefreshMsg(rr),
    }
}
