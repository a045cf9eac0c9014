//! IPv6 between the sites through the IPv4 tunnels (the CHILD SAs cover `::/0` too):
//! static IPv6 routes on both gateways carry ping and TCP; an IPv6 packet larger than
//! tunnel1's MTU (1300, below the TUN device's 1400) is answered by vpngw with ICMPv6
//! Packet Too Big (it has no IPv6 address on the tunnel: the answer comes from the
//! packet's destination; before, such packets were dropped unanswered, a PMTU black
//! hole); disabling tunnel1 moves the IPv6 traffic to tunnel2 as it does IPv4.

use std::time::Duration;

use e2e::{skip_unless_root, IperfServer, Psk, Side, SiteToSite, Vpngw, VpngwConfig, WorkDir};

const UP: Duration = Duration::from_secs(30);
const BOTH: [&str; 2] = ["tunnel1", "tunnel2"];
const IDC6: &str = "fd00:10::10";
const VPC6: &str = "fd00:20::10";

fn psks() -> [Psk; 2] {
    [
        Psk::from("ipv6-inner-psk-one"),
        Psk::from("ipv6-inner-psk-two"),
    ]
}

/// The plan's config with the other site's IPv6 prefix routed over tunnel1 then tunnel2.
fn config(side: Side) -> VpngwConfig {
    let mut cfg = VpngwConfig::for_plan(side, psks());
    let remote = match side {
        Side::Customer => "fd00:20::/64",
        Side::Cloud => "fd00:10::/64",
    };
    cfg.routes
        .push((remote.into(), vec!["tunnel1".into(), "tunnel2".into()]));
    cfg
}

/// IPv6 addresses and routes on the sites: each host on its gateway's LAN.
fn add_ipv6(s2s: &SiteToSite) -> anyhow::Result<()> {
    for (ns, dev, addr) in [
        (s2s.idc_host(), "eth0", "fd00:10::10/64"),
        (s2s.customer_gw(), "lan0", "fd00:10::1/64"),
        (s2s.cloud_gw(), "vpc0", "fd00:20::1/64"),
        (s2s.vpc_host(), "eth0", "fd00:20::10/64"),
    ] {
        ns.ip(&["-6", "addr", "add", addr, "dev", dev, "nodad"])?;
    }
    s2s.idc_host()
        .ip(&["-6", "route", "add", "default", "via", "fd00:10::1"])?;
    s2s.vpc_host()
        .ip(&["-6", "route", "add", "default", "via", "fd00:20::1"])?;
    for gw in [s2s.customer_gw(), s2s.cloud_gw()] {
        gw.run(&["sysctl", "-q", "-w", "net.ipv6.conf.all.forwarding=1"])?;
    }
    Ok(())
}

fn ping6(s2s: &SiteToSite, size: &str) -> anyhow::Result<String> {
    let out = s2s.idc_host().output(&[
        "ping", "-6", "-n", "-c", "3", "-i", "0.2", "-W", "2", "-s", size, VPC6,
    ])?;
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[test]
fn ipv6_crosses_the_ipv4_tunnels() -> anyhow::Result<()> {
    if skip_unless_root("ipv6_crosses_the_ipv4_tunnels") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    add_ipv6(&s2s)?;
    let mut narrow = config(Side::Customer);
    if let Some(t) = narrow.tunnel_mut("tunnel1") {
        t.mtu = 1300;
    }
    let mut customer = Vpngw::start(s2s.customer_gw(), &narrow)?;
    let mut cloud = Vpngw::start(s2s.cloud_gw(), &config(Side::Cloud))?;
    cloud.wait_up(&BOTH, UP)?;
    customer.wait_up(&BOTH, UP)?;

    let small = ping6(&s2s, "56")?;
    anyhow::ensure!(small.contains(" 0% packet loss"), "IDC -> VPC: {small}");
    // 1301 bytes: fits the TUN device, not tunnel1.
    let big = ping6(&s2s, "1253")?;
    anyhow::ensure!(
        big.contains("Packet too big") && big.contains("mtu=1300"),
        "no Packet Too Big from vpngw: {big}"
    );
    let fits = ping6(&s2s, "1252")?;
    anyhow::ensure!(
        fits.contains(" 0% packet loss"),
        "a packet of the tunnel MTU: {fits}"
    );

    let dir = WorkDir::new("vpngw-ipv6-inner")?;
    let server = IperfServer::start(s2s.idc_host(), IDC6.parse()?, 5201, &dir.join("iperf.log"))?;
    let tcp = server.tcp_from(s2s.vpc_host(), Duration::from_secs(2))?;
    anyhow::ensure!(tcp.received_bytes > 1_000_000, "TCP VPC -> IDC: {tcp:?}");
    let t1 = customer.status()?;
    anyhow::ensure!(
        t1.tunnel("tunnel1")
            .is_some_and(|t| t.packets_in > 500 && t.drops.is_empty()),
        "IPv6 went through tunnel1: {}",
        t1.summary()
    );

    customer.disable("tunnel1")?;
    let moved = ping6(&s2s, "56")?;
    anyhow::ensure!(
        moved.contains(" 0% packet loss"),
        "after tunnel1 was disabled: {moved}"
    );
    let st = customer.status()?;
    anyhow::ensure!(
        st.tunnel("tunnel2").is_some_and(|t| t.packets_in >= 3),
        "{}",
        st.summary()
    );
    drop(cloud);
    Ok(())
}
