//! The customer gateway behind a port-translating NAT router (an enterprise edge, a home
//! router), as cloud VPN services allow: the customer initiates, both sides detect the
//! NAT, ESP travels in UDP through it. Then the NAT reboots (mappings flushed, new ports):
//! the customer's next ESP arrives from a new port, and the cloud side follows it at
//! once, IKE and ESP (RFC 7296 2.23), so traffic towards the customer recovers without
//! waiting for a DPD or a rekey. The customer is vpngw, then strongSwan (kernel-libipsec),
//! the cloud vpngw.

use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use e2e::nat::{NAT_PORTS, NAT_PORTS_AFTER_REBOOT};
use e2e::{
    ping, plan, skip_unless_root, wait_until, Charon, CharonConfig, PingOptions, Psk, Side,
    SiteToSite, Vpngw, VpngwConfig,
};

const UP: Duration = Duration::from_secs(30);
const BOTH: [&str; 2] = ["tunnel1", "tunnel2"];

fn psks() -> [Psk; 2] {
    [Psk::from("nat-e2e-psk-one"), Psk::from("nat-e2e-psk-two")]
}

/// The cloud side's view of tunnel `name`'s peer.
fn cloud_peer(cloud: &Vpngw, name: &str) -> anyhow::Result<SocketAddr> {
    let s = cloud.status()?;
    let t = s.tunnel(name).ok_or_else(|| anyhow::anyhow!("no {name}"))?;
    Ok(t.peer.parse()?)
}

/// `peer` is the NAT's public address at a port of `ports`.
fn behind_nat(peer: SocketAddr, ports: &RangeInclusive<u16>) -> bool {
    peer.ip() == IpAddr::V4(plan::CUSTOMER_GW_WAN) && ports.contains(&peer.port())
}

/// The customer side: vpngw behind the NAT, initiating, identified by the NAT's public
/// address (which the cloud is configured with, as cloud VPN services ask).
fn customer_config() -> VpngwConfig {
    VpngwConfig::for_plan_behind_nat(Side::Customer, psks())
}

/// The cloud side: vpngw answering the customer at the NAT's public address.
fn cloud_config() -> VpngwConfig {
    VpngwConfig::for_plan_behind_nat(Side::Cloud, psks())
}

/// Every ping VPC -> IDC is answered (`when`: for the message).
fn vpc_reaches_idc(s2s: &SiteToSite, when: &str) -> anyhow::Result<()> {
    let r = ping(
        s2s.vpc_host(),
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
    s2s: &SiteToSite,
    within: Duration,
    logs: impl Fn() -> String,
) -> anyhow::Result<()> {
    let idc = s2s.idc_host();
    let one = PingOptions {
        count: 1,
        ..PingOptions::default()
    };
    wait_until("IDC -> VPC replies through the new mapping", within, || {
        ping(idc, plan::VPC_HOST.into(), &one).is_ok_and(|s| s.all_replied())
    })
    .map_err(|e| anyhow::anyhow!("{e}\n{}", logs()))?;
    vpc_reaches_idc(s2s, "after the NAT reboot")
}

/// [`wait_recovered`] with the vpngw cloud following: tunnel1's peer is the new mapping,
/// and the cloud's dataplane reported the new source.
fn check_followed(s2s: &SiteToSite, cloud: &Vpngw, within: Duration) -> anyhow::Result<()> {
    wait_recovered(s2s, within, || format!("cloud:\n{}", cloud.log_tail(30)))?;
    let peer = cloud_peer(cloud, "tunnel1")?;
    anyhow::ensure!(
        behind_nat(peer, &NAT_PORTS_AFTER_REBOOT),
        "tunnel1: cloud still sends to {peer}"
    );
    let s = cloud.status()?;
    let reported = s.counter("esp_new_source");
    anyhow::ensure!(
        reported >= 1,
        "the cloud's dataplane reported no new source: {s:?}"
    );
    Ok(())
}

/// Before the reboot: the cloud sees each tunnel's peer at a translated port, and the
/// VPC reaches the IDC.
fn check_through_nat(s2s: &SiteToSite, cloud: &Vpngw) -> anyhow::Result<()> {
    let s = cloud.status()?;
    for name in BOTH {
        let peer = cloud_peer(cloud, name)?;
        anyhow::ensure!(behind_nat(peer, &NAT_PORTS), "{name}: cloud sees {peer}");
        let nat = s.tunnel(name).and_then(|t| t.nat.as_deref());
        anyhow::ensure!(nat == Some("peer"), "{name}: cloud's NAT detection {nat:?}");
    }
    vpc_reaches_idc(s2s, "through the NAT")
}

#[test]
fn a_customer_behind_a_nat_is_followed_through_a_nat_reboot() -> anyhow::Result<()> {
    if skip_unless_root("a_customer_behind_a_nat_is_followed_through_a_nat_reboot") {
        return Ok(());
    }
    let s2s = SiteToSite::build_behind_nat()?;

    let mut cloud = Vpngw::start(s2s.cloud_gw(), &cloud_config())?;
    let mut customer = Vpngw::start(s2s.customer_gw(), &customer_config())?;
    customer.wait_up(&BOTH, UP)?;
    cloud.wait_up(&BOTH, UP)?;
    check_through_nat(&s2s, &cloud)?;

    s2s.reboot_nat(&NAT_PORTS_AFTER_REBOOT)?;
    // The customer sends on tunnel1 (active-standby): its ESP tells the cloud at once.
    check_followed(&s2s, &cloud, Duration::from_secs(10))?;
    // tunnel2 carries no traffic: the customer's next DPD (every 10 s) on it comes
    // through the new mapping, and the cloud's IKE and ESP follow that message.
    wait_until("tunnel2 followed on IKE", Duration::from_secs(30), || {
        cloud_peer(&cloud, "tunnel2").is_ok_and(|p| behind_nat(p, &NAT_PORTS_AFTER_REBOOT))
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
    let s2s = SiteToSite::build_behind_nat()?;

    let customer_cfg = CharonConfig::site_to_site_behind_nat(Side::Customer, psks());
    let mut cloud = Vpngw::start(s2s.cloud_gw(), &cloud_config())?;
    let customer_ns = s2s.customer_gw();
    let mut customer = Charon::start(customer_ns, &customer_cfg)?;
    cloud.wait_up(&BOTH, UP)?;
    customer.wait_up(&BOTH, UP)?;
    // kernel-libipsec installs no routes here: the VPC goes into its device.
    customer_ns.ip(&["route", "replace", plan::VPC_PREFIX, "dev", e2e::IPSEC_DEV])?;
    check_through_nat(&s2s, &cloud)?;

    s2s.reboot_nat(&NAT_PORTS_AFTER_REBOOT)?;
    // strongSwan may send on either tunnel's SA; the cloud answers on tunnel1, which
    // follows once strongSwan's ESP or IKE (DPD every 10 s) on it comes through.
    check_followed(&s2s, &cloud, Duration::from_secs(40))
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
    let s2s = SiteToSite::build_behind_nat()?;
    let cloud_cfg = CharonConfig::site_to_site_behind_nat(Side::Cloud, psks());
    let cloud_ns = s2s.cloud_gw();
    let mut cloud = Charon::start(cloud_ns, &cloud_cfg)?;
    let mut customer = Vpngw::start(s2s.customer_gw(), &customer_config())?;
    customer.wait_up(&BOTH, UP)?;
    let sas = cloud.wait_up(&BOTH, UP)?;
    cloud_ns.ip(&["route", "replace", plan::IDC_PREFIX, "dev", e2e::IPSEC_DEV])?;
    let remote = |sas: &[e2e::charon::IkeSa]| {
        e2e::charon::find_up(sas, "tunnel1").and_then(|sa| sa.remote())
    };
    let seen = remote(&sas);
    anyhow::ensure!(
        seen.is_some_and(|p| behind_nat(p, &NAT_PORTS)),
        "strongSwan sees tunnel1's peer at {seen:?}"
    );
    vpc_reaches_idc(&s2s, "through the NAT")?;

    s2s.reboot_nat(&NAT_PORTS_AFTER_REBOOT)?;
    // vpngw's ESP and its DPD (every 10 s) come through the new mapping; strongSwan
    // follows them, and traffic both ways recovers.
    wait_recovered(&s2s, Duration::from_secs(40), || {
        format!("strongSwan:\n{}", cloud.log_tail(30))
    })?;
    let seen = remote(&cloud.list_sas()?);
    anyhow::ensure!(
        seen.is_some_and(|p| behind_nat(p, &NAT_PORTS_AFTER_REBOOT)),
        "strongSwan still sees tunnel1's peer at {seen:?}"
    );
    customer.check_running()?;
    Ok(())
}
