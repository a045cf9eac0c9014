//! What the two WireGuard candidates share: keys and configuration with `wg`, a device
//! per gateway made by a userspace daemon, routes into it.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use e2e::{wait_for, Netns, Poll, ProcessGuard, WorkDir};
use zeroize::Zeroizing;

use crate::candidates::{Ready, Setup};
use crate::error::{BenchError, Result};
use crate::topology::{BenchTopology, Side};

/// UDP port both ends listen on (each in its own namespace).
pub const PORT: u16 = 51820;
/// wg-quick's default MTU for an IPv4 underlay: 1500 - 20 (IPv4) - 8 (UDP) - 32 (WireGuard).
pub const MTU: u32 = 1420;
/// Where userspace WireGuard implementations put their control sockets.
const UAPI_DIR: &str = "/var/run/wireguard";
const DEVICE_TIMEOUT: Duration = Duration::from_secs(15);

/// Debian's wireguard-tools `wg`, if installed.
pub fn wg_binary() -> Option<&'static str> {
    ["/usr/bin/wg", "/bin/wg"]
        .into_iter()
        .find(|p| Path::new(p).exists())
}

/// A WireGuard private key (base64). `Debug` prints `<redacted>`; wiped on drop.
pub struct PrivateKey(Zeroizing<String>);

impl fmt::Debug for PrivateKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("PrivateKey(<redacted>)")
    }
}

/// A key pair made by `wg genkey` / `wg pubkey`.
#[derive(Debug)]
pub struct KeyPair {
    pub private: PrivateKey,
    pub public: String,
}

fn wg_output(wg: &str, args: &[&str], stdin: &[u8]) -> Result<Zeroizing<String>> {
    let context = format!("{wg} {}", args.join(" "));
    let mut child = Command::new(wg)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| BenchError::io(context.clone(), e))?;
    if let Some(mut input) = child.stdin.take() {
        input
            .write_all(stdin)
            .map_err(|e| BenchError::io(context.clone(), e))?;
    }
    let out = child
        .wait_with_output()
        .map_err(|e| BenchError::io(context.clone(), e))?;
    let stdout = Zeroizing::new(String::from_utf8_lossy(&out.stdout).trim().to_owned());
    if !out.status.success() || stdout.is_empty() {
        return Err(BenchError::parse(
            context,
            format!("{}: {}", out.status, String::from_utf8_lossy(&out.stderr)),
        ));
    }
    Ok(stdout)
}

impl KeyPair {
    pub fn generate(wg: &str) -> Result<Self> {
        let private = wg_output(wg, &["genkey"], b"")?;
        let mut input = Zeroizing::new(private.as_bytes().to_vec());
        input.push(b'\n');
        let public = wg_output(wg, &["pubkey"], &input)?;
        Ok(KeyPair {
            private: PrivateKey(private),
            public: public.as_str().to_owned(),
        })
    }
}

/// A device name unique to this process and side (two harnesses may run at once, and
/// the uapi sockets of all namespaces share one directory).
pub fn ifname(tag: &str, side: Side) -> String {
    let name = format!("{tag}{}{}", std::process::id(), side.letter());
    // IFNAMSIZ: 15 bytes; a pid has at most 7 digits and tags are 2 letters.
    name.chars().take(15).collect()
}

/// The control socket a userspace daemon creates for `ifname`.
pub fn uapi_socket(ifname: &str) -> PathBuf {
    Path::new(UAPI_DIR).join(format!("{ifname}.sock"))
}

/// Waits until the daemon has created the device and its control socket.
pub fn wait_device(ns: &Netns, ifname: &str, daemon: &mut ProcessGuard) -> Result<()> {
    let socket = uapi_socket(ifname);
    wait_for(
        &format!("{} to create {ifname}", daemon.name()),
        DEVICE_TIMEOUT,
        || {
            daemon.check_running()?;
            if !socket.exists() {
                return Ok(Poll::Pending(format!("{} missing", socket.display())));
            }
            Ok(match ns.ip(&["link", "show", "dev", ifname]) {
                Ok(_) => Poll::Ready(()),
                Err(e) => Poll::Pending(e.to_string()),
            })
        },
    )?;
    Ok(())
}

/// The `wg set` arguments for one side (the private key comes from a file).
pub fn wg_set_args(ifname: &str, side: Side, key_file: &Path, peer_public: &str) -> Vec<String> {
    vec![
        "set".into(),
        ifname.into(),
        "listen-port".into(),
        PORT.to_string(),
        "private-key".into(),
        key_file.display().to_string(),
        "peer".into(),
        peer_public.into(),
        "endpoint".into(),
        format!("{}:{PORT}", side.peer_wan()),
        "allowed-ips".into(),
        side.remote_site().into(),
    ]
}

fn write_key_file(dir: &WorkDir, name: &str, key: &PrivateKey) -> Result<PathBuf> {
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = dir.join(name);
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&path)
        .map_err(|e| BenchError::io(format!("create {}", path.display()), e))?;
    file.write_all(key.0.as_bytes())
        .and_then(|()| file.write_all(b"\n"))
        .map_err(|e| BenchError::io(format!("write {}", path.display()), e))?;
    Ok(path)
}

/// Starts a daemon per gateway with `spawn(ns, ifname, log)`, configures both ends with
/// `wg`, and routes the sites into the devices.
pub fn setup_pair(
    topo: &BenchTopology,
    tag: &str,
    mut spawn: impl FnMut(&Netns, &str, &Path) -> Result<ProcessGuard>,
) -> Result<Setup> {
    let Some(wg) = wg_binary() else {
        return Ok(Setup::Skipped(
            "`wg` not found: apt-get install wireguard-tools".into(),
        ));
    };
    let dir = WorkDir::new(&format!("bench-{tag}"))?;
    let keys = [KeyPair::generate(wg)?, KeyPair::generate(wg)?];
    let mut daemons = Vec::new();
    for (i, side) in Side::BOTH.into_iter().enumerate() {
        let ns = topo.gw(side)?;
        let dev = ifname(tag, side);
        let log = dir.join(&format!("{dev}.log"));
        let mut daemon = spawn(ns, &dev, &log)?;
        wait_device(ns, &dev, &mut daemon)?;
        let (own, peer) = match i {
            0 => (&keys[0], &keys[1]),
            _ => (&keys[1], &keys[0]),
        };
        let key_file = write_key_file(&dir, &format!("{dev}.key"), &own.private)?;
        let mut argv = vec![wg.to_owned()];
        argv.extend(wg_set_args(&dev, side, &key_file, &peer.public));
        ns.run(&argv)?;
        ns.ip(&["link", "set", "dev", &dev, "mtu", &MTU.to_string(), "up"])?;
        daemons.push(daemon);
    }
    topo.route_sites_via_dev(|side| ifname(tag, side))?;
    let pids = [
        daemons.first().map(ProcessGuard::pid),
        daemons.get(1).map(ProcessGuard::pid),
    ];
    let mut keep: Vec<Box<dyn std::any::Any>> = Vec::new();
    for d in daemons {
        keep.push(Box::new(d));
    }
    keep.push(Box::new(dir));
    Ok(Setup::Ready(Ready {
        gateway_pids: pids,
        cpu_note: None,
        path_mtu: MTU,
        path_dev: ifname(tag, Side::A),
        keep,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_fit_ifnamsiz() {
        let a = ifname("bt", Side::A);
        assert!(
            a.len() <= 15 && a.starts_with("bt") && a.ends_with('a'),
            "{a}"
        );
        assert_ne!(a, ifname("bt", Side::B));
        assert_eq!(
            uapi_socket("wg1a"),
            PathBuf::from("/var/run/wireguard/wg1a.sock")
        );
    }

    #[test]
    fn wg_set_points_each_side_at_the_other() {
        let args = wg_set_args("wg1a", Side::A, Path::new("/k"), "PUB=");
        let joined = args.join(" ");
        assert_eq!(
            joined,
            "set wg1a listen-port 51820 private-key /k peer PUB= endpoint 172.31.0.2:51820 \
             allowed-ips 10.102.0.0/24"
        );
        let b = wg_set_args("wg1b", Side::B, Path::new("/k"), "PUB=").join(" ");
        assert!(b.contains("endpoint 172.31.0.1:51820 allowed-ips 10.101.0.0/24"));
    }

    #[test]
    fn private_keys_are_redacted() {
        let k = PrivateKey(Zeroizing::new("c2VjcmV0".into()));
        assert_eq!(format!("{k:?}"), "PrivateKey(<redacted>)");
    }

    #[test]
    fn real_wg_keys_when_installed() {
        let Some(wg) = wg_binary() else {
            let _ = writeln!(std::io::stderr(), "SKIPPED real_wg_keys: no wg");
            return;
        };
        let pair = KeyPair::generate(wg).unwrap();
        // Curve25519 keys are 32 bytes: 44 base64 characters.
        assert_eq!(pair.public.len(), 44);
        assert_eq!(pair.private.0.len(), 44);
        assert_ne!(pair.public.as_str(), pair.private.0.as_str());
        assert!(!format!("{pair:?}").contains(pair.private.0.as_str()));
    }
}
