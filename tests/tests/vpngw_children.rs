//! strongSwan with two children in one connection: the second CHILD SA arrives with
//! CREATE_CHILD_SA, both are up on both sides, and each carries the traffic its
//! selectors cover (vpngw picks the outbound SA per packet).

use std::time::Duration;

use e2e::charon::{find_up, summary, ExtraChild, IkeSa, StartAction};
use e2e::{
    ping, plan, skip_unless_root, CharonConfig, EndpointOptions, PingOptions, Psk, Side,
    SiteToSite, StrongswanEndpoint, Vpngw, VpngwConfig,
};

const UP: Duration = Duration::from_secs(30);
const EXTRA: &str = "tunnel1-hosts";

fn psks() -> [Psk; 2] {
    [
        Psk::from("children-e2e-psk-one"),
        Psk::from("children-e2e-psk-two"),
    ]
}

/// (packets_in, packets_out) of the installed CHILD SA `name` of tunnel1 at strongSwan.
fn child_packets(sas: &[IkeSa], name: &str) -> anyhow::Result<(u64, u64, u32, u32)> {
    let c = find_up(sas, "tunnel1")
        .and_then(|sa| sa.installed_children().find(|c| c.name == name))
        .ok_or_else(|| anyhow::anyhow!("{name} not installed:\n{}", summary(sas)))?;
    Ok((c.packets_in, c.packets_out, c.spi_in, c.spi_out))
}

/// Ten pings from the VPC host to `dst`, all answered.
fn ping_vpc_to(s2s: &SiteToSite, dst: std::net::Ipv4Addr) -> anyhow::Result<()> {
    let stats = ping(
        s2s.vpc_host(),
        dst.into(),
        &PingOptions {
            count: 10,
            interval: Duration::from_millis(100),
            wait: Duration::from_secs(2),
            ..PingOptions::default()
        },
    )?;
    anyhow::ensure!(stats.received == stats.transmitted, "lost pings: {stats:?}");
    Ok(())
}

#[test]
fn strongswan_adds_a_second_child_sa_with_create_child_sa() -> anyhow::Result<()> {
    if skip_unless_root("strongswan_adds_a_second_child_sa_with_create_child_sa") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    let mut vpngw = Vpngw::start(
        s2s.customer_gw(),
        &VpngwConfig::for_plan(Side::Customer, psks()),
    )?;
    let mut cfg = CharonConfig::site_to_site(Side::Cloud, psks());
    let t1 = cfg
        .tunnel_mut("tunnel1")
        .ok_or_else(|| anyhow::anyhow!("no tunnel1"))?;
    // VPC <-> IDC host only; everything else stays on the 0.0.0.0/0 child. (The local
    // side must hold one of the gateway's addresses: kernel-libipsec routes with it.)
    t1.extra_child = Some(ExtraChild {
        name: EXTRA.into(),
        local_ts: plan::VPC_PREFIX.into(),
        remote_ts: format!("{}/32", plan::IDC_HOST),
        reqid: 11,
    });
    let opts = EndpointOptions {
        bgp: false,
        static_route: true,
    };
    let mut cloud = StrongswanEndpoint::start_with(&s2s, Side::Cloud, &cfg, &opts)?;
    cloud.charon.wait_up(&["tunnel1", "tunnel2"], UP)?;
    let ours = vpngw.wait_status("two CHILD SAs on tunnel1", UP, |s| {
        s.tunnel("tunnel1")
            .is_some_and(|t| t.state == "UP" && t.child_sas.len() == 2)
    })?;
    let sas = cloud.charon.list_sas()?;
    let ike = find_up(&sas, "tunnel1").ok_or_else(|| anyhow::anyhow!("no IKE SA"))?;
    anyhow::ensure!(
        ike.installed_children().count() == 2,
        "strongSwan has both children in one IKE SA:\n{}",
        summary(&sas)
    );
    // Each strongSwan CHILD SA has its mirror among ours.
    let t = ours
        .tunnel("tunnel1")
        .ok_or_else(|| anyhow::anyhow!("no tunnel1"))?;
    for name in ["tunnel1", EXTRA] {
        let (_, _, spi_in, spi_out) = child_packets(&sas, name)?;
        anyhow::ensure!(
            t.child_sas
                .iter()
                .any(|c| c.spi_in() == spi_out && c.spi_out() == spi_in),
            "{name} {spi_in:08x}/{spi_out:08x} not among ours {:?}",
            t.child_sas
        );
    }
    // VPC host -> IDC host: the added CHILD SA, both ways.
    let (extra_in0, extra_out0, ..) = child_packets(&sas, EXTRA)?;
    let (main_in0, ..) = child_packets(&sas, "tunnel1")?;
    ping_vpc_to(&s2s, plan::IDC_HOST)?;
    let sas = cloud.charon.list_sas()?;
    let (extra_in1, extra_out1, ..) = child_packets(&sas, EXTRA)?;
    let (main_in1, ..) = child_packets(&sas, "tunnel1")?;
    anyhow::ensure!(
        extra_out1 >= extra_out0 + 10 && extra_in1 >= extra_in0 + 10,
        "pings did not use {EXTRA}: out {extra_out0}->{extra_out1}, in {extra_in0}->{extra_in1}"
    );
    anyhow::ensure!(
        main_in1.saturating_sub(main_in0) < 10,
        "our replies to the VPC host went out on the 0.0.0.0/0 SA ({main_in0}->{main_in1})"
    );
    // VPC host -> customer gateway's LAN address: not covered by the host selectors, so
    // the 0.0.0.0/0 CHILD SA carries it.
    ping_vpc_to(&s2s, plan::CUSTOMER_GW_LAN)?;
    let sas = cloud.charon.list_sas()?;
    let (main_in2, ..) = child_packets(&sas, "tunnel1")?;
    let (extra_in2, ..) = child_packets(&sas, EXTRA)?;
    // (strongSwan may send on either tunnel's 0.0.0.0/0 SA; our replies take tunnel1's.)
    anyhow::ensure!(
        main_in2 >= main_in1 + 10,
        "replies did not use the 0.0.0.0/0 SA: in {main_in1}->{main_in2}"
    );
    anyhow::ensure!(
        extra_in2.saturating_sub(extra_in1) < 10,
        "replies from the gateway used {EXTRA}"
    );
    // Rekeying the added CHILD SA works like the first one.
    let (.., old_in, _) = child_packets(&sas, EXTRA)?;
    cloud.charon.rekey_child(EXTRA)?;
    vpngw.wait_status("the added CHILD SA rekeyed", UP, |s| {
        s.tunnel("tunnel1").is_some_and(|t| {
            t.child_sas.len() == 2 && t.child_sas.iter().all(|c| c.spi_out() != old_in)
        })
    })?;
    ping_vpc_to(&s2s, plan::IDC_HOST)?;
    Ok(())
}

/// `lines` added to the end of `tunnel`'s table in the rendered config `text`.
fn with_tunnel_lines(text: &str, tunnel: &str, lines: &str) -> anyhow::Result<String> {
    let start = text
        .find(&format!("name = \"{tunnel}\"\n"))
        .ok_or_else(|| anyhow::anyhow!("no {tunnel} in the config"))?;
    let end = text
        .get(start..)
        .and_then(|rest| rest.find("\n["))
        .map_or(text.len(), |i| start + i + 1);
    Ok(format!("{}{lines}{}", &text[..end], &text[end..]))
}

/// RFC 4301 outbound policy: the cloud vpngw narrows tunnel1 to VPC <-> IDC host while its
/// routes send all of the IDC prefix to tunnel1. It sends what the selectors cover, and
/// drops and counts the rest instead of sending it (the peer's inbound check, which would
/// drop it too, is unit-tested in `dataplane::policy`).
#[test]
fn packets_outside_the_child_sa_selectors_are_not_sent_and_counted() -> anyhow::Result<()> {
    if skip_unless_root("packets_outside_the_child_sa_selectors_are_not_sent_and_counted") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    let mut customer = Vpngw::start(
        s2s.customer_gw(),
        &VpngwConfig::for_plan(Side::Customer, psks()),
    )?;
    let narrow = format!(
        "local_ts = [\"{}\"]\nremote_ts = [\"{}/32\"]\n",
        plan::VPC_PREFIX,
        plan::IDC_HOST
    );
    let text = with_tunnel_lines(
        &VpngwConfig::for_plan(Side::Cloud, psks()).render(),
        "tunnel1",
        &narrow,
    )?;
    let mut cloud = Vpngw::start_text(s2s.cloud_gw(), &text)?;
    cloud.wait_up(&["tunnel1", "tunnel2"], UP)?;
    customer.wait_up(&["tunnel1", "tunnel2"], UP)?;
    let sent_before = cloud.status()?.counter("ts_dropped_out");
    let received_before = customer.status()?.counter("ts_dropped");
    // Covered: VPC host <-> IDC host.
    ping_vpc_to(&s2s, plan::IDC_HOST)?;
    anyhow::ensure!(
        cloud.status()?.counter("ts_dropped_out") == sent_before,
        "covered packets dropped"
    );
    // Not covered: the customer gateway's LAN address is outside remote_ts.
    let stats = ping(
        s2s.vpc_host(),
        plan::CUSTOMER_GW_LAN.into(),
        &PingOptions {
            count: 5,
            interval: Duration::from_millis(100),
            wait: Duration::from_secs(1),
            ..PingOptions::default()
        },
    )?;
    anyhow::ensure!(stats.received == 0, "uncovered pings answered: {stats:?}");
    let dropped = cloud.status()?.counter("ts_dropped_out") - sent_before;
    anyhow::ensure!(dropped >= 5, "only {dropped} counted in ts_dropped_out");
    anyhow::ensure!(
        customer.status()?.counter("ts_dropped") == received_before,
        "uncovered packets reached the customer"
    );
    Ok(())
}

/// The other way round: vpngw initiates and requests the second CHILD SA itself
/// (`[[connections.tunnels.children]]`); strongSwan responds with two children.
#[test]
fn vpngw_requests_a_second_child_sa_from_strongswan() -> anyhow::Result<()> {
    if skip_unless_root("vpngw_requests_a_second_child_sa_from_strongswan") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    let mut ours = VpngwConfig::for_plan(Side::Customer, psks());
    for t in &mut ours.tunnels {
        t.start_action = "initiate".into();
    }
    let child = format!(
        "[[connections.tunnels.children]]\nlocal_ts = [\"{}/32\"]\nremote_ts = [\"{}\"]\n",
        plan::IDC_HOST,
        plan::VPC_PREFIX
    );
    let text = with_tunnel_lines(&ours.render(), "tunnel1", &child)?;
    let mut cfg = CharonConfig::site_to_site(Side::Cloud, psks());
    for t in ["tunnel1", "tunnel2"] {
        cfg.tunnel_mut(t)
            .ok_or_else(|| anyhow::anyhow!("no {t}"))?
            .start_action = StartAction::None;
    }
    let t1 = cfg
        .tunnel_mut("tunnel1")
        .ok_or_else(|| anyhow::anyhow!("no tunnel1"))?;
    t1.extra_child = Some(ExtraChild {
        name: EXTRA.into(),
        local_ts: plan::VPC_PREFIX.into(),
        remote_ts: format!("{}/32", plan::IDC_HOST),
        reqid: 11,
    });
    let opts = EndpointOptions {
        bgp: false,
        static_route: true,
    };
    let cloud = StrongswanEndpoint::start_with(&s2s, Side::Cloud, &cfg, &opts)?;
    let mut vpngw = Vpngw::start_text(s2s.customer_gw(), &text)?;
    vpngw.wait_status("two CHILD SAs on tunnel1", UP, |s| {
        s.tunnel("tunnel1")
            .is_some_and(|t| t.state == "UP" && t.child_sas.len() == 2)
    })?;
    let sas = cloud.charon.list_sas()?;
    let ike = find_up(&sas, "tunnel1").ok_or_else(|| anyhow::anyhow!("no IKE SA"))?;
    anyhow::ensure!(
        ike.installed_children().count() == 2,
        "strongSwan has both children in one IKE SA:\n{}",
        summary(&sas)
    );
    // Traffic through each: VPC host -> IDC host on the requested one, VPC host ->
    // customer gateway LAN address on the 0.0.0.0/0 one.
    let (extra_in0, extra_out0, ..) = child_packets(&sas, EXTRA)?;
    ping_vpc_to(&s2s, plan::IDC_HOST)?;
    let sas = cloud.charon.list_sas()?;
    let (extra_in1, extra_out1, ..) = child_packets(&sas, EXTRA)?;
    anyhow::ensure!(
        extra_out1 >= extra_out0 + 10 && extra_in1 >= extra_in0 + 10,
        "pings did not use {EXTRA}: out {extra_out0}->{extra_out1}, in {extra_in0}->{extra_in1}"
    );
    let (main_in1, ..) = child_packets(&sas, "tunnel1")?;
    ping_vpc_to(&s2s, plan::CUSTOMER_GW_LAN)?;
    let sas = cloud.charon.list_sas()?;
    let (main_in2, ..) = child_packets(&sas, "tunnel1")?;
    anyhow::ensure!(
        main_in2 >= main_in1 + 10,
        "replies did not use the 0.0.0.0/0 SA: in {main_in1}->{main_in2}"
    );
    Ok(())
}

/// vpngw on both sides, both configured with the same further CHILD SA: both ask for it as
/// the tunnel comes up, and one CHILD SA of it is left (the redundant one of crossing
/// requests is deleted by its initiator), the same on both sides.
#[test]
fn the_same_further_child_sa_on_both_vpngw_sides_is_made_once() -> anyhow::Result<()> {
    if skip_unless_root("the_same_further_child_sa_on_both_vpngw_sides_is_made_once") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    let child = |local: String, remote: String| {
        format!(
            "[[connections.tunnels.children]]\nlocal_ts = [\"{local}\"]\nremote_ts = [\"{remote}\"]\n"
        )
    };
    let idc_host = format!("{}/32", plan::IDC_HOST);
    let vpc = plan::VPC_PREFIX.to_owned();
    let ours = VpngwConfig::for_plan(Side::Customer, psks()).render();
    let ours = with_tunnel_lines(&ours, "tunnel1", &child(idc_host.clone(), vpc.clone()))?;
    let theirs = VpngwConfig::for_plan(Side::Cloud, psks()).render();
    let theirs = with_tunnel_lines(&theirs, "tunnel1", &child(vpc, idc_host))?;
    let mut customer = Vpngw::start_text(s2s.customer_gw(), &ours)?;
    let mut cloud = Vpngw::start_text(s2s.cloud_gw(), &theirs)?;
    let two = |s: &e2e::VpngwStatus| {
        s.tunnel("tunnel1")
            .is_some_and(|t| t.state == "UP" && t.child_sas.len() >= 2)
    };
    customer.wait_status("the further CHILD SA", UP, two)?;
    cloud.wait_status("the further CHILD SA", UP, two)?;
    // Long enough for a crossing request's answer and the deletion of the redundant SA.
    std::thread::sleep(std::time::Duration::from_secs(3));
    let spis = |v: &Vpngw| -> anyhow::Result<Vec<(u32, u32)>> {
        let s = v.status()?;
        let t = s
            .tunnel("tunnel1")
            .ok_or_else(|| anyhow::anyhow!("no tunnel1"))?;
        let mut v: Vec<_> = t
            .child_sas
            .iter()
            .map(|c| (c.spi_in(), c.spi_out()))
            .collect();
        v.sort();
        Ok(v)
    };
    let (a, b) = (spis(&customer)?, spis(&cloud)?);
    anyhow::ensure!(a.len() == 2, "customer tunnel1 CHILD SAs: {a:?}");
    let mut mirrored: Vec<_> = b.into_iter().map(|(i, o)| (o, i)).collect();
    mirrored.sort();
    anyhow::ensure!(
        a == mirrored,
        "customer {a:?}, cloud (mirrored) {mirrored:?}"
    );
    ping_vpc_to(&s2s, plan::IDC_HOST)?;
    Ok(())
}
