//! Decode errors that end the session. Each one knows the NOTIFICATION to send back.
//! Errors that RFC 7606 handles without a reset (treat-as-withdraw, attribute discard)
//! are not here: they are reported inside the decoded UPDATE (see `update::AttributeError`).

use std::net::Ipv4Addr;

use thiserror::Error;

use super::notification::{code, header_subcode, open_subcode, update_subcode, Notification};

/// A message that cannot be accepted; the session must send `notification()` and close.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum DecodeError {
    #[error("marker is not all ones (connection not synchronized)")]
    BadMarker,
    #[error("bad message length {0}")]
    BadLength(u16),
    #[error("unknown message type {0}")]
    BadType(u8),
    #[error("unsupported BGP version {0}")]
    UnsupportedVersion(u8),
    #[error("unacceptable hold time {0}s")]
    UnacceptableHoldTime(u16),
    #[error("bad BGP identifier {0}")]
    BadBgpIdentifier(Ipv4Addr),
    #[error("unsupported optional parameter type {0}")]
    UnsupportedOptionalParameter(u8),
    #[error("malformed OPEN: {0}")]
    MalformedOpen(&'static str),
    #[error("malformed attribute list: {0}")]
    MalformedAttributeList(&'static str),
    #[error("invalid network field: {0}")]
    InvalidNetworkField(&'static str),
    #[error("unrecognized well-known attribute type {type_code}")]
    UnrecognizedWellKnownAttribute { type_code: u8, attribute: Vec<u8> },
}

impl DecodeError {
    /// The NOTIFICATION that answers this error (RFC 4271 section 6, RFC 7606).
    pub fn notification(&self) -> Notification {
        let (c, s, data) = match self {
            Self::BadMarker => (
                code::MESSAGE_HEADER,
                header_subcode::CONNECTION_NOT_SYNCHRONIZED,
                Vec::new(),
            ),
            Self::BadLength(len) => (
                code::MESSAGE_HEADER,
                header_subcode::BAD_MESSAGE_LENGTH,
                len.to_be_bytes().to_vec(),
            ),
            Self::BadType(t) => (
                code::MESSAGE_HEADER,
                header_subcode::BAD_MESSAGE_TYPE,
                vec![*t],
            ),
            // Data: the largest version we support, two octets (RFC 4271 section 6.2).
            Self::UnsupportedVersion(_) => (
                code::OPEN_MESSAGE,
                open_subcode::UNSUPPORTED_VERSION,
                4u16.to_be_bytes().to_vec(),
            ),
            Self::UnacceptableHoldTime(_) => (
                code::OPEN_MESSAGE,
                open_subcode::UNACCEPTABLE_HOLD_TIME,
                Vec::new(),
            ),
            Self::BadBgpIdentifier(_) => (
                code::OPEN_MESSAGE,
                open_subcode::BAD_BGP_IDENTIFIER,
                Vec::new(),
            ),
            Self::UnsupportedOptionalParameter(_) => (
                code::OPEN_MESSAGE,
                open_subcode::UNSUPPORTED_OPTIONAL_PARAMETER,
                Vec::new(),
            ),
            Self::MalformedOpen(_) => (code::OPEN_MESSAGE, open_subcode::UNSPECIFIC, Vec::new()),
            Self::MalformedAttributeList(_) => (
                code::UPDATE_MESSAGE,
                update_subcode::MALFORMED_ATTRIBUTE_LIST,
                Vec::new(),
            ),
            Self::InvalidNetworkField(_) => (
                code::UPDATE_MESSAGE,
                update_subcode::INVALID_NETWORK_FIELD,
                Vec::new(),
            ),
            Self::UnrecognizedWellKnownAttribute { attribute, .. } => (
                code::UPDATE_MESSAGE,
                update_subcode::UNRECOGNIZED_WELL_KNOWN_ATTRIBUTE,
                attribute.clone(),
            ),
        };
        Notification::new(c, s, data)
    }
}
