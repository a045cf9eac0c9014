//! BIRD <-> BIRD eBGP between two namespaces: the BGP side of the harness.

use std::net::Ipv4Addr;
use std::time::Duration;

use e2e::{plan, skip_unless_root, BgpPeer, Bird, BirdConfig, TopologyBuilder};

const TIMEOUT: Duration = Duration::from_secs(20);

#[test]
fn ebgp_between_cloud_and_customer_asns_exchanges_routes() -> anyhow::Result<()> {
    if skip_unless_root("ebgp_between_cloud_and_customer_asns_exchanges_routes") {
        return Ok(());
    }
    // The BGP session runs on the tunnel-1 inner addresses of the plan.
    let t = &plan::TUNNELS[0];
    let (cloud_addr, customer_addr) = (t.cloud_inner, t.customer_inner);
    let topo = TopologyBuilder::new()
        .host("bgp_cloud")
        .host("bgp_customer")
        .link(
            ("bgp_cloud", "tun1", &format!("{cloud_addr}/30")),
            ("bgp_customer", "tun1", &format!("{customer_addr}/30")),
        )
        .build()?;

    let cloud_cfg = BirdConfig::new(Ipv4Addr::new(10, 20, 0, 1), plan::CLOUD_ASN)
        .peer(BgpPeer::new(
            "customer",
            cloud_addr.into(),
            customer_addr.into(),
            plan::CUSTOMER_ASN,
        ))
        .announce(plan::VPC_PREFIX.parse()?);
    let mut customer_cfg = BirdConfig::new(Ipv4Addr::new(10, 10, 0, 1), plan::CUSTOMER_ASN)
        .peer(BgpPeer::new(
            "cloud",
            customer_addr.into(),
            cloud_addr.into(),
            plan::CLOUD_ASN,
        ))
        .announce(plan::IDC_PREFIX.parse()?)
        .announce("10.11.0.0/16".parse()?);
    customer_cfg.export_to_kernel = true;

    let mut cloud = Bird::start(topo.ns("bgp_cloud")?, &cloud_cfg)?;
    let mut customer = Bird::start(topo.ns("bgp_customer")?, &customer_cfg)?;
    cloud.wait_established("customer", TIMEOUT)?;
    customer.wait_established("cloud", TIMEOUT)?;

    // Each side learns the other's prefixes with the peer's ASN as the AS path.
    let learned = customer.wait_route(plan::VPC_PREFIX, "cloud", TIMEOUT)?;
    anyhow::ensure!(learned.as_path == [plan::CLOUD_ASN], "{learned:?}");
    anyhow::ensure!(learned.via == Some(cloud_addr.into()), "{learned:?}");
    anyhow::ensure!(learned.primary && learned.attribute("BGP.origin") == Some("IGP"));
    for prefix in [plan::IDC_PREFIX, "10.11.0.0/16"] {
        let r = cloud.wait_route(prefix, "customer", TIMEOUT)?;
        anyhow::ensure!(r.as_path == [plan::CUSTOMER_ASN], "{r:?}");
        anyhow::ensure!(r.via == Some(customer_addr.into()), "{r:?}");
    }
    // Only the originated prefixes are exported: nothing learned comes back.
    let echoed: Vec<_> = customer
        .routes()?
        .into_iter()
        .filter(|r| r.protocol == "cloud" && r.prefix.to_string() != plan::VPC_PREFIX)
        .collect();
    anyhow::ensure!(
        echoed.is_empty(),
        "unexpected routes from the cloud: {echoed:?}"
    );

    // export_to_kernel puts the learned route into the customer's routing table.
    let kernel = topo
        .ns("bgp_customer")?
        .ip(&["route", "show", plan::VPC_PREFIX])?;
    anyhow::ensure!(
        kernel.contains(&format!("via {cloud_addr}")) && kernel.contains("proto bird"),
        "kernel route: {kernel:?}"
    );

    // Disabling the session withdraws the routes on the other side.
    cloud.set_enabled("customer", false)?;
    e2e::wait_until("customer's BGP route withdrawn", TIMEOUT, || {
        customer
            .routes()
            .is_ok_and(|rs| !rs.iter().any(|r| r.protocol == "cloud"))
    })?;
    let proto = customer.protocols()?;
    let cloud_proto = proto.iter().find(|p| p.name == "cloud");
    anyhow::ensure!(
        cloud_proto.is_some_and(|p| !p.is_established()),
        "{proto:?}"
    );
    // ...and enabling it brings them back.
    cloud.set_enabled("customer", true)?;
    customer.wait_route(plan::VPC_PREFIX, "cloud", TIMEOUT)?;
    Ok(())
}
