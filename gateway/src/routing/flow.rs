//! 5-tuple flow key and hash for ECMP: packets of one flow always take the same tunnel.

use std::net::IpAddr;

/// Source, destination, protocol and ports (0 when the packet carries none we can read).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct FlowKey {
    pub src: IpAddr,
    pub dst: IpAddr,
    pub proto: u8,
    pub src_port: u16,
    pub dst_port: u16,
}

const TCP: u8 = 6;
const UDP: u8 = 17;
const SCTP: u8 = 132;

fn has_ports(proto: u8) -> bool {
    matches!(proto, TCP | UDP | SCTP)
}

fn ports(l4: Option<&[u8]>) -> (u16, u16) {
    match l4.and_then(|b| b.get(..4)) {
        Some(&[a, b, c, d]) => (u16::from_be_bytes([a, b]), u16::from_be_bytes([c, d])),
        _ => (0, 0),
    }
}

impl FlowKey {
    /// Reads the key of an IPv4 or IPv6 packet; `None` if it is neither or too short.
    /// Non-first IPv4 fragments and IPv6 packets with extension headers hash on addresses and
    /// protocol only, since their ports are not at hand.
    pub fn from_packet(pkt: &[u8]) -> Option<FlowKey> {
        match pkt.first()? >> 4 {
            4 => {
                let hdr = pkt.get(..20)?;
                let ihl = usize::from(hdr[0] & 0x0f) * 4;
                let proto = hdr[9];
                let frag_offset = u16::from_be_bytes([hdr[6], hdr[7]]) & 0x1fff;
                let src: [u8; 4] = hdr[12..16].try_into().ok()?;
                let dst: [u8; 4] = hdr[16..20].try_into().ok()?;
                let (src_port, dst_port) = if has_ports(proto) && frag_offset == 0 && ihl >= 20 {
                    ports(pkt.get(ihl..))
                } else {
                    (0, 0)
                };
                Some(FlowKey {
                    src: src.into(),
                    dst: dst.into(),
                    proto,
                    src_port,
                    dst_port,
                })
            }
            6 => {
                let hdr = pkt.get(..40)?;
                let proto = hdr[6];
                let src: [u8; 16] = hdr[8..24].try_into().ok()?;
                let dst: [u8; 16] = hdr[24..40].try_into().ok()?;
                let (src_port, dst_port) = if has_ports(proto) {
                    ports(pkt.get(40..))
                } else {
                    (0, 0)
                };
                Some(FlowKey {
                    src: src.into(),
                    dst: dst.into(),
                    proto,
                    src_port,
                    dst_port,
                })
            }
            _ => None,
        }
    }

    /// A well-mixed 32-bit hash; stable across runs so a flow keeps its tunnel after restarts.
    pub fn hash(&self) -> u32 {
        let fold = |ip: IpAddr| -> u64 {
            match ip {
                IpAddr::V4(a) => u64::from(u32::from(a)),
                IpAddr::V6(a) => {
                    let v = u128::from(a);
                    (v as u64) ^ ((v >> 64) as u64).rotate_left(17)
                }
            }
        };
        let mut h = fold(self.src);
        h = mix(h ^ fold(self.dst).rotate_left(32));
        h = mix(h
            ^ (u64::from(self.proto) << 32
                | u64::from(self.src_port) << 16
                | u64::from(self.dst_port)));
        (h ^ (h >> 32)) as u32
    }
}

/// splitmix64 finaliser.
fn mix(mut x: u64) -> u64 {
    x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// Flow hash of a packet (0 for something that is not IP: it still gets a tunnel).
pub fn flow_hash(pkt: &[u8]) -> u32 {
    FlowKey::from_packet(pkt).map_or(0, |k| k.hash())
}

#[cfg(test)]
mod tests {
    use super::*;

    // UDP/IPv4 DNS query 192.168.1.10:53012 -> 8.8.8.8:53 (header + UDP header).
    const UDP4: &str = "45000039a6f340004011c1a8c0a8010a08080808cf1400350025b2b3";
    // TCP/IPv6 SYN 2001:db8::1:40000 -> 2001:db8::2:443 (IPv6 header + TCP ports).
    const TCP6: &str =
        "6000000000280640200108b8000000000000000000000001200108b80000000000000000000000029c4001bb";

    fn hex(s: &str) -> Vec<u8> {
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn reads_v4_and_v6_keys() {
        let k = FlowKey::from_packet(&hex(UDP4)).unwrap();
        assert_eq!(k.src, "192.168.1.10".parse::<IpAddr>().unwrap());
        assert_eq!(k.dst, "8.8.8.8".parse::<IpAddr>().unwrap());
        assert_eq!((k.proto, k.src_port, k.dst_port), (17, 53012, 53));
        let k = FlowKey::from_packet(&hex(TCP6)).unwrap();
        assert_eq!(k.dst, "2001:8b8::2".parse::<IpAddr>().unwrap());
        assert_eq!((k.proto, k.src_port, k.dst_port), (6, 40000, 443));
    }

    #[test]
    fn short_or_odd_packets_do_not_panic() {
        let udp = hex(UDP4);
        for n in 0..udp.len() {
            let _ = flow_hash(&udp[..n]);
        }
        assert_eq!(FlowKey::from_packet(&[0x55; 40]), None);
        let mut frag = udp.clone();
        frag[6] = 0x00;
        frag[7] = 0x10; // offset 128 bytes: no ports
        assert_eq!(FlowKey::from_packet(&frag).unwrap().src_port, 0);
    }

    #[test]
    fn hash_spreads_flows() {
        let mut pkt = hex(UDP4);
        let mut odd = 0;
        for port in 0..1000u16 {
            pkt[20..22].copy_from_slice(&port.to_be_bytes());
            odd += flow_hash(&pkt) & 1;
        }
        assert!((400..600).contains(&odd), "{odd} of 1000 odd");
    }
}
