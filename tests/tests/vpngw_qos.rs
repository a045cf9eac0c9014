//! DSCP and ECN across a vpngw pair, as a network engineer's QoS and congestion control
//! need them: the ESP the underlay sees carries the inner packet's DSCP and ECN
//! (strongSwan's defaults `copy_dscp = out`, `copy_ecn = yes`), a congestion mark an
//! underlay router sets on the ESP reaches the inner packet (RFC 6040; a sender without
//! ECN gets the drop instead), and `vpngw reload` changes the handling without
//! renegotiating the tunnels.

use std::time::Duration;

use e2e::{
    ping, plan, skip_unless_root, PacketCapture, PingOptions, Psk, Side, SiteToSite, Tool, Vpngw,
    VpngwConfig, WorkDir,
};

const UP: Duration = Duration::from_secs(30);
const SEEN: Duration = Duration::from_secs(5);

/// DSCP EF (46) with ECT(1); DSCP AF41 (34) with ECT(0); Not-ECT and DSCP 0.
const EF_ECT1: u8 = 0xb9;
const AF41_ECT0: u8 = 0x8a;
const AF41_CE: u8 = 0x8b;

fn psks() -> [Psk; 2] {
    [Psk::from("qos-e2e-psk-one"), Psk::from("qos-e2e-psk-two")]
}

/// `count` pings from the IDC host to the VPC host with IP TOS `tos`; the replies.
fn ping_vpc(s2s: &SiteToSite, tos: u8, count: u32) -> anyhow::Result<u32> {
    let opts = PingOptions {
        count,
        tos: Some(tos),
        wait: Duration::from_secs(1),
        ..PingOptions::default()
    };
    Ok(ping(s2s.idc_host(), plan::VPC_HOST.into(), &opts)?.received)
}

/// ESP from the customer gateway with outer TOS `tos`, as a tcpdump filter.
fn customer_esp(tos: u8) -> String {
    format!(
        "src host {} and udp dst port 4500 and ip[1] == {tos}",
        plan::CUSTOMER_GW_WAN
    )
}

#[test]
fn dscp_and_ecn_cross_the_tunnel_and_congestion_marks_come_back_in() -> anyhow::Result<()> {
    if skip_unless_root("dscp_and_ecn_cross_the_tunnel_and_congestion_marks_come_back_in") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    let (customer, cloud) = Vpngw::start_plan_pair(&s2s, psks(), UP)?;
    let dir = WorkDir::new("vpngw-qos")?;

    // Encapsulation: the outer header carries the inner DSCP and ECN, and plain
    // packets stay plain.
    let mut wan = PacketCapture::start(
        s2s.cloud_gw(),
        "wan0",
        "udp port 4500",
        dir.join("wan.pcap"),
    )?;
    let mut vpc = PacketCapture::start(s2s.vpc_host(), "eth0", "icmp", dir.join("vpc.pcap"))?;
    anyhow::ensure!(ping_vpc(&s2s, EF_ECT1, 5)? == 5, "EF pings lost");
    anyhow::ensure!(ping_vpc(&s2s, 0, 3)? == 3, "plain pings lost");
    wan.wait_count(&customer_esp(EF_ECT1), 5, SEEN)?;
    let wan = wan.stop()?;
    let plain = wan.count(&customer_esp(0))?;
    anyhow::ensure!(
        plain >= 3,
        "{plain} plain ESP datagrams, expected the 3 plain pings"
    );
    vpc.wait_count(
        &format!("icmp[icmptype] == icmp-echo and ip[1] == {EF_ECT1}"),
        5,
        SEEN,
    )?;

    // Decapsulation: an underlay router marks congestion (CE) on everything the
    // customer gateway sends. An ECN-capable packet arrives marked; one whose sender
    // does not take ECN is dropped and counted.
    s2s.customer_gw().run(&[
        Tool::Nft.path(),
        "add table ip congested; \
         add chain ip congested post { type filter hook postrouting priority 0; }; \
         add rule ip congested post oifname \"wan0\" udp dport 4500 ip ecn set ce",
    ])?;
    anyhow::ensure!(ping_vpc(&s2s, AF41_ECT0, 5)? == 5, "ECN-capable pings lost");
    vpc.wait_count(
        &format!("icmp[icmptype] == icmp-echo and ip[1] == {AF41_CE}"),
        5,
        SEEN,
    )?;
    let before = cloud.status()?.counter("ecn_dropped");
    let replies = ping_vpc(&s2s, 0, 3)?;
    let dropped = cloud.status()?.counter("ecn_dropped") - before;
    anyhow::ensure!(
        replies == 0 && dropped >= 3,
        "Not-ECT pings under CE: {replies} replies, {dropped} counted as ecn_dropped"
    );
    s2s.customer_gw()
        .run(&[Tool::Nft.path(), "delete table ip congested"])?;
    let vpc = vpc.stop()?;
    let unmarked = vpc.count(&format!(
        "icmp[icmptype] == icmp-echo and ip[1] == {AF41_ECT0}"
    ))?;
    anyhow::ensure!(
        unmarked == 0,
        "{unmarked} echo requests arrived without the underlay's congestion mark"
    );

    // A reload turns both off at once, without renegotiating: the outer header is
    // plain whatever the inner one says.
    let spis = |v: &Vpngw| -> anyhow::Result<Vec<String>> {
        Ok(v.status()?
            .tunnels
            .iter()
            .flat_map(|t| t.child_sas.iter().map(|c| c.spi_in.clone()))
            .collect())
    };
    let spis_before = spis(&customer)?;
    let mut cfg = VpngwConfig::for_plan(Side::Customer, psks());
    for t in &mut cfg.tunnels {
        t.extra = vec![
            ("copy_dscp".into(), "\"no\"".into()),
            ("copy_ecn".into(), "false".into()),
        ];
    }
    std::fs::write(customer.config_path(), cfg.render())?;
    customer.reload()?;
    let mut wan = PacketCapture::start(
        s2s.cloud_gw(),
        "wan0",
        "udp port 4500",
        dir.join("wan-reloaded.pcap"),
    )?;
    anyhow::ensure!(
        ping_vpc(&s2s, EF_ECT1, 5)? == 5,
        "pings lost after the reload"
    );
    wan.wait_count(&customer_esp(0), 5, SEEN)?;
    let wan = wan.stop()?;
    let marked = wan.count(&customer_esp(EF_ECT1))?;
    anyhow::ensure!(
        marked == 0,
        "{marked} ESP datagrams still carry EF after the reload"
    );
    anyhow::ensure!(
        spis(&customer)? == spis_before,
        "the reload renegotiated: {:?} -> {:?}",
        spis_before,
        spis(&customer)?
    );
    Ok(())
}
