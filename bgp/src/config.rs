//! Per-session configuration and its validation.

use std::net::Ipv4Addr;
use std::time::Duration;

use thiserror::Error;

use crate::Ipv4Prefix;

/// The cloud border gateway's ASN, the default peer AS.
pub const DEFAULT_PEER_ASN: u32 = 65000;

/// Upper bound of the configurable waits (keeps deadline arithmetic far from overflow).
const MAX_TIMER: Duration = Duration::from_secs(86_400);
/// Most extra copies of our AS in the paths we advertise: a few already outweigh any
/// other path to one provider, and some routers refuse very long AS_PATHs.
pub const MAX_PREPEND: u8 = 16;

/// Settings of one eBGP session (one per IPsec tunnel).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionConfig {
    pub local_asn: u32,
    /// Expected AS of the peer; an OPEN from another AS is refused (Bad Peer AS).
    pub peer_asn: u32,
    pub router_id: Ipv4Addr,
    /// Our tunnel inner address: the NEXT_HOP of the routes we advertise.
    pub local_address: Ipv4Addr,
    /// The peer's tunnel inner address (last tie-breaker in best-path selection).
    pub peer_address: Ipv4Addr,
    /// Hold time we offer; the session uses the smaller of both offers. 0 = no keepalives.
    pub hold_time: u16,
    /// Wait between outgoing connection attempts.
    pub connect_retry_time: Duration,
    /// Wait in Idle after a failure before starting again automatically; doubled for
    /// each further failure before the session gets Established, up to 8 times.
    pub idle_hold_time: Duration,
    /// Never connect out; only accept the peer's connection.
    pub passive: bool,
    /// Most prefixes the peer may have in our Adj-RIB-In; more sends Cease/1 (RFC 4486).
    pub max_prefixes: Option<u32>,
    /// Drop routes whose AS_PATH does not start with the peer's AS (RFC 4271 section 6.3).
    pub enforce_first_as: bool,
    /// Prefixes we advertise (the IDC prefixes on the customer side).
    pub local_prefixes: Vec<Ipv4Prefix>,
    /// Extra copies of our AS in front of the AS_PATH we advertise (0: none), so that
    /// the peer prefers the routes another session gives it (a standby tunnel's).
    pub as_path_prepend: u8,
}

impl SessionConfig {
    /// A config with the defaults: peer AS 65000, hold 90 s, retry 30 s, idle hold 5 s.
    pub fn new(
        local_asn: u32,
        router_id: Ipv4Addr,
        local_address: Ipv4Addr,
        peer_address: Ipv4Addr,
    ) -> Self {
        Self {
            local_asn,
            peer_asn: DEFAULT_PEER_ASN,
            router_id,
            local_address,
            peer_address,
            hold_time: 90,
            connect_retry_time: Duration::from_secs(30),
            idle_hold_time: Duration::from_secs(5),
            passive: false,
            max_prefixes: None,
            enforce_first_as: true,
            local_prefixes: Vec::new(),
            as_path_prepend: 0,
        }
    }

    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.local_asn == 0 {
            return Err(ConfigError::ZeroAsn("local_asn"));
        }
        if self.peer_asn == 0 {
            return Err(ConfigError::ZeroAsn("peer_asn"));
        }
        if self.local_asn == self.peer_asn {
            return Err(ConfigError::NotExternal(self.local_asn));
        }
        if self.router_id.is_unspecified() {
            return Err(ConfigError::ZeroRouterId);
        }
        if self.hold_time == 1 || self.hold_time == 2 {
            return Err(ConfigError::HoldTime(self.hold_time));
        }
        if self.as_path_prepend > MAX_PREPEND {
            return Err(ConfigError::Prepend(self.as_path_prepend));
        }
        for (field, d) in [
            ("connect_retry_time", self.connect_retry_time),
            ("idle_hold_time", self.idle_hold_time),
        ] {
            if d.is_zero() || d > MAX_TIMER {
                return Err(ConfigError::Timer(field));
            }
        }
        Ok(())
    }
}

/// A session config that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ConfigError {
    #[error("{0} must not be 0")]
    ZeroAsn(&'static str),
    #[error("local and peer ASN are both {0}: only eBGP is supported")]
    NotExternal(u32),
    #[error("router_id must not be 0.0.0.0")]
    ZeroRouterId,
    #[error("hold_time {0} is invalid: use 0 or at least 3 seconds")]
    HoldTime(u16),
    #[error("{0} must be between 1 ms and 1 day")]
    Timer(&'static str),
    #[error("as_path_prepend {0} is too long: at most {MAX_PREPEND}")]
    Prepend(u8),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn base() -> SessionConfig {
        SessionConfig::new(
            65001,
            Ipv4Addr::new(10, 0, 0, 2),
            Ipv4Addr::new(169, 254, 10, 2),
            Ipv4Addr::new(169, 254, 10, 1),
        )
    }

    #[test]
    fn validation() {
        assert_eq!(base().validate(), Ok(()));
        let mut c = base();
        c.hold_time = 2;
        assert_eq!(c.validate(), Err(ConfigError::HoldTime(2)));
        c.hold_time = 0;
        assert_eq!(c.validate(), Ok(()));
        let mut c = base();
        c.local_asn = 65000;
        assert_eq!(c.validate(), Err(ConfigError::NotExternal(65000)));
        let mut c = base();
        c.router_id = Ipv4Addr::UNSPECIFIED;
        assert_eq!(c.validate(), Err(ConfigError::ZeroRouterId));
        let mut c = base();
        c.idle_hold_time = Duration::MAX;
        assert_eq!(c.validate(), Err(ConfigError::Timer("idle_hold_time")));
        c.idle_hold_time = Duration::ZERO;
        assert_eq!(c.validate(), Err(ConfigError::Timer("idle_hold_time")));
        let mut c = base();
        c.as_path_prepend = MAX_PREPEND;
        assert_eq!(c.validate(), Ok(()));
        c.as_path_prepend = MAX_PREPEND + 1;
        assert_eq!(c.validate(), Err(ConfigError::Prepend(MAX_PREPEND + 1)));
    }
}
