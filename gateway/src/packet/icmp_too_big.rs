//! ICMP "fragmentation needed" (IPv4, type 3 code 4, RFC 1191) and ICMPv6 "packet too big"
//! (type 2, RFC 4443) replies for packets that do not fit the tunnel and may not be
//! fragmented, so the sender lowers its path MTU.

use super::checksum::{checksum, finish, pseudo_header, sum};
use super::{be16, put16, PacketError, PROTO_ICMP, PROTO_ICMPV6};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// RFC 1812 4.3.2.3: an ICMPv4 error carries as much of the packet as fits in 576 bytes.
const V4_MAX_REPLY: usize = 576;
/// RFC 4443 2.4 (c): an ICMPv6 error must not exceed the minimum IPv6 MTU.
const V6_MAX_REPLY: usize = 1280;
const TTL: u8 = 64;

/// Whether `pkt` is too big for `mtu` and may not be fragmented (IPv4 with DF, or IPv6).
pub fn needs_too_big(pkt: &[u8], mtu: u16) -> bool {
    let Some(&first) = pkt.first() else {
        return false;
    };
    match first >> 4 {
        4 => {
            let total = be16(pkt, 2).unwrap_or(0);
            let df = be16(pkt, 6).is_some_and(|f| f & 0x4000 != 0);
            df && total > mtu
        }
        6 => be16(pkt, 4).is_some_and(|payload| usize::from(payload) + 40 > usize::from(mtu)),
        _ => false,
    }
}

/// Writes into `out` the ICMP error telling the sender of `pkt` to use `mtu`, sent from
/// `from` (the tunnel's far inner address). A tunnel with inner addresses of one family
/// carries the other too, and has no address of it to answer from: the error then comes
/// from the packet's destination, as if the far end had answered (never from one of our
/// own addresses, which the local kernel would drop as martian). Returns its length.
pub fn icmp_too_big(
    pkt: &[u8],
    mtu: u16,
    from: IpAddr,
    out: &mut [u8],
) -> Result<usize, PacketError> {
    let first = *pkt.first().ok_or(PacketError::Truncated)?;
    let from = match (first >> 4, from) {
        (4, IpAddr::V6(_)) | (6, IpAddr::V4(_)) => unicast_destination(pkt)?,
        _ => from,
    };
    match (first >> 4, from) {
        (4, IpAddr::V4(from)) => frag_needed_v4(pkt, mtu, from, out),
        (6, IpAddr::V6(from)) => packet_too_big_v6(pkt, mtu, from, out),
        _ => Err(PacketError::NotIp),
    }
}

/// The destination of IP packet `pkt`, if it is a unicast address an error may come from.
fn unicast_destination(pkt: &[u8]) -> Result<IpAddr, PacketError> {
    let dst = super::destination(pkt).ok_or(PacketError::Truncated)?;
    let broadcast = matches!(dst, IpAddr::V4(a) if a.is_broadcast());
    if dst.is_multicast() || dst.is_unspecified() || broadcast {
        return Err(PacketError::NoIcmpAllowed(
            "no unicast address to answer from",
        ));
    }
    Ok(dst)
}

fn frag_needed_v4(
    pkt: &[u8],
    mtu: u16,
    from: Ipv4Addr,
    out: &mut [u8],
) -> Result<usize, PacketError> {
    let hdr = pkt.get(..20).ok_or(PacketError::Truncated)?;
    let ihl = usize::from(hdr[0] & 0x0f) * 4;
    if ihl < 20 || pkt.len() < ihl {
        return Err(PacketError::BadHeader);
    }
    let src = Ipv4Addr::new(hdr[12], hdr[13], hdr[14], hdr[15]);
    let dst = Ipv4Addr::new(hdr[16], hdr[17], hdr[18], hdr[19]);
    // RFC 1812 4.3.2.7: no ICMP errors about non-first fragments, ICMP errors, or packets
    // whose source is not a unicast host.
    if be16(hdr, 6).ok_or(PacketError::Truncated)? & 0x1fff != 0 {
        return Err(PacketError::NoIcmpAllowed("non-first fragment"));
    }
    if src.is_unspecified() || src.is_broadcast() || src.is_multicast() || src.is_loopback() {
        return Err(PacketError::NoIcmpAllowed("source is not a unicast host"));
    }
    if dst.is_broadcast() || dst.is_multicast() {
        return Err(PacketError::NoIcmpAllowed(
            "destination is broadcast or multicast",
        ));
    }
    if hdr[9] == PROTO_ICMP {
        let icmp_type = *pkt.get(ihl).ok_or(PacketError::Truncated)?;
        if !matches!(icmp_type, 0 | 8 | 13 | 14 | 15 | 16 | 17 | 18) {
            return Err(PacketError::NoIcmpAllowed("packet is an ICMP error"));
        }
    }
    let total = usize::from(be16(hdr, 2).ok_or(PacketError::Truncated)?);
    let quoted = pkt
        .get(..total.min(pkt.len()))
        .ok_or(PacketError::Truncated)?;
    let quoted = quoted
        .get(..quoted.len().min(V4_MAX_REPLY - 28))
        .ok_or(PacketError::Truncated)?;
    let len = 28 + quoted.len();
    if out.len() < len {
        return Err(PacketError::BufferTooSmall { need: len });
    }
    let (ip, rest) = out.split_at_mut(20);
    ip.copy_from_slice(&[
        0x45, 0, 0, 0, 0, 0, 0, 0, TTL, PROTO_ICMP, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    ]);
    put16(ip, 2, len as u16)?;
    ip[12..16].copy_from_slice(&from.octets());
    ip[16..20].copy_from_slice(&src.octets());
    let c = checksum(ip);
    put16(ip, 10, c)?;
    let icmp = rest
        .get_mut(..8 + quoted.len())
        .ok_or(PacketError::BufferTooSmall { need: len })?;
    icmp[..8].copy_from_slice(&[3, 4, 0, 0, 0, 0, 0, 0]);
    put16(icmp, 6, mtu)?;
    icmp[8..].copy_from_slice(quoted);
    let c = checksum(icmp);
    put16(icmp, 2, c)?;
    Ok(len)
}

fn packet_too_big_v6(
    pkt: &[u8],
    mtu: u16,
    from: Ipv6Addr,
    out: &mut [u8],
) -> Result<usize, PacketError> {
    let hdr = pkt.get(..40).ok_or(PacketError::Truncated)?;
    let src: [u8; 16] = hdr[8..24].try_into().map_err(|_| PacketError::Truncated)?;
    let src = Ipv6Addr::from(src);
    // RFC 4443 2.4 (e): Packet Too Big is sent even for multicast destinations, but never to
    // an unspecified or multicast source, and never about an ICMPv6 error (type < 128).
    if src.is_unspecified() || src.is_multicast() || src.is_loopback() {
        return Err(PacketError::NoIcmpAllowed("source is not a unicast host"));
    }
    if hdr[6] == PROTO_ICMPV6 && pkt.get(40).is_some_and(|t| *t < 128) {
        return Err(PacketError::NoIcmpAllowed("packet is an ICMPv6 error"));
    }
    let whole = 40 + usize::from(be16(hdr, 4).ok_or(PacketError::Truncated)?);
    let quoted = pkt
        .get(..whole.min(pkt.len()).min(V6_MAX_REPLY - 48))
        .ok_or(PacketError::Truncated)?;
    let icmp_len = 8 + quoted.len();
    let len = 40 + icmp_len;
    if out.len() < len {
        return Err(PacketError::BufferTooSmall { need: len });
    }
    let (ip, rest) = out.split_at_mut(40);
    ip[..8].copy_from_slice(&[0x60, 0, 0, 0, 0, 0, PROTO_ICMPV6, TTL]);
    put16(ip, 4, icmp_len as u16)?;
    ip[8..24].copy_from_slice(&from.octets());
    ip[24..40].copy_from_slice(&src.octets());
    let icmp = rest
        .get_mut(..icmp_len)
        .ok_or(PacketError::BufferTooSmall { need: len })?;
    icmp[..8].copy_from_slice(&[2, 0, 0, 0, 0, 0, 0, 0]);
    icmp[4..8].copy_from_slice(&u32::from(mtu).to_be_bytes());
    icmp[8..].copy_from_slice(quoted);
    let acc = pseudo_header(from.into(), src.into(), PROTO_ICMPV6, icmp_len as u32);
    let c = finish(sum(acc, icmp));
    put16(icmp, 2, c)?;
    Ok(len)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::fixtures::{hex_lines, l4_sum_ok};

    fn first(name: &str) -> Vec<u8> {
        hex_lines(name).remove(0)
    }

    #[test]
    fn v4_frag_needed_for_a_kernel_df_packet() {
        let pkt = first("udp4_df_2000");
        assert!(needs_too_big(&pkt, 1400));
        assert!(!needs_too_big(&pkt, 2028));
        let mut out = [0u8; 1500];
        let gw: Ipv4Addr = "169.254.10.2".parse().unwrap();
        let n = icmp_too_big(&pkt, 1400, gw.into(), &mut out).unwrap();
        let r = &out[..n];
        assert_eq!(n, 576, "RFC 1812: as much as fits in 576 bytes");
        assert_eq!(checksum(&r[..20]), 0, "IP header checksum");
        assert_eq!((r[9], r[20], r[21]), (1, 3, 4), "ICMP type 3 code 4");
        assert_eq!(&r[24..26], &[0, 0], "unused");
        assert_eq!(
            u16::from_be_bytes([r[26], r[27]]),
            1400,
            "next-hop MTU (RFC 1191)"
        );
        assert_eq!(&r[12..16], &gw.octets());
        assert_eq!(&r[16..20], &pkt[12..16], "back to the sender");
        assert_eq!(&r[28..], &pkt[..548], "quotes the start of the packet");
        assert!(l4_sum_ok(r), "ICMP checksum");
    }

    #[test]
    fn v6_packet_too_big_for_a_kernel_packet() {
        let pkt = first("udp6_2000");
        assert!(needs_too_big(&pkt, 1400));
        let mut out = [0u8; 1500];
        let gw: Ipv6Addr = "fd00::99".parse().unwrap();
        let n = icmp_too_big(&pkt, 1400, gw.into(), &mut out).unwrap();
        let r = &out[..n];
        assert_eq!(n, 1280, "RFC 4443: no larger than the minimum MTU");
        assert_eq!((r[6], r[40], r[41]), (58, 2, 0));
        assert_eq!(u32::from_be_bytes([r[44], r[45], r[46], r[47]]), 1400);
        assert_eq!(&r[24..40], &pkt[8..24]);
        assert_eq!(&r[48..], &pkt[..1232]);
        assert!(l4_sum_ok(r), "ICMPv6 checksum with pseudo-header");
    }

    /// IPv6 through a tunnel with IPv4 inner addresses (and the other way round): the
    /// error comes from the packet's destination rather than not at all.
    #[test]
    fn a_tunnel_of_the_other_family_answers_from_the_destination() {
        let mut out = [0u8; 1500];
        let v4_gw: IpAddr = "169.254.10.1".parse().unwrap();
        let v6 = first("udp6_2000");
        let n = icmp_too_big(&v6, 1300, v4_gw, &mut out).unwrap();
        let r = &out[..n];
        assert_eq!((r[6], r[40]), (58, 2), "ICMPv6 Packet Too Big");
        assert_eq!(&r[8..24], &v6[24..40], "from the destination");
        assert_eq!(&r[24..40], &v6[8..24], "to the sender");
        assert!(l4_sum_ok(r));
        let v4 = first("udp4_df_2000");
        let n = icmp_too_big(&v4, 1300, "fd00::1".parse().unwrap(), &mut out).unwrap();
        let r = &out[..n];
        assert_eq!((r[20], r[21]), (3, 4));
        assert_eq!(&r[12..16], &v4[16..20], "from the destination");
        assert_eq!(checksum(&r[..20]), 0);
        let mut mc = v6.clone();
        mc[24] = 0xff;
        assert_eq!(
            icmp_too_big(&mc, 1300, v4_gw, &mut out),
            Err(PacketError::NoIcmpAllowed(
                "no unicast address to answer from"
            ))
        );
    }

    #[test]
    fn small_packets_are_quoted_whole() {
        let pkt = first("tcp4_syn");
        let mut out = [0u8; 200];
        let n = icmp_too_big(&pkt, 40, "192.0.2.254".parse().unwrap(), &mut out).unwrap();
        assert_eq!(n, 28 + pkt.len());
        assert!(l4_sum_ok(&out[..n]));
    }

    #[test]
    fn no_reply_about_fragments_errors_or_without_df() {
        let frags = hex_lines("udp4_kernel_fragments");
        assert!(!needs_too_big(&frags[0], 1000), "no DF: fragment instead");
        let mut out = [0u8; 1500];
        let gw = "169.254.10.2".parse().unwrap();
        assert_eq!(
            icmp_too_big(&frags[1], 1000, gw, &mut out),
            Err(PacketError::NoIcmpAllowed("non-first fragment"))
        );
        let mut err = first("udp4_df_2000");
        err[9] = 1;
        err[20] = 3; // an ICMP destination unreachable
        assert_eq!(
            icmp_too_big(&err, 1000, gw, &mut out),
            Err(PacketError::NoIcmpAllowed("packet is an ICMP error"))
        );
        let mut mc = first("udp4_df_2000");
        mc[12] = 224;
        assert!(icmp_too_big(&mc, 1000, gw, &mut out).is_err());
        assert_eq!(
            icmp_too_big(&first("udp4_df_2000"), 1000, gw, &mut [0u8; 100]),
            Err(PacketError::BufferTooSmall { need: 576 })
        );
    }

    #[test]
    fn truncated_input_never_panics() {
        let mut out = [0u8; 1500];
        for name in ["udp4_df_2000", "udp6_2000"] {
            let pkt = first(name);
            for n in 0..100 {
                let from = if name.starts_with("udp6") {
                    "fd00::1".parse().unwrap()
                } else {
                    "10.0.0.1".parse().unwrap()
                };
                let _ = icmp_too_big(&pkt[..n], 1000, from, &mut out);
                let _ = needs_too_big(&pkt[..n], 1000);
            }
        }
    }
}
