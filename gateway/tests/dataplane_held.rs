#![cfg(target_os = "linux")]
//! ESP that arrives before its SA is installed (a responder sends on a new CHILD SA as
//! soon as its response is out) is held and delivered once the SA is in, not dropped;
//! a packet whose SA never comes counts as an unknown SPI. Real workers, UDP socket and
//! TUN device in a fresh network namespace (needs root; CI runs as root).

mod common;

use common::{udp4, Netns};
use esp::{InboundConfig, InboundSa, IvKey, OutboundConfig, OutboundSa, SaKeys, Suite};
use gateway::dataplane::{Shared, UnderlaySockets, Workers};
use gateway::routing::RoutingTable;
use gateway::sys::{Tun, TunConfig};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::{Duration, Instant};

const TUN_ADDR: Ipv4Addr = Ipv4Addr::new(169, 254, 10, 2);
const REMOTE: Ipv4Addr = Ipv4Addr::new(10, 99, 1, 1);
const LISTEN_PORT: u16 = 7000;
const SUITE: Suite = Suite::AesGcm16(esp::AesKeySize::Aes128);

fn keys() -> SaKeys {
    SaKeys::from_keymat(SUITE, &[0x5a; 20]).expect("keys")
}

fn outbound(spi: u32) -> OutboundSa {
    OutboundSa::new(
        spi,
        SUITE,
        &keys(),
        OutboundConfig::default(),
        IvKey::new([7; 16]),
    )
    .expect("outbound SA")
}

/// One ESP-in-UDP payload carrying a UDP datagram to our listener.
fn esp_packet(out: &OutboundSa, payload: &[u8]) -> Vec<u8> {
    let inner = udp4(
        SocketAddr::new(REMOTE.into(), 5000),
        SocketAddr::new(TUN_ADDR.into(), LISTEN_PORT),
        payload,
        1,
    );
    let head = out.headroom();
    let mut buf = vec![0u8; head + inner.len() + out.tailroom()];
    buf[head..head + inner.len()].copy_from_slice(&inner);
    let ok = out.encap(&mut buf, head, inner.len()).expect("encap");
    buf[ok.range].to_vec()
}

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
        let tun = Tun::create(&TunConfig {
            name: "vpngw-h0".into(),
            mtu: 1400,
            addresses: vec!["169.254.10.2/30".parse().unwrap()],
            queues: 1,
        })
        .expect("create TUN");
        let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let sockets = UnderlaySockets::bind(&BTreeSet::from([local]), 1).expect("bind");
        let shared = Arc::new(Shared::new(tun, sockets, RoutingTable::new(), vec![]).unwrap());
        let (ike_tx, _ike_rx) = tokio::sync::mpsc::unbounded_channel();
        let workers = Workers::start(shared.clone(), ike_tx).expect("workers");

        let listener = UdpSocket::bind((TUN_ADDR, LISTEN_PORT)).expect("listener");
        listener
            .set_read_timeout(Some(Duration::from_millis(20)))
            .unwrap();
        let peer = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let to = (Ipv4Addr::LOCALHOST, 4500);

        // The SA comes 30 ms after its first packet.
        let sender = outbound(0x1000);
        peer.send_to(&esp_packet(&sender, b"early"), to).unwrap();
        wait_for("the packet to be held", || {
            shared.counters.snapshot().esp_held == 1
        });
        let mut buf = [0u8; 100];
        assert!(listener.recv(&mut buf).is_err(), "delivered without an SA");
        std::thread::sleep(Duration::from_millis(30));
        let sa = InboundSa::new(0x1000, SUITE, &keys(), InboundConfig::default()).unwrap();
        shared.sas.insert(Arc::new(sa));
        listener
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let n = listener
            .recv(&mut buf)
            .expect("the held packet, once its SA is in");
        assert_eq!(&buf[..n], b"early");
        wait_for("the delivery to be counted", || {
            shared.counters.snapshot().esp_held_delivered == 1
        });
        assert_eq!(shared.sas.unknown_spi_drops(), 0);

        // An SPI that never gets an SA: held for a while, then an unknown-SPI drop.
        peer.send_to(&esp_packet(&outbound(0x2000), b"never"), to)
            .unwrap();
        wait_for("the packet to expire", || {
            shared.sas.unknown_spi_drops() == 1
        });
        assert_eq!(shared.counters.snapshot().esp_held, 2);
        assert_eq!(shared.counters.snapshot().esp_held_delivered, 1);
        assert_eq!(shared.counters.snapshot().esp_dropped, 1);
        // Traffic on the installed SA is not held at all.
        peer.send_to(&esp_packet(&sender, b"later"), to).unwrap();
        let n = listener
            .recv(&mut buf)
            .expect("a packet on the installed SA");
        assert_eq!(&buf[..n], b"later");
        assert_eq!(shared.counters.snapshot().esp_held, 2);
        workers.stop();
    });
}
