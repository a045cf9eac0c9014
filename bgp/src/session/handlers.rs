//! FSM transitions (RFC 4271 section 8.2.2) and the UPDATE / route refresh handling
//! of an Established session.

use std::sync::Arc;
use std::time::{Duration, Instant};

use super::collision::collision_notification;
use super::events::{DownReason, SessionEvent};
use super::timers::Timer;
use super::{Direction, PeerOpen, Session, OPEN_HOLD_TIME};
use crate::fsm::{Event, State};
use crate::rib::AdjChange;
use crate::wire::notification::{cease_subcode, code, fsm_subcode, open_subcode};
use crate::wire::open::{AFI_IPV4, SAFI_UNICAST};
use crate::wire::{
    encode_announcements, encode_withdrawals, AsPath, CodecContext, Message, Notification, Open,
    Origin, PathAttributes, RouteRefresh, Update,
};
use crate::Ipv4Prefix;

impl Session {
    pub(super) fn handle_event(&mut self, now: Instant, event: Event) {
        use State::*;
        match (self.state, event) {
            (_, Event::ManualStart) => {
                self.admin_down = false;
                if self.state == Idle {
                    self.begin(now);
                }
            }
            (_, Event::ManualStop) => {
                self.admin_down = true;
                let n =
                    Notification::new(code::CEASE, cease_subcode::ADMINISTRATIVE_SHUTDOWN, vec![]);
                self.fail(now, DownReason::AdminStop, Some(n));
            }
            (Idle, Event::IdleHoldTimerExpires) if !self.admin_down => {
                self.begin(now);
            }
            (Connect, Event::ConnectRetryTimerExpires) => {
                // Abandon the attempt in flight and try again.
                self.events
                    .push_back(SessionEvent::Disconnect(Direction::Outbound));
                self.events.push_back(SessionEvent::Connect);
                self.arm_connect_retry(now);
            }
            (Active, Event::ConnectRetryTimerExpires) if !self.config.passive => {
                self.events.push_back(SessionEvent::Connect);
                self.arm_connect_retry(now);
                self.set_state(Connect);
            }
            (Connect | Active, Event::TcpConnectionConfirmed(direction)) => {
                self.connected(now, direction)
            }
            (Connect, Event::TcpConnectionFails) => {
                self.arm_connect_retry(now);
                self.set_state(Active);
            }
            (Active, Event::TcpConnectionFails) => {
                self.fail(now, DownReason::ConnectionClosed, None)
            }
            (OpenSent | OpenConfirm | Established, Event::TcpConnectionFails) => {
                if let Some(d) = self.link {
                    self.transmit_mut(d).clear();
                }
                self.fail(now, DownReason::ConnectionClosed, None);
            }
            (OpenSent, Event::BgpOpen(open)) if self.link_pending.open.is_none() => {
                self.open_received(now, open)
            }
            // Held back for a collision: the peer confirmed our OPEN on the link.
            (OpenSent, Event::KeepAliveMsg) if self.link_pending.open.is_some() => {
                self.link_pending.keepalive = true;
            }
            (OpenSent | OpenConfirm | Established, Event::MessageError(e)) => {
                let n = e.notification();
                self.fail(now, DownReason::BadMessage(e), Some(n));
            }
            (OpenSent | OpenConfirm | Established, Event::NotifMsg(n)) => {
                // Never answer a NOTIFICATION with one.
                self.fail(now, DownReason::PeerNotification(n), None);
            }
            // The contender never sent its OPEN: the link goes on alone.
            (OpenSent, Event::HoldTimerExpires) if self.link_pending.open.is_some() => {
                let n = Notification::new(code::HOLD_TIMER_EXPIRED, 0, vec![]);
                self.drop_contender(now, Some(n));
            }
            (OpenSent | OpenConfirm | Established, Event::HoldTimerExpires) => {
                let n = Notification::new(code::HOLD_TIMER_EXPIRED, 0, vec![]);
                self.fail(now, DownReason::HoldTimerExpired, Some(n));
            }
            (OpenConfirm | Established, Event::KeepaliveTimerExpires) => {
                self.send(&Message::Keepalive);
                self.arm_keepalive(now);
            }
            (OpenConfirm, Event::KeepAliveMsg) => self.established(now),
            (Established, Event::KeepAliveMsg) => self.arm_hold(now),
            (Established, Event::UpdateMsg(update)) => {
                self.arm_hold(now);
                self.update_received(now, update);
            }
            (Established, Event::RouteRefreshMsg(rr)) => {
                self.arm_hold(now);
                self.route_refresh_received(now, rr);
            }
            (OpenSent, Event::UpdateMsg(_) | Event::KeepAliveMsg | Event::RouteRefreshMsg(_)) => {
                self.unexpected(now, fsm_subcode::UNEXPECTED_IN_OPEN_SENT);
            }
            (OpenConfirm, Event::BgpOpen(_) | Event::UpdateMsg(_) | Event::RouteRefreshMsg(_))
            | (OpenSent, Event::BgpOpen(_)) => {
                self.unexpected(now, fsm_subcode::UNEXPECTED_IN_OPEN_CONFIRM);
            }
            (Established, Event::BgpOpen(_)) => {
                self.unexpected(now, fsm_subcode::UNEXPECTED_IN_ESTABLISHED);
            }
            // Everything else (stale timers, events without a connection) changes nothing.
            _ => {}
        }
    }

    /// Idle -> Connect (or Active when passive).
    fn begin(&mut self, now: Instant) {
        self.timers.stop(Timer::IdleHold);
        if self.config.passive {
            // No connect-retry timer: a passive session never dials out.
            self.set_state(State::Active);
        } else {
            self.arm_connect_retry(now);
            self.events.push_back(SessionEvent::Connect);
            self.set_state(State::Connect);
        }
    }

    fn connected(&mut self, now: Instant, direction: Direction) {
        self.timers.stop(Timer::ConnectRetry);
        self.link = Some(direction);
        self.transmit_mut(direction).clear();
        self.framer.clear();
        self.ctx = CodecContext::default();
        let open = Open::ours(
            self.config.local_asn,
            self.config.hold_time,
            self.config.router_id,
        );
        self.send(&Message::Open(open));
        self.timers.set(Timer::Hold, now + OPEN_HOLD_TIME);
        self.set_state(State::OpenSent);
    }

    /// The checks every OPEN must pass, and what we keep of it.
    pub(super) fn check_open(&self, open: &Open) -> Result<PeerOpen, (DownReason, Notification)> {
        let asn = open.asn();
        if asn != self.config.peer_asn {
            let n = Notification::new(code::OPEN_MESSAGE, open_subcode::BAD_PEER_AS, vec![]);
            let reason = DownReason::BadPeerAs {
                expected: self.config.peer_asn,
                received: asn,
            };
            return Err((reason, n));
        }
        if !open.supports_ipv4_unicast() {
            // Data: the capability we need and the peer lacks (RFC 5492 section 3).
            let data = vec![1, 4, 0, 1, 0, 1];
            let n = Notification::new(
                code::OPEN_MESSAGE,
                open_subcode::UNSUPPORTED_CAPABILITY,
                data,
            );
            return Err((DownReason::NoIpv4Unicast, n));
        }
        Ok(PeerOpen {
            asn,
            router_id: open.bgp_id,
            hold_time: open.hold_time.min(self.config.hold_time),
            route_refresh: open.supports_route_refresh(),
            four_octet_as: open.four_octet_as().is_some(),
        })
    }

    fn open_received(&mut self, now: Instant, open: Open) {
        if let Err((reason, n)) = self.check_open(&open) {
            return self.fail(now, reason, Some(n));
        }
        let Some(c) = self.contender.as_ref() else {
            return self.accept_open(now, &open, false);
        };
        // A collision: no KEEPALIVE until we know which connection stays.
        let both = c.has_open();
        self.link_pending.open = Some(open);
        if both {
            self.resolve(now);
        } else {
            self.arm_collision_wait(now);
        }
    }

    /// Answers a checked OPEN: KEEPALIVE, OpenConfirm, and Established at once if the
    /// peer's KEEPALIVE came while the answer was held back.
    pub(super) fn accept_open(&mut self, now: Instant, open: &Open, keepalive: bool) {
        let peer = match self.check_open(open) {
            Ok(p) => p,
            Err((reason, n)) => return self.fail(now, reason, Some(n)),
        };
        self.ctx = CodecContext {
            four_octet_as: peer.four_octet_as,
            ebgp: true,
        };
        self.peer = Some(peer);
        self.send(&Message::Keepalive);
        self.arm_keepalive(now);
        self.arm_hold(now);
        self.set_state(State::OpenConfirm);
        if keepalive {
            self.established(now);
        }
    }

    pub(super) fn established(&mut self, now: Instant) {
        // A collision with an Established connection closes the other one.
        self.close_contender(Some(collision_notification()));
        self.arm_hold(now);
        self.set_state(State::Established);
        self.established_since = Some(now);
        self.failures_in_a_row = 0;
        self.counters.established_transitions += 1;
        if let Some(p) = self.peer {
            self.events.push_back(SessionEvent::Established {
                peer_asn: p.asn,
                peer_router_id: p.router_id,
                peer_address: self.config.peer_address,
                hold_time: p.hold_time,
            });
        }
        let all: Vec<Ipv4Prefix> = self.local_prefixes.iter().copied().collect();
        self.send_announcements(now, &all);
        // End-of-RIB (RFC 4724): our initial advertisement is complete.
        let end_of_rib = Message::Update(Update::default()).encode(self.ctx);
        self.send_update_bytes(now, end_of_rib);
    }

    fn unexpected(&mut self, now: Instant, subcode: u8) {
        let n = Notification::new(code::FSM, subcode, vec![]);
        self.fail(now, DownReason::UnexpectedMessage(self.state), Some(n));
    }

    /// Drops the connection (sending `notification` first, if any) and goes Idle. The
    /// session restarts by itself after the idle hold time unless stopped by the operator.
    pub(super) fn fail(
        &mut self,
        now: Instant,
        reason: DownReason,
        notification: Option<Notification>,
    ) {
        if reason != DownReason::AdminStop && self.contender.is_some() {
            // Only this connection failed; the other carries the session on.
            tracing::info!(peer = %self.config.peer_address, state = %self.state, %reason, "bgp connection lost, the other one carries on");
            if reason == DownReason::ConnectionClosed {
                // Nothing to close or to send on.
                self.link = None;
            }
            return self.abandon_link(now, notification);
        }
        self.close_contender(notification.clone());
        let was_connected = self.state.is_connected();
        tracing::info!(peer = %self.config.peer_address, state = %self.state, %reason, "bgp session down");
        if let (Some(n), true) = (notification, was_connected) {
            self.send(&Message::Notification(n));
        }
        if reason != DownReason::ConnectionClosed && self.state != State::Idle {
            let d = self.link.unwrap_or(Direction::Outbound);
            self.events.push_back(SessionEvent::Disconnect(d));
        }
        if was_connected {
            self.events.push_back(SessionEvent::Down {
                reason: reason.clone(),
            });
        }
        if reason != DownReason::AdminStop || was_connected {
            self.last_error = Some(reason);
        }
        self.adj_in.clear();
        self.framer.clear();
        self.peer = None;
        self.link = None;
        self.link_pending = Default::default();
        self.established_since = None;
        self.timers.stop_all();
        self.set_state(State::Idle);
        if !self.admin_down {
            self.failures_in_a_row = self.failures_in_a_row.saturating_add(1);
            self.timers.set(Timer::IdleHold, now + self.idle_hold());
        }
    }

    /// The idle hold time doubles with each failure that did not reach Established,
    /// up to 8 times the configured value, so a peer that keeps refusing us is not
    /// hammered while a single flap still recovers quickly.
    fn idle_hold(&self) -> Duration {
        let doublings = self.failures_in_a_row.saturating_sub(1).min(3);
        self.config.idle_hold_time * (1u32 << doublings)
    }

    fn update_received(&mut self, now: Instant, update: Update) {
        self.counters.updates_received += 1;
        self.counters.attributes_discarded += update.discarded.len() as u64;
        let mut withdrawn = update.withdrawn;
        let mut announced = update.nlri;
        if let Some(err) = update.treat_as_withdraw {
            tracing::warn!(peer = %self.config.peer_address, %err, routes = announced.len(), "malformed UPDATE treated as withdraw");
            self.counters.updates_treated_as_withdraw += 1;
            withdrawn.append(&mut announced);
        }
        for prefix in withdrawn {
            if self.adj_in.remove(&prefix) == AdjChange::Withdrawn {
                self.events
                    .push_back(SessionEvent::RouteWithdrawn { prefix });
            }
        }
        if announced.is_empty() {
            return;
        }
        let attrs = Arc::new(update.attributes);
        let accepted = self.import_allowed(&attrs);
        if !accepted {
            tracing::debug!(peer = %self.config.peer_address, routes = announced.len(), "routes refused by import policy");
            self.counters.routes_rejected += announced.len() as u64;
        }
        for prefix in announced {
            match self.adj_in.insert(prefix, attrs.clone(), accepted) {
                AdjChange::Learned(attributes) => self
                    .events
                    .push_back(SessionEvent::RouteLearned { prefix, attributes }),
                AdjChange::Withdrawn => self
                    .events
                    .push_back(SessionEvent::RouteWithdrawn { prefix }),
                AdjChange::None => {}
            }
        }
        if let Some(max) = self.config.max_prefixes {
            if self.adj_in.len() > max as usize {
                // Data: AFI, SAFI, upper bound (RFC 4486 section 4).
                let mut data = AFI_IPV4.to_be_bytes().to_vec();
                data.push(SAFI_UNICAST);
                data.extend_from_slice(&max.to_be_bytes());
                let n = Notification::new(code::CEASE, cease_subcode::MAX_PREFIXES, data);
                self.fail(now, DownReason::MaxPrefixes(max), Some(n));
            }
        }
    }

    /// Import policy for eBGP: no AS loop, the path starts at the peer, and the next hop
    /// is not our own address.
    fn import_allowed(&self, attrs: &PathAttributes) -> bool {
        let Some(path) = &attrs.as_path else {
            return false;
        };
        if path.contains(self.config.local_asn) {
            return false;
        }
        if self.config.enforce_first_as && path.first_asn() != Some(self.config.peer_asn) {
            return false;
        }
        attrs.next_hop != Some(self.config.local_address)
    }

    fn route_refresh_received(&mut self, now: Instant, rr: RouteRefresh) {
        // Subtype 0 is a plain request; 1 and 2 are RFC 7313 markers we need not act on.
        if (rr.afi, rr.safi, rr.subtype) == (AFI_IPV4, SAFI_UNICAST, 0) {
            let all: Vec<Ipv4Prefix> = self.local_prefixes.iter().copied().collect();
            self.send_announcements(now, &all);
        }
    }

    /// The attributes of our own routes: IGP origin, our AS (prepended as configured),
    /// our tunnel address.
    fn local_attributes(&self) -> PathAttributes {
        let copies = 1 + usize::from(self.config.as_path_prepend);
        PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence(vec![self.config.local_asn; copies])),
            next_hop: Some(self.config.local_address),
            ..Default::default()
        }
    }

    pub(super) fn send_announcements(&mut self, now: Instant, prefixes: &[Ipv4Prefix]) {
        if prefixes.is_empty() {
            return;
        }
        let attrs = self.local_attributes();
        for msg in encode_announcements(&attrs, prefixes, self.ctx) {
            self.send_update_bytes(now, msg);
        }
    }

    pub(super) fn send_withdrawals(&mut self, now: Instant, prefixes: &[Ipv4Prefix]) {
        for msg in encode_withdrawals(prefixes, self.ctx) {
            self.send_update_bytes(now, msg);
        }
    }

    fn send_update_bytes(&mut self, now: Instant, msg: Vec<u8>) {
        if let Some(d) = self.link {
            self.transmit_mut(d).extend(msg);
        }
        self.counters.messages_sent += 1;
        self.counters.updates_sent += 1;
        // An UPDATE also tells the peer we are alive (RFC 4271 section 4.4).
        if self.timers.is_running(Timer::Keepalive) {
            self.arm_keepalive(now);
        }
    }

    fn arm_connect_retry(&mut self, now: Instant) {
        self.timers
            .set(Timer::ConnectRetry, now + self.config.connect_retry_time);
    }

    fn negotiated_hold(&self) -> u16 {
        self.peer.map_or(0, |p| p.hold_time)
    }

    fn arm_hold(&mut self, now: Instant) {
        match self.negotiated_hold() {
            0 => self.timers.stop(Timer::Hold),
            h => self
                .timers
                .set(Timer::Hold, now + Duration::from_secs(u64::from(h))),
        }
    }

    /// Keepalives every third of the hold time.
    fn arm_keepalive(&mut self, now: Instant) {
        match self.negotiated_hold() {
            0 => self.timers.stop(Timer::Keepalive),
            h => self.timers.set(
                Timer::Keepalive,
                now + Duration::from_millis(u64::from(h) * 1000 / 3),
            ),
        }
    }
}
