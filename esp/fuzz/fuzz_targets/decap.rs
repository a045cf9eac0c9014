//! Decapsulation of arbitrary bytes, through the SA table and a bare SA, for
//! every suite, with and without ESN. Must never panic. Half of the inputs
//! get a matching SPI so that the length, replay and ICV paths are reached.

#![no_main]

use std::sync::Arc;

use esp::*;
use libfuzzer_sys::fuzz_target;

const SPI: u32 = 0x0bad_cafe;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, rest)) = data.split_first() else {
        return;
    };
    let suite = Suite::ALL[usize::from(selector) % Suite::ALL.len()];
    let esn = selector & 0x80 != 0;
    let keys = SaKeys::from_keymat(suite, &vec![0x33; suite.keymat_len()]).unwrap();
    let cfg = InboundConfig {
        esn,
        replay_window: 64,
        ..InboundConfig::default()
    };
    let sa = Arc::new(InboundSa::new(SPI, suite, &keys, cfg).unwrap());

    let mut pkt = rest.to_vec();
    if selector & 0x40 != 0 && pkt.len() >= 4 {
        pkt[..4].copy_from_slice(&SPI.to_be_bytes());
    }
    let _ = udp_encap::classify(&pkt);
    let _ = sa.decap(&mut pkt.clone());

    let table = SaTable::new();
    table.insert(sa);
    let _ = table.decap(&mut pkt);
});
