//! wireguard-go on both gateways: Debian's package by default, any build via
//! `WIREGUARD_GO=/path`.

use std::path::{Path, PathBuf};

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
