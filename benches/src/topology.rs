//! The bench topology: host_a - gw_a - gw_b - host_b, one network namespace each.
//!
//! | namespace | interface | address          | routes                                |
//! |-----------|-----------|------------------|---------------------------------------|
//! | host_a    | eth0      | 10.101.0.10/24   | default via 10.101.0.1                |
//! | gw_a      | lan0      | 10.101.0.1/24    | forwarding; to 10.102.0.0/24: per candidate |
//! | gw_a      | wan0      | 172.31.0.1/24    |                                       |
//! | gw_b      | wan0      | 172.31.0.2/24    |                                       |
//! | gw_b      | lan0      | 10.102.0.1/24    | forwarding; to 10.101.0.0/24: per candidate |
//! | host_b    | eth0      | 10.102.0.10/24   | default via 10.102.0.1                |
//!
//! The underlay 172.31.0.0/24 only knows the gateways' own addresses: nothing routes a
//! site prefix over it unless the plain candidate adds those routes, so tunnel figures
//! can only come from traffic that went through the tunnel.

use std::net::{IpAddr, Ipv4Addr};

use e2e::{Netns, Topology, TopologyBuilder};

use crate::error::Result;

pub const HOST_A: &str = "bench_host_a";
pub const GW_A: &str = "bench_gw_a";
pub const GW_B: &str = "bench_gw_b";
pub const HOST_B: &str = "bench_host_b";

pub const HOST_A_ADDR: Ipv4Addr = Ipv4Addr::new(10, 101, 0, 10);
pub const HOST_B_ADDR: Ipv4Addr = Ipv4Addr::new(10, 102, 0, 10);
pub const GW_A_WAN: Ipv4Addr = Ipv4Addr::new(172, 31, 0, 1);
pub const GW_B_WAN: Ipv4Addr = Ipv4Addr::new(172, 31, 0, 2);
pub const SITE_A: &str = "10.101.0.0/24";
pub const SITE_B: &str = "10.102.0.0/24";
/// MTU of every veth link.
pub const LINK_MTU: u32 = 1500;

/// One side of the tunnel: its gateway namespace and what lies beyond the other side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    A,
    B,
}

impl Side {
    pub const BOTH: [Side; 2] = [Side::A, Side::B];

    /// The gateway's own underlay address.
    pub fn wan(self) -> Ipv4Addr {
        match self {
            Side::A => GW_A_WAN,
            Side::B => GW_B_WAN,
        }
    }

    /// The other gateway's underlay address.
    pub fn peer_wan(self) -> Ipv4Addr {
        self.other().wan()
    }

    /// The site behind this gateway.
    pub fn local_site(self) -> &'static str {
        match self {
            Side::A => SITE_A,
            Side::B => SITE_B,
        }
    }

    /// The site behind the other gateway, to be routed into the tunnel.
    pub fn remote_site(self) -> &'static str {
        self.other().local_site()
    }

    pub fn other(self) -> Side {
        match self {
            Side::A => Side::B,
            Side::B => Side::A,
        }
    }

    /// Lower-case letter for interface names and labels.
    pub fn letter(self) -> char {
        match self {
            Side::A => 'a',
            Side::B => 'b',
        }
    }
}

/// The four namespaces, deleted (with anything still running inside) on drop.
#[derive(Debug)]
pub struct BenchTopology {
    topo: Topology,
}

impl BenchTopology {
    /// Creates the namespaces, veth links, addresses and the hosts' default routes.
    pub fn build() -> Result<Self> {
        let topo = TopologyBuilder::new()
            .host(HOST_A)
            .router(GW_A)
            .router(GW_B)
            .host(HOST_B)
            .link(
                (HOST_A, "eth0", "10.101.0.10/24"),
                (GW_A, "lan0", "10.101.0.1/24"),
            )
            .link(
                (GW_A, "wan0", "172.31.0.1/24"),
                (GW_B, "wan0", "172.31.0.2/24"),
            )
            .link(
                (GW_B, "lan0", "10.102.0.1/24"),
                (HOST_B, "eth0", "10.102.0.10/24"),
            )
            .route(HOST_A, "default", "10.101.0.1")
            .route(HOST_B, "default", "10.102.0.1")
            .build()?;
        Ok(BenchTopology { topo })
    }

    pub fn host_a(&self) -> Result<&Netns> {
        Ok(self.topo.ns(HOST_A)?)
    }

    pub fn host_b(&self) -> Result<&Netns> {
        Ok(self.topo.ns(HOST_B)?)
    }

    pub fn gw(&self, side: Side) -> Result<&Netns> {
        Ok(self.topo.ns(match side {
            Side::A => GW_A,
            Side::B => GW_B,
        })?)
    }

    /// Routes the remote site of each gateway into `dev` (a tunnel device per side).
    pub fn route_sites_via_dev(&self, dev: impl Fn(Side) -> String) -> Result<()> {
        for side in Side::BOTH {
            self.gw(side)?
                .ip(&["route", "replace", side.remote_site(), "dev", &dev(side)])?;
        }
        Ok(())
    }

    /// The address iperf3 and ping aim at.
    pub fn target() -> IpAddr {
        HOST_B_ADDR.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_mirror_each_other() {
        assert_eq!(Side::A.peer_wan(), GW_B_WAN);
        assert_eq!(Side::B.peer_wan(), GW_A_WAN);
        assert_eq!(Side::A.remote_site(), SITE_B);
        assert_eq!(Side::B.remote_site(), SITE_A);
        assert_eq!(Side::A.other(), Side::B);
    }
}
