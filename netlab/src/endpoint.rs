//! A whole strongSwan + BIRD gateway on one side of the site-to-site topology: charon
//! with both tunnels, the tunnel inner addresses on `ipsec0`, and BIRD speaking eBGP to
//! the other side over each tunnel. As `Side::Cloud` it is the cloud endpoint vpngw
//! must interoperate with (ASN 65000, initiating); as `Side::Customer` it is the
//! strongSwan baseline of the customer device.

use std::net::Ipv4Addr;
use std::time::Duration;

use crate::bird::{BgpPeer, Bird, BirdConfig};
use crate::charon::{Charon, CharonConfig, Side};
use crate::error::Result;
use crate::netns::Netns;
use crate::secret::Psk;
use crate::site_to_site::{plan, SiteToSite, TunnelPlan};
use crate::wait::wait_until;

/// kernel-libipsec's single TUN device.
pub const IPSEC_DEV: &str = "ipsec0";

/// What a [`StrongswanEndpoint`] runs.
#[derive(Debug, Clone)]
pub struct EndpointOptions {
    /// Run BIRD with one eBGP session per tunnel on the inner addresses.
    pub bgp: bool,
    /// Route the other site's prefix statically into `ipsec0` (instead of, or in
    /// addition to, BGP).
    pub static_route: bool,
}

impl Default for EndpointOptions {
    fn default() -> Self {
        EndpointOptions {
            bgp: true,
            static_route: false,
        }
    }
}

/// charon (+ BIRD) on one gateway of a [`SiteToSite`]. Stopped on drop.
#[derive(Debug)]
pub struct StrongswanEndpoint {
    // BIRD first: its sessions go down before the tunnels do.
    pub bird: Option<Bird>,
    pub charon: Charon,
    side: Side,
}

impl StrongswanEndpoint {
    /// Starts charon on `side`'s gateway with both plan tunnels (PSKs in tunnel
    /// order), puts the inner addresses on `ipsec0`, and starts BIRD if asked.
    /// Returns at once: use [`Charon::wait_up`] and [`Bird::wait_established`].
    pub fn start(
        s2s: &SiteToSite,
        side: Side,
        psks: [Psk; 2],
        opts: &EndpointOptions,
    ) -> Result<Self> {
        Self::start_with(s2s, side, &CharonConfig::site_to_site(side, psks), opts)
    }

    /// Like [`StrongswanEndpoint::start`] with a charon config of the caller's (e.g.
    /// `CharonConfig::site_to_site` with a tunnel changed).
    pub fn start_with(
        s2s: &SiteToSite,
        side: Side,
        config: &CharonConfig,
        opts: &EndpointOptions,
    ) -> Result<Self> {
        let ns = match side {
            Side::Cloud => s2s.cloud_gw(),
            Side::Customer => s2s.customer_gw(),
        };
        let charon = Charon::start(ns, config)?;
        wait_until("ipsec0 to appear", Duration::from_secs(10), || {
            ns.ip(&["link", "show", IPSEC_DEV]).is_ok()
        })
        .map_err(|e| charon.with_log(e))?;
        for t in &plan::TUNNELS {
            let (local, _) = inner_pair(t, side);
            ns.ip(&[
                "addr",
                "add",
                &format!("{local}/{}", t.inner_prefix_len),
                "dev",
                IPSEC_DEV,
            ])?;
        }
        if opts.static_route {
            let remote_prefix = match side {
                Side::Cloud => plan::IDC_PREFIX,
                Side::Customer => plan::VPC_PREFIX,
            };
            ns.ip(&["route", "replace", remote_prefix, "dev", IPSEC_DEV])?;
        }
        let bird = if opts.bgp {
            Some(Bird::start(ns, &bird_config(side)?)?)
        } else {
            None
        };
        Ok(StrongswanEndpoint { bird, charon, side })
    }

    pub fn side(&self) -> Side {
        self.side
    }

    /// The namespace name of the gateway.
    pub fn namespace(&self) -> &str {
        self.charon.namespace()
    }
}

/// (local, remote) inner addresses of a tunnel seen from `side`.
pub fn inner_pair(t: &TunnelPlan, side: Side) -> (Ipv4Addr, Ipv4Addr) {
    match side {
        Side::Cloud => (t.cloud_inner, t.customer_inner),
        Side::Customer => (t.customer_inner, t.cloud_inner),
    }
}

/// The BIRD config of a side: one peer per tunnel (named like the tunnel), announcing
/// the side's own site prefix, installing learned routes in the kernel.
pub fn bird_config(side: Side) -> Result<BirdConfig> {
    let (router_id, asn, peer_asn, prefix) = match side {
        Side::Cloud => (
            plan::CLOUD_GW_VPC,
            plan::CLOUD_ASN,
            plan::CUSTOMER_ASN,
            plan::VPC_PREFIX,
        ),
        Side::Customer => (
            plan::CUSTOMER_GW_LAN,
            plan::CUSTOMER_ASN,
            plan::CLOUD_ASN,
            plan::IDC_PREFIX,
        ),
    };
    let mut config = BirdConfig::new(router_id, asn).announce(prefix.parse()?);
    for t in &plan::TUNNELS {
        let (local, remote) = inner_pair(t, side);
        config = config.peer(BgpPeer::new(t.name, local.into(), remote.into(), peer_asn));
    }
    config.export_to_kernel = true;
    Ok(config)
}

/// The namespace of `side` in `s2s`.
pub fn gateway(s2s: &SiteToSite, side: Side) -> &Netns {
    match side {
        Side::Cloud => s2s.cloud_gw(),
        Side::Customer => s2s.customer_gw(),
    }
}
