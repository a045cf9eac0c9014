//! `vpngw lab` end to end: the binary run as a user would, its summary checked, and
//! nothing of it left afterwards (namespaces, processes, state file, veth, routes) —
//! after a clean run, `--keep` + `lab down`, `lab cloud` with a customer vpngw (one
//! connection, and eight with a customer restart), a
//! SIGINT while it starts, a peer that never comes up, and the customer behind a NAT.

use std::path::Path;
use std::process::{Command, Output};
use std::time::Duration;

use e2e::{
    list_namespaces, pid_alive, skip_unless_root, vpngw_binary, wait_for, wait_until, Charon,
    Netns, Poll, ProcessGuard, Psk, Vpngw, VpngwBgp, VpngwConfig, VpngwTunnel,
};

const UP: Duration = Duration::from_secs(30);

/// A lab's private state and work directories.
struct Dirs {
    _root: tempfile::TempDir,
    state: std::path::PathBuf,
    work: std::path::PathBuf,
}

impl Dirs {
    fn new() -> anyhow::Result<Self> {
        let root = tempfile::Builder::new()
            .prefix("vpngw-lab-e2e-")
            .tempdir()?;
        Ok(Dirs {
            state: root.path().join("state"),
            work: root.path().join("work"),
            _root: root,
        })
    }

    fn args(&self) -> Vec<String> {
        vec![
            "--state-dir".into(),
            self.state.display().to_string(),
            "--work-dir".into(),
            self.work.display().to_string(),
        ]
    }
}

/// Runs `vpngw lab down` for these dirs when dropped: a failing test leaves nothing.
struct DownOnDrop<'a>(&'a Dirs);

impl Drop for DownOnDrop<'_> {
    fn drop(&mut self) {
        if let Ok(bin) = vpngw_binary() {
            let _ = Command::new(bin)
                .args(["lab", "down", "--state-dir"])
                .arg(&self.0.state)
                .output();
        }
    }
}

fn vpngw(args: &[&str]) -> anyhow::Result<Output> {
    Ok(Command::new(vpngw_binary()?).args(args).output()?)
}

fn lab(dirs: &Dirs, extra: &[&str]) -> anyhow::Result<Output> {
    let mut cmd = Command::new(vpngw_binary()?);
    cmd.arg("lab").args(extra).args(dirs.args());
    Ok(cmd.output()?)
}

fn spawn_lab(dirs: &Dirs, extra: &[&str], log: &Path) -> anyhow::Result<ProcessGuard> {
    let mut cmd = Command::new(vpngw_binary()?);
    cmd.arg("lab").args(extra).args(dirs.args());
    Ok(ProcessGuard::spawn("vpngw lab", cmd, log)?)
}

/// The lab namespaces of the lab process `pid`.
fn lab_namespaces(pid: u32) -> anyhow::Result<Vec<String>> {
    let prefix = format!("vpngwlab-{pid}-");
    Ok(list_namespaces()?
        .into_iter()
        .filter(|n| n.starts_with(&prefix))
        .collect())
}

/// PIDs of processes whose command line mentions `dir` (the lab's daemons do).
fn processes_using(dir: &Path) -> Vec<u32> {
    let needle = dir.display().to_string();
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| String::from_utf8_lossy(&c).contains(&needle))
        })
        .collect()
}

fn state_files(dirs: &Dirs) -> usize {
    std::fs::read_dir(&dirs.state).map_or(0, |d| d.count())
}

fn assert_nothing_left(dirs: &Dirs, pid: u32) -> anyhow::Result<()> {
    let ns = lab_namespaces(pid)?;
    anyhow::ensure!(ns.is_empty(), "namespaces left: {ns:?}");
    let procs = processes_using(&dirs.work);
    anyhow::ensure!(procs.is_empty(), "processes left: {procs:?}");
    anyhow::ensure!(state_files(dirs) == 0, "state file left");
    let links = e2e::run_argv(&["ip", "-o", "link", "show"])?;
    anyhow::ensure!(
        !links.contains(&format!("vlab{pid}")),
        "veth left in the root namespace"
    );
    Ok(())
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

/// The line of a summary table that starts with `first` (after indentation).
fn row<'a>(summary: &'a str, first: &str) -> Vec<&'a str> {
    summary
        .lines()
        .filter(|l| l.split_whitespace().next() == Some(first))
        .collect()
}

#[test]
fn lab_runs_end_to_end_and_leaves_nothing() -> anyhow::Result<()> {
    if skip_unless_root("lab_runs_end_to_end_and_leaves_nothing") {
        return Ok(());
    }
    let dirs = Dirs::new()?;
    let _down = DownOnDrop(&dirs);
    let out = lab(&dirs, &["--iperf-seconds", "2"])?;
    let stdout = text(&out.stdout);
    anyhow::ensure!(
        out.status.success(),
        "{}\n{stdout}\n{}",
        out.status,
        text(&out.stderr)
    );
    // Both gateways list both tunnels UP, with SPIs and the suite.
    for t in ["tunnel1", "tunnel2"] {
        let rows: Vec<&str> = row(&stdout, t)
            .into_iter()
            .filter(|l| l.contains("aes128gcm16"))
            .collect();
        anyhow::ensure!(rows.len() == 2, "{t}: {rows:?}\n{stdout}");
        anyhow::ensure!(
            rows.iter()
                .all(|r| r.split_whitespace().nth(1) == Some("UP")),
            "{rows:?}"
        );
    }
    let established = ["tunnel1", "tunnel2"]
        .iter()
        .flat_map(|t| row(&stdout, t))
        .filter(|l| l.contains(" Established "))
        .count();
    anyhow::ensure!(established == 4, "4 BGP sessions Established:\n{stdout}");
    let bgp_routes: Vec<&str> = row(&stdout, "10.20.0.0/24")
        .into_iter()
        .chain(row(&stdout, "10.10.0.0/24"))
        .filter(|l| l.contains(" bgp "))
        .collect();
    anyhow::ensure!(bgp_routes.len() == 2, "{bgp_routes:?}\n{stdout}");
    anyhow::ensure!(
        stdout.matches(": 3/3 replies, rtt").count() == 2,
        "{stdout}"
    );
    let gbits = stdout
        .lines()
        .find_map(|l| l.split_once("s: ")?.1.split_once(" Gbit/s").map(|(n, _)| n))
        .and_then(|n| n.trim().parse::<f64>().ok());
    anyhow::ensure!(gbits.is_some_and(|g| g > 0.0), "{gbits:?}\n{stdout}");
    anyhow::ensure!(stdout.contains("done: processes stopped"), "{stdout}");
    assert_nothing_left(&dirs, lab_pid(&stdout)?)?;
    anyhow::ensure!(!dirs.work.exists(), "work dir kept after a good run");
    Ok(())
}

/// The lab's pid, from the namespace names its first line announces (`vpngwlab-<pid>-*`).
fn lab_pid(stdout: &str) -> anyhow::Result<u32> {
    stdout
        .split("vpngwlab-")
        .nth(1)
        .and_then(|r| r.split('-').next())
        .and_then(|p| p.parse().ok())
        .ok_or_else(|| anyhow::anyhow!("no vpngwlab-<pid>- in:\n{stdout}"))
}

#[test]
fn kept_lab_runs_until_lab_down() -> anyhow::Result<()> {
    if skip_unless_root("kept_lab_runs_until_lab_down") {
        return Ok(());
    }
    let dirs = Dirs::new()?;
    let _down = DownOnDrop(&dirs);
    let out = lab(&dirs, &["--keep", "--iperf-seconds", "1"])?;
    let stdout = text(&out.stdout);
    anyhow::ensure!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    anyhow::ensure!(stdout.contains("lab down --state-dir"), "{stdout}");
    let pid = lab_pid(&stdout)?;
    anyhow::ensure!(!pid_alive(pid), "the lab process itself exited");
    anyhow::ensure!(lab_namespaces(pid)?.len() == 4, "4 namespaces kept");
    anyhow::ensure!(state_files(&dirs) == 1, "state file kept");
    let daemons = processes_using(&dirs.work);
    anyhow::ensure!(daemons.len() >= 2, "both vpngw still run: {daemons:?}");
    // The printed exploration command works.
    let sock = dirs.work.join("customer.sock");
    let status = vpngw(&["status", "--socket", &sock.display().to_string()])?;
    let table = text(&status.stdout);
    anyhow::ensure!(
        status.status.success() && table.matches(" UP ").count() >= 2,
        "{table}"
    );
    let down = vpngw(&[
        "lab",
        "down",
        "--state-dir",
        &dirs.state.display().to_string(),
    ])?;
    anyhow::ensure!(down.status.success(), "{}", text(&down.stderr));
    anyhow::ensure!(
        text(&down.stdout).contains("removed lab of pid"),
        "{down:?}"
    );
    for p in daemons {
        anyhow::ensure!(!pid_alive(p), "daemon {p} survived lab down");
    }
    assert_nothing_left(&dirs, pid)?;
    anyhow::ensure!(!dirs.work.exists(), "work dir left");
    let again = vpngw(&[
        "lab",
        "down",
        "--state-dir",
        &dirs.state.display().to_string(),
    ])?;
    anyhow::ensure!(
        again.status.success() && text(&again.stdout).contains("no kept lab"),
        "{again:?}"
    );
    Ok(())
}

/// `value` of `  Label...... : value` lines, in order of appearance.
fn values<'a>(text: &'a str, label: &str) -> Vec<&'a str> {
    text.lines()
        .filter(|l| l.trim_start().starts_with(label))
        .filter_map(|l| l.split_once(" : ").map(|(_, v)| v.trim()))
        .collect()
}

/// A vpngw customer configured only from what `lab cloud` printed: one connection of two
/// tunnels (`c<i>t1`, `c<i>t2`) per VPN connection printed, each with its BGP session.
fn customers_from_console(text: &str) -> anyhow::Result<Vec<VpngwConfig>> {
    let psks = values(text, "Pre-shared key");
    let peers = values(text, "Cloud endpoint (IKE peer) address");
    let inner = values(text, "Inner address, customer side");
    let neighbours = values(text, "BGP neighbour address");
    let ike = values(text, "IKE proposals");
    let esp = values(text, "ESP proposals");
    let local = values(text, "Customer gateway address");
    anyhow::ensure!(
        [&peers, &inner, &neighbours, &ike, &esp, &local]
            .iter()
            .all(|v| v.len() == psks.len())
            && !psks.is_empty()
            && psks.len().is_multiple_of(2),
        "settings of two tunnels per connection expected:\n{text}"
    );
    let local_asn = values(text, "BGP customer ASN")
        .first()
        .and_then(|a| a.parse().ok())
        .unwrap_or(65010);
    let tunnel = |i: usize| -> anyhow::Result<VpngwTunnel> {
        Ok(VpngwTunnel {
            name: format!("c{}t{}", i / 2 + 1, i % 2 + 1),
            local_address: None,
            peer: peers[i].parse()?,
            psk: Psk::from(psks[i]),
            ike_proposals: ike[i].into(),
            esp_proposals: esp[i].into(),
            start_action: "respond".into(),
            ike_lifetime: ("21h".into(), "24h".into()),
            child_lifetime: ("50m".into(), "1h".into()),
            child_limits: Vec::new(),
            inner_address: inner[i].into(),
            inner_peer: neighbours[i].parse()?,
            mtu: 1400,
            reauth_time: None,
            extra: Vec::new(),
        })
    };
    (0..psks.len() / 2)
        .map(|c| -> anyhow::Result<VpngwConfig> {
            Ok(VpngwConfig {
                local_address: local[0].parse()?,
                local_id: None,
                tun_name: "vpngw0".into(),
                connection: format!("to-cloud-{}", c + 1),
                tunnels: vec![tunnel(2 * c)?, tunnel(2 * c + 1)?],
                routes: Vec::new(),
                bgp: Some(VpngwBgp {
                    local_asn,
                    peer_asn: 65000,
                    advertise: vec!["10.10.0.0/24".into()],
                    hold_time: "30s".into(),
                    standby_prepend: None,
                }),
                ecmp: false,
            })
        })
        .collect()
}

fn wait_exit(guard: &mut ProcessGuard, timeout: Duration) -> anyhow::Result<String> {
    Ok(wait_for("vpngw lab to exit", timeout, || {
        Ok(match guard.check_running() {
            Ok(()) => Poll::Pending(guard.log_tail(5)),
            Err(e) => Poll::Ready(e.to_string()),
        })
    })?)
}

fn sigint(pid: u32) {
    // SAFETY: kill(2) on a child we own and have not reaped.
    unsafe {
        libc::kill(pid as libc::pid_t, libc::SIGINT);
    }
}

/// The lab cloud's VPC host answers `ns` (over the tunnels, by the BGP route).
fn ping_vpc_host(ns: &Netns) -> anyhow::Result<()> {
    let p = e2e::ping(ns, "10.20.0.10".parse()?, &e2e::PingOptions::default())?;
    anyhow::ensure!(p.all_replied(), "VPC host from {}: {p:?}", ns.name());
    Ok(())
}

/// A running `lab cloud` attached to `customer_ns` (forwarding turned on there).
struct LabCloud {
    process: ProcessGuard,
    /// What it printed for the customer device.
    settings: String,
    /// Its console output.
    log: std::path::PathBuf,
}

/// Starts `lab cloud` for `customer_ns` with `extra` arguments and waits until it runs.
fn start_lab_cloud(dirs: &Dirs, customer_ns: &Netns, extra: &[&str]) -> anyhow::Result<LabCloud> {
    customer_ns.sysctl("net.ipv4.ip_forward", "1")?;
    let printout = dirs._root.path().join("customer.txt");
    let log = dirs._root.path().join("lab-cloud.log");
    let printout_arg = printout.display().to_string();
    let mut args = vec![
        "cloud",
        "--attach-netns",
        customer_ns.name(),
        "--output",
        &printout_arg,
    ];
    args.extend_from_slice(extra);
    let mut process = spawn_lab(dirs, &args, &log)?;
    wait_until("lab cloud to print the settings", UP, || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("running;"))
            || process.check_running().is_err()
    })?;
    process.check_running()?;
    let settings = std::fs::read_to_string(&printout)?;
    Ok(LabCloud {
        process,
        settings,
        log,
    })
}

#[test]
fn lab_cloud_serves_a_customer_configured_from_its_printout() -> anyhow::Result<()> {
    if skip_unless_root("lab_cloud_serves_a_customer_configured_from_its_printout") {
        return Ok(());
    }
    let dirs = Dirs::new()?;
    let _down = DownOnDrop(&dirs);
    let customer_ns = Netns::new("lab_customer")?;
    let extra = ["--inner", "169.254.20.0/30", "--inner", "169.254.21.4/30"];
    let LabCloud {
        mut process,
        settings,
        log,
    } = start_lab_cloud(&dirs, &customer_ns, &extra)?;
    let pid = process.pid();
    anyhow::ensure!(
        values(&settings, "Inner address, customer side") == ["169.254.20.2/30", "169.254.21.6/30"],
        "{settings}"
    );
    let customers = customers_from_console(&settings)?;
    anyhow::ensure!(customers.len() == 1, "one connection printed:\n{settings}");
    let mut customer = Vpngw::start(&customer_ns, &customers[0])?;
    customer.wait_up(&["c1t1", "c1t2"], UP)?;
    customer.wait_bgp("BGP with the lab cloud", UP, |s| {
        s.len() == 2 && s.iter().all(|s| s.state == "Established")
    })?;
    ping_vpc_host(&customer_ns)?;
    wait_until("lab cloud to log both tunnels UP", UP, || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.matches(": UP, ESP").count() >= 2)
    })?;

    sigint(pid);
    let ended = wait_exit(&mut process, UP)?;
    anyhow::ensure!(ended.contains("exit status: 0"), "{ended}");
    let out = std::fs::read_to_string(&log)?;
    anyhow::ensure!(out.contains("done: processes stopped"), "{out}");
    anyhow::ensure!(lab_namespaces(pid)?.is_empty());
    let links = customer_ns.ip(&["-o", "link", "show"])?;
    anyhow::ensure!(!links.contains(&format!("vlab{pid}")), "{links}");
    let routes = customer_ns.ip(&["route", "show", "203.0.113.0/24"])?;
    anyhow::ensure!(routes.trim().is_empty(), "route left: {routes}");
    assert_nothing_left(&dirs, pid)?;
    Ok(())
}

/// `lab cloud --connections 8`: sixteen tunnels in one cloud vpngw and as many in one
/// customer vpngw configured from the printout, all UP with their BGP sessions. Then the
/// customer crashes and restarts, initiating every tunnel: all sixteen tunnels and
/// sessions are back within seconds, and none of the cloud's tunnels went DOWN (its IKE
/// SAs, seconds old, gave way to the customer's INITIAL_CONTACT).
#[test]
fn lab_cloud_with_eight_connections_and_a_customer_that_restarts() -> anyhow::Result<()> {
    if skip_unless_root("lab_cloud_with_eight_connections_and_a_customer_that_restarts") {
        return Ok(());
    }
    const CONNECTIONS: usize = 8;
    const BACK: Duration = Duration::from_secs(5);
    let dirs = Dirs::new()?;
    let _down = DownOnDrop(&dirs);
    let customer_ns = Netns::new("lab_many")?;
    let connections = CONNECTIONS.to_string();
    let LabCloud {
        mut process,
        settings,
        log,
    } = start_lab_cloud(&dirs, &customer_ns, &["--connections", &connections])?;
    let pid = process.pid();
    let mut configs = customers_from_console(&settings)?;
    anyhow::ensure!(
        configs.len() == CONNECTIONS,
        "{} connections",
        configs.len()
    );
    let names: Vec<String> = configs
        .iter()
        .flat_map(|c| c.tunnels.iter().map(|t| t.name.clone()))
        .collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let all_established =
        |s: &[e2e::VpngwBgpSession]| e2e::sessions_learned_one_route(s, names.len());

    let mut customer = Vpngw::start_text(&customer_ns, &VpngwConfig::render_many(&configs))?;
    customer.wait_up(&names, UP)?;
    customer.wait_bgp("every session Established", UP, all_established)?;
    ping_vpc_host(&customer_ns)?;

    // A crash a second later (no DELETE goes out), and a restart that initiates.
    std::thread::sleep(Duration::from_secs(1));
    let logged_before = std::fs::read_to_string(&log)?.len();
    // SAFETY: kill(2) on the daemon this test started.
    unsafe {
        libc::kill(customer.pid() as libc::pid_t, libc::SIGKILL);
    }
    drop(customer);
    for t in configs.iter_mut().flat_map(|c| c.tunnels.iter_mut()) {
        t.start_action = "initiate".into();
    }
    let mut customer = Vpngw::start_text(&customer_ns, &VpngwConfig::render_many(&configs))?;
    customer.wait_up(&names, BACK)?;
    customer.wait_bgp("every session back", BACK, all_established)?;
    // The cloud's printout of state changes since the crash: every tunnel on new SPIs,
    // none DOWN on the way.
    let since = || {
        std::fs::read_to_string(&log)
            .map(|out| out.get(logged_before..).unwrap_or_default().to_owned())
            .unwrap_or_default()
    };
    wait_until("the cloud to print the new SPIs", BACK, || {
        since().matches(": UP, ESP").count() >= names.len()
    })?;
    let since = since();
    anyhow::ensure!(
        !since.contains(": DOWN"),
        "a cloud tunnel went DOWN on the customer's restart:\n{since}"
    );
    drop(customer);

    sigint(pid);
    let ended = wait_exit(&mut process, UP)?;
    anyhow::ensure!(ended.contains("exit status: 0"), "{ended}");
    assert_nothing_left(&dirs, pid)
}

#[test]
fn sigint_while_starting_tears_everything_down() -> anyhow::Result<()> {
    if skip_unless_root("sigint_while_starting_tears_everything_down") {
        return Ok(());
    }
    let dirs = Dirs::new()?;
    let _down = DownOnDrop(&dirs);
    let log = dirs._root.path().join("lab.log");
    let mut lab = spawn_lab(&dirs, &[], &log)?;
    let pid = lab.pid();
    wait_until("the lab to build its namespaces", UP, || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("building 4 namespaces"))
    })?;
    sigint(pid);
    let ended = wait_exit(&mut lab, UP)?;
    let out = std::fs::read_to_string(&log)?;
    anyhow::ensure!(ended.contains("exit status: 130"), "{ended}\n{out}");
    anyhow::ensure!(
        out.contains("interrupted during") && out.contains("torn down"),
        "{out}"
    );
    assert_nothing_left(&dirs, pid)
}

#[test]
fn a_peer_that_never_comes_up_fails_the_step_and_leaves_nothing() -> anyhow::Result<()> {
    if skip_unless_root("a_peer_that_never_comes_up_fails_the_step_and_leaves_nothing") {
        return Ok(());
    }
    let dirs = Dirs::new()?;
    let _down = DownOnDrop(&dirs);
    let log = dirs._root.path().join("lab.log");
    // The cloud offers only MODP-3072 IKE; the customer only MODP-2048: no IKE SA.
    let mut lab = spawn_lab(
        &dirs,
        &[
            "--cloud-ike-proposals",
            "aes256-sha256-modp3072",
            "--timeout",
            "4s",
        ],
        &log,
    )?;
    let pid = lab.pid();
    let ended = wait_exit(&mut lab, Duration::from_secs(40))?;
    let out = std::fs::read_to_string(&log)?;
    anyhow::ensure!(ended.contains("exit status: 1"), "{ended}\n{out}");
    anyhow::ensure!(
        out.contains("step \"waiting for both tunnels UP\" failed")
            && out.contains(&format!("logs: {}", dirs.work.display())),
        "{out}"
    );
    // The logs it points to are there; everything else is gone.
    anyhow::ensure!(dirs.work.join("cloud.log").is_file());
    assert_nothing_left(&dirs, pid)
}

#[test]
fn lab_with_strongswan_as_the_cloud() -> anyhow::Result<()> {
    if skip_unless_root("lab_with_strongswan_as_the_cloud") {
        return Ok(());
    }
    let dirs = Dirs::new()?;
    let _down = DownOnDrop(&dirs);
    let out = lab(&dirs, &["--peer", "strongswan", "--iperf-seconds", "1"])?;
    let stdout = text(&out.stdout);
    anyhow::ensure!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    anyhow::ensure!(stdout.contains("cloud side strongSwan + BIRD"), "{stdout}");
    // vpngw's view of the tunnels to charon and of its sessions with BIRD.
    for t in ["tunnel1", "tunnel2"] {
        let rows = row(&stdout, t);
        anyhow::ensure!(
            rows.iter()
                .any(|r| r.split_whitespace().nth(1) == Some("UP") && r.contains("aes256gcm16")),
            "{t} UP:\n{stdout}"
        );
        anyhow::ensure!(
            rows.iter()
                .any(|r| r.contains(" Established ") && r.contains("65000")),
            "{t} BGP:\n{stdout}"
        );
        anyhow::ensure!(
            rows.iter()
                .any(|r| r.split_whitespace().collect::<Vec<_>>() == [t, "up", "Established"]),
            "{t} in BIRD:\n{stdout}"
        );
    }
    anyhow::ensure!(
        stdout.matches(": 3/3 replies, rtt").count() == 2,
        "{stdout}"
    );
    anyhow::ensure!(stdout.contains(" Gbit/s"), "{stdout}");
    assert_nothing_left(&dirs, lab_pid(&stdout)?)
}

/// The (tunnel, port) pairs of a NAT summary line: `... the cloud sees tunnel1
/// 192.0.2.2:40001, tunnel2 192.0.2.2:40002`.
fn nat_ports_seen(line: &str) -> Vec<(String, u16)> {
    let Some((_, seen)) = line.split_once("the cloud sees ") else {
        return Vec::new();
    };
    seen.split(", ")
        .filter_map(|pair| {
            let (tunnel, peer) = pair.split_once(' ')?;
            let port = peer.strip_prefix("192.0.2.2:")?.parse().ok()?;
            Some((tunnel.to_owned(), port))
        })
        .collect()
}

/// `--nat` with `peer`: the customer initiates through the NAT, the cloud sees it at
/// translated ports, and after the NAT's reboot traffic flows again through new ones.
fn lab_behind_a_nat(peer: &str) -> anyhow::Result<()> {
    let dirs = Dirs::new()?;
    let _down = DownOnDrop(&dirs);
    let out = lab(&dirs, &["--nat", "--peer", peer, "--iperf-seconds", "1"])?;
    let stdout = text(&out.stdout);
    anyhow::ensure!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    for t in ["tunnel1", "tunnel2"] {
        anyhow::ensure!(
            row(&stdout, t)
                .iter()
                .any(|r| r.split_whitespace().nth(1) == Some("UP")),
            "{t} UP:\n{stdout}"
        );
    }
    anyhow::ensure!(
        stdout.matches(": 3/3 replies, rtt").count() == 2,
        "{stdout}"
    );
    let line = |start: &str| {
        stdout
            .lines()
            .find(|l| l.trim_start().starts_with(start))
            .unwrap_or_default()
    };
    anyhow::ensure!(
        stdout.contains("NAT (customer gateway 100.64.0.2 behind a NAT router"),
        "{stdout}"
    );
    let before = nat_ports_seen(line("before the reboot"));
    anyhow::ensure!(
        before.len() == 2 && before.iter().all(|(_, p)| (40000..=40999).contains(p)),
        "before: {before:?}\n{stdout}"
    );
    // Traffic went over tunnel1, so the cloud follows it through the new mapping.
    let after = nat_ports_seen(line("IDC -> VPC again"));
    anyhow::ensure!(
        after
            .iter()
            .any(|(t, p)| t == "tunnel1" && (41000..=41999).contains(p)),
        "after: {after:?}\n{stdout}"
    );
    assert_nothing_left(&dirs, lab_pid(&stdout)?)
}

#[test]
fn lab_with_the_customer_behind_a_nat() -> anyhow::Result<()> {
    if skip_unless_root("lab_with_the_customer_behind_a_nat") {
        return Ok(());
    }
    lab_behind_a_nat("vpngw")
}

#[test]
fn lab_with_the_customer_behind_a_nat_and_strongswan_as_the_cloud() -> anyhow::Result<()> {
    if skip_unless_root("lab_with_the_customer_behind_a_nat_and_strongswan_as_the_cloud") {
        return Ok(());
    }
    lab_behind_a_nat("strongswan")
}

#[test]
fn lab_cloud_swanctl_snippet_brings_a_strongswan_customer_up() -> anyhow::Result<()> {
    if skip_unless_root("lab_cloud_swanctl_snippet_brings_a_strongswan_customer_up") {
        return Ok(());
    }
    let dirs = Dirs::new()?;
    let _down = DownOnDrop(&dirs);
    let customer_ns = Netns::new("lab_swan")?;
    let snippet = dirs._root.path().join("swanctl.conf");
    let log = dirs._root.path().join("lab-cloud.log");
    let mut cloud = spawn_lab(
        &dirs,
        &[
            "cloud",
            "--attach-netns",
            customer_ns.name(),
            "--format",
            "swanctl",
            "--output",
            &snippet.display().to_string(),
        ],
        &log,
    )?;
    let pid = cloud.pid();
    wait_until("lab cloud to print the settings", UP, || {
        std::fs::read_to_string(&log).is_ok_and(|l| l.contains("running;"))
            || cloud.check_running().is_err()
    })?;
    cloud.check_running()?;
    // charon loads the printed snippet as it is and answers the cloud's initiation.
    let mut charon =
        Charon::start_with_swanctl(&customer_ns, &std::fs::read_to_string(&snippet)?, false)?;
    charon.wait_up(&["conn1-tun1", "conn1-tun2"], UP)?;
    drop(charon);
    sigint(pid);
    let ended = wait_exit(&mut cloud, UP)?;
    anyhow::ensure!(ended.contains("exit status: 0"), "{ended}");
    assert_nothing_left(&dirs, pid)
}

#[test]
fn lab_cloud_failing_midway_removes_its_veth_and_keeps_foreign_routes() -> anyhow::Result<()> {
    if skip_unless_root("lab_cloud_failing_midway_removes_its_veth_and_keeps_foreign_routes") {
        return Ok(());
    }
    let dirs = Dirs::new()?;
    let _down = DownOnDrop(&dirs);
    let customer_ns = Netns::new("lab_taken")?;
    // The customer side already routes the cloud endpoints elsewhere: the lab's own
    // route cannot be added, after its namespaces and veth exist.
    customer_ns.ip(&["route", "add", "blackhole", "203.0.113.0/24"])?;
    let log = dirs._root.path().join("lab-cloud.log");
    let mut cloud = spawn_lab(
        &dirs,
        &["cloud", "--attach-netns", customer_ns.name()],
        &log,
    )?;
    let pid = cloud.pid();
    let ended = wait_exit(&mut cloud, UP)?;
    let out = std::fs::read_to_string(&log)?;
    anyhow::ensure!(ended.contains("exit status: 1"), "{ended}\n{out}");
    anyhow::ensure!(
        out.contains("step \"joining it to") && out.contains("torn down"),
        "{out}"
    );
    let links = customer_ns.ip(&["-o", "link", "show"])?;
    anyhow::ensure!(!links.contains(&format!("vlab{pid}")), "{links}");
    let routes = customer_ns.ip(&["route", "show", "203.0.113.0/24"])?;
    anyhow::ensure!(
        routes.contains("blackhole"),
        "foreign route removed: {routes}"
    );
    assert_nothing_left(&dirs, pid)
}
