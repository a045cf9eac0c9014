//! Self-tests of namespaces, topologies and cleanup (run as root).

use std::net::IpAddr;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use e2e::{
    iperf_client, list_namespaces, pid_alive, ping, plan, skip_unless_root, sweep_stale_namespaces,
    wait_until, IperfOptions, IperfServer, Netns, PingOptions, SiteToSite, TopologyBuilder,
    WorkDir,
};

fn ip(s: &str) -> IpAddr {
    s.parse().expect("test address")
}

fn chain() -> e2e::Result<e2e::Topology> {
    TopologyBuilder::new()
        .host("left")
        .router("mid")
        .host("right")
        .link(
            ("left", "eth0", "10.1.0.2/24"),
            ("mid", "eth0", "10.1.0.1/24"),
        )
        .link(
            ("mid", "eth1", "10.2.0.1/24"),
            ("right", "eth0", "10.2.0.2/24"),
        )
        .route("left", "default", "10.1.0.1")
        .route("right", "default", "10.2.0.1")
        .build()
}

fn assert_gone(namespaces: &[String], pids: &[u32]) -> anyhow::Result<()> {
    let existing = list_namespaces()?;
    for ns in namespaces {
        anyhow::ensure!(!existing.contains(ns), "namespace {ns} still exists");
    }
    for &pid in pids {
        anyhow::ensure!(!pid_alive(pid), "process {pid} still exists");
    }
    Ok(())
}

#[test]
fn hosts_ping_each_other_across_a_router() -> anyhow::Result<()> {
    if skip_unless_root("hosts_ping_each_other_across_a_router") {
        return Ok(());
    }
    let topo = chain()?;
    let stats = ping(topo.ns("left")?, ip("10.2.0.2"), &PingOptions::default())?;
    anyhow::ensure!(stats.all_replied(), "left -> right through mid: {stats:?}");
    anyhow::ensure!(stats.rtt.is_some());

    // Without forwarding on the middle host the same ping must fail: the routes, not
    // some shortcut, carry the traffic.
    topo.ns("mid")?.sysctl("net.ipv4.ip_forward", "0")?;
    let opts = PingOptions {
        count: 2,
        wait: Duration::from_millis(300),
        ..PingOptions::default()
    };
    let stats = ping(topo.ns("left")?, ip("10.2.0.2"), &opts)?;
    anyhow::ensure!(
        stats.received == 0,
        "forwarding off but replies came: {stats:?}"
    );
    Ok(())
}

#[test]
fn site_to_site_hops_are_reachable_and_sites_are_isolated() -> anyhow::Result<()> {
    if skip_unless_root("site_to_site_hops_are_reachable_and_sites_are_isolated") {
        return Ok(());
    }
    let s2s = SiteToSite::build()?;
    let opts = PingOptions {
        count: 2,
        interval: Duration::from_millis(100),
        ..PingOptions::default()
    };
    let reachable = [
        (s2s.idc_host(), plan::CUSTOMER_GW_LAN),
        (s2s.idc_host(), plan::CUSTOMER_GW_WAN),
        (s2s.vpc_host(), plan::CLOUD_GW_VPC),
        (s2s.vpc_host(), plan::CLOUD_GW_WAN),
        // Routed over the underlay to the cloud's public addresses on loopback.
        (s2s.customer_gw(), plan::TUNNELS[0].cloud_public),
        (s2s.customer_gw(), plan::TUNNELS[1].cloud_public),
    ];
    for (ns, dest) in reachable {
        let stats = ping(ns, dest.into(), &opts)?;
        anyhow::ensure!(stats.all_replied(), "{} -> {dest}: {stats:?}", ns.name());
    }
    // No tunnel yet: the private sites must not reach each other.
    let lost = PingOptions {
        count: 1,
        wait: Duration::from_millis(300),
        ..PingOptions::default()
    };
    let stats = ping(s2s.vpc_host(), plan::IDC_HOST.into(), &lost)?;
    anyhow::ensure!(
        stats.received == 0,
        "VPC reached IDC without a tunnel: {stats:?}"
    );
    Ok(())
}

#[test]
fn iperf3_measures_across_the_router() -> anyhow::Result<()> {
    if skip_unless_root("iperf3_measures_across_the_router") {
        return Ok(());
    }
    let topo = chain()?;
    let dir = WorkDir::new("iperf")?;
    let _server = IperfServer::start(
        topo.ns("right")?,
        ip("10.2.0.2"),
        5201,
        &dir.join("server.log"),
    )?;
    let opts = IperfOptions {
        duration: Duration::from_secs(1),
        ..IperfOptions::default()
    };
    let tcp = iperf_client(topo.ns("left")?, ip("10.2.0.2"), 5201, &opts)?;
    anyhow::ensure!(
        tcp.received_bytes > 0 && tcp.received_bits_per_second > 0.0,
        "{tcp:?}"
    );
    anyhow::ensure!(
        tcp.retransmits.is_some(),
        "TCP run without retransmit count: {tcp:?}"
    );
    let udp = iperf_client(
        topo.ns("left")?,
        ip("10.2.0.2"),
        5201,
        &IperfOptions {
            udp_bitrate: Some(10_000_000),
            ..opts
        },
    )?;
    anyhow::ensure!(
        udp.lost_percent.is_some() && udp.received_bytes > 0,
        "{udp:?}"
    );
    Ok(())
}

#[test]
fn drop_removes_namespaces_and_processes() -> anyhow::Result<()> {
    if skip_unless_root("drop_removes_namespaces_and_processes") {
        return Ok(());
    }
    let topo = chain()?;
    let names: Vec<String> = topo.namespaces().into_iter().map(|(_, ns)| ns).collect();
    let dir = WorkDir::new("drop")?;
    let guarded = topo
        .ns("left")?
        .spawn("sleep", &["sleep", "600"], &dir.join("sleep.log"))?;
    // A stray process the guard does not know about: namespace deletion must kill it.
    let mut stray = topo.ns("right")?.command(&["sleep", "600"])?.spawn()?;
    let pids = vec![guarded.pid(), stray.id()];
    let existing = list_namespaces()?;
    for n in &names {
        anyhow::ensure!(existing.contains(n), "{n} missing before drop");
    }
    // `ip netns exec` needs a moment before the process is inside the namespace.
    let right = topo.ns("right")?;
    wait_until(
        "stray process inside the namespace",
        Duration::from_secs(10),
        || right.pids().is_ok_and(|p| p.contains(&stray.id())),
    )?;

    drop(guarded);
    drop(topo);
    stray.wait()?; // reap our own child, killed by the namespace cleanup
    assert_gone(&names, &pids)
}

#[test]
fn cleanup_happens_when_a_test_panics() -> anyhow::Result<()> {
    if skip_unless_root("cleanup_happens_when_a_test_panics") {
        return Ok(());
    }
    let (tx, rx) = mpsc::channel();
    let outcome = std::panic::catch_unwind(move || {
        let s2s = SiteToSite::build().expect("topology");
        let dir = WorkDir::new("panic").expect("workdir");
        let proc = s2s
            .cloud_gw()
            .spawn("sleep", &["sleep", "600"], &dir.join("sleep.log"))
            .expect("spawn");
        tx.send((s2s.namespace_names(), proc.pid(), dir.path().to_owned()))
            .expect("send");
        panic!("deliberate panic midway through a test");
    });
    anyhow::ensure!(outcome.is_err(), "the closure should have panicked");
    let (names, pid, kept_dir) = rx.recv()?;
    anyhow::ensure!(kept_dir.exists(), "work dir should be kept after a panic");
    std::fs::remove_dir_all(kept_dir)?;
    assert_gone(&names, &[pid])
}

#[test]
fn sweep_removes_namespaces_of_dead_test_processes() -> anyhow::Result<()> {
    if skip_unless_root("sweep_removes_namespaces_of_dead_test_processes") {
        return Ok(());
    }
    // A PID that surely belonged to a process that has exited: one we just reaped.
    let mut gone = Command::new("true").spawn()?;
    gone.wait()?;
    let dead_pid = gone.id();
    anyhow::ensure!(!pid_alive(dead_pid));
    let stale = format!("{}{dead_pid}-0-stale", e2e::PREFIX);
    e2e::run_argv(&[e2e::Tool::Ip.path(), "netns", "add", &stale])?;
    // Something left running inside, like a charon of a killed run.
    let mut leftover = Command::new(e2e::Tool::Ip.path())
        .args(["netns", "exec", &stale, "sleep", "600"])
        .spawn()?;
    wait_until(
        "leftover process inside the stale namespace",
        Duration::from_secs(10),
        || {
            e2e::run_argv(&[e2e::Tool::Ip.path(), "netns", "pids", &stale]).is_ok_and(|out| {
                out.split_whitespace()
                    .any(|p| p == leftover.id().to_string())
            })
        },
    )?;
    // A namespace of a live process (this one) must survive the sweep.
    let mine = Netns::new("alive")?;

    let removed = sweep_stale_namespaces()?;
    leftover.wait()?;
    anyhow::ensure!(removed.contains(&stale), "sweep removed {removed:?}");
    let existing = list_namespaces()?;
    anyhow::ensure!(!existing.contains(&stale), "{stale} survived the sweep");
    anyhow::ensure!(
        existing.contains(&mine.name().to_owned()),
        "live namespace was swept"
    );
    anyhow::ensure!(!pid_alive(leftover.id()));
    Ok(())
}
