//! UPDATE message (RFC 4271 section 4.3): withdrawn routes, path attributes, NLRI.

use super::attrs::{
    decode_attributes, decode_prefixes, AttributeError, AttributeProblem, CodecContext,
    PathAttributes,
};
use super::error::DecodeError;
use super::reader::Reader;
use crate::Ipv4Prefix;

/// A decoded UPDATE. IPv4 unicast routes from MP_REACH/MP_UNREACH_NLRI are folded into
/// `nlri` and `withdrawn`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Update {
    pub withdrawn: Vec<Ipv4Prefix>,
    pub attributes: PathAttributes,
    pub nlri: Vec<Ipv4Prefix>,
    /// RFC 7606 treat-as-withdraw: the attributes are unusable, so every prefix in `nlri`
    /// must be handled as withdrawn.
    pub treat_as_withdraw: Option<AttributeError>,
    /// Attributes dropped on their own ("attribute discard").
    pub discarded: Vec<AttributeError>,
}

impl Update {
    /// An UPDATE with nothing in it marks End-of-RIB for IPv4 unicast (RFC 4724).
    pub fn is_end_of_rib(&self) -> bool {
        self.withdrawn.is_empty()
            && self.nlri.is_empty()
            && self.attributes == PathAttributes::default()
    }

    pub(crate) fn decode_body(body: &[u8], ctx: CodecContext) -> Result<Self, DecodeError> {
        let mut r = Reader::new(body);
        let bad = DecodeError::MalformedAttributeList("lengths exceed the message");
        let wlen = r.u16().ok_or(bad.clone())?;
        let withdrawn = r.take(usize::from(wlen)).ok_or(bad.clone())?;
        let alen = r.u16().ok_or(bad.clone())?;
        let attrs = r.take(usize::from(alen)).ok_or(bad)?;
        let mut withdrawn = decode_prefixes(withdrawn)?;
        let mut nlri = decode_prefixes(r.rest())?;
        let parsed = decode_attributes(attrs, ctx)?;
        let mut attributes = parsed.attrs;
        let mut treat_as_withdraw = parsed.treat_as_withdraw;
        withdrawn.extend(parsed.mp.unreach);
        if !parsed.mp.reach.is_empty() {
            nlri.extend(parsed.mp.reach);
            if attributes.next_hop.is_none() {
                attributes.next_hop = parsed.mp.next_hop;
            }
        }
        // Well-known mandatory attributes are only required when routes are announced;
        // their absence is treat-as-withdraw (RFC 7606 section 3.d).
        if !nlri.is_empty() && treat_as_withdraw.is_none() {
            use super::attrs::type_code::*;
            let missing = [
                (ORIGIN, attributes.origin.is_none()),
                (AS_PATH, attributes.as_path.is_none()),
                (NEXT_HOP, attributes.next_hop.is_none()),
            ];
            if let Some((code, _)) = missing.iter().find(|(_, m)| *m) {
                treat_as_withdraw = Some(AttributeError {
                    type_code: *code,
                    problem: AttributeProblem::Missing,
                });
            }
        }
        Ok(Self {
            withdrawn,
            attributes,
            nlri,
            treat_as_withdraw,
            discarded: parsed.discarded,
        })
    }

    /// Encodes the body; the caller keeps the total under the 4096-octet limit
    /// (see `message::encode_updates`).
    pub(crate) fn encode_body(&self, ctx: CodecContext, out: &mut Vec<u8>) {
        let mut w = Vec::new();
        for p in &self.withdrawn {
            p.encode(&mut w);
        }
        let mut a = Vec::new();
        if !self.nlri.is_empty() || self.attributes != PathAttributes::default() {
            self.attributes.encode(ctx, &mut a);
        }
        out.extend_from_slice(&u16::try_from(w.len()).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(&w);
        out.extend_from_slice(&u16::try_from(a.len()).unwrap_or(u16::MAX).to_be_bytes());
        out.extend_from_slice(&a);
        for p in &self.nlri {
            p.encode(out);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> CodecContext {
        CodecContext::default()
    }

    #[test]
    fn nlri_errors_reset_the_session() {
        // NLRI with prefix length 33.
        let body = [0, 0, 0, 0, 33, 1, 2, 3, 4, 5];
        let e = Update::decode_body(&body, ctx()).unwrap_err();
        assert_eq!(e.notification().subcode, 10);
        // Withdrawn length beyond the message.
        let body = [0, 9, 8, 10];
        let e = Update::decode_body(&body, ctx()).unwrap_err();
        assert_eq!((e.notification().code, e.notification().subcode), (3, 1));
        // Truncated prefix in withdrawn routes.
        let body = [0, 2, 24, 10, 0, 0];
        assert!(Update::decode_body(&body, ctx()).is_err());
    }

    #[test]
    fn nlri_without_attributes_is_treat_as_withdraw() {
        let body = [0, 0, 0, 0, 8, 10];
        let u = Update::decode_body(&body, ctx()).unwrap();
        assert_eq!(u.nlri.len(), 1);
        assert_eq!(
            u.treat_as_withdraw.unwrap().problem,
            AttributeProblem::Missing
        );
    }

    #[test]
    fn trailing_host_bits_are_ignored() {
        // 10.1.2.0/23 written with the host bit set: 10.1.3.
        let body = [0, 4, 23, 10, 1, 3, 0, 0];
        let u = Update::decode_body(&body, ctx()).unwrap();
        assert_eq!(u.withdrawn[0].to_string(), "10.1.2.0/23");
    }

    #[test]
    fn mp_reach_ipv4_unicast_is_folded_in() {
        // MP_REACH: afi 1 safi 1, nh len 4 = 192.0.2.9, reserved, NLRI 10.9.0.0/16.
        let mp = [0x80, 14, 12, 0, 1, 1, 4, 192, 0, 2, 9, 0, 16, 10, 9];
        let mut attrs = vec![0x40, 1, 1, 0, 0x40, 2, 0];
        attrs.extend_from_slice(&mp);
        let mut body = vec![0, 0, 0, attrs.len() as u8];
        body.extend_from_slice(&attrs);
        let u = Update::decode_body(&body, ctx()).unwrap();
        assert_eq!(u.treat_as_withdraw, None);
        assert_eq!(u.nlri[0].to_string(), "10.9.0.0/16");
        assert_eq!(u.attributes.next_hop, Some("192.0.2.9".parse().unwrap()));
    }
}
