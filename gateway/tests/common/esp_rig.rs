//! A dataplane in the current network namespace for the ESP receive tests: a TUN device
//! (169.254.10.2/30), one UDP/4500 socket on 127.0.0.1, real workers; and a peer's side:
//! ESP-in-UDP payloads carrying UDP datagrams to a listener behind the TUN device.

use super::udp4;
use esp::{IvKey, OutboundConfig, OutboundSa, SaKeys, Suite};
use gateway::dataplane::{IkeInbox, Shared, TunnelPath, UnderlaySockets, Workers};
use gateway::routing::RoutingTable;
use gateway::sys::{Tun, TunConfig};
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::time::Duration;

pub const TUN_ADDR: Ipv4Addr = Ipv4Addr::new(169, 254, 10, 2);
/// The inner source of the peer's packets.
pub const REMOTE: Ipv4Addr = Ipv4Addr::new(10, 99, 1, 1);
pub const LISTEN_PORT: u16 = 7000;
pub const SUITE: Suite = Suite::AesGcm16(esp::AesKeySize::Aes128);
/// Where the peer sends ESP.
pub const ESP_TO: (Ipv4Addr, u16) = (Ipv4Addr::LOCALHOST, 4500);

pub fn keys() -> SaKeys {
    SaKeys::from_keymat(SUITE, &[0x5a; 20]).expect("keys")
}

/// The peer's outbound SA for our inbound SA `spi`.
pub fn outbound(spi: u32) -> OutboundSa {
    OutboundSa::new(
        spi,
        SUITE,
        &keys(),
        OutboundConfig::default(),
        IvKey::new([7; 16]),
    )
    .expect("outbound SA")
}

/// One ESP-in-UDP payload carrying a UDP datagram to the listener.
pub fn esp_packet(out: &OutboundSa, payload: &[u8]) -> Vec<u8> {
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

/// The running dataplane and the listener its decrypted packets reach.
pub struct Rig {
    pub shared: Arc<Shared>,
    pub workers: Option<Workers>,
    pub listener: UdpSocket,
    /// The control plane's end of the IKE queue.
    pub ike: IkeInbox,
}

impl Rig {
    /// TUN device `tun_name`, the sockets, `tunnels`, workers (call in a namespace).
    pub fn start(tun_name: &str, tunnels: Vec<Arc<TunnelPath>>) -> Rig {
        let tun = Tun::create(&TunConfig {
            name: tun_name.into(),
            mtu: 1400,
            addresses: vec!["169.254.10.2/30".parse().unwrap()],
            queues: 1,
        })
        .expect("create TUN");
        let local = IpAddr::V4(Ipv4Addr::LOCALHOST);
        let sockets = UnderlaySockets::bind(&BTreeSet::from([local]), 1).expect("bind");
        let shared = Arc::new(Shared::new(tun, sockets, RoutingTable::new(), tunnels).unwrap());
        let (ike_tx, ike) = gateway::dataplane::ike_queue();
        let workers = Workers::start(shared.clone(), ike_tx).expect("workers");
        let listener = UdpSocket::bind((TUN_ADDR, LISTEN_PORT)).expect("listener");
        listener
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        Rig {
            shared,
            workers: Some(workers),
            listener,
            ike,
        }
    }

    /// The next datagram the listener got, within its read timeout.
    pub fn received(&self) -> std::io::Result<Vec<u8>> {
        let mut buf = [0u8; 2048];
        let n = self.listener.recv(&mut buf)?;
        Ok(buf[..n].to_vec())
    }
}

impl Drop for Rig {
    fn drop(&mut self) {
        if let Some(w) = self.workers.take() {
            w.stop();
        }
    }
}
