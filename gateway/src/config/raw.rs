//! The config file as written: loose types (strings for addresses, durations and enums) so that
//! semantic checks happen in `validate`, where every problem is collected instead of the first.

use super::secret::Secret;
use serde::Deserialize;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub local: Option<RawLocal>,
    /// TUN device carrying every tunnel (default `vpngw0`).
    pub tun_name: Option<String>,
    /// Control socket path (default `/run/vpngw/vpngw.sock`).
    pub control_socket: Option<String>,
    /// Dataplane worker threads (default: one per available core).
    pub workers: Option<usize>,
    /// Prometheus metrics over HTTP on this address and port (off when absent).
    pub metrics_listen: Option<String>,
    #[serde(default)]
    pub connections: Vec<RawConnection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLocal {
    pub id: Option<String>,
    pub address: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConnection {
    pub name: Option<String>,
    pub mode: Option<String>,
    #[serde(default)]
    pub tunnels: Vec<RawTunnel>,
    #[serde(default)]
    pub routes: Vec<RawRoute>,
    pub bgp: Option<RawBgp>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTunnel {
    pub name: Option<String>,
    pub local_address: Option<String>,
    pub peer: Option<String>,
    pub psk: Option<Secret>,
    pub psk_file: Option<String>,
    pub ike_proposals: Option<String>,
    pub esp_proposals: Option<String>,
    pub allow_weak_groups: Option<bool>,
    pub ike_lifetime: Option<RawLifetime>,
    pub child_lifetime: Option<RawChildLifetime>,
    pub dpd: Option<RawDpd>,
    pub start_action: Option<String>,
    pub local_id: Option<String>,
    pub remote_id: Option<String>,
    pub inner_address: Option<String>,
    pub inner_peer: Option<String>,
    pub mtu: Option<i64>,
    pub mss_clamp: Option<bool>,
    /// DSCP between inner and outer headers: "out" (default), "in", "yes", "no".
    pub copy_dscp: Option<String>,
    /// RFC 6040 ECN propagation (default true).
    pub copy_ecn: Option<bool>,
    /// Traffic selectors (CIDR prefixes) of our side and the peer's; default any.
    pub local_ts: Option<Vec<String>>,
    pub remote_ts: Option<Vec<String>>,
    /// Accept the peer's additional CHILD SAs (default true).
    pub additional_child_sas: Option<bool>,
    /// Reauthenticate the IKE SA this long after it was authenticated; off if absent.
    pub reauth_time: Option<String>,
    /// Further CHILD SAs we request ourselves once the IKE SA is up.
    pub children: Option<Vec<RawChild>>,
}

/// One `[[connections.tunnels.children]]` table.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChild {
    pub local_ts: Option<Vec<String>>,
    pub remote_ts: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawLifetime {
    pub soft: Option<String>,
    pub hard: Option<String>,
}

/// `child_lifetime`: the times of `RawLifetime` plus volume limits per SA direction.
/// Byte and packet values stay TOML values so that a wrong type is reported with its path.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawChildLifetime {
    pub soft: Option<String>,
    pub hard: Option<String>,
    pub soft_bytes: Option<toml::Value>,
    pub hard_bytes: Option<toml::Value>,
    pub soft_packets: Option<toml::Value>,
    pub hard_packets: Option<toml::Value>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDpd {
    pub interval: Option<String>,
    pub timeout: Option<String>,
    pub action: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRoute {
    pub prefix: Option<String>,
    #[serde(default)]
    pub via: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawBgp {
    pub local_asn: Option<i64>,
    pub peer_asn: Option<i64>,
    #[serde(default)]
    pub advertise: Vec<String>,
    pub max_prefix: Option<i64>,
    pub hold_time: Option<String>,
    pub standby_prepend: Option<i64>,
}

impl<'de> Deserialize<'de> for Secret {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        String::deserialize(d).map(Secret::from_string)
    }
}
