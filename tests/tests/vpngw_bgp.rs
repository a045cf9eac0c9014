//! vpngw (customer, AS 65010) with eBGP over both tunnels to strongSwan + BIRD as the
//! cloud border gateway (AS 65000): routes exchanged both ways over IPsec, and traffic
//! moving to tunnel 2 when BIRD shuts the session of tunnel 1.
//! vpngw starts with BGP and no static routes: every route it uses is learned. In ECMP
//! mode a prefix learned over both tunnels at equal cost uses both.

use std::time::Duration;

use e2e::{
    iperf_client, ping, plan, skip_unless_root, EndpointOptions, IperfOptions, IperfServer,
    PingOptions, Psk, Side, SiteToSite, StrongswanEndpoint, Vpngw, VpngwBgp, VpngwConfig, WorkDir,
};

const UP: Duration = Duration::from_secs(40);

fn psks() -> [Psk; 2] {
    [
        Psk::from("vpngw-bgp-psk-one"),
        Psk::from("vpngw-bgp-psk-two"),
    ]
}

fn bgp() -> VpngwBgp {
    VpngwBgp {
        local_asn: plan::CUSTOMER_ASN,
        peer_asn: plan::CLOUD_ASN,
        advertise: vec![plan::IDC_PREFIX.into()],
        hold_time: "9s".into(),
    }
}

#[derive(Debug, serde::Deserialize)]
struct Session {
    tunnel: String,
    state: String,
    prefixes_received: usize,
    prefixes_advertised: usize,
}

fn sessions(vpngw: &Vpngw) -> anyhow::Result<Vec<Session>> {
    let out = vpngw.cli(&["bgp", "--json"])?;
    anyhow::ensure!(out.status.success(), "vpngw bgp: {out:?}");
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// The tunnels that carry `prefix` now, by `vpngw routes` (source bgp).
fn bgp_active(vpngw: &Vpngw, prefix: &str) -> Vec<String> {
    vpngw.routes().map_or_else(
        |_| Vec::new(),
        |r| {
            r.routes
                .into_iter()
                .filter(|r| r.prefix == prefix && r.source == "bgp")
                .flat_map(|r| r.active)
                .collect()
        },
    )
}

/// vpngw with BGP and no static routes, strongSwan + BIRD on the cloud side: both tunnels
/// UP and BIRD's sessions over them established.
fn bgp_up(s2s: &SiteToSite, ecmp: bool) -> anyhow::Result<(Vpngw, StrongswanEndpoint)> {
    let mut cfg = VpngwConfig::for_plan(Side::Customer, psks());
    cfg.routes.clear();
    cfg.bgp = Some(bgp());
    cfg.ecmp = ecmp;
    let mut vpngw = Vpngw::start(s2s.customer_gw(), &cfg)?;
    let opts = EndpointOptions {
        bgp: true,
        static_route: false,
    };
    let mut cloud = StrongswanEndpoint::start(s2s, Side::Cloud, psks(), &opts)?;
    vpngw.wait_up(&["tunnel1", "tunnel2"], UP)?;
    let b = bird(&mut cloud)?;
    b.wait_established("tunnel1", UP)?;
    b.wait_established("tunnel2", UP)?;
    Ok((vpngw, cloud))
}

fn bird(cloud: &mut StrongswanEndpoint) -> anyhow::Result<&mut e2e::Bird> {
    cloud
        .bird
        .as_mut()
        .ok_or_else(|| anyhow::anyhow!("no BIRD on the cloud side"))
}

#[test]
fn bgp_over_both_tunnels_with_bird_and_failover() -> anyhow::Result<()> {
    if skip_unless_root("bgp_over_both_tunnels_with_bird_and_failover") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    let (vpngw, mut cloud) = bgp_up(&s2s, false)?;
    let bird = bird(&mut cloud)?;

    // Our prefix at BIRD over both tunnels, AS path 65010; BIRD's in our routing table.
    for t in ["tunnel1", "tunnel2"] {
        let r = bird.wait_route(plan::IDC_PREFIX, t, UP)?;
        anyhow::ensure!(r.as_path == [plan::CUSTOMER_ASN], "{r:?}");
    }
    e2e::wait_until("VPC prefix from BGP in vpngw routes", UP, || {
        !bgp_active(&vpngw, plan::VPC_PREFIX).is_empty()
    })?;
    let s = sessions(&vpngw)?;
    anyhow::ensure!(
        s.len() == 2
            && s.iter().all(|s| s.state == "Established"
                && s.prefixes_received == 1
                && s.prefixes_advertised == 1),
        "{s:?}"
    );
    let opts = PingOptions::default();
    let p = ping(s2s.vpc_host(), plan::IDC_HOST.into(), &opts)?;
    anyhow::ensure!(p.all_replied(), "VPC -> IDC: {p:?}");
    let p = ping(s2s.idc_host(), plan::VPC_HOST.into(), &opts)?;
    anyhow::ensure!(p.all_replied(), "IDC -> VPC: {p:?}");

    // BIRD shuts tunnel 1's session: the VPC prefix moves to tunnel 2, traffic goes on.
    let before = bgp_active(&vpngw, plan::VPC_PREFIX);
    anyhow::ensure!(before == ["tunnel1"], "{before:?}");
    bird.set_enabled("tunnel1", false)?;
    e2e::wait_until("VPC prefix via tunnel2", Duration::from_secs(9), || {
        bgp_active(&vpngw, plan::VPC_PREFIX) == ["tunnel2"]
    })?;
    let p = ping(s2s.idc_host(), plan::VPC_HOST.into(), &opts)?;
    anyhow::ensure!(p.all_replied(), "IDC -> VPC after failover: {p:?}");
    let s = sessions(&vpngw)?;
    let t1 = s.iter().find(|s| s.tunnel == "tunnel1");
    anyhow::ensure!(t1.is_some_and(|s| s.state != "Established"), "{s:?}");
    Ok(())
}

/// A connection in ECMP mode spreads a prefix that both sessions learn at equal cost
/// (BIRD announces the VPC prefix with the same attributes over both tunnels) over both
/// tunnels, as it does a static route; a session that ends takes its tunnel out.
#[test]
fn bgp_ecmp_uses_both_tunnels_for_an_equal_cost_prefix() -> anyhow::Result<()> {
    if skip_unless_root("bgp_ecmp_uses_both_tunnels_for_an_equal_cost_prefix") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    let (vpngw, mut cloud) = bgp_up(&s2s, true)?;
    let bird = bird(&mut cloud)?;
    e2e::wait_until("VPC prefix over both tunnels", UP, || {
        let mut active = bgp_active(&vpngw, plan::VPC_PREFIX);
        active.sort();
        active == ["tunnel1", "tunnel2"]
    })
    .map_err(|e| anyhow::anyhow!("{e}: {:?}", vpngw.routes()))?;
    let opts = PingOptions::default();
    let p = ping(s2s.idc_host(), plan::VPC_HOST.into(), &opts)?;
    anyhow::ensure!(p.all_replied(), "IDC -> VPC: {p:?}");

    // Eight TCP flows IDC -> VPC: the flow hash puts some on each tunnel.
    let dir = WorkDir::new("bgp-ecmp")?;
    let _server = IperfServer::start(
        s2s.vpc_host(),
        plan::VPC_HOST.into(),
        5201,
        &dir.join("iperf3.log"),
    )?;
    let sent = |v: &Vpngw, t: &str| {
        v.status()
            .ok()
            .and_then(|s| s.tunnel(t).map(|t| t.packets_out))
            .unwrap_or(0)
    };
    let before = [sent(&vpngw, "tunnel1"), sent(&vpngw, "tunnel2")];
    let flows = IperfOptions {
        duration: Duration::from_secs(1),
        streams: 8,
        ..IperfOptions::default()
    };
    iperf_client(s2s.idc_host(), plan::VPC_HOST.into(), 5201, &flows)?;
    let after = [sent(&vpngw, "tunnel1"), sent(&vpngw, "tunnel2")];
    anyhow::ensure!(
        after[0] > before[0] + 100 && after[1] > before[1] + 100,
        "packets out per tunnel before {before:?}, after {after:?}"
    );

    bird.set_enabled("tunnel1", false)?;
    e2e::wait_until(
        "VPC prefix via tunnel2 alone",
        Duration::from_secs(9),
        || bgp_active(&vpngw, plan::VPC_PREFIX) == ["tunnel2"],
    )?;
    let p = ping(s2s.idc_host(), plan::VPC_HOST.into(), &opts)?;
    anyhow::ensure!(p.all_replied(), "IDC -> VPC over tunnel2: {p:?}");
    // Back: both again.
    bird.set_enabled("tunnel1", true)?;
    e2e::wait_until("VPC prefix over both tunnels again", UP, || {
        bgp_active(&vpngw, plan::VPC_PREFIX).len() == 2
    })?;
    Ok(())
}
