//! TUN receive: route, clamp, fit the MTU, encrypt in place, send ESP-in-UDP to the peer.
//! Two buffers per thread, reused for every packet: nothing is allocated per packet.

use super::counters::bump;
use super::tunnel::TunnelPath;
use super::Shared;
use crate::packet::{clamp_mss, icmp_too_big, mss_for_mtu, needs_too_big, Ipv4Fragmenter};
use esp::{MAX_HEADROOM, MAX_TAILROOM};

/// Largest inner packet read from the TUN device.
const MAX_PACKET: usize = 65535;
const BUF: usize = MAX_HEADROOM + MAX_PACKET + MAX_TAILROOM;

pub fn run(shared: &Shared) {
    let mut buf = vec![0u8; BUF];
    let mut scratch = vec![0u8; BUF];
    while !shared.stopped() {
        let Some(rx) = buf.get_mut(MAX_HEADROOM..MAX_HEADROOM + MAX_PACKET) else {
            return;
        };
        let n = match shared.tun.recv_timeout(rx, super::POLL) {
            Ok(Some(n)) => n,
            Ok(None) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "TUN receive failed");
                std::thread::sleep(super::POLL);
                continue;
            }
        };
        forward(shared, &mut buf, n, &mut scratch);
    }
}

/// Handles the inner packet at `buf[MAX_HEADROOM..MAX_HEADROOM + len]`.
fn forward(shared: &Shared, buf: &mut [u8], len: usize, scratch: &mut [u8]) {
    let c = &shared.counters;
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
    if tunnel.mss_clamp {
        let _ = clamp_mss(pkt, mss_for_mtu(tunnel.mtu, ipv6));
    }
    if len <= usize::from(tunnel.mtu) {
        encap_send(shared, tunnel, buf, len);
        return;
    }
    if needs_too_big(pkt, tunnel.mtu) {
        bump(&c.too_big);
        match icmp_too_big(pkt, tunnel.mtu, tunnel.icmp_source, scratch) {
            Ok(n) => {
                if let Some(reply) = scratch.get(..n) {
                    if shared.tun.send(reply).is_err() {
                        bump(&c.send_errors);
                    }
                }
            }
            Err(_) => bump(&c.bad_inner),
        }
        return;
    }
    // IPv4 without DF: fragment the inner packet, then encrypt each fragment.
    let Ok(mut frags) = Ipv4Fragmenter::new(pkt, tunnel.mtu) else {
        bump(&c.bad_inner);
        return;
    };
    bump(&c.fragmented);
    loop {
        let Some(out) = scratch.get_mut(MAX_HEADROOM..MAX_HEADROOM + MAX_PACKET) else {
            return;
        };
        match frags.next_into(out) {
            Some(Ok(n)) => encap_send(shared, tunnel, scratch, n),
            Some(Err(_)) => {
                bump(&c.bad_inner);
                return;
            }
            None => return,
        }
    }
}

fn encap_send(shared: &Shared, tunnel: &TunnelPath, buf: &mut [u8], len: usize) {
    let c = &shared.counters;
    let sa = tunnel.outbound_for(
        buf.get(MAX_HEADROOM..MAX_HEADROOM + len)
            .unwrap_or_default(),
    );
    let (Some(sa), Some(peer)) = (sa.as_ref(), tunnel.peer.load().as_deref().copied()) else {
        bump(&c.no_sa);
        return;
    };
    let ok = match sa.encap(buf, MAX_HEADROOM, len) {
        Ok(ok) => ok,
        Err(_) => {
            bump(&c.encap_failed);
            return;
        }
    };
    if let Some(event) = ok.event {
        tracing::info!(tunnel = %tunnel.name, spi = format_args!("{:08x}", sa.spi()), ?event, "outbound SA lifetime");
        shared.sa_events.report(super::SaEvent {
            spi: sa.spi(),
            outbound: true,
            event,
        });
    }
    let Some(packet) = buf.get(ok.range) else {
        return;
    };
    let local = std::net::SocketAddr::new(tunnel.local, super::sockets::NAT_T_PORT);
    if shared.sockets.send(local, peer, packet).is_err() {
        bump(&c.send_errors);
    }
}
