//! Arbitrary datagrams to a responder that has no SA yet (port 500 or 4500).
#![no_main]
use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;
use std::time::Instant;

#[path = "setup.rs"]
mod setup;

fuzz_target!(|data: &[u8]| {
    let mut rng = rand::rngs::StdRng::seed_from_u64(1);
    let now = Instant::now();
    let mut t = ike::Tunnel::new(setup::config(2), now, &mut rng).unwrap();
    let (port, bytes) = match data.split_first() {
        Some((p, rest)) if p & 1 == 1 => (4500, rest),
        Some((_, rest)) => (500, rest),
        None => (500, data),
    };
    let _ = t.handle_datagram(now, setup::addr(2, port), setup::addr(1, port), bytes, &mut rng);
    while t.poll_action().is_some() {}
    t.handle_timeout(now, &mut rng);
});
