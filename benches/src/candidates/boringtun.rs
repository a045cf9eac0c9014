//! boringtun-cli on both gateways, installed with `cargo install` into the tools
//! directory on first use.

use std::path::{Path, PathBuf};
use std::process::Command;

use e2e::ProcessGuard;

use crate::candidates::{wireguard, Setup};
use crate::error::{BenchError, Result};
use crate::topology::BenchTopology;

pub const CRATE: &str = "boringtun-cli";

/// Where `cargo install --root tools_dir` puts the binary.
pub fn binary(tools_dir: &Path) -> PathBuf {
    tools_dir.join("bin").join(CRATE)
}

/// The binary, installing it first when missing. `Err(reason)` when that fails.
pub fn ensure_installed(tools_dir: &Path) -> std::result::Result<PathBuf, String> {
    let bin = binary(tools_dir);
    if bin.is_file() {
        return Ok(bin);
    }
    eprintln!(
        "netbench: installing {CRATE} into {} (first use, takes minutes)",
        tools_dir.display()
    );
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let status = Command::new(&cargo)
        .args(["install", "--locked", CRATE, "--root"])
        .arg(tools_dir)
        .status()
        .map_err(|e| format!("cannot run cargo to install {CRATE}: {e}"))?;
    if !status.success() || !bin.is_file() {
        return Err(format!(
            "`cargo install --locked {CRATE} --root {}` failed ({status})",
            tools_dir.display()
        ));
    }
    Ok(bin)
}

pub fn setup(topo: &BenchTopology, tools_dir: &Path) -> Result<Setup> {
    let bin = match ensure_installed(tools_dir) {
        Ok(bin) => bin,
        Err(reason) => return Ok(Setup::Skipped(reason)),
    };
    wireguard::setup_pair(topo, "bt", |ns, dev, log| {
        let bin = bin.display().to_string();
        // Its own log file (the default is one shared /tmp/boringtun.out).
        let own_log = log.with_extension("boringtun.log");
        let own_log = own_log.display().to_string();
        // Foreground, so the guard owns the process; it keeps root so that it can still
        // open its control socket and device after start.
        let cmd = ns.command(&[
            bin.as_str(),
            "--foreground",
            "--disable-drop-privileges",
            "--log",
            own_log.as_str(),
            dev,
        ])?;
        ProcessGuard::spawn(format!("boringtun in {}", ns.name()), cmd, log)
            .map_err(BenchError::from)
    })
}
