//! strongSwan <-> strongSwan (kernel-libipsec) over the site-to-site topology: the
//! harness's proof, and the strongSwan baseline the vpngw tests and benchmark compare to.

use std::time::Duration;

use e2e::charon::StartAction;
use e2e::charon::{find_up, summary, ChildSa, IkeSa};
use e2e::{
    iperf_client, ping, plan, skip_unless_root, Charon, CharonConfig, IperfOptions, PacketCapture,
    PingOptions, Psk, Side, SiteToSite, SnmpCounters, WorkDir,
};

const UP_TIMEOUT: Duration = Duration::from_secs(20);

fn psks() -> [Psk; 2] {
    [
        Psk::from("tunnel-one-psk-e2e"),
        Psk::from("tunnel-two-psk-e2e"),
    ]
}

/// The installed CHILD SA of tunnel `name`.
fn child<'a>(sas: &'a [IkeSa], name: &str) -> anyhow::Result<&'a ChildSa> {
    find_up(sas, name)
        .and_then(|sa| sa.installed_children().find(|c| c.name == name))
        .ok_or_else(|| anyhow::anyhow!("tunnel {name} not up:\n{}", summary(sas)))
}

fn total_packets(sas: &[IkeSa]) -> (u64, u64) {
    sas.iter()
        .flat_map(|sa| sa.installed_children())
        .fold((0, 0), |(i, o), c| (i + c.packets_in, o + c.packets_out))
}

#[test]
fn two_tunnels_cloud_initiates_and_vpc_pings_idc_through_esp() -> anyhow::Result<()> {
    if skip_unless_root("two_tunnels_cloud_initiates_and_vpc_pings_idc_through_esp") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    // The customer answers; the cloud initiates both tunnels as soon as it loads them.
    let mut customer = Charon::start(
        s2s.customer_gw(),
        &CharonConfig::site_to_site(Side::Customer, psks()),
    )?;
    let mut cloud = Charon::start(
        s2s.cloud_gw(),
        &CharonConfig::site_to_site(Side::Cloud, psks()),
    )?;

    let cloud_sas = cloud.wait_up(&["tunnel1", "tunnel2"], UP_TIMEOUT)?;
    let customer_sas = customer.wait_up(&["tunnel1", "tunnel2"], UP_TIMEOUT)?;

    for t in &plan::TUNNELS {
        let c = find_up(&cloud_sas, t.name).ok_or_else(|| anyhow::anyhow!("{} down", t.name))?;
        let r = find_up(&customer_sas, t.name).ok_or_else(|| anyhow::anyhow!("{} down", t.name))?;
        anyhow::ensure!(
            c.initiator && !r.initiator,
            "cloud must initiate {}",
            t.name
        );
        anyhow::ensure!(c.local_host == Some(t.cloud_public.into()), "{c:?}");
        anyhow::ensure!(r.remote_host == Some(t.cloud_public.into()), "{r:?}");
        anyhow::ensure!(c.remote_port == Some(4500), "NAT-T expected: {c:?}");
        anyhow::ensure!(c.initiator_spi == r.initiator_spi && c.responder_spi == r.responder_spi);
        let (cc, rc) = (child(&cloud_sas, t.name)?, child(&customer_sas, t.name)?);
        anyhow::ensure!(
            cc.reqid == t.reqid && rc.reqid == t.reqid,
            "reqids {cc:?} {rc:?}"
        );
        anyhow::ensure!(cc.encap && rc.encap, "ESP must be UDP-encapsulated");
        // Each side's inbound SPI is the other's outbound SPI.
        anyhow::ensure!(
            cc.spi_in == rc.spi_out && cc.spi_out == rc.spi_in,
            "SPIs {cc:?} {rc:?}"
        );
        anyhow::ensure!(
            cc.encr_alg.as_deref() == Some("AES_GCM_16") && cc.encr_keysize == Some(256)
        );
        anyhow::ensure!(cc.local_ts == ["0.0.0.0/0"] && cc.remote_ts == ["0.0.0.0/0"]);
    }

    s2s.route_sites_via("ipsec0", "ipsec0")?;
    let dir = WorkDir::new("s2s-capture")?;
    let mut capture = PacketCapture::start(s2s.customer_gw(), "wan0", "", dir.join("wan0.pcap"))?;
    let udp_before = SnmpCounters::read(s2s.customer_gw())?;
    let before_cloud = total_packets(&cloud.list_sas()?);
    let before_if = s2s.cloud_gw().link_stats("ipsec0")?;
    let opts = PingOptions {
        count: 5,
        ..PingOptions::default()
    };
    let stats = ping(s2s.vpc_host(), plan::IDC_HOST.into(), &opts)?;
    anyhow::ensure!(
        stats.all_replied(),
        "VPC -> IDC through the tunnel: {stats:?}\n{}",
        cloud.log_tail(20)
    );

    let after_cloud = total_packets(&cloud.list_sas()?);
    let after_customer = total_packets(&customer.list_sas()?);
    let after_if = s2s.cloud_gw().link_stats("ipsec0")?;
    // Requests leave the cloud encrypted, replies come back encrypted.
    anyhow::ensure!(
        after_cloud.1 >= before_cloud.1 + 5,
        "ESP out {before_cloud:?} -> {after_cloud:?}"
    );
    anyhow::ensure!(
        after_cloud.0 >= before_cloud.0 + 5,
        "ESP in {before_cloud:?} -> {after_cloud:?}"
    );
    anyhow::ensure!(
        after_customer.0 >= 5 && after_customer.1 >= 5,
        "customer ESP {after_customer:?}"
    );
    anyhow::ensure!(
        after_if.tx_packets >= before_if.tx_packets + 5,
        "ipsec0 tx {before_if:?} -> {after_if:?}"
    );
    anyhow::ensure!(
        after_if.rx_packets >= before_if.rx_packets + 5,
        "ipsec0 rx {before_if:?} -> {after_if:?}"
    );

    // The customer gateway received the ESP as UDP datagrams, in its own namespace.
    let udp = SnmpCounters::read(s2s.customer_gw())?.since(&udp_before);
    let esp_in = udp.get("Udp", "InDatagrams").unwrap_or(0);
    anyhow::ensure!(
        esp_in >= 5,
        "UDP InDatagrams on customer_gw grew by {esp_in}"
    );

    // On the underlay only ESP in UDP/4500 is seen, never the inner ICMP.
    capture.wait_count("udp port 4500", 10, Duration::from_secs(10))?;
    let wire = capture.stop()?;
    let esp = wire.count("udp port 4500")?;
    let plain = wire.count("icmp")?;
    anyhow::ensure!(
        esp >= 10,
        "expected >= 10 ESP-in-UDP packets on wan0, saw {esp}"
    );
    anyhow::ensure!(
        plain == 0,
        "plaintext ICMP on the underlay: {:?}",
        wire.packets("icmp")?
    );

    // The strongSwan baseline path carries TCP too (the benchmark measures it at length).
    let server = s2s.iperf_server_on_idc(&dir.join("iperf.log"))?;
    let opts = IperfOptions {
        duration: Duration::from_secs(1),
        ..IperfOptions::default()
    };
    let tcp = iperf_client(s2s.vpc_host(), server.addr(), server.port(), &opts)?;
    anyhow::ensure!(tcp.received_bytes > 0, "{tcp:?}");
    eprintln!(
        "strongSwan kernel-libipsec baseline (1 s, unloaded dev box): {:.0} Mbit/s, {:?} retransmits",
        tcp.received_bits_per_second / 1e6,
        tcp.retransmits
    );
    Ok(())
}

#[test]
fn rekey_and_terminate_renegotiate_with_new_spis() -> anyhow::Result<()> {
    if skip_unless_root("rekey_and_terminate_renegotiate_with_new_spis") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    let mut customer = Charon::start(
        s2s.customer_gw(),
        &CharonConfig::site_to_site(Side::Customer, psks()),
    )?;
    let mut cloud = Charon::start(
        s2s.cloud_gw(),
        &CharonConfig::site_to_site(Side::Cloud, psks()),
    )?;
    let sas = customer.wait_up(&["tunnel1", "tunnel2"], UP_TIMEOUT)?;
    let old = child(&sas, "tunnel1")?.spi_in;

    // The customer can rekey a CHILD SA it did not create.
    customer.rekey_child("tunnel1")?;
    let sas = e2e::wait_for("rekeyed tunnel1", UP_TIMEOUT, || {
        let sas = customer.list_sas()?;
        Ok(match child(&sas, "tunnel1") {
            Ok(c) if c.spi_in != old => e2e::Poll::Ready(sas),
            _ => e2e::Poll::Pending(summary(&sas)),
        })
    })?;
    let rekeyed = child(&sas, "tunnel1")?;
    anyhow::ensure!(rekeyed.reqid == 1, "reqid kept across rekey: {rekeyed:?}");

    // Terminating tunnel2 from the customer side: the cloud re-initiates (close_action).
    let old_ike = find_up(&sas, "tunnel2").map(|sa| sa.responder_spi);
    customer.terminate_ike("tunnel2")?;
    let sas = e2e::wait_for("tunnel2 renegotiated", UP_TIMEOUT, || {
        let sas = customer.list_sas()?;
        Ok(match find_up(&sas, "tunnel2") {
            Some(sa) if Some(sa.responder_spi) != old_ike => e2e::Poll::Ready(sas),
            _ => e2e::Poll::Pending(summary(&sas)),
        })
    })
    .map_err(|e| customer.with_log(e))?;
    anyhow::ensure!(
        !find_up(&sas, "tunnel2").is_some_and(|sa| sa.initiator),
        "cloud re-initiated"
    );
    cloud.wait_up(&["tunnel1", "tunnel2"], UP_TIMEOUT)?;

    s2s.route_sites_via("ipsec0", "ipsec0")?;
    let stats = ping(
        s2s.idc_host(),
        plan::VPC_HOST.into(),
        &PingOptions::default(),
    )?;
    anyhow::ensure!(
        stats.all_replied(),
        "IDC -> VPC after rekey and restart: {stats:?}"
    );
    Ok(())
}

#[test]
fn customer_can_initiate_both_tunnels() -> anyhow::Result<()> {
    if skip_unless_root("customer_can_initiate_both_tunnels") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    // A cloud that waits instead of initiating.
    let mut cloud_config = CharonConfig::site_to_site(Side::Cloud, psks());
    for t in &mut cloud_config.tunnels {
        t.start_action = StartAction::None;
    }
    let _cloud = Charon::start(s2s.cloud_gw(), &cloud_config)?;
    let mut customer = Charon::start(
        s2s.customer_gw(),
        &CharonConfig::site_to_site(Side::Customer, psks()),
    )?;
    anyhow::ensure!(
        customer.list_sas()?.is_empty(),
        "nothing should start by itself"
    );

    customer.initiate("tunnel1")?;
    customer.initiate("tunnel2")?;
    let sas = customer.wait_up(&["tunnel1", "tunnel2"], UP_TIMEOUT)?;
    for t in &plan::TUNNELS {
        let sa = find_up(&sas, t.name).ok_or_else(|| anyhow::anyhow!("{} down", t.name))?;
        anyhow::ensure!(sa.initiator, "customer initiated {}: {sa:?}", t.name);
        anyhow::ensure!(sa.local_host == Some(plan::CUSTOMER_GW_WAN.into()));
    }

    // A wrong PSK on one side must keep the tunnel down: the check is real.
    customer.terminate_ike("tunnel2")?;
    let mut wrong = CharonConfig::site_to_site(Side::Customer, psks());
    if let Some(t) = wrong.tunnel_mut("tunnel2") {
        t.psk = Psk::from("not-the-cloud-psk");
    }
    customer.reconfigure(&wrong)?;
    anyhow::ensure!(
        customer.initiate("tunnel2").is_err(),
        "tunnel2 came up with a wrong PSK"
    );
    anyhow::ensure!(find_up(&customer.list_sas()?, "tunnel2").is_none());
    anyhow::ensure!(
        find_up(&customer.list_sas()?, "tunnel1").is_some(),
        "tunnel1 unaffected"
    );
    Ok(())
}
