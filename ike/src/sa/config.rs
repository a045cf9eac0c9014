//! Per-tunnel configuration.
use crate::proposal::{EspProposal, IkeProposal};
use crate::wire::{id_type, Identification, TrafficSelector};
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// An IKE identity (IDi/IDr).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    Addr(IpAddr),
    Fqdn(String),
    KeyId(Vec<u8>),
}

impl Identity {
    pub fn to_wire(&self) -> Identification {
        match self {
            Identity::Addr(IpAddr::V4(a)) => Identification {
                id_type: id_type::IPV4_ADDR,
                data: a.octets().to_vec(),
            },
            Identity::Addr(IpAddr::V6(a)) => Identification {
                id_type: id_type::IPV6_ADDR,
                data: a.octets().to_vec(),
            },
            Identity::Fqdn(s) => Identification {
                id_type: id_type::FQDN,
                data: s.as_bytes().to_vec(),
            },
            Identity::KeyId(k) => Identification {
                id_type: id_type::KEY_ID,
                data: k.clone(),
            },
        }
    }

    /// Whether a received ID payload names this identity (FQDNs compare case-insensitively).
    pub fn matches(&self, id: &Identification) -> bool {
        let ours = self.to_wire();
        match self {
            Identity::Fqdn(_) => {
                id.id_type == ours.id_type && id.data.eq_ignore_ascii_case(&ours.data)
            }
            _ => *id == ours,
        }
    }
}

/// A pre-shared key: zeroized on drop, never printed.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct Psk(Vec<u8>);

impl Psk {
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Psk(bytes.into())
    }

    pub(crate) fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for Psk {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// When to rekey (soft) and when an SA must be gone (hard). The rekey time is
/// shortened by a random amount up to `jitter` so that both peers rarely rekey at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lifetime {
    pub rekey: Duration,
    pub hard: Duration,
    pub jitter: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DpdAction {
    /// Tear everything down and negotiate again.
    Restart,
    /// Tear everything down and wait for the peer.
    Clear,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Dpd {
    /// Send a liveness check after this long without hearing from the peer.
    pub interval: Duration,
    pub action: DpdAction,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAction {
    /// Negotiate at once and again after failures.
    Initiate,
    /// Wait for the peer to initiate.
    Respond,
}

/// Request retransmission: `initial * 2^n`, capped at `max_interval`, given up after
/// `max_retransmits` resends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retransmit {
    pub initial: Duration,
    pub max_interval: Duration,
    pub max_retransmits: u32,
}

#[derive(Debug, Clone)]
pub struct Config {
    /// Our address and IKE port (normally 500) and the peer's.
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub local_id: Identity,
    pub remote_id: Identity,
    pub psk: Psk,
    pub ike_proposals: Vec<IkeProposal>,
    pub esp_proposals: Vec<EspProposal>,
    /// Our side's traffic selectors (TSi as initiator) and the peer's.
    pub local_ts: Vec<TrafficSelector>,
    pub remote_ts: Vec<TrafficSelector>,
    pub ike_lifetime: Lifetime,
    pub child_lifetime: Lifetime,
    pub dpd: Option<Dpd>,
    pub start_action: StartAction,
    /// Always use UDP encapsulation on port 4500, by faking our NAT detection hash.
    pub force_encap: bool,
    /// Permit MODP groups 2 and 5 (some cloud endpoints still use them).
    pub allow_weak_groups: bool,
    pub retransmit: Retransmit,
    /// Half-open responder SAs beyond which IKE_SA_INIT requires a COOKIE.
    pub cookie_threshold: usize,
    /// New responder IKE SAs admitted per second (and at most this many at once): each
    /// costs a DH computation. Further IKE_SA_INIT requests are dropped unanswered, which
    /// bounds the work a flood that echoes our COOKIEs can cause.
    pub init_rate: u32,
    /// Encrypted messages larger than this are fragmented (RFC 7383) when the peer supports it.
    pub fragment_size: usize,
    /// Wait this long before negotiating again after a failure (start action initiate).
    pub retry_interval: Duration,
    /// Accept the peer's requests for additional CHILD SAs (narrowed to `local_ts` and
    /// `remote_ts`); when false they get NO_ADDITIONAL_SAS.
    pub additional_children: bool,
    /// CHILD SAs an IKE SA carries at most (rekeys replace, so they do not count): a
    /// peer asking for more gets NO_ADDITIONAL_SAS. Bounds what a misbehaving peer can
    /// make us hold and install.
    pub max_children: usize,
    /// Reauthenticate (RFC 7296 2.8.3) this long after an IKE SA is authenticated: a new
    /// IKE_SA_INIT + IKE_AUTH builds the replacement before the old SA is deleted.
    pub reauth_time: Option<Duration>,
}

/// Why a tunnel configuration was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ConfigError {
    #[error("no IKE proposal")]
    NoIkeProposal,
    #[error("no ESP proposal")]
    NoEspProposal,
    #[error("DH group {0} is weak; set allow_weak_groups to use it")]
    WeakGroup(u16),
    #[error("no traffic selectors")]
    NoTrafficSelectors,
    #[error("fragment_size {0} is too small (minimum 576)")]
    FragmentSize(usize),
}

impl Config {
    /// Checks the configuration as a whole.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.ike_proposals.is_empty() {
            return Err(ConfigError::NoIkeProposal);
        }
        if self.esp_proposals.is_empty() {
            return Err(ConfigError::NoEspProposal);
        }
        if self.local_ts.is_empty() || self.remote_ts.is_empty() {
            return Err(ConfigError::NoTrafficSelectors);
        }
        if !self.allow_weak_groups {
            let groups = self
                .ike_proposals
                .iter()
                .flat_map(|p| p.dh.iter())
                .chain(self.esp_proposals.iter().flat_map(|p| p.dh.iter()));
            if let Some(g) = groups.into_iter().find(|g| g.is_weak()) {
                return Err(ConfigError::WeakGroup(g.id()));
            }
        }
        if self.fragment_size < 576 {
            return Err(ConfigError::FragmentSize(self.fragment_size));
        }
        Ok(())
    }

    /// A configuration with the defaults of a route-based tunnel: TS 0.0.0.0/0 and ::/0,
    /// IKE SA 24 h / CHILD SA 1 h lifetimes, DPD every 30 s, retransmissions 1, 2, 4 .. s.
    pub fn new(
        local: SocketAddr,
        remote: SocketAddr,
        local_id: Identity,
        remote_id: Identity,
        psk: Psk,
        ike_proposals: Vec<IkeProposal>,
        esp_proposals: Vec<EspProposal>,
    ) -> Self {
        let any = vec![TrafficSelector::any(false), TrafficSelector::any(true)];
        Config {
            local,
            remote,
            local_id,
            remote_id,
            psk,
            ike_proposals,
            esp_proposals,
            local_ts: any.clone(),
            remote_ts: any,
            ike_lifetime: Lifetime {
                rekey: Duration::from_secs(4 * 3600),
                hard: Duration::from_secs(24 * 3600),
                jitter: Duration::from_secs(360),
            },
            child_lifetime: Lifetime {
                rekey: Duration::from_secs(3600),
                hard: Duration::from_secs(3900),
                jitter: Duration::from_secs(120),
            },
            dpd: Some(Dpd {
                interval: Duration::from_secs(30),
                action: DpdAction::Restart,
            }),
            start_action: StartAction::Respond,
            force_encap: false,
            allow_weak_groups: false,
            retransmit: Retransmit {
                initial: Duration::from_secs(1),
                max_interval: Duration::from_secs(16),
                max_retransmits: 5,
            },
            cookie_threshold: 10,
            init_rate: 10,
            fragment_size: 1280,
            retry_interval: Duration::from_secs(30),
            additional_children: true,
            max_children: 256,
            reauth_time: None,
        }
    }
}
