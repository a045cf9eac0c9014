//! The generic payload chain and every payload body of RFC 7296 section 3.
use super::sa::{decode_proposals, encode_proposals, patch_len};
use super::ts::{decode_ts, encode_ts};
use super::{DecodeError, Proposal, Reader, TrafficSelector};

/// Payload type numbers (RFC 7296 3.2, RFC 7383 2.5).
pub struct PayloadType;

impl PayloadType {
    pub const NONE: u8 = 0;
    pub const SA: u8 = 33;
    pub const KE: u8 = 34;
    pub const IDI: u8 = 35;
    pub const IDR: u8 = 36;
    pub const CERT: u8 = 37;
    pub const CERTREQ: u8 = 38;
    pub const AUTH: u8 = 39;
    pub const NONCE: u8 = 40;
    pub const NOTIFY: u8 = 41;
    pub const DELETE: u8 = 42;
    pub const VENDOR: u8 = 43;
    pub const TSI: u8 = 44;
    pub const TSR: u8 = 45;
    pub const SK: u8 = 46;
    pub const CP: u8 = 47;
    pub const EAP: u8 = 48;
    pub const SKF: u8 = 53;
}

/// IDi / IDr body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identification {
    pub id_type: u8,
    pub data: Vec<u8>,
}

impl Identification {
    /// The payload body (IDx' in RFC 7296 2.15): type, three reserved bytes, data.
    pub fn body(&self) -> Vec<u8> {
        let mut b = vec![self.id_type, 0, 0, 0];
        b.extend_from_slice(&self.data);
        b
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notify {
    pub protocol: u8,
    pub spi: Vec<u8>,
    pub ty: u16,
    pub data: Vec<u8>,
}

impl Notify {
    pub fn new(ty: u16, data: Vec<u8>) -> Self {
        Notify {
            protocol: 0,
            spi: Vec::new(),
            ty,
            data,
        }
    }

    pub fn is_error(&self) -> bool {
        self.ty < super::notify::FIRST_STATUS
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delete {
    pub protocol: u8,
    pub spi_size: u8,
    pub spis: Vec<Vec<u8>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigAttribute {
    pub ty: u16,
    pub value: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigPayload {
    pub cfg_type: u8,
    pub attributes: Vec<ConfigAttribute>,
}

/// SK payload, still encrypted: `body` is IV | ciphertext | ICV.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Encrypted {
    pub inner_first: u8,
    pub body: Vec<u8>,
}

/// SKF payload (RFC 7383): one encrypted fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EncryptedFragment {
    pub inner_first: u8,
    pub number: u16,
    pub total: u16,
    pub body: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Payload {
    Sa(Vec<Proposal>),
    Ke {
        group: u16,
        data: Vec<u8>,
    },
    IdI(Identification),
    IdR(Identification),
    /// Certificates are not used with PSK; kept opaque.
    Cert {
        encoding: u8,
        data: Vec<u8>,
    },
    /// Accepted and ignored (PSK only).
    CertReq {
        encoding: u8,
        data: Vec<u8>,
    },
    Auth {
        method: u8,
        data: Vec<u8>,
    },
    Nonce(Vec<u8>),
    Notify(Notify),
    Delete(Delete),
    Vendor(Vec<u8>),
    TsI(Vec<TrafficSelector>),
    TsR(Vec<TrafficSelector>),
    Sk(Encrypted),
    Skf(EncryptedFragment),
    Cp(ConfigPayload),
    /// A payload type this crate does not know; `critical` asks the receiver to reject it.
    Unknown {
        ty: u8,
        critical: bool,
        body: Vec<u8>,
    },
}

impl Payload {
    pub fn payload_type(&self) -> u8 {
        match self {
            Payload::Sa(_) => PayloadType::SA,
            Payload::Ke { .. } => PayloadType::KE,
            Payload::IdI(_) => PayloadType::IDI,
            Payload::IdR(_) => PayloadType::IDR,
            Payload::Cert { .. } => PayloadType::CERT,
            Payload::CertReq { .. } => PayloadType::CERTREQ,
            Payload::Auth { .. } => PayloadType::AUTH,
            Payload::Nonce(_) => PayloadType::NONCE,
            Payload::Notify(_) => PayloadType::NOTIFY,
            Payload::Delete(_) => PayloadType::DELETE,
            Payload::Vendor(_) => PayloadType::VENDOR,
            Payload::TsI(_) => PayloadType::TSI,
            Payload::TsR(_) => PayloadType::TSR,
            Payload::Sk(_) => PayloadType::SK,
            Payload::Skf(_) => PayloadType::SKF,
            Payload::Cp(_) => PayloadType::CP,
            Payload::Unknown { ty, .. } => *ty,
        }
    }

    fn decode_body(ty: u8, critical: bool, next: u8, body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body, "payload");
        let p = match ty {
            PayloadType::SA => Payload::Sa(decode_proposals(body)?),
            PayloadType::KE => {
                let group = r.u16()?;
                let _reserved = r.u16()?;
                Payload::Ke {
                    group,
                    data: r.rest().to_vec(),
                }
            }
            PayloadType::IDI | PayloadType::IDR => {
                let id_type = r.u8()?;
                let _reserved = r.take(3)?;
                let id = Identification {
                    id_type,
                    data: r.rest().to_vec(),
                };
                if ty == PayloadType::IDI {
                    Payload::IdI(id)
                } else {
                    Payload::IdR(id)
                }
            }
            PayloadType::CERT | PayloadType::CERTREQ => {
                let encoding = r.u8()?;
                let data = r.rest().to_vec();
                if ty == PayloadType::CERT {
                    Payload::Cert { encoding, data }
                } else {
                    Payload::CertReq { encoding, data }
                }
            }
            PayloadType::AUTH => {
                let method = r.u8()?;
                let _reserved = r.take(3)?;
                Payload::Auth {
                    method,
                    data: r.rest().to_vec(),
                }
            }
            PayloadType::NONCE => {
                // RFC 7296 2.10: nonces are 16..=256 bytes.
                if !(16..=256).contains(&body.len()) {
                    return Err(DecodeError::BadLength {
                        what: "nonce",
                        len: body.len(),
                    });
                }
                Payload::Nonce(body.to_vec())
            }
            PayloadType::NOTIFY => {
                let protocol = r.u8()?;
                let spi_size = r.u8()? as usize;
                let nty = r.u16()?;
                let spi = r.take(spi_size)?.to_vec();
                Payload::Notify(Notify {
                    protocol,
                    spi,
                    ty: nty,
                    data: r.rest().to_vec(),
                })
            }
            PayloadType::DELETE => {
                let protocol = r.u8()?;
                let spi_size = r.u8()?;
                let n = r.u16()?;
                let mut spis = Vec::new();
                for _ in 0..n {
                    spis.push(r.take(spi_size.into())?.to_vec());
                }
                if !r.is_empty() {
                    return Err(DecodeError::TrailingBytes);
                }
                Payload::Delete(Delete {
                    protocol,
                    spi_size,
                    spis,
                })
            }
            PayloadType::VENDOR => Payload::Vendor(body.to_vec()),
            PayloadType::TSI => Payload::TsI(decode_ts(body)?),
            PayloadType::TSR => Payload::TsR(decode_ts(body)?),
            PayloadType::SK => Payload::Sk(Encrypted {
                inner_first: next,
                body: body.to_vec(),
            }),
            PayloadType::SKF => {
                let number = r.u16()?;
                let total = r.u16()?;
                if number == 0 || number > total {
                    return Err(DecodeError::InvalidValue {
                        what: "fragment number",
                        value: number.into(),
                    });
                }
                Payload::Skf(EncryptedFragment {
                    inner_first: next,
                    number,
                    total,
                    body: r.rest().to_vec(),
                })
            }
            PayloadType::CP => {
                let cfg_type = r.u8()?;
                let _reserved = r.take(3)?;
                let mut attributes = Vec::new();
                while !r.is_empty() {
                    let aty = r.u16()? & 0x7fff;
                    let len = r.u16()? as usize;
                    attributes.push(ConfigAttribute {
                        ty: aty,
                        value: r.take(len)?.to_vec(),
                    });
                }
                Payload::Cp(ConfigPayload {
                    cfg_type,
                    attributes,
                })
            }
            _ => Payload::Unknown {
                ty,
                critical,
                body: body.to_vec(),
            },
        };
        Ok(p)
    }

    fn encode_body(&self, out: &mut Vec<u8>) {
        match self {
            Payload::Sa(props) => encode_proposals(props, out),
            Payload::Ke { group, data } => {
                out.extend_from_slice(&group.to_be_bytes());
                out.extend_from_slice(&[0, 0]);
                out.extend_from_slice(data);
            }
            Payload::IdI(id) | Payload::IdR(id) => out.extend_from_slice(&id.body()),
            Payload::Cert { encoding, data } | Payload::CertReq { encoding, data } => {
                out.push(*encoding);
                out.extend_from_slice(data);
            }
            Payload::Auth { method, data } => {
                out.extend_from_slice(&[*method, 0, 0, 0]);
                out.extend_from_slice(data);
            }
            Payload::Nonce(n) | Payload::Vendor(n) => out.extend_from_slice(n),
            Payload::Notify(n) => {
                out.push(n.protocol);
                out.push(n.spi.len() as u8);
                out.extend_from_slice(&n.ty.to_be_bytes());
                out.extend_from_slice(&n.spi);
                out.extend_from_slice(&n.data);
            }
            Payload::Delete(d) => {
                out.push(d.protocol);
                out.push(d.spi_size);
                out.extend_from_slice(&(d.spis.len() as u16).to_be_bytes());
                for s in &d.spis {
                    out.extend_from_slice(s);
                }
            }
            Payload::TsI(ts) | Payload::TsR(ts) => encode_ts(ts, out),
            Payload::Sk(e) => out.extend_from_slice(&e.body),
            Payload::Skf(f) => {
                out.extend_from_slice(&f.number.to_be_bytes());
                out.extend_from_slice(&f.total.to_be_bytes());
                out.extend_from_slice(&f.body);
            }
            Payload::Cp(cp) => {
                out.extend_from_slice(&[cp.cfg_type, 0, 0, 0]);
                for a in &cp.attributes {
                    out.extend_from_slice(&a.ty.to_be_bytes());
                    out.extend_from_slice(&(a.value.len() as u16).to_be_bytes());
                    out.extend_from_slice(&a.value);
                }
            }
            Payload::Unknown { body, .. } => out.extend_from_slice(body),
        }
    }

    /// The next-payload value this payload's own header carries when it is last.
    fn chain_terminator(&self) -> u8 {
        match self {
            Payload::Sk(e) => e.inner_first,
            Payload::Skf(f) => f.inner_first,
            _ => PayloadType::NONE,
        }
    }
}

/// Decodes a chain of generic payloads starting with type `first`.
///
/// An SK or SKF payload must be last; its next-payload field names the first inner
/// payload and is kept in the decoded value.
pub fn decode_chain(first: u8, buf: &[u8]) -> Result<Vec<Payload>, DecodeError> {
    let mut r = Reader::new(buf, "payload chain");
    let mut ty = first;
    let mut out = Vec::new();
    while ty != PayloadType::NONE {
        let next = r.u8()?;
        let flags = r.u8()?;
        let len = r.u16()? as usize;
        if len < 4 {
            return Err(DecodeError::BadLength {
                what: "generic payload header",
                len,
            });
        }
        let body = r.take(len - 4)?;
        let critical = flags & 0x80 != 0;
        out.push(Payload::decode_body(ty, critical, next, body)?);
        if ty == PayloadType::SK || ty == PayloadType::SKF {
            if !r.is_empty() {
                return Err(DecodeError::EncryptedNotLast);
            }
            return Ok(out);
        }
        ty = next;
    }
    if !r.is_empty() {
        return Err(DecodeError::TrailingBytes);
    }
    Ok(out)
}

/// Encodes a payload chain (generic headers with next-payload links and lengths).
pub fn encode_chain(payloads: &[Payload], out: &mut Vec<u8>) {
    for (i, p) in payloads.iter().enumerate() {
        let next = payloads
            .get(i + 1)
            .map(|n| n.payload_type())
            .unwrap_or_else(|| p.chain_terminator());
        let start = out.len();
        let critical = matches!(p, Payload::Unknown { critical: true, .. });
        out.extend_from_slice(&[next, if critical { 0x80 } else { 0 }, 0, 0]);
        p.encode_body(out);
        patch_len(out, start);
    }
}
