//! SA payload substructures (RFC 7296 3.3).
use super::{DecodeError, Reader};

pub const ATTR_KEY_LENGTH: u16 = 14;
const AF_TV: u16 = 0x8000;

/// One transform attribute: TV form (`value` is 2 bytes) or TLV form.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attribute {
    pub ty: u16,
    pub tv: bool,
    pub value: Vec<u8>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transform {
    pub ty: u8,
    pub id: u16,
    pub attributes: Vec<Attribute>,
}

impl Transform {
    pub fn new(ty: u8, id: u16, key_length: Option<u16>) -> Self {
        let attributes = key_length
            .map(|k| Attribute {
                ty: ATTR_KEY_LENGTH,
                tv: true,
                value: k.to_be_bytes().to_vec(),
            })
            .into_iter()
            .collect();
        Transform { ty, id, attributes }
    }

    /// The Key Length attribute in bits, if present.
    pub fn key_length(&self) -> Option<u16> {
        self.attributes
            .iter()
            .find(|a| a.ty == ATTR_KEY_LENGTH && a.tv)
            .and_then(|a| <[u8; 2]>::try_from(a.value.as_slice()).ok())
            .map(u16::from_be_bytes)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Proposal {
    pub number: u8,
    pub protocol: u8,
    pub spi: Vec<u8>,
    pub transforms: Vec<Transform>,
}

pub(super) fn decode_proposals(body: &[u8]) -> Result<Vec<Proposal>, DecodeError> {
    let mut r = Reader::new(body, "SA payload");
    let mut out = Vec::new();
    loop {
        let last = r.u8()?;
        let _reserved = r.u8()?;
        let len = r.u16()? as usize;
        if len < 8 {
            return Err(DecodeError::BadLength {
                what: "proposal",
                len,
            });
        }
        let mut p = Reader::new(r.take(len - 4)?, "proposal");
        let number = p.u8()?;
        let protocol = p.u8()?;
        let spi_size = p.u8()? as usize;
        let count = p.u8()?;
        let spi = p.take(spi_size)?.to_vec();
        let transforms = decode_transforms(&mut p, count)?;
        if !p.is_empty() {
            return Err(DecodeError::TrailingBytes);
        }
        out.push(Proposal {
            number,
            protocol,
            spi,
            transforms,
        });
        match last {
            0 if r.is_empty() => return Ok(out),
            0 => return Err(DecodeError::TrailingBytes),
            2 => continue,
            v => {
                return Err(DecodeError::InvalidValue {
                    what: "proposal last-substructure",
                    value: v.into(),
                })
            }
        }
    }
}

fn decode_transforms(p: &mut Reader<'_>, count: u8) -> Result<Vec<Transform>, DecodeError> {
    let mut out = Vec::with_capacity(count.into());
    for i in 0..count {
        let last = p.u8()?;
        let expect = if i + 1 == count { 0 } else { 3 };
        if last != expect {
            return Err(DecodeError::InvalidValue {
                what: "transform last-substructure",
                value: last.into(),
            });
        }
        let _reserved = p.u8()?;
        let len = p.u16()? as usize;
        if len < 8 {
            return Err(DecodeError::BadLength {
                what: "transform",
                len,
            });
        }
        let mut t = Reader::new(p.take(len - 4)?, "transform");
        let ty = t.u8()?;
        let _reserved = t.u8()?;
        let id = t.u16()?;
        let mut attributes = Vec::new();
        while !t.is_empty() {
            let raw = t.u16()?;
            let ty = raw & !AF_TV;
            if raw & AF_TV != 0 {
                attributes.push(Attribute {
                    ty,
                    tv: true,
                    value: t.take(2)?.to_vec(),
                });
            } else {
                let l = t.u16()? as usize;
                attributes.push(Attribute {
                    ty,
                    tv: false,
                    value: t.take(l)?.to_vec(),
                });
            }
        }
        out.push(Transform { ty, id, attributes });
    }
    Ok(out)
}

pub(super) fn encode_proposals(props: &[Proposal], out: &mut Vec<u8>) {
    for (i, p) in props.iter().enumerate() {
        let start = out.len();
        out.push(if i + 1 == props.len() { 0 } else { 2 });
        out.push(0);
        out.extend_from_slice(&[0, 0]);
        out.push(p.number);
        out.push(p.protocol);
        out.push(p.spi.len() as u8);
        out.push(p.transforms.len() as u8);
        out.extend_from_slice(&p.spi);
        for (j, t) in p.transforms.iter().enumerate() {
            let tstart = out.len();
            out.push(if j + 1 == p.transforms.len() { 0 } else { 3 });
            out.push(0);
            out.extend_from_slice(&[0, 0]);
            out.push(t.ty);
            out.push(0);
            out.extend_from_slice(&t.id.to_be_bytes());
            for a in &t.attributes {
                if a.tv {
                    out.extend_from_slice(&(a.ty | AF_TV).to_be_bytes());
                    out.extend_from_slice(&a.value);
                } else {
                    out.extend_from_slice(&a.ty.to_be_bytes());
                    out.extend_from_slice(&(a.value.len() as u16).to_be_bytes());
                    out.extend_from_slice(&a.value);
                }
            }
            patch_len(out, tstart);
        }
        patch_len(out, start);
    }
}

/// Writes the 16-bit length of the structure that starts at `start` into bytes 2..4.
pub(super) fn patch_len(out: &mut [u8], start: usize) {
    let len = (out.len() - start) as u16;
    if let Some(slot) = out.get_mut(start + 2..start + 4) {
        slot.copy_from_slice(&len.to_be_bytes());
    }
}
