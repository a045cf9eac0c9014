//! Underlay receive: IKE to the control plane, ESP decrypted into the TUN device.
//!
//! One thread per socket. `recvmmsg` takes what is queued (with UDP GRO several ESP
//! datagrams of the peer arrive in one buffer); each datagram is decrypted in place and
//! its inner packet copied once into a TUN buffer, where consecutive TCP segments of one
//! flow are coalesced in place (see `gro`), so they reach the kernel as one super-packet.

use super::counters::{add, bump};
use super::gro::Coalescer;
use super::sockets::{IkeDatagram, NAT_T_PORT};
use super::udp_io::{enable_gro, RecvBatch, RECV_BATCH};
use super::{SaEvent, Shared};
use esp::udp_encap::{classify, UdpPayload};
use esp::{DropReason, SaSnapshot};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use tokio::sync::mpsc::UnboundedSender;

// The coalescer writes the header the device expects.
const _: () = assert!(super::gro::VNET_HDR_LEN == tun_rs::VIRTIO_NET_HDR_LEN);

/// Decrypted packets (buffers) per TUN write batch.
const TUN_BATCH: usize = 128;

/// Decrypted packets waiting for the TUN device.
struct TunOut {
    gro: Coalescer,
    queue: usize,
}

impl TunOut {
    fn push(&mut self, shared: &Shared, inner: &[u8]) {
        if self.gro.push(inner) {
            return;
        }
        if self.gro.is_full() {
            self.flush(shared);
            if self.gro.push(inner) {
                return;
            }
        }
        bump(&shared.counters.tun_write_errors);
    }

    fn flush(&mut self, shared: &Shared) {
        let c = &shared.counters;
        let packets = self.gro.packets();
        if packets == 0 {
            return;
        }
        add(&c.tun_packets_out, packets);
        for buf in self.gro.finish() {
            bump(&c.tun_writes);
            if shared.tun.write_vnet(self.queue, buf).is_err() {
                bump(&c.tun_write_errors);
                bump(&c.send_errors);
            }
        }
    }
}

pub fn run(shared: &Shared, index: usize, ike_tx: &UnboundedSender<IkeDatagram>) {
    let Some(bound) = shared.sockets.get(index) else {
        return;
    };
    let (local, fd) = (bound.local, bound.sock.as_raw_fd());
    let esp_port = local.port() == NAT_T_PORT;
    if esp_port {
        enable_gro(fd);
    }
    let queue = bound.worker.unwrap_or(0) % shared.tun.queues().max(1);
    let mut rx = RecvBatch::default();
    let mut out = TunOut {
        gro: Coalescer::new(TUN_BATCH, shared.tun.offload()).with_udp(shared.tun.udp_offload()),
        queue,
    };
    let c = &shared.counters;
    // The last receive took everything queued: wait before the next one.
    let mut drained = false;
    loop {
        if drained {
            match shared.stop.wait_readable(fd) {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!(%local, error = %e, "UDP wait failed");
                    return;
                }
            }
        }
        let n = match rx.recv(fd) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                drained = true;
                continue;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => {
                bump(&c.udp_recv_errors);
                tracing::warn!(%local, error = %e, "UDP receive failed");
                if shared.stopped() {
                    return;
                }
                drained = true;
                continue;
            }
        };
        bump(&c.udp_recvs);
        drained = n < RECV_BATCH;
        let sas = shared.sas.snapshot();
        for i in 0..n {
            let Some(r) = rx.get(i) else {
                continue;
            };
            let Some(remote) = r.from else {
                continue;
            };
            for dg in r.data.chunks_mut(r.segment) {
                bump(&c.udp_datagrams_in);
                if esp_port {
                    datagram(shared, &sas, local, remote, dg, ike_tx, &mut out);
                } else {
                    let _ = ike_tx.send(IkeDatagram {
                        local,
                        remote,
                        bytes: dg.to_vec(),
                    });
                }
            }
        }
        drop(sas);
        out.flush(shared);
        // A busy worker never waits, so it looks at the flag itself.
        if shared.stopped() {
            return;
        }
    }
}

/// One UDP/4500 payload.
fn datagram(
    shared: &Shared,
    sas: &SaSnapshot,
    local: SocketAddr,
    remote: SocketAddr,
    payload: &mut [u8],
    ike_tx: &UnboundedSender<IkeDatagram>,
    out: &mut TunOut,
) {
    match classify(payload) {
        Ok(UdpPayload::Ike(_)) => {
            let _ = ike_tx.send(IkeDatagram {
                local,
                remote,
                bytes: payload.to_vec(),
            });
        }
        Ok(UdpPayload::NatKeepalive) => bump(&shared.counters.keepalives_in),
        Ok(UdpPayload::Esp { .. }) => esp_in(shared, sas, payload, out),
        Err(_) => bump(&shared.counters.udp_malformed),
    }
}

fn esp_in(shared: &Shared, sas: &SaSnapshot, packet: &mut [u8], out: &mut TunOut) {
    match sas.decap(packet) {
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
            if let Some(inner) = packet.get(d.inner) {
                if shared.policy.allows(spi, inner) {
                    out.push(shared, inner);
                } else {
                    bump(&shared.counters.ts_dropped);
                }
            }
        }
        // Counted per SA (or by the table for unknown SPIs); the totals here.
        Err(reason) => {
            bump(&shared.counters.esp_dropped);
            if matches!(reason, DropReason::Replayed | DropReason::OutsideWindow) {
                bump(&shared.counters.replay_dropped);
            }
        }
    }
}
