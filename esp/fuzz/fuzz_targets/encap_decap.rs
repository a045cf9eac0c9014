//! Encapsulation with arbitrary buffers, offsets, lengths and block padding limits: either
//! a typed refusal, or a packet within the limit (when padded past the minimum) that
//! decapsulates back to the same inner packet.

#![no_main]

use esp::*;
use libfuzzer_sys::fuzz_target;

const SPI: u32 = 0x0bad_cafe;

fuzz_target!(|data: &[u8]| {
    let [selector, start, len_hi, len_lo, rest @ ..] = data else {
        return;
    };
    let suite = Suite::ALL[usize::from(*selector) % Suite::ALL.len()];
    let esn = selector & 0x80 != 0;
    // Selector bit 0x40: pad to AES blocks within a limit taken from the start byte.
    let block_pad_limit = (selector & 0x40 != 0).then(|| usize::from(*start) * 8);
    let keys = SaKeys::from_keymat(suite, &vec![0x44; suite.keymat_len()]).unwrap();
    let out = OutboundSa::new(
        SPI,
        suite,
        &keys,
        OutboundConfig {
            esn,
            block_pad_limit,
            ..OutboundConfig::default()
        },
        IvKey::new([5; 16]),
    )
    .unwrap();
    let inner_start = usize::from(*start);
    let inner_len = usize::from(u16::from_be_bytes([*len_hi, *len_lo]));
    let mut buf = rest.to_vec();
    let original = buf.clone();
    let Ok(ok) = out.encap(&mut buf, inner_start, inner_len) else {
        return;
    };
    let inb = InboundSa::new(
        SPI,
        suite,
        &keys,
        InboundConfig {
            esn,
            ..InboundConfig::default()
        },
    )
    .unwrap();
    let least = inner_len + suite.overhead(inner_len);
    if ok.range.len() > least {
        let limit = block_pad_limit.expect("padding past the minimum only with a limit");
        assert!(ok.range.len() <= limit, "padded past the limit");
        assert_eq!((ok.range.len() - suite.headroom() - suite.icv_len()) % 16, 0);
    }
    let mut pkt = buf[ok.range].to_vec();
    let d = inb.decap(&mut pkt).expect("own packet must decapsulate");
    assert_eq!(
        &pkt[d.inner],
        &original[inner_start..inner_start + inner_len]
    );
});
