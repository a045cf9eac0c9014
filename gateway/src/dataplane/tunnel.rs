//! The per-tunnel state the packet path reads: where to send, how big, with which SA.

use crate::packet::Qos;
use arc_swap::{ArcSwapOption, Guard};
use esp::OutboundSa;
use ike::wire::TrafficSelector;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::atomic::{AtomicU16, AtomicU8, Ordering};
use std::sync::Arc;

/// Below these the MTU is not lowered: the smallest every IPv4 (RFC 791: 576 bytes
/// reassembled; Linux does not go below 552 either) and IPv6 host accepts.
const IPV4_MIN_MTU: u16 = 576;
const IPV6_MIN_MTU: u16 = 1280;

/// The outbound SA of a CHILD SA narrower than the tunnel's default one, for the packets
/// its traffic selectors cover.
#[derive(Debug)]
pub struct Selected {
    pub local_ts: Vec<TrafficSelector>,
    pub remote_ts: Vec<TrafficSelector>,
    pub sa: Arc<OutboundSa>,
}

#[derive(Debug)]
pub struct TunnelPath {
    pub name: String,
    /// Our underlay address (the UDP/4500 socket to send from).
    pub local: IpAddr,
    /// The peer's ESP-in-UDP address; updated by the control plane on NAT float.
    pub peer: ArcSwapOption<SocketAddr>,
    /// Largest inner packet the tunnel carries, as configured.
    pub configured_mtu: u16,
    /// What of it the underlay carries unfragmented (see `fit_underlay`).
    mtu: AtomicU16,
    pub mss_clamp: bool,
    /// DSCP and ECN handling ([`Qos::to_bits`]); `vpngw reload` changes it in place.
    qos: AtomicU8,
    /// Source of the ICMP errors we write into the TUN device: the tunnel's far inner
    /// address. Our own inner address would be a martian source to the local kernel (a
    /// packet arriving from one of its own addresses) and be dropped.
    pub icmp_source: IpAddr,
    /// The SA new packets use. A rekey swaps in the new SA before the old one is deleted,
    /// so there is always one while the tunnel is UP.
    pub outbound: ArcSwapOption<OutboundSa>,
    /// Further CHILD SAs by traffic selectors, tried before `outbound`; empty (`None`)
    /// with one CHILD SA, so the common path is one extra atomic load.
    pub selected: ArcSwapOption<Vec<Selected>>,
    /// The default CHILD SA's (local, remote) selectors when narrower than any/any: packets
    /// outside them are not sent (RFC 4301 outbound policy). `None` for the usual 0/0 tunnel.
    pub default_ts: ArcSwapOption<(Vec<TrafficSelector>, Vec<TrafficSelector>)>,
}

/// The packet lies outside the traffic selectors of every CHILD SA of the tunnel.
#[derive(Debug, PartialEq, Eq)]
pub struct OutsideSelectors;

impl TunnelPath {
    pub fn new(name: &str, local: IpAddr, mtu: u16, mss_clamp: bool, icmp_source: IpAddr) -> Self {
        TunnelPath {
            name: name.to_owned(),
            local,
            peer: ArcSwapOption::empty(),
            configured_mtu: mtu,
            mtu: AtomicU16::new(mtu),
            mss_clamp,
            qos: AtomicU8::new(Qos::default().to_bits()),
            icmp_source,
            outbound: ArcSwapOption::empty(),
            selected: ArcSwapOption::empty(),
            default_ts: ArcSwapOption::empty(),
        }
    }

    /// The tunnel with `qos` instead of the default (copy DSCP out, ECN both ways).
    pub fn with_qos(self, qos: Qos) -> Self {
        self.set_qos(qos);
        self
    }

    /// DSCP and ECN handling for the next packets.
    pub fn set_qos(&self, qos: Qos) {
        self.qos.store(qos.to_bits(), Ordering::Relaxed);
    }

    #[inline]
    pub fn qos(&self) -> Qos {
        Qos::from_bits(self.qos.load(Ordering::Relaxed))
    }

    /// Largest inner packet the tunnel sends now: packets above it get ICMP too big
    /// (or are fragmented), and TCP MSS is clamped to it.
    pub fn mtu(&self) -> u16 {
        self.mtu.load(Ordering::Relaxed)
    }

    /// `mtu()` for an inner packet of the given family: IPv6 packets of up to 1280
    /// bytes are always sent (every IPv6 link carries them, RFC 8200 5), fragmented in
    /// the underlay if it must.
    pub fn mtu_for(&self, ipv6: bool) -> u16 {
        if ipv6 {
            self.mtu().max(IPV6_MIN_MTU.min(self.configured_mtu))
        } else {
            self.mtu()
        }
    }

    /// Lowers the MTU to `inner_limit`, the largest inner packet whose ESP datagram fits
    /// the underlay's path MTU to the peer (`None`: unknown, the configured MTU). A
    /// tunnel MTU too large for the underlay then gets inner path MTU discovery instead
    /// of fragmented ESP. Returns the MTU now in force.
    pub fn fit_underlay(&self, inner_limit: Option<usize>) -> u16 {
        let limit = inner_limit.map_or(u16::MAX, |l| u16::try_from(l).unwrap_or(u16::MAX));
        let mtu = self.configured_mtu.min(limit.max(IPV4_MIN_MTU));
        self.mtu.store(mtu, Ordering::Relaxed);
        mtu
    }

    /// The SA for this inner packet: the first CHILD SA whose selectors cover it, else
    /// the default one if its selectors cover it (or are any/any).
    pub fn outbound_for(
        &self,
        packet: &[u8],
    ) -> Result<Guard<Option<Arc<OutboundSa>>>, OutsideSelectors> {
        let selected = self.selected.load();
        let default_ts = self.default_ts.load();
        if selected.is_none() && default_ts.is_none() {
            return Ok(self.outbound.load());
        }
        let flow = Flow::of(packet);
        if let (Some(list), Some(f)) = (selected.as_deref(), flow.as_ref()) {
            if let Some(s) = list.iter().find(|s| f.covered(&s.local_ts, &s.remote_ts)) {
                return Ok(Guard::from_inner(Some(s.sa.clone())));
            }
        }
        match default_ts.as_deref() {
            Some((local, remote)) if !flow.is_some_and(|f| f.covered(local, remote)) => {
                Err(OutsideSelectors)
            }
            _ => Ok(self.outbound.load()),
        }
    }

    pub fn set_outbound(&self, sa: Option<Arc<OutboundSa>>) {
        self.outbound.store(sa);
    }
}

/// What traffic selectors look at in an inner packet.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Flow {
    src: IpAddr,
    dst: IpAddr,
    proto: u8,
    /// Source and destination port (TCP, UDP, SCTP; first fragment only).
    ports: Option<(u16, u16)>,
}

impl Flow {
    pub(super) fn of(p: &[u8]) -> Option<Flow> {
        let (src, dst, proto, l4) = match p.first()? >> 4 {
            4 => {
                let ihl = usize::from(p.first()? & 0x0f) * 4;
                let a: [u8; 4] = p.get(12..16)?.try_into().ok()?;
                let b: [u8; 4] = p.get(16..20)?.try_into().ok()?;
                let frag_offset = u16::from_be_bytes([*p.get(6)?, *p.get(7)?]) & 0x1fff;
                let l4 = if frag_offset == 0 { p.get(ihl..) } else { None };
                (
                    Ipv4Addr::from(a).into(),
                    Ipv4Addr::from(b).into(),
                    *p.get(9)?,
                    l4,
                )
            }
            6 => {
                let a: [u8; 16] = p.get(8..24)?.try_into().ok()?;
                let b: [u8; 16] = p.get(24..40)?.try_into().ok()?;
                // Extension headers are not walked: their ports count as unknown.
                (
                    Ipv6Addr::from(a).into(),
                    Ipv6Addr::from(b).into(),
                    *p.get(6)?,
                    p.get(40..),
                )
            }
            _ => return None,
        };
        let ports = match (proto, l4) {
            (6 | 17 | 132, Some(h)) if h.len() >= 4 => Some((
                u16::from_be_bytes([h[0], h[1]]),
                u16::from_be_bytes([h[2], h[3]]),
            )),
            _ => None,
        };
        Some(Flow {
            src,
            dst,
            proto,
            ports,
        })
    }

    /// Source inside `local`, destination inside `remote`.
    pub(super) fn covered(&self, local: &[TrafficSelector], remote: &[TrafficSelector]) -> bool {
        let fits = |ts: &TrafficSelector, addr: IpAddr, port: Option<u16>| {
            let all_ports = ts.start_port == 0 && ts.end_port == 65535;
            ts.start.is_ipv4() == addr.is_ipv4()
                && ts.start <= addr
                && addr <= ts.end
                && (ts.ip_proto == 0 || ts.ip_proto == self.proto)
                && (all_ports || port.is_some_and(|p| ts.start_port <= p && p <= ts.end_port))
        };
        let (sp, dp) = (self.ports.map(|p| p.0), self.ports.map(|p| p.1));
        local.iter().any(|t| fits(t, self.src, sp)) && remote.iter().any(|t| fits(t, self.dst, dp))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(a: &str, b: &str) -> TrafficSelector {
        TrafficSelector {
            ip_proto: 0,
            start_port: 0,
            end_port: 65535,
            start: a.parse().unwrap(),
            end: b.parse().unwrap(),
        }
    }

    fn v4(src: [u8; 4], dst: [u8; 4], proto: u8, ports: (u16, u16)) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, proto, 0, 0];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&ports.0.to_be_bytes());
        p.extend_from_slice(&ports.1.to_be_bytes());
        p
    }

    #[test]
    fn flow_is_matched_against_both_selector_lists() {
        let p = v4([10, 1, 0, 5], [10, 2, 0, 9], 17, (5000, 53));
        let f = Flow::of(&p).unwrap();
        assert_eq!(f.ports, Some((5000, 53)));
        let local = [ts("10.1.0.0", "10.1.255.255")];
        let remote = [ts("10.2.0.0", "10.2.0.255")];
        assert!(f.covered(&local, &remote));
        assert!(!f.covered(&remote, &local), "directions are not swapped");
        assert!(!f.covered(&local, &[ts("10.3.0.0", "10.3.0.255")]));
        assert!(!f.covered(
            &local,
            &[ts("::", "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")]
        ));
        let mut dns = ts("10.2.0.0", "10.2.0.255");
        dns.ip_proto = 17;
        dns.start_port = 53;
        dns.end_port = 53;
        assert!(f.covered(&local, &[dns]));
        dns.ip_proto = 6;
        assert!(!f.covered(&local, &[dns]), "protocol must match");
    }

    #[test]
    fn truncated_or_foreign_packets_have_no_flow() {
        assert_eq!(Flow::of(&[]), None);
        assert_eq!(Flow::of(&[0x45, 0, 0]), None);
        assert_eq!(Flow::of(&[0x20; 40]), None);
        // A non-first fragment has no ports: it only matches an all-ports selector.
        let mut p = v4([10, 1, 0, 5], [10, 2, 0, 9], 17, (5000, 53));
        p[7] = 1;
        assert_eq!(Flow::of(&p).unwrap().ports, None);
    }

    /// A tunnel of MTU 1400.
    fn path() -> TunnelPath {
        TunnelPath::new(
            "t",
            "192.0.2.1".parse().unwrap(),
            1400,
            false,
            "169.254.0.1".parse().unwrap(),
        )
    }

    #[test]
    fn the_mtu_fits_the_underlay_but_never_exceeds_the_configured_one() {
        let path = path();
        assert_eq!((path.mtu(), path.mtu_for(true)), (1400, 1400));
        assert_eq!(path.fit_underlay(Some(1238)), 1238);
        assert_eq!(path.mtu_for(false), 1238);
        assert_eq!(path.mtu_for(true), 1280, "IPv6 up to 1280 always passes");
        assert_eq!(
            path.fit_underlay(Some(100)),
            576,
            "not below IPv4's minimum"
        );
        assert_eq!(
            path.fit_underlay(Some(1438)),
            1400,
            "never above the configured"
        );
        assert_eq!(path.fit_underlay(None), 1400, "unknown path: as configured");
        assert_eq!(path.fit_underlay(Some(usize::MAX)), 1400);
    }

    #[test]
    fn a_narrow_default_sa_refuses_packets_outside_its_selectors() {
        let path = path();
        let inside = v4([10, 1, 0, 5], [10, 2, 0, 9], 17, (5000, 53));
        let outside = v4([10, 1, 0, 5], [10, 9, 0, 9], 17, (5000, 53));
        // any/any (no default_ts): everything goes to the default SA, garbage included.
        assert!(path.outbound_for(&outside).is_ok());
        assert!(path.outbound_for(&[0xff; 8]).is_ok());
        path.default_ts.store(Some(Arc::new((
            vec![ts("10.1.0.0", "10.1.255.255")],
            vec![ts("10.2.0.0", "10.2.0.255")],
        ))));
        assert!(path.outbound_for(&inside).is_ok());
        assert_eq!(path.outbound_for(&outside).err(), Some(OutsideSelectors));
        assert_eq!(
            path.outbound_for(&[0xff; 8]).err(),
            Some(OutsideSelectors),
            "no flow, no match"
        );
    }
}
