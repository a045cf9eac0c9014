//! Path attributes of an UPDATE (RFC 4271 section 4.3 and 5), COMMUNITIES (RFC 1997),
//! 4-octet AS_PATH (RFC 6793), with the revised error handling of RFC 7606: a malformed
//! attribute either makes the UPDATE "treat-as-withdraw" or is discarded alone, and only
//! the cases that leave the message unparseable reset the session.

use std::fmt;
use std::net::Ipv4Addr;

use thiserror::Error;

use super::error::DecodeError;
use super::reader::Reader;

/// Attribute flag bits (RFC 4271 section 4.3).
pub mod flag {
    pub const OPTIONAL: u8 = 0x80;
    pub const TRANSITIVE: u8 = 0x40;
    pub const PARTIAL: u8 = 0x20;
    pub const EXTENDED_LENGTH: u8 = 0x10;
}

/// Attribute type codes we understand.
pub mod type_code {
    pub const ORIGIN: u8 = 1;
    pub const AS_PATH: u8 = 2;
    pub const NEXT_HOP: u8 = 3;
    pub const MULTI_EXIT_DISC: u8 = 4;
    pub const LOCAL_PREF: u8 = 5;
    pub const ATOMIC_AGGREGATE: u8 = 6;
    pub const AGGREGATOR: u8 = 7;
    pub const COMMUNITIES: u8 = 8;
    pub const MP_REACH_NLRI: u8 = 14;
    pub const MP_UNREACH_NLRI: u8 = 15;
    pub const AS4_PATH: u8 = 17;
}

const SEGMENT_SET: u8 = 1;
const SEGMENT_SEQUENCE: u8 = 2;

/// How to read AS numbers and which eBGP rules apply; fixed once the OPENs are exchanged.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CodecContext {
    /// Both sides sent the 4-octet AS capability: AS_PATH and AGGREGATOR carry 4-octet ASNs.
    pub four_octet_as: bool,
    /// The peer is external: a received LOCAL_PREF is discarded (RFC 7606 section 7.5).
    pub ebgp: bool,
}

impl Default for CodecContext {
    fn default() -> Self {
        Self {
            four_octet_as: true,
            ebgp: true,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Origin {
    Igp = 0,
    Egp = 1,
    Incomplete = 2,
}

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum AsSegment {
    Sequence(Vec<u32>),
    Set(Vec<u32>),
}

/// AS_PATH as a list of segments, ASNs always held as 4 octets.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct AsPath {
    pub segments: Vec<AsSegment>,
}

impl AsPath {
    pub fn sequence(asns: Vec<u32>) -> Self {
        Self {
            segments: vec![AsSegment::Sequence(asns)],
        }
    }

    /// Path length for best-path selection: an AS_SET counts as one (RFC 4271 9.1.2.2).
    pub fn path_len(&self) -> usize {
        self.segments
            .iter()
            .map(|s| match s {
                AsSegment::Sequence(v) => v.len(),
                AsSegment::Set(_) => 1,
            })
            .sum()
    }

    pub fn contains(&self, asn: u32) -> bool {
        self.segments.iter().any(|s| match s {
            AsSegment::Sequence(v) | AsSegment::Set(v) => v.contains(&asn),
        })
    }

    /// The neighbouring AS: the first ASN of a leading AS_SEQUENCE.
    pub fn first_asn(&self) -> Option<u32> {
        match self.segments.first()? {
            AsSegment::Sequence(v) => v.first().copied(),
            AsSegment::Set(_) => None,
        }
    }

    fn decode(value: &[u8], four_octet: bool) -> Option<Self> {
        let mut r = Reader::new(value);
        let mut segments = Vec::new();
        while !r.is_empty() {
            let kind = r.u8()?;
            let count = r.u8()?;
            // A zero-length segment is malformed (RFC 7606 section 7.2).
            if count == 0 {
                return None;
            }
            let mut asns = Vec::with_capacity(usize::from(count));
            for _ in 0..count {
                asns.push(if four_octet {
                    r.u32()?
                } else {
                    u32::from(r.u16()?)
                });
            }
            segments.push(match kind {
                SEGMENT_SET => AsSegment::Set(asns),
                SEGMENT_SEQUENCE => AsSegment::Sequence(asns),
                // Confederation segments (3, 4) must not come from an eBGP peer.
                _ => return None,
            });
        }
        Some(Self { segments })
    }

    /// Encodes the segments; in 2-octet form large ASNs become AS_TRANS (RFC 6793).
    fn encode(&self, four_octet: bool, out: &mut Vec<u8>) {
        for seg in &self.segments {
            let (kind, asns) = match seg {
                AsSegment::Sequence(v) => (SEGMENT_SEQUENCE, v),
                AsSegment::Set(v) => (SEGMENT_SET, v),
            };
            // Segments hold at most 255 ASNs; split longer ones.
            for chunk in asns.chunks(255) {
                out.push(kind);
                out.push(u8::try_from(chunk.len()).unwrap_or(u8::MAX));
                for &asn in chunk {
                    if four_octet {
                        out.extend_from_slice(&asn.to_be_bytes());
                    } else {
                        let two = u16::try_from(asn).unwrap_or(super::open::AS_TRANS);
                        out.extend_from_slice(&two.to_be_bytes());
                    }
                }
            }
        }
    }

    fn needs_four_octets(&self) -> bool {
        self.segments.iter().any(|s| match s {
            AsSegment::Sequence(v) | AsSegment::Set(v) => v.iter().any(|&a| a > 0xffff),
        })
    }
}

impl fmt::Display for AsPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut first = true;
        for seg in &self.segments {
            if !first {
                write!(f, " ")?;
            }
            first = false;
            match seg {
                AsSegment::Sequence(v) => {
                    let s: Vec<String> = v.iter().map(u32::to_string).collect();
                    write!(f, "{}", s.join(" "))?;
                }
                AsSegment::Set(v) => {
                    let s: Vec<String> = v.iter().map(u32::to_string).collect();
                    write!(f, "{{{}}}", s.join(","))?;
                }
            }
        }
        Ok(())
    }
}

/// AGGREGATOR: the AS and router that formed an aggregate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Aggregator {
    pub asn: u32,
    pub address: Ipv4Addr,
}

/// An attribute we do not interpret but must carry on (optional transitive).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct RawAttribute {
    pub flags: u8,
    pub type_code: u8,
    pub value: Vec<u8>,
}

/// The well-known community GRACEFUL_SHUTDOWN, 65535:0 (RFC 8326): the sender is about
/// to take the path down for maintenance.
pub const GRACEFUL_SHUTDOWN: u32 = 0xFFFF_0000;

/// The decoded path attributes of one UPDATE.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct PathAttributes {
    pub origin: Option<Origin>,
    pub as_path: Option<AsPath>,
    pub next_hop: Option<Ipv4Addr>,
    pub med: Option<u32>,
    pub local_pref: Option<u32>,
    pub atomic_aggregate: bool,
    pub aggregator: Option<Aggregator>,
    /// RFC 1997 communities, passed through unchanged.
    pub communities: Vec<u32>,
    /// Unrecognized optional transitive attributes; the Partial bit is set on receipt
    /// (RFC 4271 section 5), so re-encoding passes them on marked as partial.
    pub unknown_transitive: Vec<RawAttribute>,
}

/// What was wrong with one attribute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum AttributeProblem {
    #[error("flags conflict with the attribute type")]
    Flags,
    #[error("wrong length")]
    Length,
    #[error("invalid value")]
    Value,
    #[error("missing well-known mandatory attribute")]
    Missing,
    #[error("overruns the path attribute list")]
    Overrun,
}

/// A malformed attribute handled without a session reset (RFC 7606).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
#[error("path attribute {type_code}: {problem}")]
pub struct AttributeError {
    pub type_code: u8,
    pub problem: AttributeProblem,
}

/// IPv4 unicast routes carried in MP_REACH_NLRI / MP_UNREACH_NLRI (RFC 4760).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct MpIpv4 {
    pub next_hop: Option<Ipv4Addr>,
    pub reach: Vec<crate::Ipv4Prefix>,
    pub unreach: Vec<crate::Ipv4Prefix>,
}

/// Result of parsing the path attribute field.
#[derive(Debug, Clone, Default)]
pub(crate) struct ParsedAttributes {
    pub attrs: PathAttributes,
    pub mp: MpIpv4,
    pub treat_as_withdraw: Option<AttributeError>,
    pub discarded: Vec<AttributeError>,
    /// Whether any attribute at all was present (an UPDATE without NLRI may have none).
    pub any: bool,
}

impl ParsedAttributes {
    fn withdraw(&mut self, type_code: u8, problem: AttributeProblem) {
        // The first error is reported; the outcome is the same for all of them.
        self.treat_as_withdraw
            .get_or_insert(AttributeError { type_code, problem });
    }

    fn discard(&mut self, type_code: u8, problem: AttributeProblem) {
        self.discarded.push(AttributeError { type_code, problem });
    }
}

/// Parses the path attribute field. `Err` only for the cases RFC 7606 still answers with a
/// session reset; everything else is reported in the result.
pub(crate) fn decode_attributes(
    buf: &[u8],
    ctx: CodecContext,
) -> Result<ParsedAttributes, DecodeError> {
    let mut out = ParsedAttributes::default();
    let mut seen = [false; 256];
    let mut r = Reader::new(buf);
    while !r.is_empty() {
        out.any = true;
        let Some((flags, code, value)) = next_attribute(&mut r) else {
            // Attribute header or length overruns the list: treat-as-withdraw, and the
            // Total Path Attribute Length still locates the NLRI (RFC 7606 section 4).
            out.withdraw(0, AttributeProblem::Overrun);
            break;
        };
        let seen_before = seen
            .get_mut(usize::from(code))
            .map(|s| std::mem::replace(s, true))
            .unwrap_or(false);
        if seen_before {
            if code == type_code::MP_REACH_NLRI || code == type_code::MP_UNREACH_NLRI {
                return Err(DecodeError::MalformedAttributeList(
                    "repeated MP_REACH/MP_UNREACH",
                ));
            }
            // Repeated attribute: keep the first, discard the rest (RFC 7606 section 3.g).
            out.discard(code, AttributeProblem::Value);
            continue;
        }
        decode_one(flags, code, value, ctx, &mut out)?;
    }
    Ok(out)
}

/// Reads one attribute header and value; `None` if it does not fit.
fn next_attribute<'a>(r: &mut Reader<'a>) -> Option<(u8, u8, &'a [u8])> {
    let flags = r.u8()?;
    let code = r.u8()?;
    let len = if flags & flag::EXTENDED_LENGTH != 0 {
        usize::from(r.u16()?)
    } else {
        usize::from(r.u8()?)
    };
    Some((flags, code, r.take(len)?))
}

/// Expected optional/transitive bits of the attributes we know.
fn expected_flags(code: u8) -> Option<u8> {
    use type_code::*;
    match code {
        ORIGIN | AS_PATH | NEXT_HOP | LOCAL_PREF | ATOMIC_AGGREGATE => Some(flag::TRANSITIVE),
        MULTI_EXIT_DISC | MP_REACH_NLRI | MP_UNREACH_NLRI => Some(flag::OPTIONAL),
        AGGREGATOR | COMMUNITIES => Some(flag::OPTIONAL | flag::TRANSITIVE),
        _ => None,
    }
}

fn decode_one(
    flags: u8,
    code: u8,
    value: &[u8],
    ctx: CodecContext,
    out: &mut ParsedAttributes,
) -> Result<(), DecodeError> {
    use type_code::*;
    let Some(expected) = expected_flags(code) else {
        return unknown(flags, code, value, out);
    };
    let flags_ok = flags & (flag::OPTIONAL | flag::TRANSITIVE) == expected;
    // Attributes whose errors only cost the attribute itself (RFC 7606 sections 7.6, 7.7).
    let discard_only = matches!(code, ATOMIC_AGGREGATE | AGGREGATOR);
    if !flags_ok && code != MP_REACH_NLRI && code != MP_UNREACH_NLRI {
        if discard_only {
            out.discard(code, AttributeProblem::Flags);
        } else {
            out.withdraw(code, AttributeProblem::Flags);
        }
        return Ok(());
    }
    let a = &mut out.attrs;
    match code {
        ORIGIN => match value {
            [0] => a.origin = Some(Origin::Igp),
            [1] => a.origin = Some(Origin::Egp),
            [2] => a.origin = Some(Origin::Incomplete),
            [_] => out.withdraw(code, AttributeProblem::Value),
            _ => out.withdraw(code, AttributeProblem::Length),
        },
        AS_PATH => match AsPath::decode(value, ctx.four_octet_as) {
            Some(p) => a.as_path = Some(p),
            None => out.withdraw(code, AttributeProblem::Value),
        },
        NEXT_HOP => match <[u8; 4]>::try_from(value) {
            Ok(o) => {
                let nh = Ipv4Addr::from(o);
                if valid_next_hop(nh) {
                    a.next_hop = Some(nh);
                } else {
                    out.withdraw(code, AttributeProblem::Value);
                }
            }
            Err(_) => out.withdraw(code, AttributeProblem::Length),
        },
        MULTI_EXIT_DISC => match <[u8; 4]>::try_from(value) {
            Ok(o) => a.med = Some(u32::from_be_bytes(o)),
            Err(_) => out.withdraw(code, AttributeProblem::Length),
        },
        LOCAL_PREF => {
            if ctx.ebgp {
                // Meaningless from an external peer: ignore it, whatever it holds.
                out.discard(code, AttributeProblem::Value);
            } else {
                match <[u8; 4]>::try_from(value) {
                    Ok(o) => a.local_pref = Some(u32::from_be_bytes(o)),
                    Err(_) => out.withdraw(code, AttributeProblem::Length),
                }
            }
        }
        ATOMIC_AGGREGATE => {
            if value.is_empty() {
                a.atomic_aggregate = true;
            } else {
                out.discard(code, AttributeProblem::Length);
            }
        }
        AGGREGATOR => {
            let mut r = Reader::new(value);
            let asn = if ctx.four_octet_as {
                r.u32()
            } else {
                r.u16().map(u32::from)
            };
            match (asn, r.ipv4(), r.is_empty()) {
                (Some(asn), Some(address), true) => {
                    a.aggregator = Some(Aggregator { asn, address })
                }
                _ => out.discard(code, AttributeProblem::Length),
            }
        }
        COMMUNITIES => {
            if value.is_empty() || !value.len().is_multiple_of(4) {
                out.withdraw(code, AttributeProblem::Length);
            } else {
                a.communities = value
                    .chunks_exact(4)
                    .filter_map(|c| <[u8; 4]>::try_from(c).ok())
                    .map(u32::from_be_bytes)
                    .collect();
            }
        }
        MP_REACH_NLRI => decode_mp_reach(value, &mut out.mp)?,
        MP_UNREACH_NLRI => decode_mp_unreach(value, &mut out.mp)?,
        _ => return unknown(flags, code, value, out),
    }
    Ok(())
}

/// Unrecognized attribute (RFC 4271 section 5): well-known is an error, optional
/// transitive is kept with Partial set, optional non-transitive is quietly dropped.
fn unknown(
    flags: u8,
    code: u8,
    value: &[u8],
    out: &mut ParsedAttributes,
) -> Result<(), DecodeError> {
    if flags & flag::OPTIONAL == 0 {
        let mut attribute = vec![flags, code];
        if flags & flag::EXTENDED_LENGTH != 0 {
            attribute
                .extend_from_slice(&u16::try_from(value.len()).unwrap_or(u16::MAX).to_be_bytes());
        } else {
            attribute.push(u8::try_from(value.len()).unwrap_or(u8::MAX));
        }
        attribute.extend_from_slice(value);
        return Err(DecodeError::UnrecognizedWellKnownAttribute {
            type_code: code,
            attribute,
        });
    }
    if flags & flag::TRANSITIVE != 0 {
        out.attrs.unknown_transitive.push(RawAttribute {
            flags: (flags | flag::PARTIAL) & !flag::EXTENDED_LENGTH,
            type_code: code,
            value: value.to_vec(),
        });
    }
    Ok(())
}

/// A NEXT_HOP must be a unicast host address (RFC 4271 section 6.3).
fn valid_next_hop(nh: Ipv4Addr) -> bool {
    !(nh.is_unspecified() || nh.is_multicast() || nh.is_broadcast() || u32::from(nh) >> 28 == 0xf)
}

fn decode_mp_reach(value: &[u8], mp: &mut MpIpv4) -> Result<(), DecodeError> {
    let bad = DecodeError::MalformedAttributeList("malformed MP_REACH_NLRI");
    let mut r = Reader::new(value);
    let afi = r.u16().ok_or(bad.clone())?;
    let safi = r.u8().ok_or(bad.clone())?;
    let nh_len = r.u8().ok_or(bad.clone())?;
    let nh = r.take(usize::from(nh_len)).ok_or(bad.clone())?;
    let _reserved = r.u8().ok_or(bad.clone())?;
    if (afi, safi) != (super::open::AFI_IPV4, super::open::SAFI_UNICAST) {
        // A family we did not negotiate: ignore it.
        return Ok(());
    }
    let nh = <[u8; 4]>::try_from(nh).map_err(|_| bad)?;
    mp.next_hop = Some(Ipv4Addr::from(nh));
    mp.reach = decode_prefixes(r.rest())?;
    Ok(())
}

fn decode_mp_unreach(value: &[u8], mp: &mut MpIpv4) -> Result<(), DecodeError> {
    let bad = DecodeError::MalformedAttributeList("malformed MP_UNREACH_NLRI");
    let mut r = Reader::new(value);
    let afi = r.u16().ok_or(bad.clone())?;
    let safi = r.u8().ok_or(bad)?;
    if (afi, safi) == (super::open::AFI_IPV4, super::open::SAFI_UNICAST) {
        mp.unreach = decode_prefixes(r.rest())?;
    }
    Ok(())
}

/// Decodes a run of NLRI-encoded prefixes; any error resets the session (RFC 7606 section 5.3).
pub(crate) fn decode_prefixes(buf: &[u8]) -> Result<Vec<crate::Ipv4Prefix>, DecodeError> {
    let mut r = Reader::new(buf);
    let mut out = Vec::new();
    while !r.is_empty() {
        let len = r
            .u8()
            .ok_or(DecodeError::InvalidNetworkField("truncated"))?;
        if len > 32 {
            return Err(DecodeError::InvalidNetworkField("prefix length over 32"));
        }
        let octets =
            r.take(usize::from(len).div_ceil(8))
                .ok_or(DecodeError::InvalidNetworkField(
                    "prefix overruns the field",
                ))?;
        let mut addr = [0u8; 4];
        for (dst, src) in addr.iter_mut().zip(octets) {
            *dst = *src;
        }
        let prefix = crate::Ipv4Prefix::new(Ipv4Addr::from(addr), len)
            .map_err(|_| DecodeError::InvalidNetworkField("prefix length over 32"))?;
        out.push(prefix);
    }
    Ok(out)
}

impl PathAttributes {
    /// Whether the route carries GRACEFUL_SHUTDOWN (RFC 8326).
    pub fn graceful_shutdown(&self) -> bool {
        self.communities.contains(&GRACEFUL_SHUTDOWN)
    }

    /// Encodes the attributes in type-code order.
    pub(crate) fn encode(&self, ctx: CodecContext, out: &mut Vec<u8>) {
        use type_code::*;
        let wk = flag::TRANSITIVE;
        let ot = flag::OPTIONAL | flag::TRANSITIVE;
        if let Some(o) = self.origin {
            put(out, wk, ORIGIN, &[o as u8]);
        }
        if let Some(p) = &self.as_path {
            let mut v = Vec::new();
            p.encode(ctx.four_octet_as, &mut v);
            put(out, wk, AS_PATH, &v);
        }
        if let Some(nh) = self.next_hop {
            put(out, wk, NEXT_HOP, &nh.octets());
        }
        if let Some(med) = self.med {
            put(out, flag::OPTIONAL, MULTI_EXIT_DISC, &med.to_be_bytes());
        }
        if let (Some(lp), false) = (self.local_pref, ctx.ebgp) {
            put(out, wk, LOCAL_PREF, &lp.to_be_bytes());
        }
        if self.atomic_aggregate {
            put(out, wk, ATOMIC_AGGREGATE, &[]);
        }
        if let Some(ag) = self.aggregator {
            let mut v = Vec::new();
            if ctx.four_octet_as {
                v.extend_from_slice(&ag.asn.to_be_bytes());
            } else {
                let two = u16::try_from(ag.asn).unwrap_or(super::open::AS_TRANS);
                v.extend_from_slice(&two.to_be_bytes());
            }
            v.extend_from_slice(&ag.address.octets());
            put(out, ot, AGGREGATOR, &v);
        }
        if !self.communities.is_empty() {
            let v: Vec<u8> = self
                .communities
                .iter()
                .flat_map(|c| c.to_be_bytes())
                .collect();
            put(out, ot, COMMUNITIES, &v);
        }
        // A 2-octet peer learns our real path from AS4_PATH (RFC 6793 section 4.2.2).
        if let (Some(p), false) = (&self.as_path, ctx.four_octet_as) {
            if p.needs_four_octets() {
                let mut v = Vec::new();
                p.encode(true, &mut v);
                put(out, ot, AS4_PATH, &v);
            }
        }
        for raw in &self.unknown_transitive {
            put(out, raw.flags, raw.type_code, &raw.value);
        }
    }
}

/// Appends one attribute, choosing the extended length form when needed.
fn put(out: &mut Vec<u8>, flags: u8, code: u8, value: &[u8]) {
    match u8::try_from(value.len()) {
        Ok(len) => {
            out.extend_from_slice(&[flags & !flag::EXTENDED_LENGTH, code, len]);
        }
        Err(_) => {
            let len = u16::try_from(value.len()).unwrap_or(u16::MAX);
            out.extend_from_slice(&[flags | flag::EXTENDED_LENGTH, code]);
            out.extend_from_slice(&len.to_be_bytes());
        }
    }
    out.extend(value.iter().take(usize::from(u16::MAX)));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(buf: &[u8]) -> ParsedAttributes {
        decode_attributes(buf, CodecContext::default()).unwrap()
    }

    #[test]
    fn as_path_with_set_counts_one() {
        // AS_SEQUENCE 65001 65002, AS_SET {1, 2, 3}
        let mut v = vec![2, 2];
        v.extend_from_slice(&65001u32.to_be_bytes());
        v.extend_from_slice(&65002u32.to_be_bytes());
        v.extend_from_slice(&[1, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 3]);
        let p = AsPath::decode(&v, true).unwrap();
        assert_eq!(p.path_len(), 3);
        assert_eq!(p.first_asn(), Some(65001));
        assert!(p.contains(3));
        assert_eq!(p.to_string(), "65001 65002 {1,2,3}");
        let mut back = Vec::new();
        p.encode(true, &mut back);
        assert_eq!(back, v);
    }

    #[test]
    fn malformed_as_path_is_treat_as_withdraw() {
        // Segment claims 2 ASNs but carries one; zero-length segment; confed segment.
        for v in [
            vec![0x40, 2, 6, 2, 2, 0, 0, 0xfd, 0xe9],
            vec![0x40, 2, 2, 2, 0],
            vec![0x40, 2, 6, 3, 1, 0, 0, 0xfd, 0xe9],
        ] {
            let p = parse(&v);
            assert_eq!(
                p.treat_as_withdraw,
                Some(AttributeError {
                    type_code: 2,
                    problem: AttributeProblem::Value
                })
            );
        }
    }

    #[test]
    fn wrong_flags_and_lengths() {
        // ORIGIN marked optional -> treat-as-withdraw.
        let p = parse(&[0xc0, 1, 1, 0]);
        assert_eq!(
            p.treat_as_withdraw.unwrap().problem,
            AttributeProblem::Flags
        );
        // ATOMIC_AGGREGATE with a value -> discarded, no withdraw.
        let p = parse(&[0x40, 6, 1, 0]);
        assert!(p.treat_as_withdraw.is_none());
        assert_eq!(p.discarded.len(), 1);
        // MED of 3 octets -> treat-as-withdraw.
        let p = parse(&[0x80, 4, 3, 0, 0, 1]);
        assert_eq!(
            p.treat_as_withdraw.unwrap().problem,
            AttributeProblem::Length
        );
        // COMMUNITIES of 6 octets -> treat-as-withdraw.
        let p = parse(&[0xc0, 8, 6, 0, 0, 0, 1, 0, 0]);
        assert_eq!(p.treat_as_withdraw.unwrap().type_code, 8);
        // NEXT_HOP 0.0.0.0 -> treat-as-withdraw.
        let p = parse(&[0x40, 3, 4, 0, 0, 0, 0]);
        assert_eq!(
            p.treat_as_withdraw.unwrap().problem,
            AttributeProblem::Value
        );
    }

    #[test]
    fn overrun_is_treat_as_withdraw_and_keeps_earlier_attributes() {
        let p = parse(&[0x40, 1, 1, 2, 0x40, 3, 9, 1, 2]);
        assert_eq!(p.attrs.origin, Some(Origin::Incomplete));
        assert_eq!(
            p.treat_as_withdraw.unwrap().problem,
            AttributeProblem::Overrun
        );
    }

    #[test]
    fn unknown_attributes() {
        // Optional transitive type 99 kept with Partial; optional non-transitive 98 dropped.
        let p = parse(&[0xc0, 99, 2, 0xab, 0xcd, 0x80, 98, 1, 7]);
        assert_eq!(
            p.attrs.unknown_transitive,
            vec![RawAttribute {
                flags: 0xe0,
                type_code: 99,
                value: vec![0xab, 0xcd]
            }]
        );
        // Unknown well-known attribute resets the session, data = the attribute.
        let e = decode_attributes(&[0x40, 97, 1, 5], CodecContext::default()).unwrap_err();
        assert_eq!(e.notification().data, vec![0x40, 97, 1, 5]);
        assert_eq!((e.notification().code, e.notification().subcode), (3, 2));
    }

    #[test]
    fn duplicates_and_local_pref_from_ebgp() {
        let p = parse(&[0x40, 1, 1, 0, 0x40, 1, 1, 2, 0x40, 5, 4, 0, 0, 0, 100]);
        assert_eq!(p.attrs.origin, Some(Origin::Igp));
        assert_eq!(p.attrs.local_pref, None);
        assert_eq!(p.discarded.len(), 2);
        let ibgp = CodecContext {
            four_octet_as: true,
            ebgp: false,
        };
        let p = decode_attributes(&[0x40, 5, 4, 0, 0, 0, 100], ibgp).unwrap();
        assert_eq!(p.attrs.local_pref, Some(100));
    }

    #[test]
    fn two_octet_encoding_adds_as4_path() {
        let attrs = PathAttributes {
            origin: Some(Origin::Igp),
            as_path: Some(AsPath::sequence(vec![4_200_000_001])),
            next_hop: Some(Ipv4Addr::new(192, 0, 2, 1)),
            ..Default::default()
        };
        let ctx = CodecContext {
            four_octet_as: false,
            ebgp: true,
        };
        let mut v = Vec::new();
        attrs.encode(ctx, &mut v);
        let p = decode_attributes(&v, ctx).unwrap();
        assert_eq!(
            p.attrs.as_path,
            Some(AsPath::sequence(vec![u32::from(
                super::super::open::AS_TRANS
            )]))
        );
        let as4 = &p.attrs.unknown_transitive[0];
        assert_eq!(as4.type_code, type_code::AS4_PATH);
        assert_eq!(as4.value, [2, 1, 0xfa, 0x56, 0xea, 0x01]);
    }

    #[test]
    fn long_values_use_extended_length() {
        let attrs = PathAttributes {
            communities: (0..100).collect(),
            ..Default::default()
        };
        let mut v = Vec::new();
        attrs.encode(CodecContext::default(), &mut v);
        assert_eq!(&v[..4], &[0xd0, 8, 1, 144]);
        assert_eq!(parse(&v).attrs.communities.len(), 100);
    }
}
