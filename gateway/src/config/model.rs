//! The validated config: every field has its final type and has passed its checks.

use super::proposals::ProposalList;
use super::secret::Secret;
use ike::proposal::{EspProposal, IkeProposal};
use ipnet::IpNet;
use std::net::IpAddr;
use std::time::Duration;

pub use crate::packet::{DscpCopy, Qos};

#[derive(Debug, Clone)]
pub struct Config {
    pub local: Local,
    /// The one TUN device carrying every tunnel.
    pub tun_name: String,
    /// Where the daemon listens for `vpngw status` and friends.
    pub control_socket: std::path::PathBuf,
    /// Dataplane workers (TUN queues and UDP/4500 sockets per address); 0: one per core.
    pub workers: usize,
    /// Where Prometheus metrics are served over HTTP (`GET /metrics`); off when `None`.
    pub metrics_listen: Option<std::net::SocketAddr>,
    pub connections: Vec<Connection>,
}

/// This gateway's identity and underlay (public) address.
#[derive(Debug, Clone)]
pub struct Local {
    pub id: Identity,
    pub address: IpAddr,
}

/// IKE identity (IDi/IDr) in the forms strongSwan and cloud endpoints use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Ip(IpAddr),
    Fqdn(String),
    Email(String),
    /// ID_KEY_ID: opaque bytes, written `keyid:text` or `keyid:#hex` as in strongSwan.
    KeyId(Vec<u8>),
}

/// A cloud VPN connection: two tunnels to two cloud endpoints, plus its routes.
#[derive(Debug, Clone)]
pub struct Connection {
    pub name: String,
    pub mode: SelectionMode,
    pub tunnels: [Tunnel; 2],
    pub routes: Vec<StaticRoute>,
    pub bgp: Option<BgpConfig>,
}

/// How traffic is spread over the tunnels of a connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SelectionMode {
    /// The first UP tunnel (in config order) carries everything.
    ActiveStandby,
    /// Flows are spread over all UP tunnels by a 5-tuple hash.
    Ecmp,
}

#[derive(Debug, Clone)]
pub struct Tunnel {
    pub name: String,
    /// Underlay source address: `local.address` unless the tunnel sets `local_address`
    /// (a lab cloud endpoint has one address per tunnel).
    pub local_address: IpAddr,
    pub peer: IpAddr,
    pub psk: Secret,
    /// Parsed from strongSwan syntax, e.g. `aes128gcm16-prfsha256-modp2048`.
    pub ike_proposals: ProposalList<IkeProposal>,
    pub esp_proposals: ProposalList<EspProposal>,
    /// Whether MODP-1024/1536 may be proposed (some cloud defaults still use group 2).
    pub allow_weak_groups: bool,
    pub ike_lifetime: Lifetime,
    pub child_lifetime: Lifetime,
    /// Byte and packet limits of each CHILD SA direction (`child_lifetime.*_bytes`,
    /// `*_packets`); unlimited by default.
    pub child_volume: ChildVolume,
    pub dpd: Dpd,
    pub start_action: StartAction,
    pub local_id: Identity,
    pub remote_id: Identity,
    pub inner: InnerAddress,
    pub mtu: u16,
    pub mss_clamp: bool,
    /// DSCP and ECN between the inner and the outer header (`copy_dscp`, `copy_ecn`).
    pub qos: Qos,
    /// Traffic selectors our side and the peer's CHILD SAs are narrowed to
    /// (default 0.0.0.0/0 and ::/0: route-based).
    pub local_ts: Vec<IpNet>,
    pub remote_ts: Vec<IpNet>,
    /// Whether the peer may add CHILD SAs (CREATE_CHILD_SA) beside the first one.
    pub additional_child_sas: bool,
    /// Make-before-break reauthentication interval (a fresh IKE_SA_INIT + IKE_AUTH);
    /// `None`: only rekeys.
    pub reauth_time: Option<std::time::Duration>,
    /// CHILD SAs beside the first one that we request (CREATE_CHILD_SA) whenever the
    /// tunnel comes UP; a reauthentication requests them again on the new IKE SA.
    pub children: Vec<ChildSelectors>,
}

/// The traffic selectors of one CHILD SA we request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildSelectors {
    pub local_ts: Vec<IpNet>,
    pub remote_ts: Vec<IpNet>,
}

/// Rekey (soft) and expiry (hard) times of an SA; soft < hard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    pub soft: Duration,
    pub hard: Duration,
}

/// Rekey (soft) and stop (hard) counts of an SA direction; soft < hard.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Volume {
    pub soft: u64,
    pub hard: u64,
}

/// A CHILD SA's volume limits, each applied to the inbound and the outbound SA
/// separately; `None`: unlimited.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChildVolume {
    /// Inner (plaintext) bytes.
    pub bytes: Option<Volume>,
    pub packets: Option<Volume>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dpd {
    pub interval: Duration,
    pub timeout: Duration,
    pub action: DpdAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpdAction {
    Restart,
    Clear,
    None,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAction {
    Initiate,
    Respond,
}

/// The tunnel's inner (link) addresses, e.g. 169.254.10.2/30 local, 169.254.10.1 peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InnerAddress {
    pub local: IpAddr,
    pub peer: IpAddr,
    pub prefix_len: u8,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaticRoute {
    pub prefix: IpNet,
    /// One or two tunnel names of the same connection, in preference order.
    pub via: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BgpConfig {
    pub local_asn: u32,
    pub peer_asn: u32,
    pub advertise: Vec<IpNet>,
    pub max_prefix: u32,
    pub hold_time: Duration,
    /// Active-standby: extra copies of our AS on the routes advertised over the k-th
    /// tunnel after the first, k times this, so that the peer sends back over the tunnel
    /// we send on.
    pub standby_prepend: u8,
}

pub mod defaults {
    use std::time::Duration;

    /// Cloud border gateways use ASN 65000.
    pub const PEER_ASN: u32 = 65000;
    pub const MTU: u16 = 1400;
    pub const TUN_NAME: &str = "vpngw0";
    pub const CONTROL_SOCKET: &str = "/run/vpngw/vpngw.sock";
    pub const MTU_RANGE: std::ops::RangeInclusive<i64> = 576..=9000;
    pub const IKE_SOFT: Duration = Duration::from_secs(21 * 3600);
    pub const IKE_HARD: Duration = Duration::from_secs(24 * 3600);
    pub const CHILD_SOFT: Duration = Duration::from_secs(50 * 60);
    pub const CHILD_HARD: Duration = Duration::from_secs(3600);
    pub const DPD_INTERVAL: Duration = Duration::from_secs(30);
    pub const DPD_TIMEOUT: Duration = Duration::from_secs(150);
    pub const BGP_HOLD_TIME: Duration = Duration::from_secs(90);
    pub const MAX_PREFIX: u32 = 100;
    pub const STANDBY_PREPEND: u8 = 2;
    pub const IKE_PROPOSALS: &str = "aes128gcm16-prfsha256-modp2048";
    pub const ESP_PROPOSALS: &str = "aes128gcm16-modp2048";

    /// Route-based traffic selectors: everything of both families.
    pub fn any_ts() -> Vec<ipnet::IpNet> {
        vec![
            ipnet::IpNet::V4(ipnet::Ipv4Net::default()),
            ipnet::IpNet::V6(ipnet::Ipv6Net::default()),
        ]
    }
}
