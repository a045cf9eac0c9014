use super::{DecodeError, Reader};

pub const HEADER_LEN: usize = 28;
pub const FLAG_INITIATOR: u8 = 0x08;
pub const FLAG_VERSION: u8 = 0x10;
pub const FLAG_RESPONSE: u8 = 0x20;

/// Exchange types (RFC 7296 3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ExchangeType {
    IkeSaInit,
    IkeAuth,
    CreateChildSa,
    Informational,
    Other(u8),
}

impl From<u8> for ExchangeType {
    fn from(v: u8) -> Self {
        match v {
            34 => Self::IkeSaInit,
            35 => Self::IkeAuth,
            36 => Self::CreateChildSa,
            37 => Self::Informational,
            o => Self::Other(o),
        }
    }
}

impl From<ExchangeType> for u8 {
    fn from(v: ExchangeType) -> u8 {
        match v {
            ExchangeType::IkeSaInit => 34,
            ExchangeType::IkeAuth => 35,
            ExchangeType::CreateChildSa => 36,
            ExchangeType::Informational => 37,
            ExchangeType::Other(o) => o,
        }
    }
}

/// The fixed IKE header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Header {
    pub spi_i: [u8; 8],
    pub spi_r: [u8; 8],
    pub next_payload: u8,
    /// Major version in the high nibble, minor in the low one (0x20 for IKEv2).
    pub version: u8,
    pub exchange: ExchangeType,
    pub flags: u8,
    pub message_id: u32,
    pub length: u32,
}

impl Header {
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(bytes, "IKE header");
        let spi_i = r.array()?;
        let spi_r = r.array()?;
        let next_payload = r.u8()?;
        let version = r.u8()?;
        let exchange = ExchangeType::from(r.u8()?);
        let flags = r.u8()?;
        let message_id = r.u32()?;
        let length = r.u32()?;
        if version >> 4 != 2 {
            return Err(DecodeError::UnsupportedVersion(version >> 4));
        }
        if (length as usize) < HEADER_LEN {
            return Err(DecodeError::BadLength {
                what: "IKE header",
                len: length as usize,
            });
        }
        Ok(Header {
            spi_i,
            spi_r,
            next_payload,
            version,
            exchange,
            flags,
            message_id,
            length,
        })
    }

    pub fn encode(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.spi_i);
        out.extend_from_slice(&self.spi_r);
        out.push(self.next_payload);
        out.push(self.version);
        out.push(self.exchange.into());
        out.push(self.flags);
        out.extend_from_slice(&self.message_id.to_be_bytes());
        out.extend_from_slice(&self.length.to_be_bytes());
    }

    pub fn is_response(&self) -> bool {
        self.flags & FLAG_RESPONSE != 0
    }

    pub fn is_initiator(&self) -> bool {
        self.flags & FLAG_INITIATOR != 0
    }
}
