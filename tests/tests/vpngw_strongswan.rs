//! vpngw as the customer gateway against strongSwan (kernel-libipsec) as the cloud
//! endpoint: interoperability of IKE and ESP with a real peer, both directions of
//! initiation, traffic VPC <-> IDC through the tunnels.

use std::time::Duration;

use e2e::charon::{find_up, summary, ChildSa, IkeSa, StartAction};
use e2e::{
    ping, plan, skip_unless_root, Charon, CharonConfig, EndpointOptions, PingOptions, Psk, Side,
    SiteToSite, StrongswanEndpoint, Vpngw, VpngwConfig, VpngwStatus,
};

const UP: Duration = Duration::from_secs(30);

fn psks() -> [Psk; 2] {
    [
        Psk::from("vpngw-e2e-psk-one"),
        Psk::from("vpngw-e2e-psk-two"),
    ]
}

fn no_bgp() -> EndpointOptions {
    EndpointOptions {
        bgp: false,
        static_route: true,
    }
}

fn child<'a>(sas: &'a [IkeSa], name: &str) -> anyhow::Result<&'a ChildSa> {
    find_up(sas, name)
        .and_then(|sa| sa.installed_children().find(|c| c.name == name))
        .ok_or_else(|| anyhow::anyhow!("tunnel {name} not up:\n{}", summary(sas)))
}

/// Our CHILD SA of each tunnel is strongSwan's, mirrored: our inbound SPI is its
/// outbound one and vice versa, with the same algorithm.
fn check_sas_match(ours: &VpngwStatus, theirs: &[IkeSa]) -> anyhow::Result<()> {
    for t in &plan::TUNNELS {
        let ours = ours
            .tunnel(t.name)
            .ok_or_else(|| anyhow::anyhow!("{} missing in vpngw status", t.name))?;
        let c = child(theirs, t.name)?;
        let matching = ours
            .child_sas
            .iter()
            .find(|o| o.spi_in() == c.spi_out && o.spi_out() == c.spi_in);
        let Some(o) = matching else {
            anyhow::bail!(
                "{}: strongSwan SPIs in {:08x} out {:08x}, ours {:?}",
                t.name,
                c.spi_in,
                c.spi_out,
                ours.child_sas
            );
        };
        anyhow::ensure!(
            c.encr_alg.as_deref() == Some("AES_GCM_16") && c.encr_keysize == Some(256),
            "strongSwan {}: {:?}/{:?}",
            t.name,
            c.encr_alg,
            c.encr_keysize
        );
        anyhow::ensure!(o.proposal == "aes256gcm16", "ours: {}", o.proposal);
        let ike = ours
            .ike
            .as_ref()
            .ok_or_else(|| anyhow::anyhow!("no IKE SPIs"))?;
        let sa = find_up(theirs, t.name).ok_or_else(|| anyhow::anyhow!("{} down", t.name))?;
        anyhow::ensure!(
            ike.spi_i == format!("{:016x}", sa.initiator_spi)
                && ike.spi_r == format!("{:016x}", sa.responder_spi),
            "IKE SPIs differ: ours {ike:?}, strongSwan {:016x}/{:016x}",
            sa.initiator_spi,
            sa.responder_spi
        );
        // Both report the same negotiated IKE algorithms (ours in proposal syntax).
        let algs = (
            sa.encr_alg.as_deref(),
            sa.encr_keysize,
            sa.integ_alg.as_deref(),
            sa.prf_alg.as_deref(),
            sa.dh_group.as_deref(),
        );
        anyhow::ensure!(
            algs == (
                Some("AES_CBC"),
                Some(256),
                Some("HMAC_SHA2_256_128"),
                Some("PRF_HMAC_SHA2_256"),
                Some("MODP_2048")
            ) && ike.proposal == "aes256-sha256-prfsha256-modp2048",
            "IKE algorithms: ours {}, strongSwan {algs:?}",
            ike.proposal
        );
    }
    Ok(())
}

/// vpngw as the customer (responding), strongSwan as the cloud (initiating): both
/// tunnels UP on both sides, with both sides' view of them.
fn up_with_a_strongswan_cloud(
    s2s: &SiteToSite,
) -> anyhow::Result<(Vpngw, StrongswanEndpoint, VpngwStatus, Vec<IkeSa>)> {
    let mut vpngw = Vpngw::start(
        s2s.customer_gw(),
        &VpngwConfig::for_plan(Side::Customer, psks()),
    )?;
    let mut cloud = StrongswanEndpoint::start(s2s, Side::Cloud, psks(), &no_bgp())?;
    let theirs = cloud.charon.wait_up(&["tunnel1", "tunnel2"], UP)?;
    let ours = vpngw.wait_up(&["tunnel1", "tunnel2"], UP)?;
    Ok((vpngw, cloud, ours, theirs))
}

fn ping_both_ways(s2s: &SiteToSite) -> anyhow::Result<()> {
    let opts = PingOptions::default();
    let a = ping(s2s.vpc_host(), plan::IDC_HOST.into(), &opts)?;
    anyhow::ensure!(a.all_replied(), "VPC -> IDC: {a:?}");
    let b = ping(s2s.idc_host(), plan::VPC_HOST.into(), &opts)?;
    anyhow::ensure!(b.all_replied(), "IDC -> VPC: {b:?}");
    Ok(())
}

#[test]
fn strongswan_cloud_initiates_both_tunnels_and_traffic_flows() -> anyhow::Result<()> {
    if skip_unless_root("strongswan_cloud_initiates_both_tunnels_and_traffic_flows") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    let (mut vpngw, cloud, ours, theirs) = up_with_a_strongswan_cloud(&s2s)?;
    for t in &plan::TUNNELS {
        let sa = find_up(&theirs, t.name).ok_or_else(|| anyhow::anyhow!("{} down", t.name))?;
        anyhow::ensure!(sa.initiator, "strongSwan must have initiated {}", t.name);
    }
    check_sas_match(&ours, &theirs)?;

    ping_both_ways(&s2s)?;
    // Our active-standby route sends on tunnel1; kernel-libipsec sends on its newest
    // CHILD SA, whichever tunnel that is. Together, ESP counters moved both ways on both sides.
    let ours = vpngw.status()?;
    let t1 = ours
        .tunnel("tunnel1")
        .ok_or_else(|| anyhow::anyhow!("no tunnel1"))?;
    anyhow::ensure!(t1.packets_out >= 6, "{}", ours.summary());
    let (ours_in, ours_out) = ours
        .tunnels
        .iter()
        .fold((0, 0), |(i, o), t| (i + t.packets_in, o + t.packets_out));
    anyhow::ensure!(ours_in >= 6 && ours_out >= 6, "{}", ours.summary());
    anyhow::ensure!(
        ours.tunnels.iter().all(|t| t.drops.is_empty()),
        "{}",
        ours.summary()
    );
    let theirs = cloud.charon.list_sas()?;
    let (their_in, their_out) = theirs
        .iter()
        .flat_map(|sa| sa.installed_children())
        .fold((0, 0), |(i, o), c| (i + c.packets_in, o + c.packets_out));
    anyhow::ensure!(
        their_in >= ours_out.min(6) && their_out >= 6,
        "strongSwan counters in {their_in} out {their_out}"
    );
    anyhow::ensure!(
        child(&theirs, "tunnel1")?.packets_in >= 6,
        "{}",
        summary(&theirs)
    );

    let routes = vpngw.routes()?;
    let vpc = routes
        .routes
        .iter()
        .find(|r| r.prefix == plan::VPC_PREFIX)
        .ok_or_else(|| anyhow::anyhow!("no VPC route: {routes:?}"))?;
    anyhow::ensure!(
        vpc.source == "static" && vpc.active == ["tunnel1"],
        "{vpc:?}"
    );
    let kernel = s2s.customer_gw().ip(&["route", "show", plan::VPC_PREFIX])?;
    anyhow::ensure!(kernel.contains("dev vpngw0"), "kernel route: {kernel}");

    // Graceful stop: DELETEs reach strongSwan, the kernel route goes, exit status 0.
    anyhow::ensure!(vpngw.stop(), "vpngw did not exit cleanly");
    let kernel = s2s.customer_gw().ip(&["route", "show", plan::VPC_PREFIX])?;
    anyhow::ensure!(
        kernel.trim().is_empty(),
        "kernel route left behind: {kernel}"
    );
    Ok(())
}

#[test]
fn vpngw_initiates_to_a_responding_strongswan() -> anyhow::Result<()> {
    if skip_unless_root("vpngw_initiates_to_a_responding_strongswan") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    let mut cfg = CharonConfig::site_to_site(Side::Cloud, psks());
    for t in &mut cfg.tunnels {
        t.start_action = StartAction::None;
    }
    let mut cloud = Charon::start(s2s.cloud_gw(), &cfg)?;
    s2s.cloud_gw()
        .ip(&["route", "replace", plan::IDC_PREFIX, "dev", e2e::IPSEC_DEV])
        .or_else(|_| {
            // ipsec0 appears a moment after charon starts.
            e2e::wait_until("ipsec0", Duration::from_secs(10), || {
                s2s.cloud_gw().ip(&["link", "show", e2e::IPSEC_DEV]).is_ok()
            })?;
            s2s.cloud_gw()
                .ip(&["route", "replace", plan::IDC_PREFIX, "dev", e2e::IPSEC_DEV])
        })?;
    let mut ours = VpngwConfig::for_plan(Side::Customer, psks());
    for t in &mut ours.tunnels {
        t.start_action = "initiate".into();
    }
    let mut vpngw = Vpngw::start(s2s.customer_gw(), &ours)?;
    let status = vpngw.wait_up(&["tunnel1", "tunnel2"], UP)?;
    let theirs = cloud.wait_up(&["tunnel1", "tunnel2"], UP)?;
    for t in &plan::TUNNELS {
        let sa = find_up(&theirs, t.name).ok_or_else(|| anyhow::anyhow!("{} down", t.name))?;
        anyhow::ensure!(!sa.initiator, "vpngw must have initiated {}", t.name);
    }
    check_sas_match(&status, &theirs)?;
    ping_both_ways(&s2s)?;
    Ok(())
}

/// Maintenance with strongSwan initiating (`close_action = start`: it tries again the
/// moment our DELETE arrives, and keeps retransmitting while we ignore it): vpngw, the
/// responder, disables tunnel1, then enables it, and strongSwan's next retransmission
/// brings it back: one IKE SA and one CHILD SA for tunnel1, the same on both sides, and
/// traffic flows. (A responder that initiated itself on enable crossed strongSwan's
/// pending attempt, and both ends kept two IKE SAs for 30 s: strongSwan's looks to us
/// like a reauthentication, whose old SA we delete only when the peer has not.)
#[test]
fn disable_and_enable_against_a_strongswan_that_keeps_initiating() -> anyhow::Result<()> {
    if skip_unless_root("disable_and_enable_against_a_strongswan_that_keeps_initiating") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    let (mut vpngw, cloud, _, _) = up_with_a_strongswan_cloud(&s2s)?;

    vpngw.disable("tunnel1")?;
    // strongSwan's new attempt and a retransmission or two of it go unanswered.
    std::thread::sleep(Duration::from_secs(3));
    vpngw.enable("tunnel1")?;
    vpngw.wait_up(&["tunnel1"], UP)?;
    // Past strongSwan's next retransmissions: no second IKE SA comes of them.
    std::thread::sleep(Duration::from_secs(5));
    let theirs = cloud.charon.list_sas()?;
    let t1: Vec<&IkeSa> = theirs.iter().filter(|sa| sa.name == "tunnel1").collect();
    anyhow::ensure!(
        t1.len() == 1 && t1.iter().all(|sa| sa.installed_children().count() == 1),
        "strongSwan's tunnel1 SAs:\n{}\nours: {}\n{}",
        summary(&theirs),
        vpngw.status()?.summary(),
        vpngw.log_tail(30)
    );
    let ours = vpngw.status()?;
    anyhow::ensure!(
        ours.tunnel("tunnel1")
            .is_some_and(|t| t.child_sas.len() == 1),
        "{}",
        ours.summary()
    );
    check_sas_match(&ours, &theirs)?;
    ping_both_ways(&s2s)?;
    Ok(())
}
