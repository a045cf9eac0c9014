//! Network namespaces owned by a test, named so that parallel and leftover runs never collide.

use std::ffi::OsStr;
use std::path::Path;
use std::process::{Command, Output};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Once;
use std::time::{Duration, Instant};

use crate::command::{self, failure};
use crate::error::{HarnessError, Result};
use crate::process::{pid_alive, signal, ProcessGuard};
use crate::tools::Tool;

/// Every namespace the harness creates is called `vpngwt-<pid>-<counter>-<label>`: the pid
/// of the test process tells the sweep whether its owner is still alive.
pub const PREFIX: &str = "vpngwt-";

const MAX_LABEL: usize = 24;

/// Longest name [`Netns::create`] accepts.
const MAX_NAME: usize = 48;

/// Where `ip netns` keeps its namespace handles.
const NETNS_DIR: &str = "/run/netns";

static COUNTER: AtomicU32 = AtomicU32::new(0);
static SWEEP: Once = Once::new();

/// A network namespace, deleted on drop together with any process still inside it.
#[derive(Debug)]
pub struct Netns {
    name: String,
}

impl Netns {
    /// Creates a namespace `vpngwt-<pid>-<n>-<label>` with its loopback up. The first call
    /// in a process removes namespaces left behind by dead test processes.
    pub fn new(label: &str) -> Result<Self> {
        if label.is_empty()
            || label.len() > MAX_LABEL
            || !label
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(HarnessError::Invalid(format!(
                "namespace label {label:?}: use 1..={MAX_LABEL} of [a-z0-9_]"
            )));
        }
        SWEEP.call_once(|| {
            if let Err(e) = sweep_stale_namespaces() {
                eprintln!("netlab: sweeping stale namespaces failed: {e}");
            }
        });
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let name = format!("{PREFIX}{}-{n}-{label}", std::process::id());
        command::run_argv(&[Tool::Ip.path(), "netns", "add", &name])?;
        let ns = Netns { name };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Creates a namespace with exactly this name (loopback up), outside the
    /// `vpngwt-<pid>-` scheme and its sweep: for labs that outlive their process
    /// (`vpngw lab --keep`) and are removed by name later.
    pub fn create(name: &str) -> Result<Self> {
        if name.is_empty()
            || name.len() > MAX_NAME
            || name.starts_with(PREFIX)
            || !name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
        {
            return Err(HarnessError::Invalid(format!(
                "namespace name {name:?}: use 1..={MAX_NAME} of [a-z0-9_-], not starting {PREFIX:?}"
            )));
        }
        command::run_argv(&[Tool::Ip.path(), "netns", "add", name])?;
        let ns = Netns {
            name: name.to_owned(),
        };
        ns.ip(&["link", "set", "lo", "up"])?;
        Ok(ns)
    }

    /// Gives up ownership: the namespace stays after this value is gone. Returns its name.
    pub fn keep(self) -> String {
        let this = std::mem::ManuallyDrop::new(self);
        this.name.clone()
    }

    /// The namespace name as `ip netns` knows it.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// `argv` run inside the namespace, ready to run or spawn. Uses
    /// `nsenter --net=/run/netns/<name>`, which execs the program (the child's PID is the
    /// program's own) and, unlike `ip netns exec`, creates no mount namespace: tearing
    /// one down waits for an expedited RCU grace period, which takes seconds on a
    /// loaded two-core VM. Programs see the root namespace's /sys, which none of the
    /// tools driven here read.
    pub fn command<S: AsRef<OsStr>>(&self, argv: &[S]) -> Result<Command> {
        if argv.is_empty() {
            return Err(HarnessError::Invalid("empty command line".into()));
        }
        let mut cmd = Command::new(Tool::Nsenter.path());
        cmd.arg(format!("--net={NETNS_DIR}/{}", self.name))
            .arg("--");
        cmd.args(argv);
        Ok(cmd)
    }

    /// Runs `argv` inside the namespace; a non-zero exit is an error. Returns stdout.
    pub fn run<S: AsRef<OsStr>>(&self, argv: &[S]) -> Result<String> {
        command::run(&mut self.command(argv)?)
    }

    /// Runs `argv` inside the namespace and returns its output whatever the exit status.
    pub fn output<S: AsRef<OsStr>>(&self, argv: &[S]) -> Result<Output> {
        command::output(&mut self.command(argv)?)
    }

    /// `ip args...` inside the namespace. Not `ip -n`: that, like `ip netns exec`,
    /// unshares a mount namespace whose teardown stalls under load.
    pub fn ip<S: AsRef<OsStr>>(&self, args: &[S]) -> Result<String> {
        let mut cmd = self.command(&[Tool::Ip.path()])?;
        cmd.args(args);
        command::run(&mut cmd)
    }

    /// Starts `argv` in the background inside the namespace, output appended to `log`.
    pub fn spawn<S: AsRef<OsStr>>(
        &self,
        name: &str,
        argv: &[S],
        log: &Path,
    ) -> Result<ProcessGuard> {
        ProcessGuard::spawn(format!("{name} in {}", self.name), self.command(argv)?, log)
    }

    /// Sets a sysctl of this namespace, e.g. `("net.ipv4.ip_forward", "1")`.
    pub fn sysctl(&self, key: &str, value: &str) -> Result<()> {
        if key.is_empty() || key.contains("..") || key.contains('/') {
            return Err(HarnessError::Invalid(format!("sysctl key {key:?}")));
        }
        let path = format!("/proc/sys/{}", key.replace('.', "/"));
        // /proc/sys/net is per network namespace of the writing process; the path and the
        // value are passed as arguments, never spliced into the script.
        self.run(&["sh", "-c", "printf '%s\\n' \"$1\" > \"$0\"", &path, value])?;
        Ok(())
    }

    /// PIDs of the processes inside the namespace.
    pub fn pids(&self) -> Result<Vec<u32>> {
        namespace_pids(&self.name)
    }

    /// Byte and packet counters of an interface in this namespace.
    pub fn link_stats(&self, ifname: &str) -> Result<LinkStats> {
        let json = self.ip(&["-s", "-j", "link", "show", "dev", ifname])?;
        LinkStats::from_ip_json(&json)
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        if let Err(e) = delete_namespace(&self.name) {
            eprintln!("netlab: cleaning up namespace {}: {e}", self.name);
        }
    }
}

/// Counters of one interface, from `ip -s -j link`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct LinkStats {
    pub rx_bytes: u64,
    pub rx_packets: u64,
    pub tx_bytes: u64,
    pub tx_packets: u64,
}

impl LinkStats {
    /// Parses the output of `ip -s -j link show dev X`.
    pub fn from_ip_json(json: &str) -> Result<Self> {
        let what = "ip -s -j link output";
        let value: serde_json::Value =
            serde_json::from_str(json).map_err(|e| HarnessError::parse(what, e.to_string()))?;
        let stats = value
            .get(0)
            .and_then(|link| link.get("stats64"))
            .ok_or_else(|| HarnessError::parse(what, "no stats64 in first link"))?;
        let field = |dir: &str, name: &str| {
            stats
                .get(dir)
                .and_then(|d| d.get(name))
                .and_then(serde_json::Value::as_u64)
                .ok_or_else(|| HarnessError::parse(what, format!("no {dir}.{name}")))
        };
        Ok(LinkStats {
            rx_bytes: field("rx", "bytes")?,
            rx_packets: field("rx", "packets")?,
            tx_bytes: field("tx", "bytes")?,
            tx_packets: field("tx", "packets")?,
        })
    }
}

/// Moves the calling thread, and only it, into network namespace `name`: for a test that
/// sends its own datagrams from inside a topology. Use a thread of its own for it.
pub fn enter_on_this_thread(name: &str) -> Result<()> {
    use std::os::fd::AsRawFd;
    let path = format!("/run/netns/{name}");
    let io = |source| HarnessError::Io {
        context: format!("entering network namespace {path}"),
        source,
    };
    let f = std::fs::File::open(&path).map_err(io)?;
    // SAFETY: setns on a valid namespace descriptor changes the calling thread only.
    if unsafe { libc::setns(f.as_raw_fd(), libc::CLONE_NEWNET) } != 0 {
        return Err(io(std::io::Error::last_os_error()));
    }
    Ok(())
}

/// Names of all network namespaces known to `ip netns`.
pub fn list_namespaces() -> Result<Vec<String>> {
    let out = command::run_argv(&[Tool::Ip.path(), "netns", "list"])?;
    Ok(parse_netns_list(&out))
}

fn parse_netns_list(out: &str) -> Vec<String> {
    out.lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_owned)
        .collect()
}

/// The PID encoded in a harness namespace name, if it is one.
pub fn owner_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(PREFIX)?;
    let (pid, _) = rest.split_once('-')?;
    pid.parse().ok()
}

/// Deletes harness namespaces whose owning test process is gone (killed runs), killing any
/// process left inside them. Returns the names removed.
pub fn sweep_stale_namespaces() -> Result<Vec<String>> {
    let mut removed = Vec::new();
    for name in list_namespaces()? {
        let Some(pid) = owner_pid(&name) else {
            continue;
        };
        if pid == std::process::id() || pid_alive(pid) {
            continue;
        }
        delete_namespace(&name)?;
        removed.push(name);
    }
    Ok(removed)
}

fn namespace_pids(name: &str) -> Result<Vec<u32>> {
    let out = command::run_argv(&[Tool::Ip.path(), "netns", "pids", name])?;
    Ok(out
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .collect())
}

/// Kills whatever still runs in the namespace, then deletes it. Gone already is fine.
pub fn delete_namespace(name: &str) -> Result<()> {
    let pids = namespace_pids(name).unwrap_or_default();
    for &pid in &pids {
        signal(pid, libc::SIGKILL);
    }
    // These are not necessarily our children, so they cannot be waited for: poll until the
    // kernel has removed them (or they are zombies of someone else, which are harmless).
    let deadline = Instant::now() + Duration::from_secs(5);
    while Instant::now() < deadline && namespace_pids(name).is_ok_and(|p| !p.is_empty()) {
        std::thread::sleep(Duration::from_millis(10));
    }
    let mut cmd = Command::new(Tool::Ip.path());
    cmd.args(["netns", "delete", name]);
    let out = command::output(&mut cmd)?;
    if out.status.success() {
        Ok(())
    } else {
        let err = failure(&cmd, &out);
        // Already gone is fine (e.g. removed by a concurrent sweep).
        if list_namespaces().is_ok_and(|all| !all.iter().any(|n| n == name)) {
            Ok(())
        } else {
            Err(err)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn owner_pid_only_for_harness_names() {
        assert_eq!(owner_pid("vpngwt-1234-0-idc"), Some(1234));
        assert_eq!(owner_pid("vpngwt-77-12-cloud_gw"), Some(77));
        assert_eq!(owner_pid("vpngwt-x-1-a"), None);
        assert_eq!(owner_pid("bgppeer"), None);
        assert_eq!(owner_pid("vpngwt-"), None);
    }

    #[test]
    fn netns_list_with_and_without_ids() {
        let out = "vpngwt-1-0-a (id: 3)\nbgppeer\n\n";
        assert_eq!(parse_netns_list(out), vec!["vpngwt-1-0-a", "bgppeer"]);
    }

    #[test]
    fn link_stats_from_real_ip_json() {
        let json = include_str!("../testdata/ip-s-j-link-veth.json");
        let stats = LinkStats::from_ip_json(json).unwrap();
        assert_eq!(stats.rx_bytes, 208_318);
        assert_eq!(stats.rx_packets, 3132);
        assert_eq!(stats.tx_bytes, 1_068_330_081);
        assert_eq!(stats.tx_packets, 21_989);
        assert!(LinkStats::from_ip_json("[]").is_err());
        assert!(LinkStats::from_ip_json("not json").is_err());
    }

    #[test]
    fn bad_labels_are_refused_before_touching_the_system() {
        for label in ["", "UPPER", "has-dash", "a/b", &"x".repeat(30)] {
            assert!(
                matches!(Netns::new(label), Err(HarnessError::Invalid(_))),
                "{label:?}"
            );
        }
    }
}
