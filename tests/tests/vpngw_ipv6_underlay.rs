//! vpngw <-> vpngw over an IPv6 underlay: IKE on UDP 500/4500 and ESP-in-UDP between
//! IPv6 addresses, IPv4 sites behind them.

use std::net::{IpAddr, Ipv6Addr};
use std::time::Duration;

use e2e::{
    ping, plan, skip_unless_root, PacketCapture, PingOptions, Psk, Side, SiteToSite, Tool, Vpngw,
    VpngwConfig, WorkDir,
};

const UP: Duration = Duration::from_secs(30);
const BOTH: [&str; 2] = ["tunnel1", "tunnel2"];
const CUSTOMER: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 2);
const CLOUD_WAN: Ipv6Addr = Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 1);
/// The cloud's two tunnel endpoints, on its loopback.
const CLOUD_PUBLIC: [Ipv6Addr; 2] = [
    Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 1),
    Ipv6Addr::new(0x2001, 0xdb8, 1, 0, 0, 0, 0, 2),
];

fn psks() -> [Psk; 2] {
    [Psk::from("v6-e2e-psk-one"), Psk::from("v6-e2e-psk-two")]
}

/// Moves a plan config onto the IPv6 underlay.
fn over_ipv6(side: Side) -> VpngwConfig {
    let mut cfg = VpngwConfig::for_plan(side, psks());
    cfg.local_address = match side {
        Side::Customer => CUSTOMER.into(),
        Side::Cloud => CLOUD_PUBLIC[0].into(),
    };
    for (t, public) in cfg.tunnels.iter_mut().zip(CLOUD_PUBLIC) {
        match side {
            Side::Customer => t.peer = public.into(),
            Side::Cloud => {
                t.local_address = Some(public.into());
                t.peer = CUSTOMER.into();
            }
        }
    }
    cfg
}

#[test]
fn vpngw_pair_over_an_ipv6_underlay() -> anyhow::Result<()> {
    if skip_unless_root("vpngw_pair_over_an_ipv6_underlay") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    let (cust, cloud) = (s2s.customer_gw(), s2s.cloud_gw());
    cust.ip(&[
        "-6",
        "addr",
        "add",
        &format!("{CUSTOMER}/64"),
        "dev",
        "wan0",
        "nodad",
    ])?;
    cloud.ip(&[
        "-6",
        "addr",
        "add",
        &format!("{CLOUD_WAN}/64"),
        "dev",
        "wan0",
        "nodad",
    ])?;
    for a in CLOUD_PUBLIC {
        cloud.ip(&["-6", "addr", "add", &format!("{a}/128"), "dev", "lo"])?;
    }
    cust.ip(&[
        "-6",
        "route",
        "add",
        "2001:db8:1::/64",
        "via",
        &CLOUD_WAN.to_string(),
    ])?;
    let reach = ping(cust, IpAddr::V6(CLOUD_PUBLIC[1]), &PingOptions::default())?;
    anyhow::ensure!(reach.all_replied(), "underlay: {reach:?}");

    let mut customer = Vpngw::start(cust, &over_ipv6(Side::Customer))?;
    let mut cloud_gw = Vpngw::start(cloud, &over_ipv6(Side::Cloud))?;
    cloud_gw.wait_up(&BOTH, UP)?;
    let status = customer.wait_up(&BOTH, UP)?;
    for (t, public) in BOTH.iter().zip(CLOUD_PUBLIC) {
        let s = status
            .tunnel(t)
            .ok_or_else(|| anyhow::anyhow!("{t} missing"))?;
        anyhow::ensure!(
            s.peer == format!("[{public}]:4500"),
            "{t} peer {} (expected the IPv6 endpoint on 4500)",
            s.peer
        );
    }

    let opts = PingOptions::default();
    let a = ping(s2s.vpc_host(), plan::IDC_HOST.into(), &opts)?;
    anyhow::ensure!(a.all_replied(), "VPC -> IDC: {a:?}");
    let b = ping(s2s.idc_host(), plan::VPC_HOST.into(), &opts)?;
    anyhow::ensure!(b.all_replied(), "IDC -> VPC: {b:?}");
    let c = customer.status()?;
    let t1 = c
        .tunnel("tunnel1")
        .ok_or_else(|| anyhow::anyhow!("tunnel1 missing"))?;
    anyhow::ensure!(
        t1.packets_in > 0 && t1.packets_out > 0,
        "ESP counters: {t1:?}"
    );
    // ESP arrives from exactly where each side sends it (IPv6 source addresses compare
    // equal to the IKE peer's): no NAT mapping change is reported.
    for (side, s) in [("customer", &c), ("cloud", &cloud_gw.status()?)] {
        let moved = s.dataplane.get("esp_new_source").copied();
        anyhow::ensure!(moved == Some(0), "{side}: esp_new_source {moved:?}");
    }
    // DSCP and ECN over the IPv6 underlay: the outer traffic class carries the inner
    // DSCP AF41 and ECT(0), an underlay router marks congestion on it, and the mark
    // reaches the inner packet at the VPC host.
    let dir = WorkDir::new("vpngw-v6-qos")?;
    cust.run(&[
        Tool::Nft.path(),
        "add table ip6 congested; \
         add chain ip6 congested post { type filter hook postrouting priority 0; }; \
         add rule ip6 congested post oifname \"wan0\" udp dport 4500 ip6 ecn set ce",
    ])?;
    let esp = "ip6 and udp dst port 4500";
    let mut wan = PacketCapture::start(cloud, "wan0", esp, dir.join("wan.pcap"))?;
    let mut vpc = PacketCapture::start(s2s.vpc_host(), "eth0", "icmp", dir.join("vpc.pcap"))?;
    let af41_ect0 = PingOptions {
        tos: Some(0x8a),
        ..PingOptions::default()
    };
    let marked = ping(s2s.idc_host(), plan::VPC_HOST.into(), &af41_ect0)?;
    anyhow::ensure!(marked.all_replied(), "AF41 pings: {marked:?}");
    // Traffic class 0x8b (AF41, CE) sits in bits 4-11 of the IPv6 header.
    wan.wait_count(
        &format!("{esp} and (ip6[0:2] & 0x0ff0) == 0x08b0"),
        3,
        Duration::from_secs(5),
    )?;
    vpc.wait_count(
        "icmp[icmptype] == icmp-echo and ip[1] == 0x8b",
        3,
        Duration::from_secs(5),
    )?;
    // ESP pads to AES blocks within what the 1500-byte IPv6 underlay leaves after the
    // IPv6 and UDP headers.
    anyhow::ensure!(customer.stop(), "the customer daemon did not exit cleanly");
    let log = customer.log()?;
    anyhow::ensure!(
        log.contains("esp_size_limit=1452"),
        "no IPv6 path MTU for ESP padding:\n{log}"
    );
    Ok(())
}
