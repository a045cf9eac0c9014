//! Underlay receive: IKE to the control plane, ESP decrypted into the TUN device.

use super::counters::bump;
use super::sockets::{IkeDatagram, NAT_T_PORT};
use super::{SaEvent, Shared};
use esp::udp_encap::{classify, UdpPayload};
use std::io::ErrorKind;
use tokio::sync::mpsc::UnboundedSender;

/// Largest UDP payload.
const BUF: usize = 65536;

pub fn run(shared: &Shared, index: usize, ike_tx: &UnboundedSender<IkeDatagram>) {
    let Some((local, sock)) = shared.sockets.get(index) else {
        return;
    };
    let local = *local;
    let mut buf = vec![0u8; BUF];
    while !shared.stopped() {
        let (n, remote) = match sock.recv_from(&mut buf) {
            Ok(r) => r,
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => continue,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                tracing::warn!(%local, error = %e, "UDP receive failed");
                std::thread::sleep(super::POLL);
                continue;
            }
        };
        let Some(payload) = buf.get_mut(..n) else {
            continue;
        };
        if local.port() != NAT_T_PORT {
            let _ = ike_tx.send(IkeDatagram {
                local,
                remote,
                bytes: payload.to_vec(),
            });
            continue;
        }
        match classify(payload) {
            Ok(UdpPayload::Ike(_)) => {
                let _ = ike_tx.send(IkeDatagram {
                    local,
                    remote,
                    bytes: payload.to_vec(),
                });
            }
            Ok(UdpPayload::NatKeepalive) => bump(&shared.counters.keepalives_in),
            Ok(UdpPayload::Esp { .. }) => esp_in(shared, payload),
            Err(_) => bump(&shared.counters.udp_malformed),
        }
    }
}

fn esp_in(shared: &Shared, packet: &mut [u8]) {
    match shared.sas.decap(packet) {
        Ok((spi, d)) => {
            if let Some(event) = d.event {
                tracing::info!(
                    spi = format_args!("{spi:08x}"),
                    ?event,
                    "inbound SA lifetime"
                );
                shared.sa_events.report(SaEvent {
                    spi,
                    outbound: false,
                    event,
                });
            }
            let Some(inner) = packet.get(d.inner) else {
                return;
            };
            if shared.tun.send(inner).is_err() {
                bump(&shared.counters.send_errors);
            }
        }
        // Counted per SA (or by the table for unknown SPIs); the total here.
        Err(_) => bump(&shared.counters.esp_dropped),
    }
}
