//! wireguard-go on both gateways: Debian's package by default (0.0.20220316, without
//! offloads), any build via `WIREGUARD_GO=/path` (`benches/tools/build-wireguard-go`
//! builds upstream, with TUN TSO/GRO and UDP GSO/GRO).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use e2e::ProcessGuard;

use crate::candidates::{wireguard, Setup};
use crate::error::Result;
use crate::topology::BenchTopology;

/// Environment variable naming another wireguard-go binary.
pub const ENV: &str = "WIREGUARD_GO";
/// Debian's `wireguard-go` package.
pub const DEBIAN_PATH: &str = "/usr/bin/wireguard-go";

/// `$WIREGUARD_GO` when set, else Debian's binary.
pub fn binary_from_env() -> PathBuf {
    std::env::var_os(ENV).map_or_else(|| PathBuf::from(DEBIAN_PATH), PathBuf::from)
}

/// What `binary --version` says, e.g. `v0.0.20250522`; `None` when it does not run.
pub fn version(binary: &Path) -> Option<String> {
    let out = Command::new(binary)
        .arg("--version")
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    parse_version(&String::from_utf8_lossy(&out.stdout))
}

/// The version from `wireguard-go v0.0.20250522` on the first line.
fn parse_version(text: &str) -> Option<String> {
    let word = text
        .lines()
        .next()?
        .trim()
        .strip_prefix("wireguard-go ")?
        .trim();
    let plausible = !word.is_empty()
        && word.len() <= 40
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '+' | '_'));
    plausible.then(|| word.to_owned())
}

pub fn setup(topo: &BenchTopology, binary: &Path) -> Result<Setup> {
    if !binary.is_file() {
        return Ok(Setup::Skipped(format!(
            "{} not found: apt-get install wireguard-go, or set {ENV}=/path",
            binary.display()
        )));
    }
    wireguard::setup_pair(topo, "wg", |ns, dev, log| {
        let bin = binary.display().to_string();
        let mut cmd = ns.command(&[bin.as_str(), "-f", dev])?;
        // On Linux wireguard-go refuses to start without this, pointing at the kernel module.
        cmd.env("WG_I_PREFER_BUGGY_USERSPACE_TO_POLISHED_KMOD", "1");
        Ok(ProcessGuard::spawn(
            format!("wireguard-go in {}", ns.name()),
            cmd,
            log,
        )?)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_the_first_line_word() {
        let text = "wireguard-go v0.0.20250522\n\nUserspace WireGuard daemon for linux-amd64.\n";
        assert_eq!(parse_version(text).as_deref(), Some("v0.0.20250522"));
        assert_eq!(parse_version("Usage: wireguard-go [-f] IFACE\n"), None);
        assert_eq!(parse_version("wireguard-go \n"), None);
        assert_eq!(parse_version("wireguard-go v1 \x1b[31m\n"), None);
        assert_eq!(parse_version(""), None);
    }

    #[test]
    fn version_of_a_missing_binary_is_unknown() {
        assert_eq!(version(Path::new("/nonexistent/wireguard-go")), None);
    }
}
