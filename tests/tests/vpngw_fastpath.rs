//! The fast path between two vpngw: TCP through the tunnel is read from the TUN device as
//! super-packets and split, sent in batches, received in batches and written back in
//! batches (the dataplane counters say so), and SIGTERM under full load still ends the
//! daemon cleanly.

use std::time::{Duration, Instant};

use e2e::{
    iperf_client, skip_unless_root, IperfOptions, Psk, Side, SiteToSite, Vpngw, VpngwConfig,
    WorkDir,
};

const UP: Duration = Duration::from_secs(30);
const BOTH: [&str; 2] = ["tunnel1", "tunnel2"];

fn psks() -> [Psk; 2] {
    [Psk::from("fastpath-e2e-one"), Psk::from("fastpath-e2e-two")]
}

#[test]
fn tcp_uses_offloads_and_batches_and_sigterm_under_load_is_clean() -> anyhow::Result<()> {
    if skip_unless_root("tcp_uses_offloads_and_batches_and_sigterm_under_load_is_clean") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    let (customer, mut cloud) = Vpngw::start_plan_pair(&s2s, psks(), UP)?;

    let dir = WorkDir::new("vpngw-fastpath")?;
    let server = s2s.iperf_server_on_idc(&dir.join("iperf.log"))?;
    // VPC -> IDC: the cloud gateway encrypts, the customer gateway decrypts.
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let client = scope.spawn(|| server.tcp_from(s2s.vpc_host(), Duration::from_secs(6)));
        std::thread::sleep(Duration::from_secs(3));
        let tx = cloud.status()?;
        let rx = customer.status()?;
        let summary = format!("cloud {:?}\ncustomer {:?}", tx.dataplane, rx.dataplane);
        anyhow::ensure!(tx.counter("tun_offload") == 1, "{summary}");
        // The kernel's drops at the TUN queue are read from the gateway's namespace.
        anyhow::ensure!(
            tx.dataplane.contains_key("tun_queue_drops")
                && rx.dataplane.contains_key("tun_queue_drops"),
            "{summary}"
        );
        anyhow::ensure!(tx.counter("workers") >= 1, "{summary}");
        // Super-packets were split: more segments than reads.
        anyhow::ensure!(
            tx.counter("tun_segments") > tx.counter("tun_reads"),
            "{summary}"
        );
        // Several ESP datagrams per send call, and per receive call on the far side.
        anyhow::ensure!(
            tx.counter("udp_datagrams_out") > tx.counter("udp_sends"),
            "{summary}"
        );
        anyhow::ensure!(
            rx.counter("udp_datagrams_in") > rx.counter("udp_recvs"),
            "{summary}"
        );
        anyhow::ensure!(
            rx.counter("tun_packets_out") > rx.counter("tun_writes"),
            "{summary}"
        );
        for stage in [
            "tun_read_errors",
            "gso_split_errors",
            "udp_send_errors",
            "tun_write_errors",
        ] {
            anyhow::ensure!(tx.counter(stage) == 0, "{stage}: {summary}");
            anyhow::ensure!(rx.counter(stage) == 0, "{stage}: {summary}");
        }
        // SIGTERM while the stream is still running: exit 0 within the harness's grace.
        let t0 = Instant::now();
        anyhow::ensure!(
            cloud.stop(),
            "cloud gateway did not exit cleanly under load:\n{}",
            cloud.log_tail(30)
        );
        eprintln!("SIGTERM under load: exited in {:?}", t0.elapsed());
        // Bring the tunnel back so the client's control connection can finish; how the
        // interrupted stream ends does not matter here.
        let mut again = Vpngw::start(s2s.cloud_gw(), &VpngwConfig::for_plan(Side::Cloud, psks()))?;
        again.wait_up(&BOTH, UP)?;
        let _ = client.join();
        Ok(())
    })?;
    Ok(())
}

/// Inner UDP: datagrams of one flow leave the far gateway as UDP GSO super-packets (fewer
/// TUN writes than datagrams) and the kernel's segmentation of them gives the receiver
/// datagrams with valid checksums (a wrong one is dropped and shows as loss).
#[test]
fn udp_coalesces_into_gso_writes_and_arrives_intact() -> anyhow::Result<()> {
    if skip_unless_root("udp_coalesces_into_gso_writes_and_arrives_intact") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    let (customer, _cloud) = Vpngw::start_plan_pair(&s2s, psks(), UP)?;

    let dir = WorkDir::new("vpngw-fastpath-udp")?;
    let server = s2s.iperf_server_on_idc(&dir.join("iperf.log"))?;
    let before = customer.status()?;
    // VPC -> IDC at a rate both gateways keep up with even on a busy machine.
    let result = iperf_client(
        s2s.vpc_host(),
        server.addr(),
        server.port(),
        &IperfOptions {
            duration: Duration::from_secs(3),
            udp_bitrate: Some(200_000_000),
            length: Some(1200),
            ..IperfOptions::default()
        },
    )?;
    let rx = customer.status()?;
    let summary = format!("customer {:?}\niperf {result:?}", rx.dataplane);
    anyhow::ensure!(rx.counter("tun_udp_offload") == 1, "{summary}");
    let packets = rx.counter("tun_packets_out") - before.counter("tun_packets_out");
    let writes = rx.counter("tun_writes") - before.counter("tun_writes");
    eprintln!(
        "UDP: {packets} packets in {writes} TUN writes, {:?}% lost",
        result.lost_percent
    );
    anyhow::ensure!(packets > 10_000, "too few datagrams: {summary}");
    anyhow::ensure!(
        writes * 2 < packets,
        "{writes} TUN writes for {packets} packets: {summary}"
    );
    // Wrong checksums on the segments would lose nearly everything; a busy machine can
    // lose a little at the receiving socket when a burst arrives at once.
    let lost = result.lost_percent.unwrap_or(100.0);
    anyhow::ensure!(lost < 20.0, "{lost}% lost: {summary}");
    anyhow::ensure!(rx.counter("tun_write_errors") == 0, "{summary}");
    Ok(())
}
