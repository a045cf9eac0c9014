#![cfg(target_os = "linux")]
//! Authenticated ESP from another port than its tunnel sends to (the peer's NAT mapping
//! changed) is still delivered, and reported to the control plane once, not per packet;
//! replayed or forged ESP from elsewhere is dropped and moves nothing.
//! Real workers, UDP sockets and TUN device in a fresh network namespace (needs root;
//! CI runs as root).

mod common;

use common::esp_rig::{esp_packet, keys, outbound, Rig, ESP_TO, SUITE};
use common::Netns;
use esp::{InboundConfig, InboundSa};
use gateway::dataplane::{SaEvent, SaEventKind, TunnelPath};
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::sync::Arc;

const SPI: u32 = 0x3000;

/// A dataplane on TUN device `tun` with one tunnel, which owns inbound SA `SPI`.
fn tunnel_with_sa(tun: &str) -> (Arc<TunnelPath>, Rig) {
    let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
    let inner_peer = IpAddr::V4(Ipv4Addr::new(169, 254, 10, 1));
    let tunnel = Arc::new(TunnelPath::new("tunnel1", local, 1400, false, inner_peer));
    let rig = Rig::start(tun, vec![tunnel.clone()]);
    // Tunnel 0 owns the SA.
    let cfg = InboundConfig {
        owner: 0,
        ..InboundConfig::default()
    };
    let sa = InboundSa::new(SPI, SUITE, &keys(), cfg).unwrap();
    rig.shared.sas.insert(Arc::new(sa));
    (tunnel, rig)
}

#[test]
fn esp_from_a_new_source_is_delivered_and_reported_once() {
    let ns = Netns::new();
    ns.ip(&["link", "set", "lo", "up"]);
    ns.run(|| {
        let (tunnel, rig) = tunnel_with_sa("vpngw-s0");
        let shared = rig.shared.clone();

        let old = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let new = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let new_addr = new.local_addr().unwrap();
        tunnel.peer.store(Some(Arc::new(old.local_addr().unwrap())));
        let sender = outbound(SPI);
        let expect = |from: &UdpSocket, what: &[u8]| {
            from.send_to(&esp_packet(&sender, what), ESP_TO).unwrap();
            assert_eq!(rig.received().expect("delivered"), what);
        };

        // From where the tunnel sends: nothing to report.
        expect(&old, b"one");
        assert_eq!(shared.counters.snapshot().esp_new_source, 0);
        // From a new port: delivered, and reported (before the packet was written).
        expect(&new, b"two");
        assert_eq!(
            shared.sa_events.take(),
            vec![SaEvent {
                spi: SPI,
                outbound: false,
                event: SaEventKind::NewSource(new_addr),
            }]
        );
        // Not again for every packet while the control plane decides.
        expect(&new, b"three");
        assert!(shared.sa_events.take().is_empty());
        assert_eq!(shared.counters.snapshot().esp_new_source, 1);
        // Once the control plane followed, the new port is simply the peer.
        tunnel.peer.store(Some(Arc::new(new_addr)));
        expect(&new, b"four");
        assert_eq!(shared.counters.snapshot().esp_new_source, 1);
        assert!(shared.sa_events.take().is_empty());
    });
}

#[test]
fn replayed_or_forged_esp_from_elsewhere_moves_nothing() {
    let ns = Netns::new();
    ns.ip(&["link", "set", "lo", "up"]);
    ns.run(|| {
        let (tunnel, rig) = tunnel_with_sa("vpngw-s1");
        let shared = rig.shared.clone();
        let peer = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let attacker = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        tunnel
            .peer
            .store(Some(Arc::new(peer.local_addr().unwrap())));
        let sender = outbound(SPI);

        // The peer's packet, captured by someone on the path.
        let captured = esp_packet(&sender, b"genuine");
        peer.send_to(&captured, ESP_TO).unwrap();
        assert_eq!(rig.received().expect("delivered"), b"genuine");
        // Replayed from elsewhere: a replay, not a NAT mapping change.
        attacker.send_to(&captured, ESP_TO).unwrap();
        // Forged: the captured header with a changed payload fails the ICV.
        let mut forged = captured.clone();
        if let Some(b) = forged.last_mut() {
            *b ^= 1;
        }
        forged[7] = forged[7].wrapping_add(1);
        attacker.send_to(&forged, ESP_TO).unwrap();
        // A genuine packet after them shows they were processed (one worker, in order).
        peer.send_to(&esp_packet(&sender, b"after"), ESP_TO)
            .unwrap();
        assert_eq!(rig.received().expect("delivered"), b"after");
        let c = shared.counters.snapshot();
        assert_eq!((c.esp_dropped, c.replay_dropped), (2, 1), "{c:?}");
        assert_eq!(c.esp_new_source, 0);
        assert!(shared.sa_events.take().is_empty());
    });
}
