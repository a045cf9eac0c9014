//! The per-tunnel state the packet path reads: where to send, how big, with which SA.

use arc_swap::ArcSwapOption;
use esp::OutboundSa;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

#[derive(Debug)]
pub struct TunnelPath {
    pub name: String,
    /// Our underlay address (the UDP/4500 socket to send from).
    pub local: IpAddr,
    /// The peer's ESP-in-UDP address; updated by the control plane on NAT float.
    pub peer: ArcSwapOption<SocketAddr>,
    /// Largest inner packet the tunnel carries.
    pub mtu: u16,
    pub mss_clamp: bool,
    /// Source of the ICMP errors we write into the TUN device: the tunnel's far inner
    /// address. Our own inner address would be a martian source to the local kernel (a
    /// packet arriving from one of its own addresses) and be dropped.
    pub icmp_source: IpAddr,
    /// The SA new packets use. A rekey swaps in the new SA before the old one is deleted,
    /// so there is always one while the tunnel is UP.
    pub outbound: ArcSwapOption<OutboundSa>,
}

impl TunnelPath {
    pub fn new(name: &str, local: IpAddr, mtu: u16, mss_clamp: bool, icmp_source: IpAddr) -> Self {
        TunnelPath {
            name: name.to_owned(),
            local,
            peer: ArcSwapOption::empty(),
            mtu,
            mss_clamp,
            icmp_source,
            outbound: ArcSwapOption::empty(),
        }
    }

    pub fn set_outbound(&self, sa: Option<Arc<OutboundSa>>) {
        self.outbound.store(sa);
    }
}
