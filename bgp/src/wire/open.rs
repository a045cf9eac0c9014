//! OPEN message (RFC 4271 section 4.2) with capabilities (RFC 5492): multiprotocol
//! (RFC 4760), route refresh (RFC 2918), 4-octet AS numbers (RFC 6793). Extended
//! optional parameter lengths (RFC 9072) are understood on receipt.

use std::net::Ipv4Addr;

use super::error::DecodeError;
use super::reader::Reader;

pub const BGP_VERSION: u8 = 4;
/// The 2-octet placeholder for a 4-octet AS number (RFC 6793).
pub const AS_TRANS: u16 = 23456;
pub const AFI_IPV4: u16 = 1;
pub const SAFI_UNICAST: u8 = 1;

const PARAM_CAPABILITIES: u8 = 2;
const PARAM_EXTENDED_LENGTH: u8 = 255;

const CAP_MULTIPROTOCOL: u8 = 1;
const CAP_ROUTE_REFRESH: u8 = 2;
const CAP_FOUR_OCTET_AS: u8 = 65;

/// One capability advertised in an OPEN.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Capability {
    Multiprotocol {
        afi: u16,
        safi: u8,
    },
    RouteRefresh,
    FourOctetAs(u32),
    /// Any capability we do not implement, kept as received (RFC 5492: ignore it).
    Unknown {
        code: u8,
        value: Vec<u8>,
    },
}

impl Capability {
    fn decode(code: u8, value: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(value);
        let cap = match code {
            CAP_MULTIPROTOCOL => {
                let afi = r.u16();
                let _reserved = r.u8();
                let safi = r.u8();
                match (afi, safi, r.is_empty()) {
                    (Some(afi), Some(safi), true) => Self::Multiprotocol { afi, safi },
                    _ => {
                        return Err(DecodeError::MalformedOpen(
                            "multiprotocol capability length",
                        ))
                    }
                }
            }
            CAP_ROUTE_REFRESH if value.is_empty() => Self::RouteRefresh,
            CAP_ROUTE_REFRESH => {
                return Err(DecodeError::MalformedOpen(
                    "route refresh capability length",
                ))
            }
            CAP_FOUR_OCTET_AS => match (r.u32(), r.is_empty()) {
                (Some(asn), true) => Self::FourOctetAs(asn),
                _ => return Err(DecodeError::MalformedOpen("4-octet AS capability length")),
            },
            _ => Self::Unknown {
                code,
                value: value.to_vec(),
            },
        };
        Ok(cap)
    }

    fn encode(&self, out: &mut Vec<u8>) {
        match self {
            Self::Multiprotocol { afi, safi } => {
                out.extend_from_slice(&[CAP_MULTIPROTOCOL, 4]);
                out.extend_from_slice(&afi.to_be_bytes());
                out.extend_from_slice(&[0, *safi]);
            }
            Self::RouteRefresh => out.extend_from_slice(&[CAP_ROUTE_REFRESH, 0]),
            Self::FourOctetAs(asn) => {
                out.extend_from_slice(&[CAP_FOUR_OCTET_AS, 4]);
                out.extend_from_slice(&asn.to_be_bytes());
            }
            Self::Unknown { code, value } => {
                // Values over 255 octets cannot be expressed; we never build such a capability.
                let len = u8::try_from(value.len()).unwrap_or(u8::MAX);
                out.push(*code);
                out.push(len);
                out.extend(value.iter().take(usize::from(len)));
            }
        }
    }
}

/// A decoded OPEN message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Open {
    /// The 2-octet "My Autonomous System" field (AS_TRANS when the real ASN needs 4 octets).
    pub my_as: u16,
    pub hold_time: u16,
    pub bgp_id: Ipv4Addr,
    pub capabilities: Vec<Capability>,
}

impl Open {
    /// Builds the OPEN we send: 4-octet AS, IPv4 unicast and route refresh capabilities.
    pub fn ours(asn: u32, hold_time: u16, bgp_id: Ipv4Addr) -> Self {
        Self {
            my_as: u16::try_from(asn).unwrap_or(AS_TRANS),
            hold_time,
            bgp_id,
            capabilities: vec![
                Capability::Multiprotocol {
                    afi: AFI_IPV4,
                    safi: SAFI_UNICAST,
                },
                Capability::RouteRefresh,
                Capability::FourOctetAs(asn),
            ],
        }
    }

    /// The speaker's AS: from the 4-octet AS capability if present, else the 2-octet field.
    pub fn asn(&self) -> u32 {
        self.four_octet_as().unwrap_or(u32::from(self.my_as))
    }

    pub fn four_octet_as(&self) -> Option<u32> {
        self.capabilities.iter().find_map(|c| match c {
            Capability::FourOctetAs(asn) => Some(*asn),
            _ => None,
        })
    }

    pub fn supports_route_refresh(&self) -> bool {
        self.capabilities.contains(&Capability::RouteRefresh)
    }

    /// IPv4 unicast is implied when no multiprotocol capability is sent (RFC 4760 section 8).
    pub fn supports_ipv4_unicast(&self) -> bool {
        let mut mp = self
            .capabilities
            .iter()
            .filter_map(|c| match c {
                Capability::Multiprotocol { afi, safi } => Some((*afi, *safi)),
                _ => None,
            })
            .peekable();
        mp.peek().is_none() || mp.any(|f| f == (AFI_IPV4, SAFI_UNICAST))
    }

    /// Decodes the body after the 19-octet header.
    pub(crate) fn decode_body(body: &[u8]) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let short = DecodeError::MalformedOpen("truncated");
        let version = r.u8().ok_or(short.clone())?;
        if version != BGP_VERSION {
            return Err(DecodeError::UnsupportedVersion(version));
        }
        let my_as = r.u16().ok_or(short.clone())?;
        let hold_time = r.u16().ok_or(short.clone())?;
        let bgp_id = r.ipv4().ok_or(short.clone())?;
        let opt_len = r.u8().ok_or(short)?;
        // Hold times of 1 and 2 seconds are forbidden (RFC 4271 section 4.2).
        if hold_time == 1 || hold_time == 2 {
            return Err(DecodeError::UnacceptableHoldTime(hold_time));
        }
        if bgp_id.is_unspecified() {
            return Err(DecodeError::BadBgpIdentifier(bgp_id));
        }
        let capabilities = decode_parameters(opt_len, &mut r)?;
        Ok(Self {
            my_as,
            hold_time,
            bgp_id,
            capabilities,
        })
    }

    pub(crate) fn encode_body(&self, out: &mut Vec<u8>) {
        out.push(BGP_VERSION);
        out.extend_from_slice(&self.my_as.to_be_bytes());
        out.extend_from_slice(&self.hold_time.to_be_bytes());
        out.extend_from_slice(&self.bgp_id.octets());
        let mut caps = Vec::new();
        for c in &self.capabilities {
            c.encode(&mut caps);
        }
        if caps.is_empty() {
            out.push(0);
            return;
        }
        // One Capabilities parameter; our own capability set stays far below 253 octets.
        let cap_len = u8::try_from(caps.len()).unwrap_or(u8::MAX);
        out.push(cap_len.saturating_add(2));
        out.push(PARAM_CAPABILITIES);
        out.push(cap_len);
        out.extend_from_slice(&caps);
    }
}

/// Parses the optional parameters, keeping every capability found.
fn decode_parameters(opt_len: u8, r: &mut Reader<'_>) -> Result<Vec<Capability>, DecodeError> {
    let extended =
        opt_len == PARAM_EXTENDED_LENGTH && r.rest().first() == Some(&PARAM_EXTENDED_LENGTH);
    let params = if extended {
        let _marker = r.u8();
        let len = r.u16().ok_or(DecodeError::MalformedOpen("truncated"))?;
        usize::from(len)
    } else {
        usize::from(opt_len)
    };
    if params != r.remaining() {
        return Err(DecodeError::MalformedOpen("optional parameters length"));
    }
    let mut caps = Vec::new();
    while !r.is_empty() {
        let bad = DecodeError::MalformedOpen("optional parameter overruns the message");
        let ptype = r.u8().ok_or(bad.clone())?;
        let plen = if extended {
            r.u16()
        } else {
            r.u8().map(u16::from)
        }
        .ok_or(bad.clone())?;
        let value = r.take(usize::from(plen)).ok_or(bad)?;
        if ptype != PARAM_CAPABILITIES {
            return Err(DecodeError::UnsupportedOptionalParameter(ptype));
        }
        let mut cr = Reader::new(value);
        while !cr.is_empty() {
            let bad = DecodeError::MalformedOpen("capability overruns its parameter");
            let code = cr.u8().ok_or(bad.clone())?;
            let len = cr.u8().ok_or(bad.clone())?;
            let v = cr.take(usize::from(len)).ok_or(bad)?;
            caps.push(Capability::decode(code, v)?);
        }
    }
    Ok(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn our_open_round_trips() {
        let open = Open::ours(4_200_000_001, 90, Ipv4Addr::new(10, 0, 0, 2));
        assert_eq!(open.my_as, AS_TRANS);
        let mut body = Vec::new();
        open.encode_body(&mut body);
        let back = Open::decode_body(&body).unwrap();
        assert_eq!(back, open);
        assert_eq!(back.asn(), 4_200_000_001);
        assert!(back.supports_ipv4_unicast());
        assert!(back.supports_route_refresh());
    }

    #[test]
    fn checks_version_hold_time_and_identifier() {
        let open = Open::ours(65001, 90, Ipv4Addr::new(10, 0, 0, 2));
        let mut body = Vec::new();
        open.encode_body(&mut body);
        let mut v3 = body.clone();
        v3[0] = 3;
        assert_eq!(
            Open::decode_body(&v3),
            Err(DecodeError::UnsupportedVersion(3))
        );
        let mut hold2 = body.clone();
        hold2[3..5].copy_from_slice(&2u16.to_be_bytes());
        assert_eq!(
            Open::decode_body(&hold2),
            Err(DecodeError::UnacceptableHoldTime(2))
        );
        let mut hold0 = body.clone();
        hold0[3..5].copy_from_slice(&0u16.to_be_bytes());
        assert_eq!(Open::decode_body(&hold0).unwrap().hold_time, 0);
        let mut id0 = body.clone();
        id0[5..9].copy_from_slice(&[0, 0, 0, 0]);
        assert!(matches!(
            Open::decode_body(&id0),
            Err(DecodeError::BadBgpIdentifier(_))
        ));
    }

    #[test]
    fn unknown_parameter_and_short_capability_are_errors() {
        // version 4, AS 65001, hold 90, id 1.1.1.1, params: type 1 (auth, deprecated) len 0.
        let body = [4, 0xfd, 0xe9, 0, 90, 1, 1, 1, 1, 2, 1, 0];
        assert_eq!(
            Open::decode_body(&body),
            Err(DecodeError::UnsupportedOptionalParameter(1))
        );
        // Capabilities parameter whose 4-octet AS capability says length 4 but has 2.
        let body = [4, 0xfd, 0xe9, 0, 90, 1, 1, 1, 1, 4, 2, 2, 65, 4];
        assert!(matches!(
            Open::decode_body(&body),
            Err(DecodeError::MalformedOpen(_))
        ));
    }

    #[test]
    fn extended_optional_parameters_rfc9072() {
        // Non-Ext OP Len 255, Non-Ext OP Type 255, Extended Opt. Parm. Length 5,
        // then a Capabilities parameter with a 2-octet length: 2, 0x0002, route refresh.
        let body = [
            4, 0xfd, 0xe9, 0, 90, 1, 1, 1, 1, 255, 255, 0, 5, 2, 0, 2, 2, 0,
        ];
        let open = Open::decode_body(&body).unwrap();
        assert_eq!(open.capabilities, vec![Capability::RouteRefresh]);
    }

    #[test]
    fn mp_without_ipv4_unicast_is_detected() {
        let mut open = Open::ours(65001, 90, Ipv4Addr::new(10, 0, 0, 2));
        open.capabilities[0] = Capability::Multiprotocol { afi: 2, safi: 1 };
        assert!(!open.supports_ipv4_unicast());
        open.capabilities.remove(0);
        assert!(open.supports_ipv4_unicast());
    }
}
