//! What `vpngw bgp` shows per session.

use std::net::Ipv4Addr;
use std::time::Instant;

use bgp::SessionStats;
use serde::{Deserialize, Serialize};

use super::SessionSpec;

/// One session as `vpngw bgp` (and `{"cmd":"bgp"}`) reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpSessionStatus {
    pub tunnel: String,
    pub local_address: Ipv4Addr,
    pub peer_address: Ipv4Addr,
    pub local_asn: u32,
    pub peer_asn: u32,
    /// RFC 4271 FSM state: Idle, Connect, Active, OpenSent, OpenConfirm, Established.
    pub state: String,
    /// Seconds since the session got Established; none when it is not.
    pub uptime_secs: Option<u64>,
    /// Prefixes in the Adj-RIB-In, accepted by import policy or not.
    pub prefixes_received: usize,
    pub prefixes_accepted: usize,
    pub prefixes_advertised: usize,
    pub last_error: Option<String>,
    pub messages_received: u64,
    pub messages_sent: u64,
    pub established_transitions: u64,
    /// Whether the speaker runs the session (false once the tunnel went DOWN).
    pub running: bool,
}

/// The latest stats of one session, kept by its task.
#[derive(Debug, Clone)]
pub(crate) struct StatusEntry {
    pub spec: SessionSpec,
    pub stats: SessionStats,
    pub running: bool,
}

impl StatusEntry {
    pub fn report(&self, now: Instant) -> BgpSessionStatus {
        let s = &self.stats;
        BgpSessionStatus {
            tunnel: self.spec.name.clone(),
            local_address: self.spec.local_address(),
            peer_address: self.spec.peer_address(),
            local_asn: self.spec.session.local_asn,
            peer_asn: self.spec.session.peer_asn,
            state: s.state.to_string(),
            uptime_secs: s.uptime(now).map(|d| d.as_secs()),
            prefixes_received: s.prefixes_received,
            prefixes_accepted: s.prefixes_accepted,
            prefixes_advertised: s.prefixes_advertised,
            last_error: s.last_error.as_ref().map(ToString::to_string),
            messages_received: s.counters.messages_received,
            messages_sent: s.counters.messages_sent,
            established_transitions: s.counters.established_transitions,
            running: self.running,
        }
    }
}
