#![cfg(target_os = "linux")]
//! ESP that arrives before its SA is installed (a responder sends on a new CHILD SA as
//! soon as its response is out) is held and delivered once the SA is in, not dropped;
//! a packet whose SA never comes counts as an unknown SPI. Real workers, UDP socket and
//! TUN device in a fresh network namespace (needs root; CI runs as root).

mod common;

use common::esp_rig::{esp_packet, keys, outbound, Rig, ESP_TO, SUITE};
use common::Netns;
use esp::{InboundConfig, InboundSa};
use std::net::{Ipv4Addr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

#[test]
fn esp_overtaking_its_sa_install_is_held_and_delivered() {
    let ns = Netns::new();
    ns.ip(&["link", "set", "lo", "up"]);
    ns.run(|| {
        let rig = Rig::start("vpngw-h0", vec![]);
        let shared = rig.shared.clone();
        rig.listener
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let peer = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();

        // The SA comes 30 ms after its first packet.
        let sender = outbound(0x1000);
        peer.send_to(&esp_packet(&sender, b"early"), ESP_TO)
            .unwrap();
        wait_for("the packet to be held", || {
            shared.counters.snapshot().esp_held == 1
        });
        assert!(rig.received().is_err(), "delivered without an SA");
        std::thread::sleep(Duration::from_millis(30));
        let sa = InboundSa::new(0x1000, SUITE, &keys(), InboundConfig::default()).unwrap();
        shared.sas.insert(Arc::new(sa));
        rig.listener
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let got = rig.received().expect("the held packet, once its SA is in");
        assert_eq!(got, b"early");
        wait_for("the delivery to be counted", || {
            shared.counters.snapshot().esp_held_delivered == 1
        });
        assert_eq!(shared.sas.unknown_spi_drops(), 0);

        // An SPI that never gets an SA: held for a while, then an unknown-SPI drop.
        peer.send_to(&esp_packet(&outbound(0x2000), b"never"), ESP_TO)
            .unwrap();
        wait_for("the packet to expire", || {
            shared.sas.unknown_spi_drops() == 1
        });
        assert_eq!(shared.counters.snapshot().esp_held, 2);
        assert_eq!(shared.counters.snapshot().esp_held_delivered, 1);
        assert_eq!(shared.counters.snapshot().esp_dropped, 1);
        // Traffic on the installed SA is not held at all.
        peer.send_to(&esp_packet(&sender, b"later"), ESP_TO)
            .unwrap();
        let got = rig.received().expect("a packet on the installed SA");
        assert_eq!(got, b"later");
        assert_eq!(shared.counters.snapshot().esp_held, 2);
    });
}
