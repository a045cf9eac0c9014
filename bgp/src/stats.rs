//! Per-session figures for `vpngw bgp`.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::fsm::State;
use crate::session::DownReason;

/// Running counters of one session (kept across reconnects).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters {
    pub messages_received: u64,
    pub messages_sent: u64,
    pub updates_received: u64,
    pub updates_sent: u64,
    /// UPDATEs whose attributes were malformed and handled as withdraw (RFC 7606).
    pub updates_treated_as_withdraw: u64,
    /// Attributes dropped alone under "attribute discard" (RFC 7606).
    pub attributes_discarded: u64,
    /// Routes refused by import policy (AS loop, wrong first AS, our own next hop).
    pub routes_rejected: u64,
    pub established_transitions: u64,
    /// Second connections to or from the peer while one was in use (RFC 4271 section
    /// 6.8): each was either kept until the collision was resolved or closed at once.
    pub connection_collisions: u64,
}

/// A snapshot taken by `Session::stats`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionStats {
    pub state: State,
    pub established_since: Option<Instant>,
    pub peer_router_id: Option<Ipv4Addr>,
    pub prefixes_received: usize,
    pub prefixes_accepted: usize,
    pub prefixes_advertised: usize,
    pub last_error: Option<DownReason>,
    pub counters: Counters,
}

impl SessionStats {
    pub fn uptime(&self, now: Instant) -> Option<Duration> {
        self.established_since
            .map(|since| now.saturating_duration_since(since))
    }
}
