//! The ready-made four-host topology of a customer site linked to a cloud VPC.
//!
//! ```text
//!  idc_host        customer_gw                       cloud_gw                  vpc_host
//!  eth0 ------- lan0        wan0 ---- underlay ---- wan0        vpc0 ------- eth0
//!  10.10.0.10/24  10.10.0.1/24  192.0.2.2/24   192.0.2.1/24  10.20.0.1/24  10.20.0.10/24
//!                                                lo: 203.0.113.1/32 (tunnel 1 public)
//!                                                    203.0.113.2/32 (tunnel 2 public)
//! ```
//!
//! | host        | interface | address          | routes                              |
//! |-------------|-----------|------------------|-------------------------------------|
//! | idc_host    | eth0      | 10.10.0.10/24    | default via 10.10.0.1               |
//! | customer_gw | lan0      | 10.10.0.1/24     | 203.0.113.0/24 via 192.0.2.1        |
//! | customer_gw | wan0      | 192.0.2.2/24     | (forwarding on)                     |
//! | cloud_gw    | wan0      | 192.0.2.1/24     | (forwarding on)                     |
//! | cloud_gw    | lo        | 203.0.113.1/32, 203.0.113.2/32 |                       |
//! | cloud_gw    | vpc0      | 10.20.0.1/24     |                                     |
//! | vpc_host    | eth0      | 10.20.0.10/24    | default via 10.20.0.1               |
//!
//! Tunnel inner addresses (/30, cloud side `.1`, customer side `.2`), for BGP over the
//! tunnels: tunnel 1 `169.254.10.0/30`, tunnel 2 `169.254.11.0/30`. They are not
//! configured by the topology: whoever terminates the tunnels owns them.
//!
//! The gateways have no default route and nothing routes the private prefixes across
//! the underlay, so IDC <-> VPC traffic only flows once a tunnel carries it, and no
//! test packet can leave the namespaces.
//!
//! [`SiteToSite::build_behind_nat`] puts the customer gateway behind a port-translating
//! NAT router (namespace `nat`), as an enterprise edge would: the customer gateway's
//! underlay address is private, and the NAT's public side takes the customer's public
//! address, so the cloud side's view of the plan is unchanged (its peer is still
//! 192.0.2.2, now at translated ports). The cloud has no route to the private
//! addresses: only translated packets reach it.
//!
//! ```text
//!  customer_gw                 nat                               cloud_gw
//!  wan0 ---------------- in0        out0 ---- underlay ---- wan0
//!  100.64.0.2/24         100.64.0.1/24  192.0.2.2/24        192.0.2.1/24
//!  (203.0.113.0/24 via 100.64.0.1)  (203.0.113.0/24 via 192.0.2.1; UDP leaving out0
//!                                    translated to 192.0.2.2:40000-40999)
//! ```

use std::net::Ipv4Addr;
use std::ops::RangeInclusive;
use std::path::Path;

use crate::error::{HarnessError, Result};
use crate::iperf::IperfServer;
use crate::nat::{reboot_nat, translate_udp, NAT_PORTS};
use crate::netns::Netns;
use crate::topology::TopologyBuilder;

/// The address plan of [`SiteToSite`].
pub mod plan {
    use super::{Ipv4Addr, TunnelPlan};

    pub const IDC_PREFIX: &str = "10.10.0.0/24";
    pub const VPC_PREFIX: &str = "10.20.0.0/24";
    pub const IDC_HOST: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 10);
    pub const CUSTOMER_GW_LAN: Ipv4Addr = Ipv4Addr::new(10, 10, 0, 1);
    /// The customer gateway's public (underlay) address.
    pub const CUSTOMER_GW_WAN: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
    pub const CLOUD_GW_WAN: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);
    pub const CLOUD_GW_VPC: Ipv4Addr = Ipv4Addr::new(10, 20, 0, 1);
    pub const VPC_HOST: Ipv4Addr = Ipv4Addr::new(10, 20, 0, 10);
    /// The cloud's public addresses, one per tunnel, on the cloud gateway's loopback.
    pub const CLOUD_PUBLIC_PREFIX: &str = "203.0.113.0/24";
    /// Behind a NAT: the customer gateway's private underlay address and the NAT's
    /// inside address (the NAT's public address is [`CUSTOMER_GW_WAN`]).
    pub const CUSTOMER_GW_PRIVATE: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 2);
    pub const NAT_INSIDE: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);
    /// The NAT router's interface towards the cloud.
    pub const NAT_PUBLIC_DEV: &str = "out0";

    /// Cloud border gateway ASN (fixed by the cloud) and the customer's ASN.
    pub const CLOUD_ASN: u32 = 65000;
    pub const CUSTOMER_ASN: u32 = 65010;

    pub const TUNNELS: [TunnelPlan; 2] = [
        TunnelPlan {
            name: "tunnel1",
            reqid: 1,
            cloud_public: Ipv4Addr::new(203, 0, 113, 1),
            customer_public: CUSTOMER_GW_WAN,
            cloud_inner: Ipv4Addr::new(169, 254, 10, 1),
            customer_inner: Ipv4Addr::new(169, 254, 10, 2),
            inner_prefix_len: 30,
        },
        TunnelPlan {
            name: "tunnel2",
            reqid: 2,
            cloud_public: Ipv4Addr::new(203, 0, 113, 2),
            customer_public: CUSTOMER_GW_WAN,
            cloud_inner: Ipv4Addr::new(169, 254, 11, 1),
            customer_inner: Ipv4Addr::new(169, 254, 11, 2),
            inner_prefix_len: 30,
        },
    ];
}

/// One of the two tunnels of the plan.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunnelPlan {
    pub name: &'static str,
    /// The reqid strongSwan must use for this tunnel's CHILD SA.
    pub reqid: u32,
    pub cloud_public: Ipv4Addr,
    pub customer_public: Ipv4Addr,
    pub cloud_inner: Ipv4Addr,
    pub customer_inner: Ipv4Addr,
    pub inner_prefix_len: u8,
}

/// The four namespaces of the plan (five behind a NAT). Dropping it removes them all.
#[derive(Debug)]
pub struct SiteToSite {
    idc_host: Netns,
    customer_gw: Netns,
    cloud_gw: Netns,
    vpc_host: Netns,
    nat: Option<Netns>,
}

impl SiteToSite {
    /// Builds the topology of the [module docs](self).
    pub fn build() -> Result<Self> {
        Self::build_with(TopologyBuilder::new(), false)
    }

    /// [`SiteToSite::build`] with namespaces named `<prefix><host>` (see
    /// [`TopologyBuilder::namespace_prefix`]).
    pub fn build_named(prefix: &str) -> Result<Self> {
        Self::build_with(TopologyBuilder::new().namespace_prefix(prefix), false)
    }

    /// The topology with the customer gateway behind a NAT router translating to ports
    /// [`NAT_PORTS`] (see the [module docs](self)). Needs nftables.
    pub fn build_behind_nat() -> Result<Self> {
        Self::build_with(TopologyBuilder::new(), true)
    }

    /// [`SiteToSite::build_behind_nat`] with namespaces named `<prefix><host>`.
    pub fn build_named_behind_nat(prefix: &str) -> Result<Self> {
        Self::build_with(TopologyBuilder::new().namespace_prefix(prefix), true)
    }

    fn build_with(builder: TopologyBuilder, nat: bool) -> Result<Self> {
        use plan::*;
        let cidr = |a: Ipv4Addr, len: u8| format!("{a}/{len}");
        let mut builder = builder
            .host("idc_host")
            .router("customer_gw")
            .router("cloud_gw")
            .host("vpc_host")
            .link(
                ("idc_host", "eth0", &cidr(IDC_HOST, 24)),
                ("customer_gw", "lan0", &cidr(CUSTOMER_GW_LAN, 24)),
            )
            .link(
                ("cloud_gw", "vpc0", &cidr(CLOUD_GW_VPC, 24)),
                ("vpc_host", "eth0", &cidr(VPC_HOST, 24)),
            )
            .route("idc_host", "default", &CUSTOMER_GW_LAN.to_string())
            .route("vpc_host", "default", &CLOUD_GW_VPC.to_string());
        builder = if nat {
            builder
                .router("nat")
                .link(
                    ("customer_gw", "wan0", &cidr(CUSTOMER_GW_PRIVATE, 24)),
                    ("nat", "in0", &cidr(NAT_INSIDE, 24)),
                )
                .link(
                    ("nat", NAT_PUBLIC_DEV, &cidr(CUSTOMER_GW_WAN, 24)),
                    ("cloud_gw", "wan0", &cidr(CLOUD_GW_WAN, 24)),
                )
                .route("customer_gw", CLOUD_PUBLIC_PREFIX, &NAT_INSIDE.to_string())
                .route("nat", CLOUD_PUBLIC_PREFIX, &CLOUD_GW_WAN.to_string())
        } else {
            builder
                .link(
                    ("customer_gw", "wan0", &cidr(CUSTOMER_GW_WAN, 24)),
                    ("cloud_gw", "wan0", &cidr(CLOUD_GW_WAN, 24)),
                )
                .route(
                    "customer_gw",
                    CLOUD_PUBLIC_PREFIX,
                    &CLOUD_GW_WAN.to_string(),
                )
        };
        for t in &TUNNELS {
            builder = builder.address("cloud_gw", "lo", &cidr(t.cloud_public, 32));
        }
        let mut hosts = builder.build()?.into_namespaces();
        let mut take = |expected: &str| match hosts.iter().position(|(n, _)| n == expected) {
            Some(i) => Ok(hosts.remove(i).1),
            None => Err(HarnessError::Invalid(format!(
                "site_to_site: {expected} missing"
            ))),
        };
        let s2s = SiteToSite {
            idc_host: take("idc_host")?,
            customer_gw: take("customer_gw")?,
            cloud_gw: take("cloud_gw")?,
            vpc_host: take("vpc_host")?,
            nat: if nat { Some(take("nat")?) } else { None },
        };
        if let Some(ns) = &s2s.nat {
            translate_udp(ns, NAT_PUBLIC_DEV, CUSTOMER_GW_WAN, &NAT_PORTS)?;
        }
        Ok(s2s)
    }

    pub fn idc_host(&self) -> &Netns {
        &self.idc_host
    }

    pub fn customer_gw(&self) -> &Netns {
        &self.customer_gw
    }

    pub fn cloud_gw(&self) -> &Netns {
        &self.cloud_gw
    }

    pub fn vpc_host(&self) -> &Netns {
        &self.vpc_host
    }

    /// The NAT router reboots: its mappings are gone and UDP is translated to `ports`
    /// from now on. An error without a NAT router.
    pub fn reboot_nat(&self, ports: &RangeInclusive<u16>) -> Result<()> {
        let ns = self.nat.as_ref().ok_or_else(|| {
            HarnessError::Invalid("site_to_site: built without a NAT router".into())
        })?;
        reboot_nat(ns, plan::NAT_PUBLIC_DEV, plan::CUSTOMER_GW_WAN, ports)
    }

    /// An iperf3 server on the IDC host (its plan address, port 5201), logging to `log`:
    /// the far end of the tests' VPC -> IDC throughput runs.
    pub fn iperf_server_on_idc(&self, log: &Path) -> Result<IperfServer> {
        IperfServer::start(&self.idc_host, plan::IDC_HOST.into(), 5201, log)
    }

    /// Routes each site's prefix into the tunnel device of the opposite gateway, e.g.
    /// `("ipsec0", "ipsec0")` for kernel-libipsec on both sides, which installs no routes
    /// itself with `routing_table = 0`.
    pub fn route_sites_via(&self, customer_dev: &str, cloud_dev: &str) -> Result<()> {
        self.customer_gw
            .ip(&["route", "replace", plan::VPC_PREFIX, "dev", customer_dev])?;
        self.cloud_gw
            .ip(&["route", "replace", plan::IDC_PREFIX, "dev", cloud_dev])?;
        Ok(())
    }

    /// Gives up ownership of the namespaces (they stay); returns their names in the
    /// order of [`SiteToSite::namespace_names`].
    pub fn keep(self) -> Vec<String> {
        [
            Some(self.idc_host),
            Some(self.customer_gw),
            Some(self.cloud_gw),
            Some(self.vpc_host),
            self.nat,
        ]
        .into_iter()
        .flatten()
        .map(Netns::keep)
        .collect()
    }

    /// All namespace names: idc_host, customer_gw, cloud_gw, vpc_host, then the NAT
    /// router's if there is one.
    pub fn namespace_names(&self) -> Vec<String> {
        [
            Some(&self.idc_host),
            Some(&self.customer_gw),
            Some(&self.cloud_gw),
            Some(&self.vpc_host),
            self.nat.as_ref(),
        ]
        .into_iter()
        .flatten()
        .map(|ns| ns.name().to_owned())
        .collect()
    }
}
