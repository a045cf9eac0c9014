//! The session states and input events of RFC 4271 section 8. The transitions live in
//! `session::handlers`; the names follow the RFC so the code can be read beside it.

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

/// FSM input events (RFC 4271 section 8.1; the RFC's event number in brackets).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// [1]
    ManualStart,
    /// [2]
    ManualStop,
    /// [9]
    ConnectRetryTimerExpires,
    /// [10]
    HoldTimerExpires,
    /// [11]
    KeepaliveTimerExpires,
    /// [13] the automatic restart after an error.
    IdleHoldTimerExpires,
    /// [16]/[17] a TCP connection, outgoing or incoming, is up.
    TcpConnectionConfirmed,
    /// [18]
    TcpConnectionFails,
    /// [19]
    BgpOpen(Open),
    /// [21]/[22]/[28] a message that cannot be accepted; its NOTIFICATION is in the error.
    MessageError(DecodeError),
    /// [25]
    NotifMsg(Notification),
    /// [26]
    KeepAliveMsg,
    /// [27]
    UpdateMsg(Update),
    /// RFC 2918.
    RouteRefreshMsg(RouteRefresh),
}
