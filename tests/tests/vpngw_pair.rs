//! vpngw on both gateways: the cloud side in the lab config style (one local address per
//! tunnel, initiating), the customer side responding. Traffic, TCP throughput and
//! operator failover between the two tunnels.

use std::time::Duration;

use e2e::{
    ping, plan, skip_unless_root, IperfResult, PingOptions, Psk, Side, SiteToSite, Vpngw,
    VpngwConfig, WorkDir,
};

const UP: Duration = Duration::from_secs(30);
const BOTH: [&str; 2] = ["tunnel1", "tunnel2"];

fn psks() -> [Psk; 2] {
    [Psk::from("pair-e2e-psk-one"), Psk::from("pair-e2e-psk-two")]
}

fn start_pair(s2s: &SiteToSite) -> anyhow::Result<(Vpngw, Vpngw)> {
    Ok(Vpngw::start_plan_pair(s2s, psks(), UP)?)
}

/// Two seconds of iperf3 TCP from the VPC host to the IDC host, through the tunnel.
fn tcp_vpc_to_idc(s2s: &SiteToSite) -> anyhow::Result<IperfResult> {
    let dir = WorkDir::new("vpngw-pair-iperf")?;
    let server = s2s.iperf_server_on_idc(&dir.join("iperf.log"))?;
    Ok(server.tcp_from(s2s.vpc_host(), Duration::from_secs(2))?)
}

#[test]
fn vpngw_pair_carries_ping_and_tcp() -> anyhow::Result<()> {
    if skip_unless_root("vpngw_pair_carries_ping_and_tcp") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    let (customer, cloud) = start_pair(&s2s)?;
    let opts = PingOptions::default();
    let a = ping(s2s.vpc_host(), plan::IDC_HOST.into(), &opts)?;
    anyhow::ensure!(a.all_replied(), "VPC -> IDC: {a:?}");
    let b = ping(s2s.idc_host(), plan::VPC_HOST.into(), &opts)?;
    anyhow::ensure!(b.all_replied(), "IDC -> VPC: {b:?}");
    // The tunnel inner addresses answer across their own tunnel.
    let inner = ping(
        s2s.customer_gw(),
        plan::TUNNELS[1].cloud_inner.into(),
        &opts,
    )?;
    anyhow::ensure!(inner.all_replied(), "inner address of tunnel2: {inner:?}");

    let tcp = tcp_vpc_to_idc(&s2s)?;
    anyhow::ensure!(tcp.received_bytes > 100_000, "{tcp:?}");
    eprintln!(
        "vpngw <-> vpngw (debug build, loaded dev box): {:.0} Mbit/s, {:?} retransmits",
        tcp.received_bits_per_second / 1e6,
        tcp.retransmits
    );
    // Active-standby: tunnel1 carried it all, and ESP counters agree end to end.
    let c = customer.status()?;
    let k = cloud.status()?;
    let (Some(c1), Some(k1)) = (c.tunnel("tunnel1"), k.tunnel("tunnel1")) else {
        anyhow::bail!("tunnel1 missing");
    };
    anyhow::ensure!(
        c1.bytes_in > 100_000 && k1.bytes_out >= c1.bytes_in,
        "{}\n{}",
        c.summary(),
        k.summary()
    );
    anyhow::ensure!(!c1.drops.contains_key("icv_mismatch"), "{:?}", c1.drops);
    Ok(())
}

#[test]
fn disabling_the_active_tunnel_moves_a_running_ping_to_the_other() -> anyhow::Result<()> {
    if skip_unless_root("disabling_the_active_tunnel_moves_a_running_ping_to_the_other") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    let (mut customer, cloud) = start_pair(&s2s)?;
    let opts = PingOptions {
        count: 40,
        interval: Duration::from_millis(100),
        wait: Duration::from_secs(1),
        ..PingOptions::default()
    };
    let stats = std::thread::scope(|scope| -> anyhow::Result<_> {
        let pinger = scope.spawn(|| ping(s2s.vpc_host(), plan::IDC_HOST.into(), &opts));
        std::thread::sleep(Duration::from_millis(1500));
        customer.disable("tunnel1")?;
        let stats = pinger
            .join()
            .map_err(|_| anyhow::anyhow!("ping thread panicked"))??;
        Ok(stats)
    })?;
    anyhow::ensure!(
        stats.received + 3 >= stats.transmitted,
        "lost more than 3 packets over the failover: {stats:?}"
    );
    let c = customer.wait_status("tunnel1 disabled", UP, |s| {
        s.tunnel("tunnel1")
            .is_some_and(|t| t.state == "DOWN" && t.reason.as_deref() == Some("disabled"))
    })?;
    anyhow::ensure!(
        c.tunnel("tunnel2")
            .is_some_and(|t| t.state == "UP" && t.packets_in > 0),
        "{}",
        c.summary()
    );
    let routes = customer.routes()?;
    let vpc = routes
        .routes
        .iter()
        .find(|r| r.prefix == plan::VPC_PREFIX)
        .ok_or_else(|| anyhow::anyhow!("{routes:?}"))?;
    anyhow::ensure!(vpc.active == ["tunnel2"], "{vpc:?}");
    // The cloud side saw our DELETE.
    let k = cloud.status()?;
    anyhow::ensure!(
        k.tunnel("tunnel1").is_some_and(|t| t.state == "DOWN"),
        "{}",
        k.summary()
    );

    customer.enable("tunnel1")?;
    customer.wait_up(&BOTH, UP)?;
    let after = ping(
        s2s.vpc_host(),
        plan::IDC_HOST.into(),
        &PingOptions::default(),
    )?;
    anyhow::ensure!(after.all_replied(), "{after:?}");
    Ok(())
}

#[test]
fn tunnel_mtu_fragments_plain_packets_and_answers_df_with_frag_needed() -> anyhow::Result<()> {
    if skip_unless_root("tunnel_mtu_fragments_plain_packets_and_answers_df_with_frag_needed") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    // tunnel1 is narrower than the TUN device (1400, tunnel2's MTU): vpngw enforces it.
    let mut cfg = VpngwConfig::for_plan(Side::Customer, psks());
    if let Some(t) = cfg.tunnel_mut("tunnel1") {
        t.mtu = 1300;
    }
    let mut customer = Vpngw::start(s2s.customer_gw(), &cfg)?;
    let mut cloud = Vpngw::start(s2s.cloud_gw(), &VpngwConfig::for_plan(Side::Cloud, psks()))?;
    cloud.wait_up(&BOTH, UP)?;
    customer.wait_up(&BOTH, UP)?;
    let vpc = plan::VPC_HOST.to_string();
    // 1378-byte packets without DF: vpngw fragments them to fit tunnel1.
    let plain = s2s.idc_host().run(&[
        "ping", "-q", "-n", "-c", "3", "-i", "0.2", "-W", "2", "-M", "dont", "-s", "1350", &vpc,
    ])?;
    let plain = e2e::PingStats::parse(&plain)?;
    anyhow::ensure!(plain.all_replied(), "{plain:?}");
    let st = customer.status()?;
    anyhow::ensure!(st.counter("fragmented") >= 3, "{:?}", st.dataplane);
    // The same size with DF: ICMP fragmentation needed (mtu 1300) back to the sender.
    let out = s2s.idc_host().output(&[
        "ping", "-n", "-c", "1", "-W", "2", "-M", "do", "-s", "1350", &vpc,
    ])?;
    let text = String::from_utf8_lossy(&out.stdout);
    anyhow::ensure!(
        text.contains("Frag needed") && text.contains("mtu = 1300"),
        "no frag-needed: {text}"
    );
    let st = customer.status()?;
    anyhow::ensure!(st.counter("too_big") >= 1, "{:?}", st.dataplane);
    // An operator raises the TUN MTU past what the workers' buffers were sized for: the
    // first larger packet is lost (counted; two workers may each meet one before they
    // hear of it), the buffers regrow, the rest are fragmented to fit tunnel1 as before. (From the gateway itself: the IDC host has learnt a path
    // MTU of 1300 above and would fragment for vpngw.)
    let fragmented = st.counter("fragmented");
    let gw = s2s.customer_gw();
    gw.ip(&["link", "set", "dev", &cfg.tun_name, "mtu", "3000"])?;
    let big = gw.output(&[
        "ping", "-q", "-n", "-c", "6", "-i", "0.2", "-W", "2", "-M", "dont", "-s", "2500", &vpc,
    ])?;
    let big = e2e::PingStats::parse(&String::from_utf8_lossy(&big.stdout))?;
    let st = customer.status()?;
    let lost = u64::from(big.transmitted.saturating_sub(big.received));
    anyhow::ensure!(
        big.received >= 3 && lost <= st.counter("workers").max(1),
        "{big:?} {:?}",
        st.dataplane
    );
    anyhow::ensure!(st.counter("gso_split_errors") <= lost, "{:?}", st.dataplane);
    anyhow::ensure!(
        st.counter("fragmented") >= fragmented + 3,
        "{:?}",
        st.dataplane
    );
    Ok(())
}

#[test]
fn reload_renegotiates_only_the_changed_tunnel() -> anyhow::Result<()> {
    if skip_unless_root("reload_renegotiates_only_the_changed_tunnel") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    let (mut customer, _cloud) = start_pair(&s2s)?;
    let before = customer.status()?;
    let children = |s: &e2e::VpngwStatus, n: &str| {
        s.tunnel(n)
            .map(|t| {
                t.child_sas
                    .iter()
                    .map(|c| c.spi_in.clone())
                    .collect::<Vec<_>>()
            })
            .unwrap_or_default()
    };
    // A broken file is refused and everything keeps running.
    std::fs::write(customer.config_path(), "[local]\naddress = \"nonsense\"\n")?;
    let out = customer.cli(&["reload"])?;
    anyhow::ensure!(out.status.code() == Some(1), "bad reload accepted: {out:?}");
    // So is a change of the worker count (read at start only), with a clear reason.
    let cfg = VpngwConfig::for_plan(Side::Customer, psks());
    std::fs::write(
        customer.config_path(),
        format!("workers = 1\n{}", cfg.render()),
    )?;
    let out = customer.cli(&["reload"])?;
    anyhow::ensure!(
        out.status.code() == Some(1) && String::from_utf8_lossy(&out.stderr).contains("workers"),
        "reload changing workers accepted: {out:?}"
    );
    // And a change of the connection's mode (the routing table registers it at start).
    let mut ecmp = VpngwConfig::for_plan(Side::Customer, psks());
    ecmp.ecmp = true;
    std::fs::write(customer.config_path(), ecmp.render())?;
    let out = customer.cli(&["reload"])?;
    anyhow::ensure!(
        out.status.code() == Some(1) && String::from_utf8_lossy(&out.stderr).contains("mode"),
        "reload changing the mode accepted: {out:?}"
    );
    // tunnel2's CHILD lifetime changes; tunnel1 stays as it is.
    let mut cfg = VpngwConfig::for_plan(Side::Customer, psks());
    if let Some(t) = cfg.tunnel_mut("tunnel2") {
        t.child_lifetime = ("40m".into(), "50m".into());
    }
    std::fs::write(customer.config_path(), cfg.render())?;
    customer.reload()?;
    let after = customer.wait_status("tunnel2 renegotiated", UP, |s| {
        s.tunnel("tunnel2")
            .is_some_and(|t| t.state == "UP" && !t.child_sas.is_empty())
            && children(s, "tunnel2")
                .iter()
                .all(|spi| !children(&before, "tunnel2").contains(spi))
    })?;
    anyhow::ensure!(
        children(&after, "tunnel1") == children(&before, "tunnel1"),
        "unchanged tunnel1 was renegotiated: {}",
        after.summary()
    );
    Ok(())
}

/// An underlay whose MTU (1300) is smaller than the ESP datagrams of the tunnel MTU
/// (1400 inner, about 1440 outer). vpngw fits the tunnel to what the underlay carries:
/// inner packets above it get ICMP fragmentation needed with the MTU that fits, TCP's
/// MSS is clamped to it, and no ESP datagram needs fragmenting. When the underlay shrinks
/// under running SAs (no SA install since), UDP GSO cannot send the now too large
/// segments, so vpngw sends them without it and the kernel fragments them (outer DF is
/// never set). Before, every GSO run of them was refused (EMSGSIZE) and lost: TCP
/// through the tunnel ran at 56 kbit/s; and before that, full-size inner packets left as
/// fragmented ESP.
#[test]
fn an_underlay_mtu_below_the_esp_size_lowers_the_tunnel_mtu() -> anyhow::Result<()> {
    if skip_unless_root("an_underlay_mtu_below_the_esp_size_lowers_the_tunnel_mtu") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    let set_underlay_mtu = |mtu: &str| -> anyhow::Result<()> {
        for gw in [s2s.customer_gw(), s2s.cloud_gw()] {
            gw.ip(&["link", "set", "wan0", "mtu", mtu])?;
        }
        Ok(())
    };
    set_underlay_mtu("1300")?;
    let (customer, cloud) = start_pair(&s2s)?;
    // aes256gcm16 in UDP over IPv4: 20 + 8 + 8 (SPI, sequence) + 8 (IV) + 2 + 16 (ICV).
    const FITS: u16 = 1300 - 62;
    for gw in [&customer, &cloud] {
        let st = gw.status()?;
        for t in &st.tunnels {
            anyhow::ensure!(t.mtu == FITS, "{} mtu {} (configured 1400)", t.name, t.mtu);
        }
    }
    let vpc = plan::VPC_HOST.to_string();
    let ping_df = |payload: u16| {
        s2s.idc_host().output(&[
            "ping",
            "-n",
            "-c",
            "3",
            "-i",
            "0.2",
            "-W",
            "2",
            "-M",
            "do",
            "-s",
            &payload.to_string(),
            &vpc,
        ])
    };
    let full = String::from_utf8_lossy(&ping_df(FITS - 28)?.stdout).into_owned();
    anyhow::ensure!(
        full.contains(" 0% packet loss"),
        "IDC -> VPC at the fitted MTU: {full}"
    );
    let over = String::from_utf8_lossy(&ping_df(FITS - 27)?.stdout).into_owned();
    anyhow::ensure!(
        over.contains("Frag needed") && over.contains(&format!("mtu = {FITS}")),
        "no frag-needed for a byte more: {over}"
    );

    let sends = |gw: &Vpngw| -> anyhow::Result<(u64, u64)> {
        let st = gw.status()?;
        Ok((st.counter("udp_gso_refused"), st.counter("udp_send_errors")))
    };
    let tcp = tcp_vpc_to_idc(&s2s)?;
    let mbits = tcp.received_bits_per_second / 1e6;
    anyhow::ensure!(mbits > 50.0, "TCP VPC -> IDC at {mbits:.2} Mbit/s: {tcp:?}");
    anyhow::ensure!(
        sends(&cloud)? == (0, 0),
        "the MSS fits: no GSO refusal, no send error"
    );

    // The underlay shrinks under the running SAs: fragmented ESP, not lost ESP.
    set_underlay_mtu("1200")?;
    let tcp = tcp_vpc_to_idc(&s2s)?;
    let mbits = tcp.received_bits_per_second / 1e6;
    anyhow::ensure!(mbits > 50.0, "TCP VPC -> IDC at {mbits:.2} Mbit/s: {tcp:?}");
    let (refused, errors) = sends(&cloud)?;
    anyhow::ensure!(
        refused >= 1 && errors == 0,
        "the cloud's sends: {refused} GSO refused, {errors} errors"
    );
    drop(customer);
    Ok(())
}
