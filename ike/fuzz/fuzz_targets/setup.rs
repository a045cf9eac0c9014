//! Shared by the fuzz targets: two tunnel configs and an in-memory handshake.
#![allow(dead_code)]
use ike::proposal::{EspProposal, IkeProposal};
use ike::sa::{Action, Config, Identity, Psk, StartAction};
use ike::Tunnel;
use rand::rngs::StdRng;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

pub fn addr(last: u8, port: u16) -> SocketAddr {
    SocketAddr::from(([192, 0, 2, last], port))
}

pub fn config(me: u8) -> Config {
    let other = 3 - me;
    let mut c = Config::new(
        addr(me, 500),
        addr(other, 500),
        Identity::Addr(addr(me, 500).ip()),
        Identity::Addr(addr(other, 500).ip()),
        Psk::new("fuzz"),
        vec![IkeProposal::parse("aes128-sha256-curve25519", false).unwrap()],
        vec![EspProposal::parse("aes128gcm16", false).unwrap()],
    );
    c.start_action = if me == 1 { StartAction::Initiate } else { StartAction::Respond };
    c
}

/// Two tunnels with an established IKE SA and CHILD SA.
pub fn established(rng: &mut StdRng) -> (Tunnel, Tunnel, Instant) {
    let mut now = Instant::now();
    let mut a = Tunnel::new(config(1), now, rng).unwrap();
    let mut b = Tunnel::new(config(2), now, rng).unwrap();
    a.handle_timeout(now, rng);
    for _ in 0..20 {
        now += Duration::from_millis(1);
        let mut moved = false;
        for a_to_b in [true, false] {
            let (from, to) = if a_to_b { (&mut a, &mut b) } else { (&mut b, &mut a) };
            while let Some(act) = from.poll_action() {
                if let Action::Send { local, remote, bytes } = act {
                    moved = true;
                    let _ = to.handle_datagram(now, remote, local, &bytes, rng);
                }
            }
        }
        if !moved {
            break;
        }
    }
    assert!(a.is_up() && b.is_up());
    (a, b, now)
}
