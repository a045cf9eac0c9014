#![cfg(target_os = "linux")]
//! Authenticated ESP from another port than its tunnel sends to (the peer's NAT mapping
//! changed) is still delivered, and reported to the control plane once, not per packet.
//! Real workers, UDP sockets and TUN device in a fresh network namespace (needs root;
//! CI runs as root).

mod common;

use common::{udp4, Netns};
use esp::{InboundConfig, InboundSa, IvKey, OutboundConfig, OutboundSa, SaKeys, Suite};
use gateway::dataplane::{SaEvent, SaEventKind, Shared, TunnelPath, UnderlaySockets, Workers};
use gateway::routing::RoutingTable;
use gateway::sys::{Tun, TunConfig};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

const TUN_ADDR: Ipv4Addr = Ipv4Addr::new(169, 254, 10, 2);
const REMOTE: Ipv4Addr = Ipv4Addr::new(10, 99, 1, 1);
const LISTEN_PORT: u16 = 7000;
const SUITE: Suite = Suite::AesGcm16(esp::AesKeySize::Aes128);
const SPI: u32 = 0x3000;

fn keys() -> SaKeys {
    SaKeys::from_keymat(SUITE, &[0x5a; 20]).expect("keys")
}

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

#[test]
fn esp_from_a_new_source_is_delivered_and_reported_once() {
    let ns = Netns::new();
    ns.ip(&["link", "set", "lo", "up"]);
    ns.run(|| {
        let tun = Tun::create(&TunConfig {
            name: "vpngw-s0".into(),
            mtu: 1400,
            addresses: vec!["169.254.10.2/30".parse().unwrap()],
            queues: 1,
        })
        .expect("create TUN");
        let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let sockets = UnderlaySockets::bind(&BTreeSet::from([local]), 1).expect("bind");
        let tunnel = Arc::new(TunnelPath::new(
            "tunnel1",
            local,
            1400,
            false,
            IpAddr::V4(Ipv4Addr::new(169, 254, 10, 1)),
        ));
        let shared =
            Arc::new(Shared::new(tun, sockets, RoutingTable::new(), vec![tunnel.clone()]).unwrap());
        let cfg = InboundConfig {
            owner: 0,
            ..InboundConfig::default()
        };
        let sa = InboundSa::new(SPI, SUITE, &keys(), cfg).unwrap();
        shared.sas.insert(Arc::new(sa));
        let (ike_tx, _ike_rx) = tokio::sync::mpsc::unbounded_channel();
        let workers = Workers::start(shared.clone(), ike_tx).expect("workers");

        let listener = UdpSocket::bind((TUN_ADDR, LISTEN_PORT)).expect("listener");
        listener
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let old = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let new = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
        let new_addr = new.local_addr().unwrap();
        tunnel.peer.store(Some(Arc::new(old.local_addr().unwrap())));
        let to = (Ipv4Addr::LOCALHOST, 4500);
        let sender = OutboundSa::new(
            SPI,
            SUITE,
            &keys(),
            OutboundConfig::default(),
            IvKey::new([7; 16]),
        )
        .unwrap();
        let mut buf = [0u8; 100];
        let mut expect = |from: &UdpSocket, what: &[u8]| {
            from.send_to(&esp_packet(&sender, what), to).unwrap();
            let n = listener.recv(&mut buf).expect("delivered");
            assert_eq!(&buf[..n], what);
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
        workers.stop();
    });
}
