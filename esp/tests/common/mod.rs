//! Helpers shared by the integration tests.
#![allow(dead_code)]

use esp::*;

pub const SPI: u32 = 0xc0de_0001;

pub fn keys(suite: Suite, seed: u8) -> SaKeys {
    let km: Vec<u8> = (0..suite.keymat_len())
        .map(|i| seed.wrapping_mul(31).wrapping_add(i as u8))
        .collect();
    SaKeys::from_keymat(suite, &km).unwrap()
}

pub fn outbound(suite: Suite, esn: bool, limits: Limits) -> OutboundSa {
    OutboundSa::new(
        SPI,
        suite,
        &keys(suite, 1),
        OutboundConfig {
            esn,
            limits,
            ..OutboundConfig::default()
        },
        IvKey::new([0x11; 16]),
    )
    .unwrap()
}

pub fn inbound(suite: Suite, esn: bool, window: u32, limits: Limits) -> InboundSa {
    InboundSa::new(
        SPI,
        suite,
        &keys(suite, 1),
        InboundConfig {
            esn,
            replay_window: window,
            limits,
            owner: 7,
        },
    )
    .unwrap()
}

/// A syntactically plausible IPv4 (version 4) or IPv6 (version 6) packet of `len` bytes.
pub fn inner_packet(v6: bool, len: usize) -> Vec<u8> {
    let mut p: Vec<u8> = (0..len).map(|i| (i * 7 + 3) as u8).collect();
    if let Some(first) = p.first_mut() {
        *first = if v6 { 0x60 } else { 0x45 };
    }
    p
}

/// Encapsulates `inner` with exact head/tailroom and returns the ESP packet.
pub fn seal(out: &OutboundSa, inner: &[u8]) -> (Vec<u8>, EncapOk) {
    let head = out.headroom();
    let mut buf = vec![0u8; head + inner.len() + out.tailroom()];
    buf[head..head + inner.len()].copy_from_slice(inner);
    let ok = out.encap(&mut buf, head, inner.len()).unwrap();
    (buf[ok.range.clone()].to_vec(), ok)
}
