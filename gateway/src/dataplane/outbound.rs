//! TUN receive: route, clamp, fit the MTU, encrypt in place, send ESP-in-UDP to the peer.
//!
//! One worker per TUN queue. A read returns one packet or a TCP super-packet that the
//! TUN layer splits into segments, each copied once into its own buffer behind
//! `MAX_HEADROOM` bytes; ESP is then applied in place and the datagrams of one peer
//! leave in runs (one `sendmsg` with UDP GSO per run). Buffers are allocated once per
//! worker: nothing is allocated per packet.

use super::counters::{add, bump};
use super::tunnel::TunnelPath;
use super::udp_io::{self, GSO_MAX_BYTES, GSO_MAX_SEGMENTS};
use super::Shared;
use crate::packet::{clamp_mss, icmp_too_big, mss_for_mtu, needs_too_big, Ipv4Fragmenter};
use esp::{OutboundSa, MAX_HEADROOM, MAX_TAILROOM};
use socket2::SockAddr;
use std::io::ErrorKind;
use std::net::SocketAddr;
use std::ops::Range;
use std::os::fd::AsRawFd;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Largest inner packet (a segment is at most the TUN MTU, but the MTU may be raised).
const MAX_PACKET: usize = 65535;
const BUF: usize = MAX_HEADROOM + MAX_PACKET + MAX_TAILROOM;

/// Segment buffers per worker.
const SEGMENTS: usize = 192;
/// Free buffers needed before another read joins the batch: a 64 KiB super-packet cut
/// at the smallest MSS we expect (fewer would fail the split and lose the packet).
const READ_ROOM: usize = 128;
/// Room for a virtio-net header and a whole super-packet.
const RAW: usize = tun_rs::VIRTIO_NET_HDR_LEN + MAX_PACKET;

/// An ESP datagram ready in one of the segment buffers.
struct Pending {
    buf: usize,
    range: Range<usize>,
    local: SocketAddr,
    peer: SocketAddr,
    /// The outer header's TOS / traffic class (DSCP and ECN copied from the inner one).
    tos: u8,
}

/// Why a batch of reads ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BatchEnd {
    /// The queue had nothing more (or a read failed): wait before reading again.
    Drained,
    /// The buffers are nearly full: send, then read on at once.
    Full,
    Stop,
}

/// Per-worker state, allocated once.
struct Worker {
    raw: Vec<u8>,
    bufs: Vec<Vec<u8>>,
    sizes: Vec<usize>,
    scratch: Vec<u8>,
    /// A copy of a packet being fragmented.
    big: Vec<u8>,
    pending: Vec<Pending>,
    gso: GsoState,
}

/// How long a worker sends without GSO after the kernel refused it. A refusal may be
/// for good (no GSO on this path) or passing (a segment above a lowered path MTU), so
/// GSO is tried again after a while rather than never.
const GSO_BACKOFF: Duration = Duration::from_secs(10);

/// Whether this worker sends runs with UDP GSO.
#[derive(Debug, Default)]
struct GsoState {
    /// Set after a refusal: no GSO until then.
    off_until: Option<Instant>,
    /// Refusals so far (the first is logged at info, the rest at debug).
    refusals: u64,
}

impl GsoState {
    fn usable(&mut self) -> bool {
        match self.off_until {
            Some(t) if Instant::now() < t => false,
            Some(_) => {
                self.off_until = None;
                true
            }
            None => true,
        }
    }

    fn refused(&mut self, e: &std::io::Error) {
        self.refusals += 1;
        self.off_until = Some(Instant::now() + GSO_BACKOFF);
        if self.refusals == 1 && e.raw_os_error() == Some(libc::EMSGSIZE) {
            tracing::warn!(error = %e, retry_in = ?GSO_BACKOFF, "ESP datagrams are larger than the underlay's path MTU: they leave fragmented, without GSO (lower the tunnel's mtu to avoid it)");
        } else if self.refusals == 1 {
            tracing::info!(error = %e, retry_in = ?GSO_BACKOFF, "UDP GSO refused; sending datagram batches instead");
        } else {
            tracing::debug!(error = %e, refusals = self.refusals, "UDP GSO refused again");
        }
    }
}

/// Segment buffers sized for packets of up to `mtu` bytes, allocated one after the other.
/// Sized for the largest packet instead, the segments of a super-packet would each start
/// a fresh 64 KiB buffer: one page and the same cache sets per segment, for the split,
/// the encryption and the kernel's copy in `sendmsg` alike.
fn segment_buffers(mtu: u16) -> Vec<Vec<u8>> {
    (0..SEGMENTS).map(|_| vec![0u8; segment_len(mtu)]).collect()
}

/// One segment buffer's length: ESP's room around an inner packet of up to `mtu` bytes.
fn segment_len(mtu: u16) -> usize {
    MAX_HEADROOM + usize::from(mtu) + MAX_TAILROOM
}

/// Regrows the segment buffers if they are smaller than `mtu` needs; `true` if it did.
fn fit_mtu(w: &mut Worker, mtu: u16) -> bool {
    let fits = w.bufs.first().is_some_and(|b| b.len() >= segment_len(mtu));
    if fits {
        return false;
    }
    tracing::info!(mtu, "TUN MTU raised; segment buffers regrown");
    w.bufs = segment_buffers(mtu);
    true
}

/// After a failed split: if the TUN MTU was raised past the buffers (the packet that did
/// not fit is lost), regrow them and tell the other workers. `true` if it did.
fn check_mtu(shared: &Shared, w: &mut Worker) -> bool {
    let Ok(mtu) = shared.tun.mtu() else {
        return false;
    };
    shared.tun_mtu.fetch_max(mtu, Ordering::Relaxed);
    fit_mtu(w, mtu)
}

pub fn run(shared: &Shared, queue: usize) {
    let Ok(fd) = shared.tun.fd(queue) else {
        return;
    };
    let mut w = Worker {
        raw: vec![0u8; RAW],
        bufs: segment_buffers(shared.tun.mtu().unwrap_or(u16::MAX)),
        sizes: vec![0; SEGMENTS],
        scratch: vec![0u8; BUF],
        big: vec![0u8; MAX_PACKET],
        pending: Vec::with_capacity(SEGMENTS),
        gso: GsoState::default(),
    };
    let c = &shared.counters;
    loop {
        // Read until the queue is empty or the buffers are nearly full, then send
        // everything read in as few calls as possible (small packets such as TCP ACKs
        // then share GSO sends too).
        // Another worker found the MTU raised (nothing is pending here, so regrowing is safe).
        fit_mtu(&mut w, shared.tun_mtu.load(Ordering::Relaxed));
        let mut used = 0;
        // A split failed: perhaps the MTU outgrew the buffers.
        let mut outgrown = false;
        let end = loop {
            let (Some(bufs), Some(sizes)) = (w.bufs.get_mut(used..), w.sizes.get_mut(used..))
            else {
                break BatchEnd::Full;
            };
            let n = match shared
                .tun
                .recv_batch(queue, &mut w.raw, bufs, sizes, MAX_HEADROOM)
            {
                Ok(n) => n,
                Err(e) if e.kind() == ErrorKind::WouldBlock => break BatchEnd::Drained,
                Err(e) if e.kind() == ErrorKind::Interrupted => continue,
                Err(e) => {
                    // OS errors are failed reads; others come from splitting a super-packet.
                    if e.raw_os_error().is_some() {
                        bump(&c.tun_read_errors);
                        if device_gone(&e) {
                            shared.failure.report(format!(
                                "TUN device {} is gone (deleted?): {e}",
                                shared.tun.name()
                            ));
                            break BatchEnd::Stop;
                        }
                        tracing::warn!(error = %e, "TUN receive failed");
                        if shared.stopped() {
                            break BatchEnd::Stop;
                        }
                        // Not in a tight loop on a device that keeps failing.
                        std::thread::sleep(std::time::Duration::from_millis(100));
                    } else {
                        bump(&c.gso_split_errors);
                        outgrown = true;
                    }
                    break BatchEnd::Drained;
                }
            };
            bump(&c.tun_reads);
            add(&c.tun_segments, n);
            // The segments of one super-packet share the first one's addresses, ports and
            // protocol, so the first one's route and SA serve them all.
            let mut dest = None;
            for i in used..(used + n).min(SEGMENTS) {
                let len = w.sizes.get(i).copied().unwrap_or(0);
                forward(shared, &mut w, queue, i, len, &mut dest);
            }
            used += n;
            if SEGMENTS.saturating_sub(used) < READ_ROOM {
                break BatchEnd::Full;
            }
        };
        flush(shared, &mut w, queue);
        if outgrown && check_mtu(shared, &mut w) {
            continue;
        }
        // A busy worker never waits, so it looks at the flag itself.
        if end == BatchEnd::Stop || shared.stopped() {
            return;
        }
        if end == BatchEnd::Drained {
            // The queue was empty: wait for the kernel (or the stop event).
            match shared.stop.wait_readable(fd) {
                Ok(true) => {}
                Ok(false) => return,
                Err(e) => {
                    tracing::warn!(error = %e, "TUN wait failed");
                    return;
                }
            }
        }
    }
}

/// Whether a TUN read failed because the device no longer exists (a queue whose device
/// was deleted reads EBADFD for ever).
fn device_gone(e: &std::io::Error) -> bool {
    matches!(
        e.raw_os_error(),
        Some(libc::EBADFD | libc::ENODEV | libc::ENXIO)
    )
}

/// Where a segment of a super-packet goes once its first segment was looked up.
struct Dest<'s> {
    tunnel: &'s TunnelPath,
    sa: Arc<OutboundSa>,
    peer: SocketAddr,
}

/// Handles the inner packet at `bufs[i][MAX_HEADROOM..MAX_HEADROOM + len]`. `cache`
/// holds the destination of an earlier segment of the same read (a super-packet), which
/// this one takes; else it records the one found for this packet.
fn forward<'s>(
    shared: &'s Shared,
    w: &mut Worker,
    queue: usize,
    i: usize,
    len: usize,
    cache: &mut Option<Dest<'s>>,
) {
    let c = &shared.counters;
    let Some(buf) = w.bufs.get_mut(i) else {
        return;
    };
    if let Some(d) = cache.as_ref() {
        if len <= usize::from(d.tunnel.mtu()) {
            if let Some(p) = seal(shared, d, buf, len, i) {
                w.pending.push(p);
            }
            return;
        }
    }
    let Some(pkt) = buf.get_mut(MAX_HEADROOM..MAX_HEADROOM + len) else {
        return;
    };
    let tunnel = {
        let fib = shared.routing.load();
        fib.route_packet(pkt)
            .and_then(|id| shared.tunnels.get(usize::from(id.0)))
    };
    let Some(tunnel) = tunnel else {
        bump(&c.no_route);
        return;
    };
    let ipv6 = pkt.first().is_some_and(|b| b >> 4 == 6);
    let mtu = tunnel.mtu_for(ipv6);
    if tunnel.mss_clamp {
        let _ = clamp_mss(pkt, mss_for_mtu(mtu, ipv6));
    }
    if len <= usize::from(mtu) {
        let Some(d) = destination(shared, tunnel, buf, len) else {
            return;
        };
        if let Some(p) = seal(shared, &d, buf, len, i) {
            w.pending.push(p);
        }
        *cache = Some(d);
        return;
    }
    if needs_too_big(pkt, mtu) {
        bump(&c.too_big);
        match icmp_too_big(pkt, mtu, tunnel.icmp_source, &mut w.scratch) {
            Ok(n) => {
                if let Some(reply) = w.scratch.get(..n) {
                    if shared.tun.send(reply).is_err() {
                        bump(&c.send_errors);
                        bump(&c.tun_write_errors);
                    }
                }
            }
            Err(_) => bump(&c.bad_inner),
        }
        return;
    }
    // IPv4 without DF (rare): fragment the inner packet, then encrypt and send each
    // fragment at once, after what is already queued.
    let Some(copy) = w.big.get_mut(..len) else {
        return;
    };
    copy.copy_from_slice(pkt);
    flush(shared, w, queue);
    let Some(pkt) = w.big.get(..len) else {
        return;
    };
    let Ok(mut frags) = Ipv4Fragmenter::new(pkt, mtu) else {
        bump(&c.bad_inner);
        return;
    };
    bump(&c.fragmented);
    loop {
        let Some(out) = w.scratch.get_mut(MAX_HEADROOM..MAX_HEADROOM + MAX_PACKET) else {
            return;
        };
        match frags.next_into(out) {
            Some(Ok(n)) => {
                let Some(d) = destination(shared, tunnel, &w.scratch, n) else {
                    continue;
                };
                if let Some(p) = seal(shared, &d, &mut w.scratch, n, usize::MAX) {
                    if let Some(bytes) = w.scratch.get(p.range.clone()) {
                        send_parts(shared, &mut w.gso, queue, &p, &[bytes]);
                    }
                }
            }
            Some(Err(_)) => {
                bump(&c.bad_inner);
                return;
            }
            None => return,
        }
    }
}

/// The SA and peer for the inner packet at `buf[MAX_HEADROOM..MAX_HEADROOM + len]`, or
/// `None` (counted) when its tunnel has none for it.
fn destination<'s>(
    shared: &Shared,
    tunnel: &'s TunnelPath,
    buf: &[u8],
    len: usize,
) -> Option<Dest<'s>> {
    let c = &shared.counters;
    let Ok(sa) = tunnel.outbound_for(
        buf.get(MAX_HEADROOM..MAX_HEADROOM + len)
            .unwrap_or_default(),
    ) else {
        bump(&c.ts_dropped_out);
        return None;
    };
    let (Some(sa), Some(peer)) = (sa.as_ref(), tunnel.peer.load().as_deref().copied()) else {
        bump(&c.no_sa);
        return None;
    };
    Some(Dest {
        tunnel,
        sa: sa.clone(),
        peer,
    })
}

/// Encrypts in place; the datagram to send, if any.
fn seal(shared: &Shared, d: &Dest, buf: &mut [u8], len: usize, index: usize) -> Option<Pending> {
    let c = &shared.counters;
    let sa = &d.sa;
    let inner = buf
        .get(MAX_HEADROOM..MAX_HEADROOM + len)
        .unwrap_or_default();
    let tos = d.tunnel.qos().outer_tos(inner);
    let ok = match sa.encap(buf, MAX_HEADROOM, len) {
        Ok(ok) => ok,
        Err(_) => {
            bump(&c.encap_failed);
            return None;
        }
    };
    if let Some(event) = ok.event {
        tracing::info!(tunnel = %d.tunnel.name, spi = format_args!("{:08x}", sa.spi()), ?event, "outbound SA lifetime");
        shared.sa_events.report(super::SaEvent {
            spi: sa.spi(),
            outbound: true,
            event: super::SaEventKind::Lifetime(event),
        });
    }
    Some(Pending {
        buf: index,
        range: ok.range,
        local: SocketAddr::new(d.tunnel.local, super::sockets::NAT_T_PORT),
        peer: d.peer,
        tos,
    })
}

/// Sends the pending datagrams: consecutive ones to the same peer with the same outer
/// TOS in runs of equal size
/// (the last of a run may be shorter), one GSO send per run.
fn flush(shared: &Shared, w: &mut Worker, queue: usize) {
    let mut parts: [&[u8]; GSO_MAX_SEGMENTS] = [&[]; GSO_MAX_SEGMENTS];
    let mut i = 0;
    while let Some(first) = w.pending.get(i) {
        let seg = first.range.len();
        let mut n = 0;
        let mut bytes = 0;
        while let Some(p) = w.pending.get(i + n) {
            let len = p.range.len();
            if n == GSO_MAX_SEGMENTS
                || p.local != first.local
                || p.peer != first.peer
                || p.tos != first.tos
                || len > seg
                || bytes + len > GSO_MAX_BYTES
            {
                break;
            }
            let Some(slice) = w.bufs.get(p.buf).and_then(|b| b.get(p.range.clone())) else {
                break;
            };
            if let Some(slot) = parts.get_mut(n) {
                *slot = slice;
            }
            n += 1;
            bytes += len;
            if len < seg {
                break;
            }
        }
        if n == 0 {
            // A datagram whose buffer vanished cannot happen; skip it rather than spin.
            i += 1;
            continue;
        }
        if let Some(run) = parts.get(..n) {
            send_parts(shared, &mut w.gso, queue, first, run);
        }
        i += n;
    }
    w.pending.clear();
}

/// Sends one run, with GSO when it has more than one datagram and GSO is usable.
fn send_parts(shared: &Shared, gso: &mut GsoState, queue: usize, to: &Pending, parts: &[&[u8]]) {
    let c = &shared.counters;
    let Some(sock) = shared.sockets.for_worker(to.local, queue) else {
        add(&c.udp_send_errors, parts.len());
        add(&c.send_errors, parts.len());
        return;
    };
    let fd = sock.as_raw_fd();
    let dst = SockAddr::from(to.peer);
    let mut use_gso = parts.len() > 1 && gso.usable();
    let mut r = udp_io::send_run(fd, &dst, parts, use_gso, to.tos);
    if let Err(e) = &r {
        if use_gso && udp_io::gso_unsupported(e) {
            bump(&c.udp_gso_refused);
            gso.refused(e);
            use_gso = false;
            r = udp_io::send_run(fd, &dst, parts, false, to.tos);
        }
    }
    bump(&c.udp_sends);
    match r {
        Ok(sent) => {
            if use_gso {
                bump(&c.udp_gso_sends);
            }
            add(&c.udp_datagrams_out, sent);
            if sent < parts.len() {
                add(&c.udp_send_errors, parts.len() - sent);
                add(&c.send_errors, parts.len() - sent);
            }
        }
        Err(_) => {
            add(&c.udp_send_errors, parts.len());
            add(&c.send_errors, parts.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_refusal_turns_gso_off_for_a_while_not_for_good() {
        let mut g = GsoState::default();
        assert!(g.usable());
        g.refused(&std::io::Error::from_raw_os_error(libc::EINVAL));
        assert!(!g.usable());
        assert_eq!(g.refusals, 1);
        // The back-off has passed.
        g.off_until = Instant::now().checked_sub(Duration::from_millis(1));
        assert!(g.usable());
        assert!(g.usable());
        assert!(g.off_until.is_none());
    }
}
