//! Internet checksum (RFC 1071) and its incremental update (RFC 1624).

use std::net::IpAddr;

/// Adds `data` as big-endian 16-bit words into an accumulator (odd byte padded); the
/// result is folded to 16 bits. Native-endian 32-bit words are added into a 64-bit total
/// (no carries to fold in the loop, so it vectorises); folded, that is the same sum
/// byte-swapped (RFC 1071), so it is swapped back once. This runs over every payload
/// the dataplane coalesces.
pub fn sum(acc: u32, data: &[u8]) -> u32 {
    let whole = data.len() - data.len() % 4;
    let (body, tail) = data.split_at(whole);
    let native = fold64(word_sum(body));
    let be = if cfg!(target_endian = "little") {
        native.swap_bytes()
    } else {
        native
    };
    let mut total = u64::from(acc) + u64::from(be);
    // The tail starts at an even offset (a multiple of four).
    let mut pairs = tail.chunks_exact(2);
    for c in pairs.by_ref() {
        total += u64::from(u16::from_be_bytes([c[0], c[1]]));
    }
    if let [last] = pairs.remainder() {
        total += u64::from(*last) << 8;
    }
    u32::from(fold64(total))
}

/// The native-endian 32-bit words of `body` (a multiple of four bytes) added up, with
/// AVX2 where the CPU has it (2-3x the SSE2 baseline from a few hundred bytes up; the
/// dataplane sums every byte it coalesces). Headers stay on the inlined baseline: for
/// them the feature check and call cost more than they save.
fn word_sum(body: &[u8]) -> u64 {
    #[cfg(target_arch = "x86_64")]
    if body.len() >= 128 && std::is_x86_feature_detected!("avx2") {
        // SAFETY: the CPU has AVX2, checked just above.
        return unsafe { word_sum_avx2(body) };
    }
    word_sum_portable(body)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn word_sum_avx2(body: &[u8]) -> u64 {
    word_sum_portable(body)
}

/// Inlined into each caller so that it is compiled for the caller's CPU features.
#[inline(always)]
fn word_sum_portable(body: &[u8]) -> u64 {
    body.chunks_exact(4)
        .map(|c| u64::from(u32::from_ne_bytes([c[0], c[1], c[2], c[3]])))
        .sum()
}

fn fold64(mut s: u64) -> u16 {
    while s > 0xffff {
        s = (s & 0xffff) + (s >> 16);
    }
    s as u16
}

/// Folds the accumulator to 16 bits, not complemented: what a partial (offloaded)
/// checksum field holds for the pseudo-header.
pub fn fold(acc: u32) -> u16 {
    fold64(u64::from(acc))
}

/// Folds the accumulator to 16 bits and complements it: the value to store.
pub fn finish(acc: u32) -> u16 {
    !fold(acc)
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

/// Sum of the TCP/UDP pseudo-header of the IP packet `ip` (addresses read from its
/// header; `len` is the transport length), `None` when `ip` is too short.
pub fn pseudo_header_of(ip: &[u8], proto: u8, len: u32) -> Option<u32> {
    let addrs = match ip.first()? >> 4 {
        6 => ip.get(8..40)?,
        _ => ip.get(12..20)?,
    };
    Some(sum(sum(sum(0, addrs), &len.to_be_bytes()), &[0, proto]))
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

    /// The definition: big-endian 16-bit words summed one by one.
    fn sum_by_pairs(b: &[u8]) -> u64 {
        b.chunks(2)
            .map(|c| u64::from(u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)])))
            .sum()
    }

    proptest::proptest! {
        #[test]
        fn word_sum_folds_like_the_definition(
            b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000),
            acc in 0u32..0x1_0000,
        ) {
            proptest::prop_assert_eq!(
                fold(sum(acc, &b)),
                fold64(u64::from(acc) + sum_by_pairs(&b))
            );
        }

        /// `sum` takes the AVX2 path on CPUs that have it; the baseline must agree.
        #[test]
        fn every_word_sum_variant_agrees(
            b in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..3000),
        ) {
            // Long enough for the AVX2 path where there is one.
            let b: Vec<u8> = b.iter().copied().cycle().take(b.len() * 3).collect();
            let body = &b[..b.len() - b.len() % 4];
            proptest::prop_assert_eq!(word_sum(body), word_sum_portable(body));
        }
    }

    #[test]
    fn pseudo_header_of_a_packet_matches_its_addresses() {
        for name in ["udp4_df_2000", "udp6_2000"] {
            let pkt = &hex_lines(name)[0];
            let (src, dst): (IpAddr, IpAddr) = if pkt[0] >> 4 == 4 {
                let s: [u8; 4] = pkt[12..16].try_into().unwrap();
                let d: [u8; 4] = pkt[16..20].try_into().unwrap();
                (s.into(), d.into())
            } else {
                let s: [u8; 16] = pkt[8..24].try_into().unwrap();
                let d: [u8; 16] = pkt[24..40].try_into().unwrap();
                (s.into(), d.into())
            };
            assert_eq!(
                pseudo_header_of(pkt, 17, 1234).map(fold),
                Some(fold(pseudo_header(src, dst, 17, 1234))),
                "{name}"
            );
        }
        assert_eq!(pseudo_header_of(&[0x45; 10], 17, 8), None);
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
