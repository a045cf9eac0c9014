//! The session states and input events of RFC 4271 section 8. The transitions live in
//! `session::handlers`; the names follow the RFC so the code can be read beside it.

use crate::session::Direction;
use crate::wire::{DecodeError, Notification, Open, RouteRefresh, Update};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum State {
    Idle,
    Connect,
    Active,
    OpenSent,
    OpenConfirm,
    Established,
}

impl State {
    /// States in which a TCP connection exists.
    pub fn is_connected(self) -> bool {
        matches!(self, Self::OpenSent | Self::OpenConfirm | Self::Established)
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Idle => "Idle",
            Self::Connect => "Connect",
            Self::Active => "Active",
            Self::OpenSent => "OpenSent",
            Self::OpenConfirm => "OpenConfirm",
            Self::Established => "Established",
        }
    }
}

impl std::fmt::Display for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// FSM input events (RFC 4271 section 8.1, with the RFC event numbers).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// RFC event 1.
    ManualStart,
    /// RFC event 2.
    ManualStop,
    /// RFC event 9.
    ConnectRetryTimerExpires,
    /// RFC event 10.
    HoldTimerExpires,
    /// RFC event 11.
    KeepaliveTimerExpires,
    /// RFC event 13: the automatic restart after an error.
    IdleHoldTimerExpires,
    /// RFC events 16/17: a TCP connection, outgoing or incoming, is up.
    TcpConnectionConfirmed(Direction),
    /// RFC event 18.
    TcpConnectionFails,
    /// RFC event 19.
    BgpOpen(Open),
    /// RFC events 21/22/28: a message that cannot be accepted; its NOTIFICATION is in the error.
    MessageError(DecodeError),
    /// RFC event 25.
    NotifMsg(Notification),
    /// RFC event 26.
    KeepAliveMsg,
    /// RFC event 27.
    UpdateMsg(Update),
    /// RFC 2918.
    RouteRefreshMsg(RouteRefresh),
}
