//! A session that has just sent its OPEN reads arbitrary peer bytes; the first
//! bytes are a valid OPEN and KEEPALIVE so the input also reaches Established. With
//! bit 1 of the first byte set, the peer's connection arrives too (a collision) and the
//! chunks alternate between both connections.
#![no_main]

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use bgp::wire::{CodecContext, Message, Open};
use bgp::{Direction, Session, SessionConfig};
use libfuzzer_sys::fuzz_target;

const OUT: Direction = Direction::Outbound;

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
    let flags = first.first().copied().unwrap_or(0);
    let collision = flags & 2 == 2;
    if collision {
        let _ = s.handle_connected(now, Direction::Inbound);
    }
    if flags & 1 == 1 {
        s.handle_bytes(
            now,
            OUT,
            &Message::Open(Open::ours(65000, 90, Ipv4Addr::new(10, 0, 0, 1))).encode(ctx),
        );
        s.handle_bytes(now, OUT, &Message::Keepalive.encode(ctx));
    }
    for (i, chunk) in rest.chunks(97).enumerate() {
        let d = if collision && i % 2 == 1 {
            Direction::Inbound
        } else {
            OUT
        };
        s.handle_bytes(now, d, chunk);
        while s.poll_event().is_some() {}
        for d in Direction::BOTH {
            let _ = s.poll_transmit(d);
        }
    }
    s.handle_timeout(now + Duration::from_secs(100));
});
