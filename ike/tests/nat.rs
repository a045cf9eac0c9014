//! A peer behind a port-translating NAT (RFC 7296 2.23): both sides detect it, float to
//! 4500, and the side that is not behind the NAT follows the peer when the NAT's mapping
//! changes, told by an authenticated IKE message or (through the dataplane) by ESP.
mod common;
use common::pair::{addr, config, Nat, Pair};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

const IKE: &str = "aes128-sha256-modp2048";
const ESP: &str = "aes128gcm16";
const PUBLIC: IpAddr = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7));

/// Side a (initiator) behind a NAT whose public address side b is configured with.
fn behind_nat(seed: u64) -> Pair {
    let a = config(1, IKE, ESP);
    let mut b = config(2, IKE, ESP);
    b.remote = SocketAddr::new(PUBLIC, 500);
    let mut p = Pair::new(a, b, seed);
    p.nat = Some(Nat::new(PUBLIC, 40000));
    assert!(
        p.drive_until_up(Duration::from_secs(5)),
        "up through the NAT"
    );
    p
}

fn public(port: u16) -> SocketAddr {
    SocketAddr::new(PUBLIC, port)
}

fn a_4500() -> SocketAddr {
    SocketAddr::new(addr(1).ip(), 4500)
}

/// The NAT reboots: a's next datagram from 4500 gets `base`.
fn reboot(p: &mut Pair, base: u16) {
    if let Some(nat) = p.nat.as_mut() {
        nat.reboot(base);
    }
}

#[test]
fn both_sides_detect_the_nat_and_esp_goes_to_the_mapped_port() {
    let p = behind_nat(1);
    let b_child = p.b.rec.active()[0];
    // IKE_SA_INIT from 500 took mapping 40000, a's 4500 the next one.
    assert_eq!(
        b_child.udp_encap.map(|(_, remote)| remote),
        Some(public(40001)),
        "b sends ESP to a's public port"
    );
    let a_child = p.a.rec.active()[0];
    assert_eq!(
        a_child.udp_encap,
        Some((a_4500(), SocketAddr::new(addr(2).ip(), 4500)))
    );
    assert!(p.a.rec.moved.is_empty() && p.b.rec.moved.is_empty());
}

#[test]
fn an_ike_message_from_a_new_mapping_moves_the_peer() {
    let mut p = behind_nat(2);
    reboot(&mut p, 41000);
    let now = p.now;
    let mut rng = rand::rngs::OsRng;
    p.a.tunnel.rekey_child(now, &mut rng).unwrap();
    p.drive_for(Duration::from_secs(3));
    assert_eq!(p.b.rec.moved, vec![public(41000)], "b follows a's new port");
    assert!(p.a.rec.moved.is_empty(), "a, behind the NAT, stays put");
    // The rekey went through, and the new CHILD SA's ESP goes to the new port.
    let newest = p.b.rec.installs.last().unwrap();
    assert_eq!(newest.udp_encap.map(|(_, r)| r), Some(public(41000)));
    assert!(p.b.tunnel.is_up() && p.a.tunnel.is_up());
}

#[test]
fn esp_from_a_new_mapping_moves_the_peer_only_on_the_side_outside_the_nat() {
    let mut p = behind_nat(3);
    reboot(&mut p, 42000);
    // a's ESP (not simulated) made the NAT map its 4500 again.
    let moved_to = p.nat.as_mut().unwrap().outbound(a_4500());
    assert_eq!(moved_to, public(42000));

    assert!(
        !p.a.tunnel
            .follow_esp_source(SocketAddr::new(addr(2).ip(), 4501)),
        "a is behind the NAT"
    );
    assert!(
        !p.b.tunnel
            .follow_esp_source(SocketAddr::new(addr(3).ip(), 42000)),
        "another address"
    );
    assert!(p.b.tunnel.follow_esp_source(moved_to));
    assert!(!p.b.tunnel.follow_esp_source(moved_to), "already there");
    p.drive_for(Duration::from_millis(10));
    assert_eq!(p.b.rec.moved, vec![moved_to]);

    // IKE from b now reaches a through the new mapping: b's rekey completes.
    let now = p.now;
    let mut rng = rand::rngs::OsRng;
    p.b.tunnel.rekey_child(now, &mut rng).unwrap();
    let installs = p.b.rec.installs.len();
    p.drive_for(Duration::from_secs(3));
    assert!(p.b.rec.installs.len() > installs, "the rekey went through");
    assert!(p.b.rec.errors.is_empty(), "{:?}", p.b.rec.errors);
}

#[test]
fn without_a_nat_esp_from_elsewhere_moves_nothing() {
    let mut p = Pair::new(config(1, IKE, ESP), config(2, IKE, ESP), 4);
    assert!(p.drive_until_up(Duration::from_secs(5)));
    assert!(!p
        .b
        .tunnel
        .follow_esp_source(SocketAddr::new(addr(1).ip(), 4500)));
    assert!(!p
        .a
        .tunnel
        .follow_esp_source(SocketAddr::new(addr(2).ip(), 4500)));
}
