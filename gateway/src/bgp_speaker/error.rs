//! What can go wrong when starting a BGP session.

use crate::routing::TunnelId;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum SpeakerError {
    /// BGP runs over IPv4 tunnel inner addresses only (the core speaks IPv4 unicast).
    #[error("tunnel `{tunnel}`: BGP needs IPv4 inner addresses")]
    NotIpv4 { tunnel: String },
    #[error("tunnel `{tunnel}`: cannot advertise {prefix}: only IPv4 prefixes")]
    Ipv6Prefix {
        tunnel: String,
        prefix: ipnet::IpNet,
    },
    #[error("tunnel `{tunnel}`: hold time {secs} s does not fit the OPEN message")]
    HoldTime { tunnel: String, secs: u64 },
    #[error("tunnel `{tunnel}`: {source}")]
    Session {
        tunnel: String,
        #[source]
        source: bgp::ConfigError,
    },
    #[error("a BGP session already runs over tunnel {0:?}")]
    AlreadyRunning(TunnelId),
    #[error("the BGP speaker must be created inside a tokio runtime")]
    NoRuntime,
}
