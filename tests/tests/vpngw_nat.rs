//! The customer gateway behind a port-translating NAT router (an enterprise edge, a home
//! router), as cloud VPN services allow: the customer initiates, both sides detect the
//! NAT, ESP travels in UDP through it. Then the NAT reboots (mappings flushed, new ports):
//! the customer's next ESP arrives from a new port, and the cloud side follows it at
//! once, IKE and ESP (RFC 7296 2.23), so traffic towards the customer recovers without
//! waiting for a DPD or a rekey. The customer is vpngw, then strongSwan (kernel-libipsec),
//! the cloud vpngw.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use e2e::{
    ping, plan, skip_unless_root, wait_until, Charon, CharonConfig, Netns, PingOptions, Psk, Side,
    Topology, TopologyBuilder, Vpngw, VpngwConfig,
};

const UP: Duration = Duration::from_secs(30);
const BOTH: [&str; 2] = ["tunnel1", "tunnel2"];
/// The customer gateway's private underlay address, and the NAT's sides.
const CUSTOMER_PRIVATE: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 2);
const NAT_INSIDE: Ipv4Addr = Ipv4Addr::new(100, 64, 0, 1);
const NAT_PUBLIC: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 2);
const CLOUD_WAN: Ipv4Addr = Ipv4Addr::new(192, 0, 2, 1);

fn psks() -> [Psk; 2] {
    [Psk::from("nat-e2e-psk-one"), Psk::from("nat-e2e-psk-two")]
}

/// idc_host - customer_gw - nat - cloud_gw - vpc_host; the cloud has no route to the
/// customer's private underlay, so only translated packets reach it.
fn topology() -> anyhow::Result<Topology> {
    let cidr = |a: Ipv4Addr, len: u8| format!("{a}/{len}");
    let mut b = TopologyBuilder::new()
        .host("idc_host")
        .router("customer_gw")
        .router("nat")
        .router("cloud_gw")
        .host("vpc_host")
        .link(
            ("idc_host", "eth0", &cidr(plan::IDC_HOST, 24)),
            ("customer_gw", "lan0", &cidr(plan::CUSTOMER_GW_LAN, 24)),
        )
        .link(
            ("customer_gw", "wan0", &cidr(CUSTOMER_PRIVATE, 24)),
            ("nat", "in0", &cidr(NAT_INSIDE, 24)),
        )
        .link(
            ("nat", "out0", &cidr(NAT_PUBLIC, 24)),
            ("cloud_gw", "wan0", &cidr(CLOUD_WAN, 24)),
        )
        .link(
            ("cloud_gw", "vpc0", &cidr(plan::CLOUD_GW_VPC, 24)),
            ("vpc_host", "eth0", &cidr(plan::VPC_HOST, 24)),
        )
        .route("idc_host", "default", &plan::CUSTOMER_GW_LAN.to_string())
        .route("vpc_host", "default", &plan::CLOUD_GW_VPC.to_string())
        .route(
            "customer_gw",
            plan::CLOUD_PUBLIC_PREFIX,
            &NAT_INSIDE.to_string(),
        )
        .route("nat", plan::CLOUD_PUBLIC_PREFIX, &CLOUD_WAN.to_string());
    for t in &plan::TUNNELS {
        b = b.address("cloud_gw", "lo", &cidr(t.cloud_public, 32));
    }
    Ok(b.build()?)
}

/// Source NAT of UDP leaving `out0` to ports `first..first + 1000` (never the original
/// 500/4500, so a translated port is unmistakable).
fn nat_ports(nat: &Netns, first: u16) -> anyhow::Result<()> {
    let last = first + 999;
    nat.run(&["nft", "flush", "ruleset"])?;
    let rules = format!(
        "table ip nat {{\n chain post {{\n  type nat hook postrouting priority srcnat; policy accept;\n  \
         oifname \"out0\" meta l4proto udp snat to {NAT_PUBLIC}:{first}-{last}\n }}\n}}\n"
    );
    let file = std::env::temp_dir().join(format!("{}.nft", nat.name()));
    std::fs::write(&file, rules)?;
    let loaded = nat.run(&["nft", "-f", &file.display().to_string()]);
    let _ = std::fs::remove_file(&file);
    loaded?;
    Ok(())
}

/// The cloud side's view of tunnel `name`'s peer.
fn cloud_peer(cloud: &Vpngw, name: &str) -> anyhow::Result<SocketAddr> {
    let s = cloud.status()?;
    let t = s.tunnel(name).ok_or_else(|| anyhow::anyhow!("no {name}"))?;
    Ok(t.peer.parse()?)
}

fn behind_nat(peer: SocketAddr, first: u16) -> bool {
    peer.ip() == IpAddr::V4(NAT_PUBLIC) && (first..first + 1000).contains(&peer.port())
}

/// The customer side: vpngw behind the NAT, initiating (the cloud cannot reach it
/// through the NAT first), identified by the NAT's public address (which the cloud is
/// configured with, as cloud VPN services ask).
fn customer_config() -> anyhow::Result<String> {
    let mut cfg = VpngwConfig::for_plan(Side::Customer, psks());
    cfg.local_address = CUSTOMER_PRIVATE.into();
    for t in &mut cfg.tunnels {
        t.start_action = "initiate".into();
    }
    let local = format!("[local]\naddress = \"{CUSTOMER_PRIVATE}\"\n");
    let text = cfg.render();
    anyhow::ensure!(text.contains(&local), "{text}");
    Ok(text.replace(&local, &format!("{local}id = \"{NAT_PUBLIC}\"\n")))
}

/// The cloud side: vpngw answering the customer at the NAT's public address.
fn cloud_config() -> VpngwConfig {
    let mut cfg = VpngwConfig::for_plan(Side::Cloud, psks());
    for t in &mut cfg.tunnels {
        t.start_action = "respond".into();
        t.peer = NAT_PUBLIC.into();
    }
    cfg
}

/// The NAT reboots: mappings gone, new ones from ports 41000-41999.
fn reboot_nat(nat: &Netns) -> anyhow::Result<()> {
    nat_ports(nat, 41000)?;
    nat.run(&["conntrack", "-F"])?;
    Ok(())
}

/// The topology with the NAT translating to ports 40000-40999.
fn nat_lab() -> anyhow::Result<Topology> {
    let topo = topology()?;
    nat_ports(topo.ns("nat")?, 40000)?;
    Ok(topo)
}

/// Every ping VPC -> IDC is answered (`when`: for the message).
fn vpc_reaches_idc(topo: &Topology, when: &str) -> anyhow::Result<()> {
    let r = ping(
        topo.ns("vpc_host")?,
        plan::IDC_HOST.into(),
        &PingOptions::default(),
    )?;
    anyhow::ensure!(r.all_replied(), "VPC -> IDC {when}: {r:?}");
    Ok(())
}

/// After the NAT reboot: traffic from the IDC makes the customer send ESP through a new
/// mapping, and the cloud's answers must come back through it within `within`; then
/// VPC -> IDC works too. `logs` names what to show if not.
fn wait_recovered(
    topo: &Topology,
    within: Duration,
    logs: impl Fn() -> String,
) -> anyhow::Result<()> {
    let idc = topo.ns("idc_host")?;
    let one = PingOptions {
        count: 1,
        ..PingOptions::default()
    };
    wait_until("IDC -> VPC replies through the new mapping", within, || {
        ping(idc, plan::VPC_HOST.into(), &one).is_ok_and(|s| s.all_replied())
    })
    .map_err(|e| anyhow::anyhow!("{e}\n{}", logs()))?;
    vpc_reaches_idc(topo, "after the NAT reboot")
}

/// [`wait_recovered`] with the vpngw cloud following: tunnel1's peer is the new mapping,
/// and the cloud's dataplane reported the new source.
fn check_followed(topo: &Topology, cloud: &Vpngw, within: Duration) -> anyhow::Result<()> {
    wait_recovered(topo, within, || format!("cloud:\n{}", cloud.log_tail(30)))?;
    let peer = cloud_peer(cloud, "tunnel1")?;
    anyhow::ensure!(
        behind_nat(peer, 41000),
        "tunnel1: cloud still sends to {peer}"
    );
    let s = cloud.status()?;
    let reported = s.dataplane.get("esp_new_source").copied().unwrap_or(0);
    anyhow::ensure!(
        reported >= 1,
        "the cloud's dataplane reported no new source: {s:?}"
    );
    Ok(())
}

/// Before the reboot: the cloud sees each tunnel's peer at a translated port, and the
/// VPC reaches the IDC.
fn check_through_nat(topo: &Topology, cloud: &Vpngw) -> anyhow::Result<()> {
    let s = cloud.status()?;
    for name in BOTH {
        let peer = cloud_peer(cloud, name)?;
        anyhow::ensure!(behind_nat(peer, 40000), "{name}: cloud sees {peer}");
        let nat = s.tunnel(name).and_then(|t| t.nat.as_deref());
        anyhow::ensure!(nat == Some("peer"), "{name}: cloud's NAT detection {nat:?}");
    }
    vpc_reaches_idc(topo, "through the NAT")
}

#[test]
fn a_customer_behind_a_nat_is_followed_through_a_nat_reboot() -> anyhow::Result<()> {
    if skip_unless_root("a_customer_behind_a_nat_is_followed_through_a_nat_reboot") {
        return Ok(());
    }
    let topo = nat_lab()?;
    let nat = topo.ns("nat")?;

    let mut cloud = Vpngw::start(topo.ns("cloud_gw")?, &cloud_config())?;
    let mut customer = Vpngw::start_text(topo.ns("customer_gw")?, &customer_config()?)?;
    customer.wait_up(&BOTH, UP)?;
    cloud.wait_up(&BOTH, UP)?;
    check_through_nat(&topo, &cloud)?;

    reboot_nat(nat)?;
    // The customer sends on tunnel1 (active-standby): its ESP tells the cloud at once.
    check_followed(&topo, &cloud, Duration::from_secs(10))?;
    // tunnel2 carries no traffic: the customer's next DPD (every 10 s) on it comes
    // through the new mapping, and the cloud's IKE and ESP follow that message.
    wait_until("tunnel2 followed on IKE", Duration::from_secs(30), || {
        cloud_peer(&cloud, "tunnel2").is_ok_and(|p| behind_nat(p, 41000))
    })
    .map_err(|e| anyhow::anyhow!("{e}\ncloud:\n{}", cloud.log_tail(30)))?;
    // The customer, behind the NAT, still sends to the cloud's own address.
    let c = customer.status()?;
    let own = c
        .tunnel("tunnel1")
        .map(|t| t.peer.clone())
        .unwrap_or_default();
    anyhow::ensure!(own == "203.0.113.1:4500", "customer's peer: {own}");
    // It sees its NAT, and the cloud as behind one too: vpngw forces UDP encapsulation
    // by a NAT detection hash that cannot match, as strongSwan does.
    let nat = c.tunnel("tunnel1").and_then(|t| t.nat.as_deref());
    anyhow::ensure!(nat == Some("both"), "customer's NAT detection: {nat:?}");
    customer.check_running()?;
    cloud.check_running()?;
    Ok(())
}

#[test]
fn a_strongswan_customer_behind_a_nat_is_followed_through_a_nat_reboot() -> anyhow::Result<()> {
    if skip_unless_root("a_strongswan_customer_behind_a_nat_is_followed_through_a_nat_reboot") {
        return Ok(());
    }
    let topo = nat_lab()?;
    let nat = topo.ns("nat")?;

    let mut customer_cfg = CharonConfig::site_to_site(Side::Customer, psks());
    for t in &mut customer_cfg.tunnels {
        t.local_addr = CUSTOMER_PRIVATE.into();
        t.local_id = Some(NAT_PUBLIC.to_string());
        t.start_action = e2e::charon::StartAction::Start;
    }
    let mut cloud = Vpngw::start(topo.ns("cloud_gw")?, &cloud_config())?;
    let customer_ns = topo.ns("customer_gw")?;
    let mut customer = Charon::start(customer_ns, &customer_cfg)?;
    cloud.wait_up(&BOTH, UP)?;
    customer.wait_up(&BOTH, UP)?;
    // kernel-libipsec installs no routes here: the VPC goes into its device.
    customer_ns.ip(&["route", "replace", plan::VPC_PREFIX, "dev", e2e::IPSEC_DEV])?;
    check_through_nat(&topo, &cloud)?;

    reboot_nat(nat)?;
    // strongSwan may send on either tunnel's SA; the cloud answers on tunnel1, which
    // follows once strongSwan's ESP or IKE (DPD every 10 s) on it comes through.
    check_followed(&topo, &cloud, Duration::from_secs(40))
        .map_err(|e| anyhow::anyhow!("{e}\nstrongSwan:\n{}", customer.log_tail(30)))?;
    cloud.check_running()?;
    Ok(())
}

#[test]
fn a_customer_behind_a_nat_recovers_with_a_strongswan_cloud_after_a_nat_reboot(
) -> anyhow::Result<()> {
    if skip_unless_root(
        "a_customer_behind_a_nat_recovers_with_a_strongswan_cloud_after_a_nat_reboot",
    ) {
        return Ok(());
    }
    let topo = nat_lab()?;
    let nat = topo.ns("nat")?;
    let mut cloud_cfg = CharonConfig::site_to_site(Side::Cloud, psks());
    for t in &mut cloud_cfg.tunnels {
        t.remote_addr = NAT_PUBLIC.into();
        t.start_action = e2e::charon::StartAction::None;
    }
    let cloud_ns = topo.ns("cloud_gw")?;
    let mut cloud = Charon::start(cloud_ns, &cloud_cfg)?;
    let mut customer = Vpngw::start_text(topo.ns("customer_gw")?, &customer_config()?)?;
    customer.wait_up(&BOTH, UP)?;
    let sas = cloud.wait_up(&BOTH, UP)?;
    cloud_ns.ip(&["route", "replace", plan::IDC_PREFIX, "dev", e2e::IPSEC_DEV])?;
    let remote = |sas: &[e2e::charon::IkeSa]| {
        e2e::charon::find_up(sas, "tunnel1").and_then(|sa| sa.remote_host.zip(sa.remote_port))
    };
    let seen = remote(&sas);
    anyhow::ensure!(
        seen.is_some_and(|(ip, port)| behind_nat(SocketAddr::new(ip, port), 40000)),
        "strongSwan sees tunnel1's peer at {seen:?}"
    );
    vpc_reaches_idc(&topo, "through the NAT")?;

    reboot_nat(nat)?;
    // vpngw's ESP and its DPD (every 10 s) come through the new mapping; strongSwan
    // follows them, and traffic both ways recovers.
    wait_recovered(&topo, Duration::from_secs(40), || {
        format!("strongSwan:\n{}", cloud.log_tail(30))
    })?;
    let seen = remote(&cloud.list_sas()?);
    anyhow::ensure!(
        seen.is_some_and(|(ip, port)| behind_nat(SocketAddr::new(ip, port), 41000)),
        "strongSwan still sees tunnel1's peer at {seen:?}"
    );
    customer.check_running()?;
    Ok(())
}
