//! One BGP session: the caller feeds connection events, stream bytes and timeouts in,
//! and takes bytes to write, events and the next deadline out.

mod events;
mod handlers;
mod timers;
#[cfg(test)]
mod transition_table;

use std::collections::{BTreeSet, VecDeque};
use std::net::Ipv4Addr;
use std::time::Instant;

pub use events::{ConnectionRefused, DownReason, SessionEvent};

use crate::config::{ConfigError, SessionConfig};
use crate::fsm::{Event, State};
use crate::rib::AdjRibIn;
use crate::stats::{Counters, SessionStats};
use crate::wire::{CodecContext, Framer, Message};
use crate::Ipv4Prefix;
use timers::{Timer, Timers};

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
    adj_in: AdjRibIn,
    local_prefixes: BTreeSet<Ipv4Prefix>,
    transmit: Vec<u8>,
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
            adj_in: AdjRibIn::new(),
            local_prefixes,
            transmit: Vec::new(),
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

    /// A TCP connection to or from the peer is up. Refused (close it) when the
    /// session is Idle or already has a connection.
    pub fn handle_connected(&mut self, now: Instant) -> Result<(), ConnectionRefused> {
        match self.state {
            State::Connect | State::Active => {
                self.handle_event(now, Event::TcpConnectionConfirmed);
                Ok(())
            }
            // The peer dials while we wait out the idle hold after a failure: take the
            // connection (automatic start with passive TCP establishment, RFC 4271 8.1.1,
            // event 5). Refusing it lets two speakers whose idle holds alternate and double
            // never meet.
            State::Idle if !self.admin_down => {
                self.timers.stop(Timer::IdleHold);
                self.set_state(State::Active);
                self.handle_event(now, Event::TcpConnectionConfirmed);
                Ok(())
            }
            state => Err(ConnectionRefused(state)),
        }
    }

    /// The TCP connection closed or a connection attempt failed.
    pub fn handle_disconnected(&mut self, now: Instant) {
        self.handle_event(now, Event::TcpConnectionFails);
    }

    /// Bytes read from the TCP stream, any amount, cut anywhere.
    pub fn handle_bytes(&mut self, now: Instant, bytes: &[u8]) {
        if !self.state.is_connected() {
            return;
        }
        self.framer.push(bytes);
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

    /// Everything to write to the TCP stream, in order.
    pub fn poll_transmit(&mut self) -> Option<Vec<u8>> {
        if self.transmit.is_empty() {
            None
        } else {
            Some(std::mem::take(&mut self.transmit))
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

    fn send(&mut self, msg: &Message) {
        self.transmit.extend(msg.encode(self.ctx));
        self.counters.messages_sent += 1;
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
