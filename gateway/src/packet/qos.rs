//! DSCP and ECN across the tunnel: the outer header's TOS / traffic class on
//! encapsulation, and what the outer header tells the inner one on decapsulation.
//!
//! ECN follows RFC 6040 (normal mode): the outer ECN field is a copy of the inner one,
//! and on the way out a congestion mark (CE) an underlay router set on the outer header
//! is carried into the inner packet, so the endpoints' TCP slows down instead of losing
//! packets. DSCP follows strongSwan's `copy_dscp`: by default the inner DSCP is copied to
//! the outer header (the underlay's QoS sees the traffic class) and left alone inbound.

use super::checksum::update16;

/// The ECN field's bits in a TOS / traffic class byte.
const ECN_MASK: u8 = 0b11;
const NOT_ECT: u8 = 0b00;
const ECT1: u8 = 0b01;
const ECT0: u8 = 0b10;
const CE: u8 = 0b11;

/// Where the DSCP is copied between the inner and the outer header (strongSwan's
/// `copy_dscp`: `out`, `in`, `yes`, `no`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DscpCopy {
    /// Inner to outer on encapsulation; inbound packets keep theirs.
    #[default]
    Out,
    /// Outer to inner on decapsulation; the outer header of what we send carries DSCP 0.
    In,
    /// Both directions.
    Both,
    /// Neither: the outer DSCP is 0, the inner one untouched.
    No,
}

impl DscpCopy {
    fn out(self) -> bool {
        matches!(self, DscpCopy::Out | DscpCopy::Both)
    }

    fn inward(self) -> bool {
        matches!(self, DscpCopy::In | DscpCopy::Both)
    }

    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DscpCopy::Out => "out",
            DscpCopy::In => "in",
            DscpCopy::Both => "yes",
            DscpCopy::No => "no",
        }
    }
}

impl std::str::FromStr for DscpCopy {
    type Err = ();

    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "out" => Ok(DscpCopy::Out),
            "in" => Ok(DscpCopy::In),
            "yes" => Ok(DscpCopy::Both),
            "no" => Ok(DscpCopy::No),
            _ => Err(()),
        }
    }
}

/// A tunnel's DSCP and ECN handling.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Qos {
    pub dscp: DscpCopy,
    /// RFC 6040 ECN propagation; off: the outer header is Not-ECT and the inner ECN field
    /// is never changed (strongSwan's `copy_ecn = no`).
    pub ecn: bool,
}

impl Default for Qos {
    fn default() -> Self {
        Qos {
            dscp: DscpCopy::Out,
            ecn: true,
        }
    }
}

/// An inbound packet RFC 6040 says to drop: the underlay marked congestion (CE) on a
/// packet whose sender cannot take the mark (inner Not-ECT). Dropping it is the only
/// congestion signal such a sender understands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CongestionOnNotEct;

impl Qos {
    /// Packs the setting into a byte (for an atomic the dataplane reads per packet).
    pub fn to_bits(self) -> u8 {
        let d = match self.dscp {
            DscpCopy::Out => 0,
            DscpCopy::In => 1,
            DscpCopy::Both => 2,
            DscpCopy::No => 3,
        };
        d | (u8::from(self.ecn) << 2)
    }

    pub fn from_bits(b: u8) -> Self {
        let dscp = match b & 0b11 {
            0 => DscpCopy::Out,
            1 => DscpCopy::In,
            2 => DscpCopy::Both,
            _ => DscpCopy::No,
        };
        Qos {
            dscp,
            ecn: b & 0b100 != 0,
        }
    }

    /// The outer header's TOS / traffic class for `inner` (an IPv4 or IPv6 packet).
    #[inline]
    pub fn outer_tos(self, inner: &[u8]) -> u8 {
        let Some(tos) = tos_of(inner) else {
            return 0;
        };
        let dscp = if self.dscp.out() { tos & !ECN_MASK } else { 0 };
        let ecn = if self.ecn { tos & ECN_MASK } else { NOT_ECT };
        dscp | ecn
    }

    /// Applies what the outer header's `outer_tos` tells the decrypted `inner` packet:
    /// RFC 6040's ECN decapsulation and, with `copy_dscp` in/yes, the outer DSCP.
    /// `Err` when the packet must be dropped.
    #[inline]
    pub fn decapsulate(self, outer_tos: u8, inner: &mut [u8]) -> Result<(), CongestionOnNotEct> {
        let copy_dscp = self.dscp.inward();
        if !copy_dscp && (!self.ecn || outer_tos & ECN_MASK == NOT_ECT) {
            // The common case: nothing to carry in.
            return Ok(());
        }
        let Some(tos) = tos_of(inner) else {
            return Ok(());
        };
        let ecn = if self.ecn {
            ecn_decapsulated(tos & ECN_MASK, outer_tos & ECN_MASK)?
        } else {
            tos & ECN_MASK
        };
        let dscp = if copy_dscp {
            outer_tos & !ECN_MASK
        } else {
            tos & !ECN_MASK
        };
        set_tos(inner, dscp | ecn);
        Ok(())
    }
}

/// RFC 6040 Figure 4: the inner ECN field after decapsulation.
fn ecn_decapsulated(inner: u8, outer: u8) -> Result<u8, CongestionOnNotEct> {
    match (inner, outer) {
        (NOT_ECT, CE) => Err(CongestionOnNotEct),
        // A Not-ECT sender never sees marks; a CE packet stays CE.
        (NOT_ECT, _) => Ok(NOT_ECT),
        (CE, _) => Ok(CE),
        (_, CE) => Ok(CE),
        // ECT(1) in the outer header wins over an inner ECT(0) (it may mean something to
        // the endpoints, e.g. L4S); otherwise the inner codepoint stays.
        (ECT0, ECT1) => Ok(ECT1),
        (inner, _) => Ok(inner),
    }
}

/// The TOS (IPv4) or traffic class (IPv6) byte of a packet.
#[inline]
fn tos_of(pkt: &[u8]) -> Option<u8> {
    let b0 = *pkt.first()?;
    let b1 = *pkt.get(1)?;
    match b0 >> 4 {
        4 => Some(b1),
        6 => Some((b0 << 4) | (b1 >> 4)),
        _ => None,
    }
}

/// Rewrites the TOS / traffic class byte (the IPv4 header checksum follows).
fn set_tos(pkt: &mut [u8], tos: u8) {
    let (Some(&b0), Some(&b1)) = (pkt.first(), pkt.get(1)) else {
        return;
    };
    match b0 >> 4 {
        4 if pkt.len() >= 20 => {
            if b1 == tos {
                return;
            }
            let old = u16::from_be_bytes([b0, b1]);
            let new = u16::from_be_bytes([b0, tos]);
            let check = u16::from_be_bytes([pkt[10], pkt[11]]);
            let check = update16(check, old, new);
            pkt[1] = tos;
            pkt[10..12].copy_from_slice(&check.to_be_bytes());
        }
        6 => {
            pkt[0] = 0x60 | (tos >> 4);
            pkt[1] = (tos << 4) | (b1 & 0x0f);
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::super::checksum::checksum;
    use super::*;

    fn ipv4(tos: u8) -> Vec<u8> {
        let mut p = vec![
            0x45, tos, 0, 28, 0x12, 0x34, 0x40, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2, 0x30,
            0x39, 0x00, 0x35, 0, 8, 0, 0,
        ];
        let c = checksum(&p[..20]);
        p[10..12].copy_from_slice(&c.to_be_bytes());
        p
    }

    fn ipv6(tclass: u8) -> Vec<u8> {
        let mut p = vec![0u8; 48];
        p[0] = 0x60 | (tclass >> 4);
        // Flow label 0xabcde must survive.
        p[1] = (tclass << 4) | 0x0a;
        p[2] = 0xbc;
        p[3] = 0xde;
        p[6] = 17;
        p[7] = 64;
        p
    }

    const EF: u8 = 46 << 2;
    const AF41: u8 = 34 << 2;

    #[test]
    fn rfc6040_decapsulation_table() {
        // Rows: inner Not-ECT, ECT(0), ECT(1), CE; columns: outer Not-ECT, ECT(0), ECT(1), CE.
        let d = None;
        let table = [
            [Some(NOT_ECT), Some(NOT_ECT), Some(NOT_ECT), d],
            [Some(ECT0), Some(ECT0), Some(ECT1), Some(CE)],
            [Some(ECT1), Some(ECT1), Some(ECT1), Some(CE)],
            [Some(CE), Some(CE), Some(CE), Some(CE)],
        ];
        let codes = [NOT_ECT, ECT0, ECT1, CE];
        for (row, inner) in table.iter().zip(codes) {
            for (want, outer) in row.iter().zip(codes) {
                let mut p = ipv4(AF41 | inner);
                let got = Qos::default()
                    .decapsulate(EF | outer, &mut p)
                    .ok()
                    .map(|()| p[1] & ECN_MASK);
                assert_eq!(got, *want, "inner {inner:02b} outer {outer:02b}");
                if got.is_some() {
                    assert_eq!(p[1] & !ECN_MASK, AF41, "DSCP kept with copy_dscp = out");
                    assert_eq!(checksum(&p[..20]), 0, "header checksum still valid");
                }
            }
        }
    }

    #[test]
    fn encapsulation_copies_dscp_and_ecn_by_default() {
        let q = Qos::default();
        assert_eq!(q.outer_tos(&ipv4(EF | ECT0)), EF | ECT0);
        // RFC 6040 normal mode copies CE too.
        assert_eq!(q.outer_tos(&ipv4(AF41 | CE)), AF41 | CE);
        assert_eq!(q.outer_tos(&ipv6(EF | ECT1)), EF | ECT1);
        assert_eq!(q.outer_tos(&[]), 0);
        assert_eq!(q.outer_tos(&[0x20, 0xff]), 0, "not IP");
    }

    #[test]
    fn each_dscp_mode_and_ecn_off() {
        let cases = [
            // (mode, ecn, outer tos sent for EF|ECT0, inner after decap of outer AF41|ECT0 onto EF|ECT0)
            (DscpCopy::Out, true, EF | ECT0, EF | ECT0),
            (DscpCopy::In, true, ECT0, AF41 | ECT0),
            (DscpCopy::Both, true, EF | ECT0, AF41 | ECT0),
            (DscpCopy::No, true, ECT0, EF | ECT0),
            (DscpCopy::Both, false, EF, AF41 | ECT0),
            (DscpCopy::No, false, 0, EF | ECT0),
        ];
        for (dscp, ecn, sent, delivered) in cases {
            let q = Qos { dscp, ecn };
            assert_eq!(Qos::from_bits(q.to_bits()), q);
            assert_eq!(q.outer_tos(&ipv4(EF | ECT0)), sent, "{q:?}");
            let mut p = ipv4(EF | ECT0);
            q.decapsulate(AF41 | ECT0, &mut p).unwrap();
            assert_eq!(p[1], delivered, "{q:?}");
            assert_eq!(checksum(&p[..20]), 0);
            let mut p = ipv6(EF | ECT0);
            q.decapsulate(AF41 | ECT0, &mut p).unwrap();
            assert_eq!(tos_of(&p), Some(delivered), "{q:?} IPv6");
            assert_eq!(&p[1..4], &[(delivered << 4) | 0x0a, 0xbc, 0xde][..]);
        }
    }

    #[test]
    fn without_ecn_a_congestion_mark_is_neither_carried_in_nor_a_drop() {
        let q = Qos {
            dscp: DscpCopy::Out,
            ecn: false,
        };
        let mut p = ipv4(EF | ECT0);
        q.decapsulate(CE, &mut p).unwrap();
        assert_eq!(p[1], EF | ECT0);
        let mut p = ipv4(0);
        assert_eq!(q.decapsulate(CE, &mut p), Ok(()));
    }

    #[test]
    fn ipv6_congestion_mark_is_carried_in() {
        let mut p = ipv6(AF41 | ECT1);
        Qos::default().decapsulate(CE, &mut p).unwrap();
        assert_eq!(tos_of(&p), Some(AF41 | CE));
        let mut p = ipv6(AF41);
        assert_eq!(
            Qos::default().decapsulate(CE, &mut p),
            Err(CongestionOnNotEct)
        );
    }

    #[test]
    fn short_or_foreign_packets_are_left_alone() {
        for mut p in [vec![], vec![0x45], vec![0x45, 0x02, 0, 0], vec![0x20; 30]] {
            let before = p.clone();
            assert_eq!(Qos::default().decapsulate(CE | EF, &mut p), Ok(()));
            assert_eq!(p, before);
        }
    }

    #[test]
    fn config_spellings() {
        for m in [DscpCopy::Out, DscpCopy::In, DscpCopy::Both, DscpCopy::No] {
            assert_eq!(m.as_str().parse(), Ok(m));
        }
        assert!("both".parse::<DscpCopy>().is_err());
    }
}
