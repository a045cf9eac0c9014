//! What the tunnel asks its caller to do.
use crate::crypto::Secret;
use crate::proposal::EspSuite;
use crate::wire::TrafficSelector;
use std::net::SocketAddr;

/// Keys of one direction of a CHILD SA.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirectionKeys {
    pub spi: u32,
    /// Encryption key (AES key followed by the 4-byte salt for GCM).
    pub encr_key: Secret,
    /// Integrity key (empty for GCM).
    pub integ_key: Secret,
}

impl DirectionKeys {
    /// The key bytes in RFC 7296 2.17 order: encryption (incl. GCM salt), then integrity.
    pub fn keymat(&self) -> Secret {
        let mut v = self.encr_key.expose().to_vec();
        v.extend_from_slice(self.integ_key.expose());
        Secret::new(v)
    }
}

/// A CHILD SA (pair) to install into the dataplane.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildSaInstall {
    pub suite: EspSuite,
    pub inbound: DirectionKeys,
    pub outbound: DirectionKeys,
    pub local_ts: Vec<TrafficSelector>,
    pub remote_ts: Vec<TrafficSelector>,
    /// ESP-in-UDP (RFC 3948) between these addresses, if NAT or forced encapsulation.
    pub udp_encap: Option<(SocketAddr, SocketAddr)>,
    /// We sent the request that created this SA. When not, the peer installs it only on
    /// our response: as a rekey's responder, keep sending on the old SA until the peer
    /// deletes it.
    pub we_initiated: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownReason {
    /// Closed through `delete()`.
    LocalDelete,
    /// The peer deleted the IKE SA.
    PeerDelete,
    /// The peer stopped answering (retransmissions or DPD exhausted).
    PeerDead,
    /// The peer answered IKE_SA_INIT/IKE_AUTH with this error notify.
    PeerRefused(u16),
    /// The peer failed our authentication check.
    AuthFailed,
    /// No acceptable proposal or traffic selectors.
    NegotiationFailed,
    /// The hard lifetime passed.
    Expired,
    /// A newer IKE SA with the same peer replaced this one (INITIAL_CONTACT).
    Replaced,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Send `bytes` as one UDP datagram from `local` to `remote` (on port 4500 the bytes
    /// already begin with the 4-byte non-ESP marker).
    Send {
        local: SocketAddr,
        remote: SocketAddr,
        bytes: Vec<u8>,
    },
    /// Install an inbound and an outbound ESP SA.
    InstallChildSa(ChildSaInstall),
    /// Remove the ESP SA pair with these SPIs.
    DeleteChildSa { inbound_spi: u32, outbound_spi: u32 },
    /// The peer now sends from `remote` (its NAT mapping changed): IKE goes there
    /// already; ESP should follow (RFC 7296 2.23).
    PeerMoved {
        local: SocketAddr,
        remote: SocketAddr,
    },
    /// The peer lost its state (it restarted): its new IKE SA, with INITIAL_CONTACT,
    /// replaced ours and our CHILD SAs at once. The tunnel stays up; whatever else ran
    /// with the peer over it (a BGP session) is gone at the peer and should start afresh.
    PeerRestarted,
    /// IKE SA and a CHILD SA are established.
    Up,
    /// No usable CHILD SA any more.
    Down(DownReason),
}
