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
    /// Second connections to or from the peer while one was in use (RFC 4271 6.8).
    #[serde(default)]
    pub connection_collisions: u64,
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
            connection_collisions: s.counters.connection_collisions,
            running: self.running,
        }
    }
}

/// `vpngw bgp` for people: one line per session.
pub fn bgp_table(sessions: &[BgpSessionStatus]) -> String {
    use std::fmt::Write;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<16} {:<16} {:>7} {:<12} {:>10} {:>8} {:>8} {:>10}  LAST_ERROR",
        "TUNNEL", "PEER", "PEER_AS", "STATE", "UPTIME", "RECEIVED", "ADVERTISED", "COLLISIONS"
    );
    for s in sessions {
        let uptime = s.uptime_secs.map_or_else(
            || "-".to_owned(),
            |u| humantime::format_duration(std::time::Duration::from_secs(u)).to_string(),
        );
        let _ = writeln!(
            out,
            "{:<16} {:<16} {:>7} {:<12} {:>10} {:>8} {:>8} {:>10}  {}",
            s.tunnel,
            s.peer_address,
            s.peer_asn,
            s.state,
            uptime,
            s.prefixes_received,
            s.prefixes_advertised,
            s.connection_collisions,
            s.last_error.as_deref().unwrap_or("-")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_shows_state_uptime_and_prefix_counts() {
        let s = BgpSessionStatus {
            tunnel: "tun1".into(),
            local_address: Ipv4Addr::new(169, 254, 10, 2),
            peer_address: Ipv4Addr::new(169, 254, 10, 1),
            local_asn: 65010,
            peer_asn: 65000,
            state: "Established".into(),
            uptime_secs: Some(75),
            prefixes_received: 3,
            prefixes_accepted: 3,
            prefixes_advertised: 1,
            last_error: None,
            messages_received: 10,
            messages_sent: 9,
            established_transitions: 1,
            connection_collisions: 2,
            running: true,
        };
        let t = bgp_table(std::slice::from_ref(&s));
        let line = t.lines().nth(1).unwrap();
        let cols: Vec<&str> = line.split_whitespace().collect();
        assert_eq!(
            cols,
            [
                "tun1",
                "169.254.10.1",
                "65000",
                "Established",
                "1m",
                "15s",
                "3",
                "1",
                "2",
                "-"
            ]
        );
        let back: BgpSessionStatus =
            serde_json::from_str(&serde_json::to_string(&s).unwrap()).unwrap();
        assert_eq!(back, s);
    }
}
