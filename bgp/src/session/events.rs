//! What a session tells its caller: I/O requests, session up/down, route changes.

use std::net::Ipv4Addr;
use std::sync::Arc;

use thiserror::Error;

use super::Direction;
use crate::fsm::State;
use crate::wire::{DecodeError, Notification, PathAttributes};
use crate::Ipv4Prefix;

/// Output of `Session::poll_event`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SessionEvent {
    /// The FSM moved (for logs and `vpngw bgp`).
    StateChanged { from: State, to: State },
    /// Open a TCP connection to the peer, port 179. Inbound connections are accepted
    /// too: pass each to `handle_connected`.
    Connect,
    /// Write what `poll_transmit` still holds for this connection (a NOTIFICATION,
    /// usually), then close it. `Outbound` also abandons a connection attempt in flight.
    Disconnect(Direction),
    Established {
        peer_asn: u32,
        peer_router_id: Ipv4Addr,
        peer_address: Ipv4Addr,
        /// Negotiated hold time in seconds (0: no keepalives).
        hold_time: u16,
    },
    /// The connection was lost after OPEN was sent; every route learned on it is gone.
    Down { reason: DownReason },
    /// An accepted route appeared or changed.
    RouteLearned {
        prefix: Ipv4Prefix,
        attributes: Arc<PathAttributes>,
    },
    /// A route learned earlier is withdrawn (or no longer passes import policy).
    RouteWithdrawn { prefix: Ipv4Prefix },
}

/// Why a session went down.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DownReason {
    #[error("administratively stopped")]
    AdminStop,
    #[error("TCP connection closed")]
    ConnectionClosed,
    #[error("hold timer expired")]
    HoldTimerExpired,
    #[error("peer sent NOTIFICATION: {0}")]
    PeerNotification(Notification),
    #[error("bad message from peer: {0}")]
    BadMessage(DecodeError),
    #[error("peer is AS {received}, expected AS {expected}")]
    BadPeerAs { expected: u32, received: u32 },
    #[error("peer does not support IPv4 unicast")]
    NoIpv4Unicast,
    #[error("unexpected message in state {0}")]
    UnexpectedMessage(State),
    #[error("peer sent more than {0} prefixes")]
    MaxPrefixes(u32),
}

/// `handle_connected` in a state that cannot take a connection: write the
/// NOTIFICATION, if any, then close it.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("connection refused in state {state}")]
pub struct ConnectionRefused {
    pub state: State,
    /// Cease/Connection Collision Resolution when the session has a connection already.
    pub notification: Option<Notification>,
}

impl ConnectionRefused {
    /// The bytes to write before closing.
    pub fn farewell(&self) -> Option<Vec<u8>> {
        let n = self.notification.clone()?;
        Some(crate::wire::Message::Notification(n).encode(crate::wire::CodecContext::default()))
    }
}
