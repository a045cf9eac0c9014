//! Typed errors: SA construction, encapsulation and inbound drop reasons.

use crate::lifetime::LimitKind;

/// The SA could not be created from the given configuration.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SaError {
    #[error("{what} key is {got} bytes, the suite needs {expected}")]
    KeyLength {
        what: &'static str,
        expected: usize,
        got: usize,
    },
    #[error("SPI 0 is reserved (RFC 4303 2.1)")]
    ReservedSpi,
    #[error("replay window size {0} is out of range 1..={max}", max = crate::replay::MAX_REPLAY_WINDOW)]
    ReplayWindow(u32),
    #[error("crypto library refused the key")]
    Crypto,
}

/// Why an outbound packet was not encapsulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum EncapError {
    #[error("{have} bytes before the inner packet, {need} needed")]
    HeadroomTooSmall { need: usize, have: usize },
    #[error("{have} bytes after the inner packet, {need} needed")]
    TailroomTooSmall { need: usize, have: usize },
    #[error("inner packet is empty or not IPv4/IPv6")]
    NotIpPacket,
    #[error("SA expired: hard {0} limit reached")]
    SaExpired(LimitKind),
    #[error("crypto library failure")]
    Crypto,
}

/// Why an inbound packet was dropped. Each has a per-SA counter (see
/// [`crate::DropCounts`]), except `UnknownSpi`, which the [`crate::SaTable`] counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, thiserror::Error)]
pub enum DropReason {
    #[error("packet too short for this SA")]
    Truncated,
    #[error("ciphertext is not a multiple of the block size")]
    BadLength,
    #[error("no inbound SA for SPI {0:#010x}")]
    UnknownSpi(u32),
    #[error("sequence number already received")]
    Replayed,
    #[error("sequence number is left of the replay window")]
    OutsideWindow,
    #[error("integrity check failed")]
    IcvMismatch,
    #[error("padding is not 1, 2, 3, ...")]
    BadPadding,
    #[error("unsupported next header {0}")]
    BadNextHeader(u8),
    #[error("inner packet does not match its next header")]
    BadInnerPacket,
    #[error("TFC dummy packet (next header 59)")]
    TfcDummy,
    #[error("SA expired: hard lifetime reached")]
    SaExpired,
}

impl DropReason {
    /// Number of per-SA counters.
    pub(crate) const COUNT: usize = 11;

    pub(crate) fn index(self) -> usize {
        match self {
            DropReason::Truncated => 0,
            DropReason::BadLength => 1,
            DropReason::UnknownSpi(_) => 2,
            DropReason::Replayed => 3,
            DropReason::OutsideWindow => 4,
            DropReason::IcvMismatch => 5,
            DropReason::BadPadding => 6,
            DropReason::BadNextHeader(_) => 7,
            DropReason::BadInnerPacket => 8,
            DropReason::TfcDummy => 9,
            DropReason::SaExpired => 10,
        }
    }
}
