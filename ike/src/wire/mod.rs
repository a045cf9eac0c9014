//! IKEv2 wire format (RFC 7296 section 3, RFC 7383 fragments): decode and encode.
//!
//! Decoding never panics: every length is checked against the bytes at hand and a
//! [`DecodeError`] names what was wrong. Encrypted payloads (SK, SKF) are kept as raw
//! bytes here; `crate::crypto::sk` opens and seals them.

mod error;
mod header;
mod payload;
mod reader;
mod sa;
#[cfg(test)]
mod tests;
mod ts;

pub use error::DecodeError;
pub use header::{ExchangeType, Header, FLAG_INITIATOR, FLAG_RESPONSE, FLAG_VERSION, HEADER_LEN};
pub use payload::{
    decode_chain, encode_chain, ConfigAttribute, ConfigPayload, Delete, Encrypted,
    EncryptedFragment, Identification, Notify, Payload, PayloadType,
};
pub use reader::Reader;
pub use sa::{Attribute, Proposal, Transform, ATTR_KEY_LENGTH};
pub use ts::TrafficSelector;

/// A whole IKE message: header and its (outer) payloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Message {
    pub header: Header,
    pub payloads: Vec<Payload>,
}

impl Message {
    /// Decodes a datagram (without the non-ESP marker) into header and payloads.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let header = Header::decode(bytes)?;
        let total = header.length as usize;
        if total > bytes.len() {
            return Err(DecodeError::Truncated {
                what: "IKE message",
            });
        }
        let body = bytes.get(HEADER_LEN..total).ok_or(DecodeError::Truncated {
            what: "IKE message",
        })?;
        let payloads = decode_chain(header.next_payload, body)?;
        Ok(Message { header, payloads })
    }

    /// Encodes the message, fixing the header's next-payload and length fields.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(512);
        let mut header = self.header;
        header.next_payload = self.payloads.first().map(|p| p.payload_type()).unwrap_or(0);
        header.encode(&mut out);
        encode_chain(&self.payloads, &mut out);
        let len = out.len() as u32;
        if let Some(slot) = out.get_mut(24..28) {
            slot.copy_from_slice(&len.to_be_bytes());
        }
        out
    }
}

/// Notify message types used by this crate (RFC 7296 3.10.1, RFC 7383, RFC 5996).
pub mod notify {
    pub const UNSUPPORTED_CRITICAL_PAYLOAD: u16 = 1;
    pub const INVALID_IKE_SPI: u16 = 4;
    pub const INVALID_MAJOR_VERSION: u16 = 5;
    pub const INVALID_SYNTAX: u16 = 7;
    pub const INVALID_MESSAGE_ID: u16 = 9;
    pub const INVALID_SPI: u16 = 11;
    pub const NO_PROPOSAL_CHOSEN: u16 = 14;
    pub const INVALID_KE_PAYLOAD: u16 = 17;
    pub const AUTHENTICATION_FAILED: u16 = 24;
    pub const SINGLE_PAIR_REQUIRED: u16 = 34;
    pub const NO_ADDITIONAL_SAS: u16 = 35;
    pub const INTERNAL_ADDRESS_FAILURE: u16 = 36;
    pub const FAILED_CP_REQUIRED: u16 = 37;
    pub const TS_UNACCEPTABLE: u16 = 38;
    pub const INVALID_SELECTORS: u16 = 39;
    pub const TEMPORARY_FAILURE: u16 = 43;
    pub const CHILD_SA_NOT_FOUND: u16 = 44;
    /// Error types are below this value, status types at or above it.
    pub const FIRST_STATUS: u16 = 16384;
    pub const INITIAL_CONTACT: u16 = 16384;
    pub const SET_WINDOW_SIZE: u16 = 16385;
    pub const ADDITIONAL_TS_POSSIBLE: u16 = 16386;
    pub const IPCOMP_SUPPORTED: u16 = 16387;
    pub const NAT_DETECTION_SOURCE_IP: u16 = 16388;
    pub const NAT_DETECTION_DESTINATION_IP: u16 = 16389;
    pub const COOKIE: u16 = 16390;
    pub const USE_TRANSPORT_MODE: u16 = 16391;
    pub const REKEY_SA: u16 = 16393;
    pub const ESP_TFC_PADDING_NOT_SUPPORTED: u16 = 16394;
    pub const NON_FIRST_FRAGMENTS_ALSO: u16 = 16395;
    pub const IKEV2_FRAGMENTATION_SUPPORTED: u16 = 16430;
}

/// Protocol IDs of proposals, notifies and deletes.
pub mod protocol {
    pub const IKE: u8 = 1;
    pub const AH: u8 = 2;
    pub const ESP: u8 = 3;
}

/// Transform types (RFC 7296 3.3.2).
pub mod transform_type {
    pub const ENCR: u8 = 1;
    pub const PRF: u8 = 2;
    pub const INTEG: u8 = 3;
    pub const DH: u8 = 4;
    pub const ESN: u8 = 5;
}

/// Identification types (RFC 7296 3.5).
pub mod id_type {
    pub const IPV4_ADDR: u8 = 1;
    pub const FQDN: u8 = 2;
    pub const RFC822_ADDR: u8 = 3;
    pub const IPV6_ADDR: u8 = 5;
    pub const KEY_ID: u8 = 11;
}

/// Authentication methods (RFC 7296 3.8).
pub mod auth_method {
    pub const SHARED_KEY_MIC: u8 = 2;
}
