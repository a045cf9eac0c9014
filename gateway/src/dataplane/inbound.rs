//! Underlay receive: IKE to the control plane, ESP decrypted into the TUN device.
//!
//! One thread per socket. `recvmmsg` takes what is queued (with UDP GRO several ESP
//! datagrams of the peer arrive in one buffer); each datagram is decrypted in place, and
//! its inner packet stays there: consecutive TCP segments of one flow are coalesced into
//! one super-packet (see `gro`) whose header and payloads the kernel gathers from the
//! receive buffers in one `writev`, the only copy of the data on this side.

use super::counters::{add, bump};
use super::gro::{Coalescer, Span, MAX_SEGS};
use super::ike_queue::IkeQueue;
use super::parked::Parked;
use super::sockets::{IkeDatagram, NAT_T_PORT};
use super::sources::Sources;
use super::strangers;
use super::udp_io::{enable_drop_count, enable_gro, enable_tos, RecvBatch, RECV_BATCH};
use super::{SaEvent, SaEventKind, Shared};
use crate::sys::tun::MAX_GATHER;
use esp::udp_encap::{classify, UdpPayload};
use esp::{Decapped, DropReason, SaSnapshot};
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::os::fd::AsRawFd;
use std::time::{Duration, Instant};

// The coalescer writes the header the device expects, and a write fits one `writev`.
const _: () = assert!(super::gro::VNET_HDR_LEN == tun_rs::VIRTIO_NET_HDR_LEN);
const _: () = assert!(MAX_SEGS < MAX_GATHER);

/// Decrypted packets (buffers) per TUN write batch.
const TUN_BATCH: usize = 128;
/// How often a worker holding packets for an SA looks whether it was installed (the
/// control plane does not wake the workers).
const HELD_RECHECK: Duration = Duration::from_millis(1);

/// Decrypted packets waiting for the TUN device.
struct TunOut {
    gro: Coalescer,
    queue: usize,
    /// The inner packets of the current receive batch, in order.
    inner: Vec<Span>,
}

impl TunOut {
    /// Hands the batch's inner packets to the coalescer and writes them.
    fn write_all(&mut self, shared: &Shared, bufs: &[Vec<u8>]) {
        // Taken out for the loop (flushing borrows self), put back to keep its capacity.
        let mut inner = std::mem::take(&mut self.inner);
        for &at in &inner {
            let Some(pkt) = at.resolve(bufs) else {
                continue;
            };
            if self.gro.push(pkt, at) {
                continue;
            }
            if self.gro.is_full() {
                self.flush(shared, bufs);
                if self.gro.push(pkt, at) {
                    continue;
                }
            }
            bump(&shared.counters.tun_write_errors);
        }
        inner.clear();
        self.inner = inner;
        self.flush(shared, bufs);
    }

    fn flush(&mut self, shared: &Shared, bufs: &[Vec<u8>]) {
        let c = &shared.counters;
        let packets = self.gro.packets();
        if packets == 0 {
            return;
        }
        add(&c.tun_packets_out, packets);
        let mut rest: [&[u8]; MAX_SEGS] = [&[]; MAX_SEGS];
        for (head, parts) in self.gro.finish() {
            let mut n = 0;
            for (slot, part) in rest.iter_mut().zip(parts) {
                *slot = part.resolve(bufs).unwrap_or_default();
                n += 1;
            }
            bump(&c.tun_writes);
            let written =
                shared
                    .tun
                    .write_vnet_gather(self.queue, head, rest.get(..n).unwrap_or_default());
            if written.is_err() {
                bump(&c.tun_write_errors);
                bump(&c.send_errors);
            }
        }
    }
}

pub fn run(shared: &Shared, index: usize, ike: &IkeQueue) {
    let Some(bound) = shared.sockets.get(index) else {
        return;
    };
    let (local, fd) = (bound.local, bound.sock.as_raw_fd());
    let esp_port = local.port() == NAT_T_PORT;
    if esp_port {
        enable_gro(fd);
        // The outer TOS carries the underlay's congestion marks (and DSCP) in.
        enable_tos(fd, local.is_ipv6());
    }
    // Drops in the kernel (receive buffer full) are this worker's to count.
    enable_drop_count(fd);
    let mut socket_drops = 0u32;
    let queue = bound.worker.unwrap_or(0) % shared.tun.queues().max(1);
    let mut rx = RecvBatch::default();
    let mut out = TunOut {
        gro: Coalescer::new(TUN_BATCH, shared.tun.offload()).with_udp(shared.tun.udp_offload()),
        queue,
        inner: Vec::with_capacity(RECV_BATCH * MAX_SEGS),
    };
    let mut parked = Parked::default();
    let mut sources = Sources::default();
    let c = &shared.counters;
    // The last receive took everything queued: wait before the next one.
    let mut drained = false;
    loop {
        if !parked.is_empty() {
            release_held(shared, &mut parked);
        }
        if drained {
            let timeout = parked
                .next_expiry(Instant::now())
                .map(|t| t.min(HELD_RECHECK));
            match shared.stop.wait_readable_for(fd, timeout) {
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
        // Read before the snapshot: a packet held now is retried once the table has
        // moved past what this batch saw.
        let generation = shared.sas.generation();
        let sas = shared.sas.snapshot();
        // Counted once per batch: a shared atomic per datagram costs more than it tells.
        let mut datagrams = 0;
        for i in 0..n {
            let Some(r) = rx.get(i) else {
                continue;
            };
            let Some(remote) = r.from else {
                continue;
            };
            if let Some(d) = r.socket_drops.filter(|d| *d != socket_drops) {
                // Cumulative per socket (wrapping at 2^32), reported with the next
                // datagram that made it in: add what is new.
                add(&c.udp_socket_drops, d.wrapping_sub(socket_drops) as usize);
                socket_drops = d;
            }
            let (segment, tos) = (r.segment, r.tos);
            for (k, dg) in r.data.chunks_mut(segment).enumerate() {
                datagrams += 1;
                if esp_port {
                    let at = Span {
                        buf: i,
                        start: k * segment,
                        end: k * segment + dg.len(),
                    };
                    let to = Inner {
                        spans: &mut out.inner,
                        parked: &mut parked,
                        sources: &mut sources,
                        generation,
                        tos,
                    };
                    datagram(shared, &sas, local, remote, dg, at, ike, to);
                } else {
                    to_control_plane(shared, ike, local, remote, dg);
                }
            }
        }
        drop(sas);
        add(&c.udp_datagrams_in, datagrams);
        out.write_all(shared, rx.buffers());
        // A busy worker never waits, so it looks at the flag itself.
        if shared.stopped() {
            return;
        }
    }
}

/// Queues an IKE datagram for the control plane if a tunnel has its addresses; a
/// stranger's is handled here (`strangers`).
fn to_control_plane(
    shared: &Shared,
    ike: &IkeQueue,
    local: SocketAddr,
    remote: SocketAddr,
    bytes: &[u8],
) {
    if !shared.known_peers.knows(local.ip(), remote.ip()) {
        strangers::answer(shared, local, remote, bytes);
        return;
    }
    let bytes = bytes.to_vec();
    ike.push(
        IkeDatagram {
            local,
            remote,
            bytes,
        },
        &shared.counters,
    );
}

/// Where ESP packets of one receive batch go: decrypted into `spans`, or held in
/// `parked` for an SA that is not installed yet.
struct Inner<'a> {
    spans: &'a mut Vec<Span>,
    parked: &'a mut Parked,
    sources: &'a mut Sources,
    /// The SA table's generation when the batch's snapshot was taken.
    generation: u64,
    /// The outer header's TOS / traffic class of the datagrams.
    tos: u8,
}

/// One UDP/4500 payload, found at `at` in the receive buffers; a decrypted inner packet
/// is added to `to`.
#[allow(clippy::too_many_arguments)]
fn datagram(
    shared: &Shared,
    sas: &SaSnapshot,
    local: SocketAddr,
    remote: SocketAddr,
    payload: &mut [u8],
    at: Span,
    ike: &IkeQueue,
    to: Inner,
) {
    match classify(payload) {
        Ok(UdpPayload::Ike(_)) => to_control_plane(shared, ike, local, remote, payload),
        Ok(UdpPayload::NatKeepalive) => bump(&shared.counters.keepalives_in),
        Ok(UdpPayload::Esp { .. }) => esp_in(shared, sas, remote, payload, at, to),
        Err(_) => bump(&shared.counters.udp_malformed),
    }
}

fn esp_in(
    shared: &Shared,
    sas: &SaSnapshot,
    from: SocketAddr,
    packet: &mut [u8],
    at: Span,
    to: Inner,
) {
    let c = &shared.counters;
    match sas.decap_held(packet) {
        Ok((spi, d)) => {
            to.sources.check(shared, spi, d.owner, from);
            if let Some(pkt) = packet.get_mut(d.inner.clone()) {
                if accept(shared, spi, &d, pkt, to.tos) {
                    to.spans.push(at.within(d.inner));
                }
            }
        }
        Err(DropReason::UnknownSpi(_)) => {
            if to
                .parked
                .hold(packet, to.tos, to.generation, Instant::now())
            {
                bump(&c.esp_held);
            } else {
                unknown_spi_dropped(shared);
            }
        }
        Err(reason) => dropped(shared, reason),
    }
}

/// What every decrypted packet `inner` of inbound SA `spi` goes through, whether it
/// arrived now or was held: the SA's lifetime event is reported, the inbound policy
/// checked, and what the outer header's `tos` says carried in (ECN, DSCP); drops are
/// counted. `true`: deliver it.
fn accept(shared: &Shared, spi: u32, d: &Decapped, inner: &mut [u8], tos: u8) -> bool {
    if let Some(event) = d.event {
        tracing::info!(
            spi = format_args!("{spi:08x}"),
            ?event,
            "inbound SA lifetime"
        );
        shared.sa_events.report(SaEvent {
            spi,
            outbound: false,
            event: SaEventKind::Lifetime(event),
        });
    }
    if !shared.policy.allows(spi, inner) {
        bump(&shared.counters.ts_dropped);
        return false;
    }
    let qos = shared
        .tunnel_of(d.owner)
        .map(|t| t.qos())
        .unwrap_or_default();
    if qos.decapsulate(tos, inner).is_err() {
        bump(&shared.counters.ecn_dropped);
        return false;
    }
    true
}

/// Counts an inbound ESP packet whose SPI was not installed (in time).
fn unknown_spi_dropped(shared: &Shared) {
    shared.sas.count_unknown_spi();
    bump(&shared.counters.esp_dropped);
}

/// Counts an inbound ESP packet that was dropped (per SA, or by the table for unknown
/// SPIs; the totals here).
fn dropped(shared: &Shared, reason: DropReason) {
    bump(&shared.counters.esp_dropped);
    if matches!(reason, DropReason::Replayed | DropReason::OutsideWindow) {
        bump(&shared.counters.replay_dropped);
    }
}

/// Offers the held packets to the SA table if it changed: those whose SA has come are
/// decrypted and written one by one (they are few, and late already); those held too
/// long count as unknown SPIs.
fn release_held(shared: &Shared, parked: &mut Parked) {
    let c = &shared.counters;
    let generation = shared.sas.generation();
    let sas = shared.sas.snapshot();
    let released = parked.retry(generation, Instant::now(), |packet, tos| {
        match sas.decap_held(packet) {
            Ok((spi, d)) => {
                let pkt = packet.get_mut(d.inner.clone()).unwrap_or_default();
                if accept(shared, spi, &d, pkt, tos) {
                    if shared.tun.send(pkt).is_ok() {
                        bump(&c.tun_writes);
                        bump(&c.tun_packets_out);
                        bump(&c.esp_held_delivered);
                    } else {
                        bump(&c.tun_write_errors);
                        bump(&c.send_errors);
                    }
                }
                true
            }
            Err(DropReason::UnknownSpi(_)) => false,
            Err(reason) => {
                dropped(shared, reason);
                true
            }
        }
    });
    for _ in 0..released.expired {
        unknown_spi_dropped(shared);
    }
}
