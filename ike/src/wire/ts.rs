//! Traffic selectors (RFC 7296 3.13.1).
use super::{DecodeError, Reader};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub const TS_IPV4_ADDR_RANGE: u8 = 7;
pub const TS_IPV6_ADDR_RANGE: u8 = 8;

/// An address range with protocol and port range; the address family picks the TS type.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TrafficSelector {
    pub ip_proto: u8,
    pub start_port: u16,
    pub end_port: u16,
    pub start: IpAddr,
    pub end: IpAddr,
}

impl TrafficSelector {
    /// Everything of one family: 0.0.0.0/0 or ::/0, all protocols and ports.
    pub fn any(v6: bool) -> Self {
        let (start, end) = if v6 {
            (
                IpAddr::V6(Ipv6Addr::UNSPECIFIED),
                IpAddr::V6(Ipv6Addr::from(u128::MAX)),
            )
        } else {
            (
                IpAddr::V4(Ipv4Addr::UNSPECIFIED),
                IpAddr::V4(Ipv4Addr::BROADCAST),
            )
        };
        TrafficSelector {
            ip_proto: 0,
            start_port: 0,
            end_port: 65535,
            start,
            end,
        }
    }

    pub fn is_v6(&self) -> bool {
        self.start.is_ipv6()
    }

    /// The intersection of two selectors, if they overlap (used to narrow as responder).
    pub fn intersect(&self, other: &Self) -> Option<Self> {
        if self.is_v6() != other.is_v6() {
            return None;
        }
        let ip_proto = match (self.ip_proto, other.ip_proto) {
            (0, p) | (p, 0) => p,
            (a, b) if a == b => a,
            _ => return None,
        };
        let start_port = self.start_port.max(other.start_port);
        let end_port = self.end_port.min(other.end_port);
        let start = self.start.max(other.start);
        let end = self.end.min(other.end);
        if start_port > end_port || start > end {
            return None;
        }
        Some(TrafficSelector {
            ip_proto,
            start_port,
            end_port,
            start,
            end,
        })
    }
}

pub(super) fn decode_ts(body: &[u8]) -> Result<Vec<TrafficSelector>, DecodeError> {
    let mut r = Reader::new(body, "TS payload");
    let count = r.u8()?;
    let _reserved = r.take(3)?;
    let mut out = Vec::with_capacity(count.into());
    for _ in 0..count {
        let ty = r.u8()?;
        let ip_proto = r.u8()?;
        let len = r.u16()? as usize;
        let mut s = Reader::new(r.take(len.saturating_sub(4))?, "traffic selector");
        let start_port = s.u16()?;
        let end_port = s.u16()?;
        let (start, end) = match (ty, len) {
            (TS_IPV4_ADDR_RANGE, 16) => (
                IpAddr::V4(Ipv4Addr::from(s.array::<4>()?)),
                IpAddr::V4(Ipv4Addr::from(s.array::<4>()?)),
            ),
            (TS_IPV6_ADDR_RANGE, 40) => (
                IpAddr::V6(Ipv6Addr::from(s.array::<16>()?)),
                IpAddr::V6(Ipv6Addr::from(s.array::<16>()?)),
            ),
            (TS_IPV4_ADDR_RANGE | TS_IPV6_ADDR_RANGE, l) => {
                return Err(DecodeError::BadLength {
                    what: "traffic selector",
                    len: l,
                })
            }
            (t, _) => {
                return Err(DecodeError::InvalidValue {
                    what: "traffic selector type",
                    value: t.into(),
                })
            }
        };
        out.push(TrafficSelector {
            ip_proto,
            start_port,
            end_port,
            start,
            end,
        });
    }
    if !r.is_empty() {
        return Err(DecodeError::TrailingBytes);
    }
    Ok(out)
}

pub(super) fn encode_ts(ts: &[TrafficSelector], out: &mut Vec<u8>) {
    out.push(ts.len() as u8);
    out.extend_from_slice(&[0, 0, 0]);
    for t in ts {
        match (t.start, t.end) {
            (IpAddr::V4(s), IpAddr::V4(e)) => {
                out.extend_from_slice(&[TS_IPV4_ADDR_RANGE, t.ip_proto, 0, 16]);
                out.extend_from_slice(&t.start_port.to_be_bytes());
                out.extend_from_slice(&t.end_port.to_be_bytes());
                out.extend_from_slice(&s.octets());
                out.extend_from_slice(&e.octets());
            }
            (s, e) => {
                let v6 = |a: IpAddr| match a {
                    IpAddr::V6(a) => a.octets(),
                    IpAddr::V4(a) => a.to_ipv6_mapped().octets(),
                };
                out.extend_from_slice(&[TS_IPV6_ADDR_RANGE, t.ip_proto, 0, 40]);
                out.extend_from_slice(&t.start_port.to_be_bytes());
                out.extend_from_slice(&t.end_port.to_be_bytes());
                out.extend_from_slice(&v6(s));
                out.extend_from_slice(&v6(e));
            }
        }
    }
}
