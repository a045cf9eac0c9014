//! vpngw (customer, AS 65010) with eBGP over both tunnels to strongSwan + BIRD as the
//! cloud border gateway (AS 65000): routes exchanged both ways over IPsec (over the
//! standby tunnel with our AS prepended), and traffic moving to tunnel 2 when BIRD shuts
//! the session of tunnel 1.
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
        standby_prepend: None,
    }
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

    // Our prefix at BIRD over both tunnels, AS path 65010, prepended twice over the
    // standby tunnel2, so BIRD prefers tunnel1 as we do; BIRD's in our routing table.
    let one = bird.wait_route(plan::IDC_PREFIX, "tunnel1", UP)?;
    anyhow::ensure!(
        one.as_path == [plan::CUSTOMER_ASN] && one.primary,
        "{one:?}"
    );
    let two = bird.wait_route(plan::IDC_PREFIX, "tunnel2", UP)?;
    anyhow::ensure!(
        two.as_path == [plan::CUSTOMER_ASN; 3] && !two.primary,
        "{two:?}"
    );
    e2e::wait_until("VPC prefix from BGP in vpngw routes", UP, || {
        !vpngw.bgp_active(plan::VPC_PREFIX).is_empty()
    })?;
    let s = vpngw.bgp()?;
    anyhow::ensure!(
        e2e::sessions_learned_one_route(&s, 2) && s.iter().all(|s| s.prefixes_advertised == 1),
        "{s:?}"
    );
    let opts = PingOptions::default();
    let p = ping(s2s.vpc_host(), plan::IDC_HOST.into(), &opts)?;
    anyhow::ensure!(p.all_replied(), "VPC -> IDC: {p:?}");
    let p = ping(s2s.idc_host(), plan::VPC_HOST.into(), &opts)?;
    anyhow::ensure!(p.all_replied(), "IDC -> VPC: {p:?}");

    // BIRD shuts tunnel 1's session: the VPC prefix moves to tunnel 2, traffic goes on.
    let before = vpngw.bgp_active(plan::VPC_PREFIX);
    anyhow::ensure!(before == ["tunnel1"], "{before:?}");
    bird.set_enabled("tunnel1", false)?;
    e2e::wait_until("VPC prefix via tunnel2", Duration::from_secs(9), || {
        vpngw.bgp_active(plan::VPC_PREFIX) == ["tunnel2"]
    })?;
    let p = ping(s2s.idc_host(), plan::VPC_HOST.into(), &opts)?;
    anyhow::ensure!(p.all_replied(), "IDC -> VPC after failover: {p:?}");
    let s = vpngw.bgp()?;
    let t1 = s.iter().find(|s| s.tunnel == "tunnel1");
    anyhow::ensure!(t1.is_some_and(|s| s.state != "Established"), "{s:?}");
    Ok(())
}

/// The cloud announces maintenance of tunnel 1 the RFC 8326 way: BIRD tags what it
/// advertises there with GRACEFUL_SHUTDOWN (65535:0) while the session stays up. vpngw
/// moves the VPC prefix to tunnel 2 at once (such a route loses to any other), and back
/// when the tag goes. (It kept using tunnel 1, whose shorter-or-equal path still won,
/// until the session itself went down.)
#[test]
fn a_graceful_shutdown_community_moves_the_route_to_the_other_tunnel() -> anyhow::Result<()> {
    if skip_unless_root("a_graceful_shutdown_community_moves_the_route_to_the_other_tunnel") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    let (vpngw, mut cloud) = bgp_up(&s2s, false)?;
    let bird = bird(&mut cloud)?;
    e2e::wait_until("VPC prefix via tunnel1", UP, || {
        vpngw.bgp_active(plan::VPC_PREFIX) == ["tunnel1"]
    })?;
    let since = |b: &e2e::Bird| -> anyhow::Result<Vec<String>> {
        Ok(b.protocols()?.into_iter().map(|p| p.since).collect())
    };
    let before = since(bird)?;
    let mut config = e2e::bird_config(Side::Cloud)?;
    let plain = config.clone();
    for p in config.peers.iter_mut().filter(|p| p.name == "tunnel1") {
        p.export_communities = vec![(65535, 0)];
    }
    bird.reconfigure(&config)?;
    e2e::wait_until("VPC prefix via tunnel2", Duration::from_secs(10), || {
        vpngw.bgp_active(plan::VPC_PREFIX) == ["tunnel2"]
    })
    .map_err(|e| anyhow::anyhow!("{e}: {:?}", vpngw.routes()))?;
    // Nothing went down for it: both sessions up all along, each with its route.
    anyhow::ensure!(since(bird)? == before, "BIRD restarted a protocol");
    let s = vpngw.bgp()?;
    anyhow::ensure!(e2e::sessions_learned_one_route(&s, 2), "{s:?}");
    let p = ping(
        s2s.idc_host(),
        plan::VPC_HOST.into(),
        &PingOptions::default(),
    )?;
    anyhow::ensure!(p.all_replied(), "IDC -> VPC over tunnel2: {p:?}");
    // Maintenance over: the untagged route wins again.
    bird.reconfigure(&plain)?;
    e2e::wait_until(
        "VPC prefix via tunnel1 again",
        Duration::from_secs(10),
        || vpngw.bgp_active(plan::VPC_PREFIX) == ["tunnel1"],
    )?;
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
        let mut active = vpngw.bgp_active(plan::VPC_PREFIX);
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
    let sent = |v: &Vpngw, t: &str| v.status().map_or(0, |s| s.packets(t).1);
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
        || vpngw.bgp_active(plan::VPC_PREFIX) == ["tunnel2"],
    )?;
    let p = ping(s2s.idc_host(), plan::VPC_HOST.into(), &opts)?;
    anyhow::ensure!(p.all_replied(), "IDC -> VPC over tunnel2: {p:?}");
    // Back: both again.
    bird.set_enabled("tunnel1", true)?;
    e2e::wait_until("VPC prefix over both tunnels again", UP, || {
        vpngw.bgp_active(plan::VPC_PREFIX).len() == 2
    })?;
    Ok(())
}

/// Disabling a tunnel for maintenance: vpngw ends its BGP session over that tunnel
/// (Cease) while the tunnel still carries it, then deletes the SAs. BIRD hears the
/// shutdown at once and moves the IDC prefix to the other tunnel; the cloud's traffic
/// loses nothing. (Before, vpngw moved its routes first: the Cease had no route, and
/// BIRD kept the session and its route into the deleted SAs until its hold timer ran
/// out, which a peer that routes by BGP rather than by IKE policy would have
/// black-holed.) Stopping vpngw does the same for the other tunnel.
#[test]
fn disabling_a_tunnel_tells_bird_before_its_sas_go() -> anyhow::Result<()> {
    if skip_unless_root("disabling_a_tunnel_tells_bird_before_its_sas_go") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    let (vpngw, mut cloud) = bgp_up(&s2s, false)?;
    let bird = bird(&mut cloud)?;
    for t in ["tunnel1", "tunnel2"] {
        bird.wait_route(plan::IDC_PREFIX, t, UP)?;
    }
    let dir = WorkDir::new("bgp-disable")?;
    let server = s2s.iperf_server_on_idc(&dir.join("iperf3.log"))?;
    let received = |t: &str| vpngw.status().map_or(0, |s| s.packets(t).0);
    // 5000 datagrams a second VPC -> IDC, well within what strongSwan carries here.
    let stream = IperfOptions {
        duration: Duration::from_secs(4),
        udp_bitrate: Some(40_000_000),
        length: Some(1000),
        ..IperfOptions::default()
    };
    let (udp, disabled, took) = std::thread::scope(|scope| -> anyhow::Result<_> {
        let client =
            scope.spawn(|| iperf_client(s2s.vpc_host(), server.addr(), server.port(), &stream));
        let before = [received("tunnel1"), received("tunnel2")];
        std::thread::sleep(Duration::from_millis(1500));
        let after = [received("tunnel1"), received("tunnel2")];
        // The tunnel the cloud sends on.
        let busy = if after[0] - before[0] >= after[1] - before[1] {
            "tunnel1"
        } else {
            "tunnel2"
        };
        let start = std::time::Instant::now();
        vpngw.disable(busy)?;
        let took = start.elapsed();
        let udp = client
            .join()
            .map_err(|_| anyhow::anyhow!("iperf thread panicked"))??;
        Ok((udp, busy, took))
    })?;
    // BIRD heard the Cease (it would say "Hold timer expired" seconds later otherwise).
    let p = bird.protocols()?;
    let session = p.iter().find(|p| p.name == disabled);
    anyhow::ensure!(
        session.is_some_and(|p| !p.is_established() && p.info.contains("Administrative shutdown")),
        "BIRD's session over {disabled} after the disable: {session:?}"
    );
    anyhow::ensure!(
        !bird
            .routes()?
            .iter()
            .any(|r| r.prefix.to_string() == plan::IDC_PREFIX && r.protocol == disabled),
        "BIRD still routes the IDC prefix over {disabled}"
    );
    // Of 20000 datagrams: a busy machine may cost kernel-libipsec a few, a route into
    // the deleted SAs would cost thousands (a quarter of a second).
    let lost = udp.lost_packets.unwrap_or(u64::MAX);
    anyhow::ensure!(
        udp.received_bytes > 0 && lost <= 100,
        "{lost} datagrams lost when {disabled} was disabled: {udp:?}"
    );
    // The goodbye takes a round trip, at most a second.
    anyhow::ensure!(took < Duration::from_secs(3), "disable took {took:?}");
    let st = vpngw.status()?;
    let t = st
        .tunnel(disabled)
        .ok_or_else(|| anyhow::anyhow!("no {disabled} in status"))?;
    anyhow::ensure!(t.state != "UP" && t.child_sas.is_empty(), "{t:?}");

    // Stopping vpngw ends the other tunnel's session the same way.
    let other = if disabled == "tunnel1" {
        "tunnel2"
    } else {
        "tunnel1"
    };
    let mut vpngw = vpngw;
    anyhow::ensure!(vpngw.stop(), "vpngw did not exit cleanly");
    let p = bird.protocols()?;
    let session = p.iter().find(|p| p.name == other);
    anyhow::ensure!(
        session.is_some_and(|p| !p.is_established() && p.info.contains("Administrative shutdown")),
        "BIRD's session over {other} after vpngw stopped: {session:?}"
    );
    Ok(())
}
