//! The full cloud scenario with strongSwan + BIRD on both gateways: two IPsec tunnels,
//! one eBGP session over each tunnel's inner addresses, routes learned by BGP carry
//! VPC <-> IDC traffic. vpngw later replaces the customer side of this lab.

use std::time::Duration;

use e2e::{
    ping, plan, skip_unless_root, EndpointOptions, PingOptions, Psk, Side, SiteToSite,
    StrongswanEndpoint,
};

const TIMEOUT: Duration = Duration::from_secs(30);

#[test]
fn bgp_over_both_tunnels_routes_vpc_to_idc() -> anyhow::Result<()> {
    if skip_unless_root("bgp_over_both_tunnels_routes_vpc_to_idc") {
        return Ok(());
    }
    let psks = || [Psk::from("lab-one"), Psk::from("lab-two")];
    let s2s = SiteToSite::build()?;
    let opts = EndpointOptions::default();
    let mut customer = StrongswanEndpoint::start(&s2s, Side::Customer, psks(), &opts)?;
    let mut cloud = StrongswanEndpoint::start(&s2s, Side::Cloud, psks(), &opts)?;
    cloud.charon.wait_up(&["tunnel1", "tunnel2"], TIMEOUT)?;
    customer.charon.wait_up(&["tunnel1", "tunnel2"], TIMEOUT)?;

    let (Some(cloud_bird), Some(customer_bird)) = (cloud.bird.as_mut(), customer.bird.as_mut())
    else {
        anyhow::bail!("BIRD not started");
    };
    for t in &plan::TUNNELS {
        cloud_bird.wait_established(t.name, TIMEOUT)?;
        customer_bird.wait_established(t.name, TIMEOUT)?;
    }
    let r = cloud_bird.wait_route(plan::IDC_PREFIX, "tunnel1", TIMEOUT)?;
    anyhow::ensure!(r.as_path == [plan::CUSTOMER_ASN], "{r:?}");
    customer_bird.wait_route(plan::VPC_PREFIX, "tunnel2", TIMEOUT)?;

    // No static routes: the kernel routes BIRD installed carry the traffic.
    let route = s2s.cloud_gw().ip(&["route", "show", plan::IDC_PREFIX])?;
    anyhow::ensure!(
        route.contains("dev ipsec0") && route.contains("proto bird"),
        "{route}"
    );
    let stats = ping(
        s2s.vpc_host(),
        plan::IDC_HOST.into(),
        &PingOptions::default(),
    )?;
    anyhow::ensure!(stats.all_replied(), "VPC -> IDC over BGP routes: {stats:?}");

    // Note: with kernel-libipsec both tunnels share ipsec0 and 0/0 selectors, so a
    // tunnel going down does not take "its" BGP session with it here; per-tunnel
    // failover is for vpngw to show against this cloud side.
    let learned: Vec<_> = cloud_bird
        .routes()?
        .into_iter()
        .filter(|r| r.prefix.to_string() == plan::IDC_PREFIX)
        .map(|r| r.protocol)
        .collect();
    anyhow::ensure!(
        learned.contains(&"tunnel1".to_owned()) && learned.contains(&"tunnel2".to_owned()),
        "IDC prefix should be learned over both tunnels: {learned:?}"
    );
    Ok(())
}
