//! The external programs the harness drives, and a check that they are installed.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::error::{HarnessError, Result};

/// What to tell someone whose machine lacks a tool.
pub const INSTALL_HINT: &str = "run scripts/install-test-deps as root (Debian 12)";

/// External programs, with where Debian installs them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tool {
    Ip,
    Charon,
    Swanctl,
    Bird,
    Birdc,
    Iperf3,
    Ping,
    Ss,
    Unshare,
    Nsenter,
    Tcpdump,
    /// nftables, for the NAT router of [`crate::SiteToSite::build_behind_nat`].
    Nft,
    /// conntrack-tools: flushes a NAT router's mappings (its "reboot").
    Conntrack,
    /// An HTTP client, for vpngw's Prometheus metrics.
    Curl,
    /// charon's userspace IPsec plugin (not a program, but charon is useless without it).
    LibipsecPlugin,
}

impl Tool {
    /// The absolute path of the program: the first of its usual places that exists
    /// (merged-/usr systems have them all), else the first.
    pub fn path(self) -> &'static str {
        let places = self.places();
        places
            .iter()
            .copied()
            .find(|p| Path::new(p).exists())
            .or_else(|| places.first().copied())
            .unwrap_or_default()
    }

    fn places(self) -> &'static [&'static str] {
        match self {
            Tool::Ip => &["/usr/sbin/ip", "/sbin/ip", "/usr/bin/ip", "/bin/ip"],
            Tool::Charon => &["/usr/lib/ipsec/charon"],
            Tool::Swanctl => &["/usr/sbin/swanctl", "/sbin/swanctl"],
            Tool::Bird => &["/usr/sbin/bird", "/sbin/bird"],
            Tool::Birdc => &["/usr/sbin/birdc", "/sbin/birdc"],
            Tool::Iperf3 => &["/usr/bin/iperf3"],
            Tool::Ping => &["/usr/bin/ping", "/bin/ping"],
            Tool::Ss => &["/usr/bin/ss", "/bin/ss"],
            Tool::Unshare => &["/usr/bin/unshare", "/bin/unshare"],
            Tool::Nsenter => &["/usr/bin/nsenter", "/bin/nsenter"],
            Tool::Tcpdump => &["/usr/bin/tcpdump", "/usr/sbin/tcpdump"],
            Tool::Nft => &["/usr/sbin/nft", "/sbin/nft"],
            Tool::Conntrack => &["/usr/sbin/conntrack", "/sbin/conntrack"],
            Tool::LibipsecPlugin => &["/usr/lib/ipsec/plugins/libstrongswan-kernel-libipsec.so"],
            Tool::Curl => &["/usr/bin/curl"],
        }
    }

    /// The Debian package that provides it.
    pub fn package(self) -> &'static str {
        match self {
            Tool::Ip | Tool::Ss => "iproute2",
            Tool::Charon => "strongswan-charon",
            Tool::Swanctl => "strongswan-swanctl",
            Tool::Bird | Tool::Birdc => "bird2",
            Tool::Iperf3 => "iperf3",
            Tool::Ping => "iputils-ping",
            Tool::Unshare | Tool::Nsenter => "util-linux",
            Tool::Tcpdump => "tcpdump",
            Tool::Nft => "nftables",
            Tool::Conntrack => "conntrack",
            Tool::LibipsecPlugin => "libcharon-extra-plugins",
            Tool::Curl => "curl",
        }
    }
}

/// Fails with an install hint naming every missing tool.
pub fn require(tools: &[Tool]) -> Result<()> {
    check(tools, |path| path.exists())
}

fn check(tools: &[Tool], exists: impl Fn(&Path) -> bool) -> Result<()> {
    let missing: Vec<&Tool> = tools
        .iter()
        .filter(|t| !exists(Path::new(t.path())))
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    let names: Vec<String> = missing
        .iter()
        .map(|t| format!("{} (package {})", t.path(), t.package()))
        .collect();
    Err(HarnessError::MissingTool {
        tool: names.join(", "),
        hint: INSTALL_HINT.into(),
    })
}

/// Overrides where [`vpngw_binary`] looks for the daemon.
pub const VPNGW_BIN_ENV: &str = "VPNGW_BIN";

/// The vpngw daemon built by cargo: `$VPNGW_BIN` if set, else `vpngw` in the target
/// profile directory of the running test (`target/<profile>/deps/<test>` ->
/// `target/<profile>/vpngw`), which `cargo test --workspace` builds.
pub fn vpngw_binary() -> Result<PathBuf> {
    let exe = std::env::current_exe().map_err(|e| HarnessError::io("locate the test binary", e))?;
    vpngw_binary_from(std::env::var_os(VPNGW_BIN_ENV), &exe)
}

fn vpngw_binary_from(env: Option<OsString>, test_exe: &Path) -> Result<PathBuf> {
    let candidate = match env {
        Some(path) => PathBuf::from(path),
        None => test_exe
            .parent()
            .and_then(Path::parent)
            .map(|profile| profile.join("vpngw"))
            .ok_or_else(|| {
                HarnessError::Invalid(format!("no target dir above {}", test_exe.display()))
            })?,
    };
    if candidate.is_file() {
        Ok(candidate)
    } else {
        Err(HarnessError::MissingTool {
            tool: candidate.display().to_string(),
            hint: format!("build it with `cargo build -p gateway` or set {VPNGW_BIN_ENV}"),
        })
    }
}

/// Whether the tests run with the privileges namespaces need.
pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions and cannot fail.
    unsafe { libc::geteuid() == 0 }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vpngw_binary_next_to_deps_or_from_env() {
        let dir = tempfile::tempdir().unwrap();
        let deps = dir.path().join("debug/deps");
        std::fs::create_dir_all(&deps).unwrap();
        let test_exe = deps.join("gateway_e2e-0123");
        let err = vpngw_binary_from(None, &test_exe).unwrap_err().to_string();
        assert!(err.contains("cargo build -p gateway"), "{err}");
        let bin = dir.path().join("debug/vpngw");
        std::fs::write(&bin, b"").unwrap();
        assert_eq!(vpngw_binary_from(None, &test_exe).unwrap(), bin);
        let other = dir.path().join("custom-vpngw");
        assert!(vpngw_binary_from(Some(other.clone().into()), &test_exe).is_err());
        std::fs::write(&other, b"").unwrap();
        assert_eq!(
            vpngw_binary_from(Some(other.clone().into()), &test_exe).unwrap(),
            other
        );
    }

    #[test]
    fn missing_tools_are_named_with_package_and_hint() {
        let err = check(&[Tool::Ip, Tool::Bird, Tool::Charon], |p| p.ends_with("ip")).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("/usr/sbin/bird (package bird2)"), "{text}");
        assert!(
            text.contains("/usr/lib/ipsec/charon (package strongswan-charon)"),
            "{text}"
        );
        assert!(!text.contains("iproute2"), "{text}");
        assert!(text.contains("scripts/install-test-deps"), "{text}");
        assert!(check(&[Tool::Ip, Tool::Bird], |_| true).is_ok());
    }
}
