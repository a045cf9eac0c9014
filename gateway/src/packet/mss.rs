//! TCP MSS clamping on SYN and SYN-ACK, so that TCP through the tunnel never sends segments
//! the tunnel MTU cannot carry. The TCP checksum is patched incrementally (RFC 1624).

use super::checksum::update16;
use super::{be16, put16, PacketError, PROTO_TCP};

/// What `clamp_mss` did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MssClamp {
    /// Not a TCP SYN (or a non-first fragment): left alone.
    NotSyn,
    /// A SYN without an MSS option: left alone (the peer assumes 536/1220).
    NoOption,
    /// The MSS was already at most the limit.
    Unchanged(u16),
    Clamped {
        from: u16,
        to: u16,
    },
}

/// The MSS that fits a tunnel MTU: MTU minus the IP and TCP headers (40 bytes for IPv4,
/// 60 for IPv6).
pub fn mss_for_mtu(mtu: u16, ipv6: bool) -> u16 {
    mtu.saturating_sub(if ipv6 { 60 } else { 40 })
}

/// Lowers the MSS option of a TCP SYN in the IPv4/IPv6 packet `pkt` to `max_mss`.
pub fn clamp_mss(pkt: &mut [u8], max_mss: u16) -> Result<MssClamp, PacketError> {
    let Some(tcp_at) = tcp_offset(pkt)? else {
        return Ok(MssClamp::NotSyn);
    };
    let tcp = pkt.get_mut(tcp_at..).ok_or(PacketError::Truncated)?;
    let flags = *tcp.get(13).ok_or(PacketError::Truncated)?;
    if flags & 0x02 == 0 {
        return Ok(MssClamp::NotSyn);
    }
    let data_off = usize::from(tcp.get(12).ok_or(PacketError::Truncated)? >> 4) * 4;
    if data_off < 20 {
        return Err(PacketError::BadHeader);
    }
    let options = tcp.get(20..data_off).ok_or(PacketError::Truncated)?;
    let Some(at) = find_mss(options)? else {
        return Ok(MssClamp::NoOption);
    };
    let at = 20 + at;
    let mss = be16(tcp, at).ok_or(PacketError::Truncated)?;
    if mss <= max_mss {
        return Ok(MssClamp::Unchanged(mss));
    }
    let check = be16(tcp, 16).ok_or(PacketError::Truncated)?;
    // The MSS value sits at an even offset from the TCP header start only if the option does;
    // checksum words are aligned to the TCP header, so patch the word(s) holding it.
    if at % 2 == 0 {
        put16(tcp, at, max_mss)?;
        put16(tcp, 16, update16(check, mss, max_mss))?;
    } else {
        let w0_old = be16(tcp, at - 1).ok_or(PacketError::Truncated)?;
        let w1_old = be16(tcp, at + 1).ok_or(PacketError::Truncated)?;
        put16(tcp, at, max_mss)?;
        let w0_new = be16(tcp, at - 1).ok_or(PacketError::Truncated)?;
        let w1_new = be16(tcp, at + 1).ok_or(PacketError::Truncated)?;
        let c = update16(update16(check, w0_old, w0_new), w1_old, w1_new);
        put16(tcp, 16, c)?;
    }
    Ok(MssClamp::Clamped {
        from: mss,
        to: max_mss,
    })
}

/// Offset of the MSS value (after kind and length) within the options, if present.
fn find_mss(options: &[u8]) -> Result<Option<usize>, PacketError> {
    let mut i = 0;
    while let Some(&kind) = options.get(i) {
        match kind {
            0 => return Ok(None),
            1 => i += 1,
            _ => {
                let len = usize::from(*options.get(i + 1).ok_or(PacketError::BadOptions)?);
                if len < 2 || i + len > options.len() {
                    return Err(PacketError::BadOptions);
                }
                if kind == 2 {
                    return if len == 4 {
                        Ok(Some(i + 2))
                    } else {
                        Err(PacketError::BadOptions)
                    };
                }
                i += len;
            }
        }
    }
    Ok(None)
}

/// Where the TCP header starts, or `None` if the packet is not (the first fragment of) TCP.
fn tcp_offset(pkt: &[u8]) -> Result<Option<usize>, PacketError> {
    let first = *pkt.first().ok_or(PacketError::Truncated)?;
    match first >> 4 {
        4 => {
            let ihl = usize::from(first & 0x0f) * 4;
            if ihl < 20 {
                return Err(PacketError::BadHeader);
            }
            let proto = *pkt.get(9).ok_or(PacketError::Truncated)?;
            let frag_off = be16(pkt, 6).ok_or(PacketError::Truncated)? & 0x1fff;
            Ok((proto == PROTO_TCP && frag_off == 0).then_some(ihl))
        }
        6 => {
            let mut next = *pkt.get(6).ok_or(PacketError::Truncated)?;
            let mut at = 40;
            // Hop-by-hop, routing and destination options may precede TCP; a fragment header
            // means this is not a whole segment we may rewrite (MSS sits in the first one,
            // but fragmenting SYNs does not happen in practice).
            for _ in 0..8 {
                match next {
                    PROTO_TCP => return Ok(Some(at)),
                    0 | 43 | 60 => {
                        next = *pkt.get(at).ok_or(PacketError::Truncated)?;
                        let len =
                            (usize::from(*pkt.get(at + 1).ok_or(PacketError::Truncated)?) + 1) * 8;
                        at += len;
                    }
                    _ => return Ok(None),
                }
            }
            Ok(None)
        }
        _ => Err(PacketError::NotIp),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::fixtures::{hex_lines, l4_sum_ok};

    fn first(name: &str) -> Vec<u8> {
        hex_lines(name).remove(0)
    }

    #[test]
    fn clamps_kernel_syns_and_keeps_checksums_valid() {
        for (name, kernel_mss) in [
            ("tcp4_syn", 1460),
            ("tcp4_synack", 8960),
            ("tcp6_syn", 1440),
            ("tcp6_synack", 8940),
        ] {
            let orig = first(name);
            let mut pkt = orig.clone();
            let to = mss_for_mtu(1400, name.starts_with("tcp6"));
            assert_eq!(
                clamp_mss(&mut pkt, to),
                Ok(MssClamp::Clamped {
                    from: kernel_mss,
                    to
                }),
                "{name}"
            );
            assert!(l4_sum_ok(&pkt), "{name}: checksum broken");
            let diff: Vec<usize> = (0..pkt.len()).filter(|&i| pkt[i] != orig[i]).collect();
            assert!(
                diff.len() <= 4,
                "{name}: only MSS and checksum change: {diff:?}"
            );
            // Idempotent once clamped.
            assert_eq!(clamp_mss(&mut pkt, to), Ok(MssClamp::Unchanged(to)));
        }
    }

    #[test]
    fn odd_offset_mss_option_is_patched_correctly() {
        // Put a NOP before the MSS option so its value starts at an odd offset.
        let mut pkt = first("tcp4_syn");
        let tcp = 20;
        // Options were: MSS(4) SACKOK(2) TS(10) NOP WS(3) = 20 bytes. Shift MSS right by one
        // by replacing the NOP before WS: [NOP, MSS(4), SACKOK(2), TS(10), WS(3)].
        let opts = pkt[tcp + 20..tcp + 40].to_vec();
        let mut new = vec![1u8];
        new.extend_from_slice(&opts[..16]);
        new.extend_from_slice(&opts[17..20]);
        pkt[tcp + 20..tcp + 40].copy_from_slice(&new);
        // Fix the checksum from scratch for this hand-built starting point.
        pkt[tcp + 16..tcp + 18].copy_from_slice(&[0, 0]);
        let c = crate::packet::checksum::finish(crate::packet::checksum::sum(
            crate::packet::checksum::pseudo_header(
                std::net::IpAddr::from(<[u8; 4]>::try_from(&pkt[12..16]).unwrap()),
                std::net::IpAddr::from(<[u8; 4]>::try_from(&pkt[16..20]).unwrap()),
                6,
                (pkt.len() - 20) as u32,
            ),
            &pkt[20..],
        ));
        pkt[tcp + 16..tcp + 18].copy_from_slice(&c.to_be_bytes());
        assert!(l4_sum_ok(&pkt));
        assert_eq!(
            clamp_mss(&mut pkt, 1300),
            Ok(MssClamp::Clamped {
                from: 1460,
                to: 1300
            })
        );
        assert!(l4_sum_ok(&pkt));
        assert_eq!(&pkt[tcp + 23..tcp + 25], &1300u16.to_be_bytes());
    }

    #[test]
    fn leaves_other_packets_alone() {
        let mut ack = first("tcp4_syn");
        ack[20 + 13] = 0x10; // ACK only
        assert_eq!(clamp_mss(&mut ack, 1000), Ok(MssClamp::NotSyn));
        let mut udp = first("udp4_df_2000");
        let before = udp.clone();
        assert_eq!(clamp_mss(&mut udp, 1000), Ok(MssClamp::NotSyn));
        assert_eq!(udp, before);
        let mut nomss = first("tcp6_syn");
        nomss[40 + 20] = 0; // end of options first
        assert_eq!(clamp_mss(&mut nomss, 1000), Ok(MssClamp::NoOption));
    }

    #[test]
    fn malformed_input_is_an_error_not_a_panic() {
        let syn = first("tcp4_syn");
        for n in 0..syn.len() {
            let mut cut = syn[..n].to_vec();
            let _ = clamp_mss(&mut cut, 1000);
        }
        let mut bad = syn.clone();
        bad[20 + 21] = 0; // MSS option length 0
        assert_eq!(clamp_mss(&mut bad, 1000), Err(PacketError::BadOptions));
        let mut bad = syn.clone();
        bad[20 + 12] = 0x30; // data offset 12 bytes
        assert_eq!(clamp_mss(&mut bad, 1000), Err(PacketError::BadHeader));
        assert_eq!(clamp_mss(&mut [0x10, 0, 0], 1000), Err(PacketError::NotIp));
    }

    #[test]
    fn mss_for_common_mtus() {
        assert_eq!(mss_for_mtu(1400, false), 1360);
        assert_eq!(mss_for_mtu(1400, true), 1340);
        assert_eq!(mss_for_mtu(20, false), 0);
    }
}
