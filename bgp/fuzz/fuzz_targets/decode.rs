//! Any bytes, as one message and as a stream, with both AS-number widths.
#![no_main]

use bgp::wire::{CodecContext, Framer, Message};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for four_octet_as in [true, false] {
        let ctx = CodecContext {
            four_octet_as,
            ebgp: true,
        };
        if let Ok(msg) = Message::decode(data, ctx) {
            // Whatever decodes must encode again without trouble.
            let _ = msg.encode(ctx);
        }
    }
    let mut framer = Framer::new();
    framer.push(data);
    while let Ok(Some(m)) = framer.next_message() {
        let _ = Message::decode(&m, CodecContext::default());
    }
});
