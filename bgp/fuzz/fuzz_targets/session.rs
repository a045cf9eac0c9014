//! A session that has just sent its OPEN reads arbitrary peer bytes; the first
//! bytes are a valid OPEN and KEEPALIVE so the input also reaches Established.
#![no_main]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bgp::wire::{CodecContext, Message, Open};
use bgp::{Direction, Session, SessionConfig};

const OUT: Direction = Direction::Outbound;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut config = SessionConfig::new(
        65001,
        Ipv4Addr::new(10, 0, 0, 2),
        Ipv4Addr::new(169, 254, 10, 2),
        Ipv4Addr::new(169, 254, 10, 1),
    );
    config.max_prefixes = Some(100);
    let Ok(mut s) = Session::new(config) else {
        return;
    };
    let now = Instant::now();
    s.start(now);
    let _ = s.handle_connected(now, OUT);
    let ctx = CodecContext::default();
    let (first, rest) = data.split_at(data.len().min(1));
    if first.first().is_some_and(|b| b & 1 == 1) {
        s.handle_bytes(
            now, OUT,
            &Message::Open(Open::ours(65000, 90, Ipv4Addr::new(10, 0, 0, 1))).encode(ctx),
        );
        s.handle_bytes(now, OUT, &Message::Keepalive.encode(ctx));
    }
    for chunk in rest.chunks(97) {
        s.handle_bytes(now, OUT, chunk);
        while s.poll_event().is_some() {}
        let _ = s.poll_transmit(OUT);
    }
    s.handle_timeout(now + Duration::from_secs(100));
});
