//! Internet checksum (RFC 1071) and its incremental update (RFC 1624).

use std::net::IpAddr;

/// Adds `data` as big-endian 16-bit words into a 32-bit accumulator (odd byte padded).
pub fn sum(mut acc: u32, data: &[u8]) -> u32 {
    let mut chunks = data.chunks_exact(2);
    for c in &mut chunks {
        acc = acc.wrapping_add(u32::from(u16::from_be_bytes([c[0], c[1]])));
        acc = (acc & 0xffff) + (acc >> 16);
    }
    if let [last] = chunks.remainder() {
        acc = acc.wrapping_add(u32::from(*last) << 8);
    }
    acc
}

/// Folds the accumulator to 16 bits and complements it: the value to store.
pub fn finish(mut acc: u32) -> u16 {
    while acc >> 16 != 0 {
        acc = (acc & 0xffff) + (acc >> 16);
    }
    !(acc as u16)
}

/// The checksum of `data` alone (IPv4 header, ICMPv4).
pub fn checksum(data: &[u8]) -> u16 {
    finish(sum(0, data))
}

/// Sum of the TCP/UDP/ICMPv6 pseudo-header.
pub fn pseudo_header(src: IpAddr, dst: IpAddr, proto: u8, len: u32) -> u32 {
    let mut acc = match (src, dst) {
        (IpAddr::V4(s), IpAddr::V4(d)) => sum(sum(0, &s.octets()), &d.octets()),
        (s, d) => {
            let (s, d) = (to6(s), to6(d));
            sum(sum(0, &s), &d)
        }
    };
    acc = sum(acc, &len.to_be_bytes());
    sum(acc, &[0, proto])
}

fn to6(a: IpAddr) -> [u8; 16] {
    match a {
        IpAddr::V4(v) => v.to_ipv6_mapped().octets(),
        IpAddr::V6(v) => v.octets(),
    }
}

/// RFC 1624 eqn. 3: the new checksum after one 16-bit word changed from `old` to `new`:
/// HC' = ~(~HC + ~m + m').
pub fn update16(check: u16, old: u16, new: u16) -> u16 {
    let acc = u32::from(!check) + u32::from(!old) + u32::from(new);
    finish(acc)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packet::fixtures::{hex_lines, l4_sum_ok};

    #[test]
    fn rfc1071_example() {
        // RFC 1071 section 3 example: words 0001 f203 f4f5 f6f7 sum to 0xddf2.
        let data = [0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7];
        assert_eq!(finish(sum(0, &data)), !0xddf2);
    }

    #[test]
    fn kernel_packets_verify() {
        for name in [
            "tcp4_syn",
            "tcp4_synack",
            "udp4_df_2000",
            "tcp6_syn",
            "tcp6_synack",
            "udp6_2000",
        ] {
            for pkt in hex_lines(name) {
                assert!(l4_sum_ok(&pkt), "{name}");
                if pkt[0] >> 4 == 4 {
                    assert_eq!(checksum(&pkt[..20]), 0, "{name} IPv4 header");
                }
            }
        }
    }

    #[test]
    fn incremental_equals_full_recompute() {
        let mut hdr = hex_lines("tcp4_syn")[0][..20].to_vec();
        for ttl in 0..=255u8 {
            let old = u16::from_be_bytes([hdr[8], hdr[9]]);
            let check = u16::from_be_bytes([hdr[10], hdr[11]]);
            hdr[8] = ttl;
            let new = u16::from_be_bytes([hdr[8], hdr[9]]);
            let inc = update16(check, old, new);
            hdr[10..12].copy_from_slice(&[0, 0]);
            assert_eq!(inc, checksum(&hdr), "ttl {ttl}");
            hdr[10..12].copy_from_slice(&inc.to_be_bytes());
        }
    }
}
