//! Real packets captured from the Linux kernel (see testdata/capture.py).

use super::checksum::{finish, pseudo_header, sum};
use std::net::IpAddr;

pub fn hex_lines(name: &str) -> Vec<Vec<u8>> {
    let path = format!("{}/testdata/{name}.hex", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            (0..l.len())
                .step_by(2)
                .map(|i| u8::from_str_radix(&l[i..i + 2], 16).unwrap())
                .collect()
        })
        .collect()
}

/// Whether the TCP/UDP/ICMPv6 checksum of a whole (unfragmented) packet is right.
pub fn l4_sum_ok(pkt: &[u8]) -> bool {
    let (src, dst, proto, l4): (IpAddr, IpAddr, u8, &[u8]) = match pkt[0] >> 4 {
        4 => {
            let ihl = usize::from(pkt[0] & 15) * 4;
            let total = usize::from(u16::from_be_bytes([pkt[2], pkt[3]]));
            let s: [u8; 4] = pkt[12..16].try_into().unwrap();
            let d: [u8; 4] = pkt[16..20].try_into().unwrap();
            (s.into(), d.into(), pkt[9], &pkt[ihl..total])
        }
        _ => {
            let s: [u8; 16] = pkt[8..24].try_into().unwrap();
            let d: [u8; 16] = pkt[24..40].try_into().unwrap();
            (s.into(), d.into(), pkt[6], &pkt[40..])
        }
    };
    if proto == 1 {
        return finish(sum(0, l4)) == 0;
    }
    finish(sum(pseudo_header(src, dst, proto, l4.len() as u32), l4)) == 0
}
