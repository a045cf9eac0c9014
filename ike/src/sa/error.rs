use crate::crypto::CryptoError;
use crate::wire::DecodeError;
use thiserror::Error;

/// Why a datagram was dropped or an exchange failed. Each kind is counted apart.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum IkeError {
    #[error("malformed message: {0}")]
    Decode(#[from] DecodeError),
    #[error("crypto: {0}")]
    Crypto(#[from] CryptoError),
    #[error("no IKE SA for these SPIs")]
    UnknownSpi,
    #[error("message ID {0} outside the window")]
    OutOfWindow(u32),
    #[error("unexpected message: {0}")]
    Unexpected(&'static str),
    #[error("peer sent error notify {0}")]
    PeerNotify(u16),
    #[error("missing payload {0}")]
    MissingPayload(&'static str),
    #[error("peer authentication failed")]
    AuthenticationFailed,
    #[error("no acceptable proposal")]
    NoProposalChosen,
    #[error("traffic selectors unacceptable")]
    TsUnacceptable,
    #[error("unsupported critical payload {0}")]
    UnsupportedCritical(u8),
    #[error("unencrypted message ignored on an established SA")]
    Unauthenticated,
    #[error("tunnel is not configured to initiate and has nothing to do")]
    Idle,
}
