//! Arbitrary datagrams to both ends of an established tunnel, with the live IKE SPIs
//! written over the start so that they reach decryption and the SA's handlers.
#![no_main]
use libfuzzer_sys::fuzz_target;
use rand::SeedableRng;

#[path = "setup.rs"]
mod setup;

fuzz_target!(|data: &[u8]| {
    let mut rng = rand::rngs::StdRng::seed_from_u64(2);
    let (mut a, mut b, now) = setup::established(&mut rng);
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let mut bytes = rest.to_vec();
    if let Some((spi_i, spi_r)) = a.ike_spis() {
        if mode & 2 == 2 && bytes.len() >= 16 {
            bytes[..8].copy_from_slice(&spi_i);
            bytes[8..16].copy_from_slice(&spi_r);
        }
    }
    let t = if mode & 1 == 1 { &mut a } else { &mut b };
    let me = if mode & 1 == 1 { 1 } else { 2 };
    let _ = t.handle_datagram(now, setup::addr(me, 500), setup::addr(3 - me, 500), &bytes, &mut rng);
    assert!(t.is_up(), "a random datagram took the tunnel down");
});
