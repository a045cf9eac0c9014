#![cfg(target_os = "linux")]
//! IKE from addresses no tunnel has is handled by the UDP workers: counted, protected
//! requests answered with INVALID_IKE_SPI within the budget, and nothing of it queued for
//! the control plane; a tunnel's peer's IKE is queued as before, also after the known
//! peers change (a reload).
//! Real workers, UDP sockets and TUN device in a fresh network namespace (needs root;
//! CI runs as root).

mod common;

use common::esp_rig::{Rig, ESP_TO};
use common::Netns;
use gateway::dataplane::IkeInbox;
use std::net::{IpAddr, Ipv4Addr, UdpSocket};
use std::time::Duration;

const PEER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const STRANGER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);
const FLOOD: usize = 2000;

/// An INFORMATIONAL request of an established IKE SA (protected: SK payload), with the
/// non-ESP marker for port 4500.
fn protected_request(mid: u32) -> Vec<u8> {
    let mut m = vec![0u8; 4];
    m.extend_from_slice(&[0x11; 8]);
    m.extend_from_slice(&[0x22; 8]);
    m.extend_from_slice(&[46, 0x20, 37, 0x08]);
    m.extend_from_slice(&mid.to_be_bytes());
    m.extend_from_slice(&28u32.to_be_bytes());
    m
}

/// The datagrams queued for the control plane until none came for 200 ms.
fn queued(rt: &tokio::runtime::Runtime, inbox: &mut IkeInbox) -> Vec<IpAddr> {
    rt.block_on(async {
        let mut from = Vec::new();
        while let Ok(Some(dg)) =
            tokio::time::timeout(Duration::from_millis(200), inbox.recv()).await
        {
            from.push(dg.remote.ip());
        }
        from
    })
}

/// Answers that arrive at `sock` within 300 ms of each other.
fn answers(sock: &UdpSocket) -> usize {
    sock.set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 2048];
    std::iter::from_fn(|| sock.recv(&mut buf).ok()).count()
}

#[test]
fn a_flood_from_strangers_never_reaches_the_control_plane() {
    let ns = Netns::new();
    ns.ip(&["link", "set", "lo", "up"]);
    ns.run(|| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .unwrap();
        let mut rig = Rig::start("vpngw-x0", Vec::new());
        let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
        rig.shared.known_peers.publish([(local, IpAddr::V4(PEER))]);
        let peer = UdpSocket::bind((PEER, 0)).unwrap();
        let stranger = UdpSocket::bind((STRANGER, 0)).unwrap();

        for mid in 0..FLOOD {
            stranger
                .send_to(&protected_request(mid as u32), ESP_TO)
                .unwrap();
        }
        peer.send_to(&protected_request(0), ESP_TO).unwrap();
        let q = queued(&rt, &mut rig.ike);
        let strangers = q.iter().filter(|a| **a != IpAddr::V4(PEER)).count();
        assert_eq!(
            (q.len() - strangers, strangers),
            (1, 0),
            "only the tunnel's peer is queued"
        );
        let c = rig.shared.counters.snapshot();
        assert_eq!(
            c.ike_unknown_peer, FLOOD as u64,
            "every stranger's datagram counted"
        );
        let answered = answers(&stranger);
        assert!(
            (1..=10).contains(&answered),
            "INVALID_IKE_SPI within the budget of 10 a second: {answered}"
        );
        assert_eq!(c.ike_unknown_peer_invalid_spi, answered as u64);
        assert_eq!(
            answers(&peer),
            0,
            "the peer's request is the control plane's to answer"
        );

        // A reload made the stranger a peer and dropped the old one.
        rig.shared
            .known_peers
            .publish([(local, IpAddr::V4(STRANGER))]);
        peer.send_to(&protected_request(1), ESP_TO).unwrap();
        stranger.send_to(&protected_request(1), ESP_TO).unwrap();
        assert_eq!(queued(&rt, &mut rig.ike), [IpAddr::V4(STRANGER)]);
        assert_eq!(
            rig.shared.counters.snapshot().ike_unknown_peer,
            FLOOD as u64 + 1
        );
    });
}
