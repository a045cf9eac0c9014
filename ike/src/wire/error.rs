use thiserror::Error;

/// Why bytes from the network could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("{what}: truncated")]
    Truncated { what: &'static str },
    #[error("{what}: bad length {len}")]
    BadLength { what: &'static str, len: usize },
    #[error("unsupported IKE major version {0}")]
    UnsupportedVersion(u8),
    #[error("{what}: invalid value {value}")]
    InvalidValue { what: &'static str, value: u32 },
    #[error("encrypted payload is not the last payload")]
    EncryptedNotLast,
    #[error("trailing bytes after the last payload")]
    TrailingBytes,
}
