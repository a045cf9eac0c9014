//! Connection collision detection (RFC 4271 section 6.8).
//!
//! When both speakers dial at once there are two TCP connections to the same peer. The
//! session keeps both until it can choose: the first (the "link") runs the FSM, the
//! second (the "contender") sends our OPEN and takes the peer's. While both are open no
//! KEEPALIVE goes out on either, so the peer cannot reach Established on a connection
//! we may still close. Once both carry the peer's OPEN, the one initiated by the speaker
//! with the higher BGP Identifier survives and the other is closed with Cease/Connection
//! Collision Resolution (RFC 4486). A speaker that does the same, or does RFC 4271 6.8
//! as BIRD does, makes the same choice, so both keep the same connection.
//!
//! If our KEEPALIVE already went out on the link (its OPEN came before the contender),
//! the peer may be Established there already, so the contender waits for the link's
//! fate instead of comparing identifiers: Established on the link closes the contender
//! (a collision with an Established connection, closed with Cease/7 as well), and a
//! link that dies, e.g. closed by the peer's own resolution, hands over to the
//! contender. A connection that arrives while the session is Established, or while two
//! are open already, is closed with Cease/7 at once.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::timers::Timer;
use super::{Session, OPEN_HOLD_TIME};
use crate::fsm::{Event, State};
use crate::wire::notification::{cease_subcode, code, fsm_subcode};
use crate::wire::{CodecContext, Framer, Message, Notification, Open};

/// The collision wait when the peer's OPEN asks for no keepalives (hold time 0).
const COLLISION_WAIT_WITHOUT_HOLD: Duration = Duration::from_secs(30);

/// Who opened a TCP connection: we dialed it (outbound) or the peer did (inbound).
/// A session has at most one connection of each direction, so this names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Direction {
    Outbound,
    Inbound,
}

impl Direction {
    pub const BOTH: [Direction; 2] = [Direction::Outbound, Direction::Inbound];

    pub fn other(self) -> Self {
        match self {
            Self::Outbound => Self::Inbound,
            Self::Inbound => Self::Outbound,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Outbound => "outbound",
            Self::Inbound => "inbound",
        }
    }
}

impl std::fmt::Display for Direction {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One side of a collision: a speaker's BGP Identifier and AS number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Speaker {
    pub router_id: Ipv4Addr,
    pub asn: u32,
}

/// The connection that survives a collision: the one initiated by the speaker with the
/// higher BGP Identifier (compared as unsigned integers, RFC 4271 section 6.8), or with
/// equal identifiers the higher AS number (RFC 6286 section 2.3). `None` when both are
/// equal: nothing tells the connections apart, the caller keeps the one it has.
pub fn survivor(local: Speaker, peer: Speaker) -> Option<Direction> {
    let l = (u32::from(local.router_id), local.asn);
    let p = (u32::from(peer.router_id), peer.asn);
    match l.cmp(&p) {
        std::cmp::Ordering::Greater => Some(Direction::Outbound),
        std::cmp::Ordering::Less => Some(Direction::Inbound),
        std::cmp::Ordering::Equal => None,
    }
}

/// The NOTIFICATION that closes the losing connection (RFC 4486 subcode 7).
pub fn collision_notification() -> Notification {
    Notification::new(code::CEASE, cease_subcode::CONNECTION_COLLISION, vec![])
}

/// What a connection held back by a collision got from the peer so far.
#[derive(Debug, Default)]
pub(super) struct Pending {
    /// The peer's OPEN, already checked; our KEEPALIVE for it is held back.
    pub(super) open: Option<Open>,
    /// The peer confirmed our OPEN: once chosen, this connection is Established.
    pub(super) keepalive: bool,
}

/// The second connection, while the link is in OpenSent or OpenConfirm.
#[derive(Debug)]
pub(super) struct Contender {
    pub(super) direction: Direction,
    framer: Framer,
    pending: Pending,
}

impl Contender {
    pub(super) fn has_open(&self) -> bool {
        self.pending.open.is_some()
    }
}

impl Session {
    /// Takes a second connection while the link is in OpenSent or OpenConfirm.
    pub(super) fn add_contender(&mut self, direction: Direction) {
        tracing::info!(peer = %self.config.peer_address, %direction, state = %self.state, "bgp connection collision: keeping both connections until the peer's OPENs arrive");
        self.transmit_mut(direction).clear();
        let open = Open::ours(
            self.config.local_asn,
            self.config.hold_time,
            self.config.router_id,
        );
        self.send_on(direction, &Message::Open(open));
        self.contender = Some(Contender {
            direction,
            framer: Framer::new(),
            pending: Pending::default(),
        });
    }

    /// Bytes read on the contender: runs its messages until the buffer is empty or the
    /// contender is gone (closed, or now the link).
    pub(super) fn contender_bytes(&mut self, now: Instant, bytes: &[u8]) {
        let Some(c) = self.contender.as_mut() else {
            return;
        };
        let direction = c.direction;
        c.framer.push(bytes);
        loop {
            let Some(c) = self.contender.as_mut().filter(|c| c.direction == direction) else {
                return;
            };
            let event = match c.framer.next_message() {
                Ok(None) => return,
                // Only OPEN, KEEPALIVE and NOTIFICATION are valid here; none depends on
                // the negotiated capabilities.
                Ok(Some(raw)) => match Message::decode(&raw, CodecContext::default()) {
                    Ok(msg) => super::message_event(msg),
                    Err(e) => Event::MessageError(e),
                },
                Err(e) => Event::MessageError(e),
            };
            self.counters.messages_received += 1;
            self.contender_event(now, event);
        }
    }

    fn contender_event(&mut self, now: Instant, event: Event) {
        let Some(has_open) = self.contender.as_ref().map(Contender::has_open) else {
            return;
        };
        match event {
            Event::BgpOpen(open) if !has_open => {
                if let Err((reason, n)) = self.check_open(&open) {
                    tracing::info!(peer = %self.config.peer_address, %reason, "bgp second connection refused");
                    return self.drop_contender(now, Some(n));
                }
                if let Some(c) = self.contender.as_mut() {
                    c.pending.open = Some(open);
                }
                // Only when the link holds its KEEPALIVE back too; see the module docs.
                if self.link_pending.open.is_some() {
                    self.resolve(now);
                } else if self.state == State::OpenSent {
                    // The peer waits for our KEEPALIVE here: give the link's OPEN that
                    // long, then hand over (the link's hold timer fails it).
                    self.arm_collision_wait(now);
                }
            }
            Event::KeepAliveMsg if has_open => {
                if let Some(c) = self.contender.as_mut() {
                    c.pending.keepalive = true;
                }
            }
            Event::NotifMsg(n) => {
                // Usually the peer resolving the collision the same way: Cease/7.
                tracing::info!(peer = %self.config.peer_address, notification = %n, "bgp second connection closed by the peer");
                self.drop_contender(now, None);
            }
            Event::MessageError(e) => self.drop_contender(now, Some(e.notification())),
            _ => {
                let subcode = if has_open {
                    fsm_subcode::UNEXPECTED_IN_OPEN_CONFIRM
                } else {
                    fsm_subcode::UNEXPECTED_IN_OPEN_SENT
                };
                self.drop_contender(now, Some(Notification::new(code::FSM, subcode, vec![])));
            }
        }
    }

    /// How long one connection's OPEN may keep the other's KEEPALIVE back: a third of
    /// the hold time the peer offered there (its hold timer runs while it waits for our
    /// KEEPALIVE), so that a silent connection does not cost the session.
    pub(super) fn arm_collision_wait(&mut self, now: Instant) {
        let offered = [self.link_pending.open.as_ref(), self.contender_open()]
            .into_iter()
            .flatten()
            .map(|o| o.hold_time.min(self.config.hold_time))
            .min();
        let wait = match offered {
            Some(h) if h > 0 => Duration::from_millis(u64::from(h) * 1000 / 3),
            _ => COLLISION_WAIT_WITHOUT_HOLD,
        };
        self.timers.set(Timer::Hold, now + wait);
    }

    fn contender_open(&self) -> Option<&Open> {
        self.contender.as_ref()?.pending.open.as_ref()
    }

    /// The contender's TCP connection is gone.
    pub(super) fn contender_lost(&mut self, now: Instant) {
        if self.contender.take().is_some() {
            self.resume_link(now);
        }
    }

    /// Both connections carry the peer's OPEN and neither sent KEEPALIVE: keep one.
    pub(super) fn resolve(&mut self, now: Instant) {
        let Some(c) = self.contender.as_ref() else {
            return;
        };
        let Some(open) = c.pending.open.as_ref() else {
            return;
        };
        let local = Speaker {
            router_id: self.config.router_id,
            asn: self.config.local_asn,
        };
        let remote = Speaker {
            router_id: open.bgp_id,
            asn: open.asn(),
        };
        let contender_wins = survivor(local, remote) == Some(c.direction);
        let keep = if contender_wins {
            c.direction
        } else {
            c.direction.other()
        };
        tracing::info!(peer = %self.config.peer_address, local_id = %local.router_id, peer_id = %remote.router_id, %keep, "bgp connection collision resolved");
        if contender_wins {
            self.abandon_link(now, Some(collision_notification()));
        } else {
            self.drop_contender(now, Some(collision_notification()));
        }
    }

    /// Closes the contender (with `notification` first, if any); the link goes on.
    pub(super) fn drop_contender(&mut self, now: Instant, notification: Option<Notification>) {
        self.close_contender(notification);
        self.resume_link(now);
    }

    /// Closes the contender, with `notification` first if given.
    pub(super) fn close_contender(&mut self, notification: Option<Notification>) {
        let Some(c) = self.contender.take() else {
            return;
        };
        if let Some(n) = notification {
            self.send_on(c.direction, &Message::Notification(n));
        }
        self.events
            .push_back(super::SessionEvent::Disconnect(c.direction));
    }

    /// The link answers the OPEN it held back while the contender was there.
    fn resume_link(&mut self, now: Instant) {
        let pending = std::mem::take(&mut self.link_pending);
        if let Some(open) = pending.open {
            self.accept_open(now, &open, pending.keepalive);
        } else if self.state == State::OpenSent {
            // The collision wait may have shortened it.
            self.timers.set(Timer::Hold, now + OPEN_HOLD_TIME);
        }
    }

    /// The link failed or lost the collision: close it (with `notification` first, if
    /// any) and let the contender carry the session on. The link never got past
    /// OpenConfirm, so nothing is withdrawn and the session does not go Idle.
    pub(super) fn abandon_link(&mut self, now: Instant, notification: Option<Notification>) {
        let Some(c) = self.contender.take() else {
            return;
        };
        if let Some(old) = self.link {
            if let Some(n) = notification {
                self.send_on(old, &Message::Notification(n));
            }
            self.events.push_back(super::SessionEvent::Disconnect(old));
        }
        self.link = Some(c.direction);
        self.link_pending = Pending::default();
        self.framer = c.framer;
        self.ctx = CodecContext::default();
        self.peer = None;
        self.timers.stop(Timer::Keepalive);
        self.timers.set(Timer::Hold, now + OPEN_HOLD_TIME);
        self.set_state(State::OpenSent);
        if let Some(open) = c.pending.open {
            self.accept_open(now, &open, c.pending.keepalive);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn speaker(id: [u8; 4], asn: u32) -> Speaker {
        Speaker {
            router_id: Ipv4Addr::from(id),
            asn,
        }
    }

    #[test]
    fn higher_identifier_keeps_its_own_connection() {
        let low = speaker([10, 0, 0, 1], 65001);
        let high = speaker([10, 0, 0, 2], 65000);
        assert_eq!(survivor(high, low), Some(Direction::Outbound));
        assert_eq!(survivor(low, high), Some(Direction::Inbound));
    }

    #[test]
    fn identifiers_compare_as_unsigned_integers() {
        // 200.0.0.1 > 9.255.255.255 although "2" < "9" and the sign bit is set.
        let a = speaker([200, 0, 0, 1], 1);
        let b = speaker([9, 255, 255, 255], 1);
        assert_eq!(survivor(a, b), Some(Direction::Outbound));
        assert_eq!(survivor(b, a), Some(Direction::Inbound));
    }

    #[test]
    fn equal_identifiers_fall_back_to_the_as_number() {
        let a = speaker([10, 0, 0, 1], 65010);
        let b = speaker([10, 0, 0, 1], 65000);
        assert_eq!(survivor(a, b), Some(Direction::Outbound));
        assert_eq!(survivor(b, a), Some(Direction::Inbound));
        assert_eq!(survivor(a, a), None);
    }

    #[test]
    fn collision_notification_is_cease_7() {
        let n = collision_notification();
        assert_eq!((n.code, n.subcode), (6, 7));
    }
}
