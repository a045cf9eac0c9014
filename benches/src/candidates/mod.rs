//! The paths compared side by side, and how each is set up between gw_a and gw_b.

pub mod boringtun;
pub mod plain;
pub mod strongswan;
pub mod vpngw;
pub mod wireguard;
pub mod wireguard_go;

use std::fmt;
use std::path::PathBuf;

use serde::Serialize;

use crate::error::{BenchError, Result};
use crate::topology::BenchTopology;

/// Every candidate the harness knows, in table order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum CandidateId {
    Plain,
    StrongswanGcm,
    StrongswanCbc,
    Boringtun,
    WireguardGo,
    VpngwGcm,
    VpngwCbc,
}

impl CandidateId {
    pub const ALL: [CandidateId; 7] = [
        CandidateId::VpngwGcm,
        CandidateId::VpngwCbc,
        CandidateId::Plain,
        CandidateId::StrongswanGcm,
        CandidateId::StrongswanCbc,
        CandidateId::Boringtun,
        CandidateId::WireguardGo,
    ];

    /// The name used on the command line and in the reports.
    pub fn name(self) -> &'static str {
        match self {
            CandidateId::Plain => "plain",
            CandidateId::StrongswanGcm => "strongswan-gcm",
            CandidateId::StrongswanCbc => "strongswan-cbc",
            CandidateId::Boringtun => "boringtun",
            CandidateId::WireguardGo => "wireguard-go",
            CandidateId::VpngwGcm => "vpngw-gcm",
            CandidateId::VpngwCbc => "vpngw-cbc",
        }
    }

    /// One line on what the candidate is.
    pub fn describe(self) -> &'static str {
        match self {
            CandidateId::Plain => "routed veth through both gateway namespaces, no tunnel",
            CandidateId::StrongswanGcm => "strongSwan charon kernel-libipsec, ESP AES-GCM-128",
            CandidateId::StrongswanCbc => {
                "strongSwan charon kernel-libipsec, ESP AES-CBC-128/HMAC-SHA-256"
            }
            CandidateId::Boringtun => "boringtun-cli <-> boringtun-cli (WireGuard)",
            CandidateId::WireguardGo => "wireguard-go <-> wireguard-go (WireGuard)",
            CandidateId::VpngwGcm => "vpngw <-> vpngw, ESP AES-GCM-128",
            CandidateId::VpngwCbc => "vpngw <-> vpngw, ESP AES-CBC-128/HMAC-SHA-256",
        }
    }

    /// The family of candidates that differ only in cipher suite.
    pub fn family(self) -> Option<&'static str> {
        match self {
            CandidateId::StrongswanGcm | CandidateId::StrongswanCbc => Some("strongswan"),
            CandidateId::VpngwGcm | CandidateId::VpngwCbc => Some("vpngw"),
            _ => None,
        }
    }

    /// Looks a name up; a family name (`strongswan`, `vpngw`) selects all its members.
    pub fn parse_list(list: &str) -> Result<Vec<CandidateId>> {
        let mut picked = Vec::new();
        for word in list.split(',').map(str::trim).filter(|w| !w.is_empty()) {
            let matches: Vec<CandidateId> = Self::ALL
                .into_iter()
                .filter(|c| c.name() == word || c.family() == Some(word))
                .collect();
            if matches.is_empty() {
                let known: Vec<&str> = Self::ALL.iter().map(|c| c.name()).collect();
                return Err(BenchError::Usage(format!(
                    "unknown candidate {word:?}; known: {}",
                    known.join(", ")
                )));
            }
            for m in matches {
                if !picked.contains(&m) {
                    picked.push(m);
                }
            }
        }
        if picked.is_empty() {
            return Err(BenchError::Usage("--only names no candidate".into()));
        }
        // Table order, whatever order they were named in.
        Ok(Self::ALL
            .into_iter()
            .filter(|c| picked.contains(c))
            .collect())
    }
}

impl fmt::Display for CandidateId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Where external tools come from.
#[derive(Debug, Clone)]
pub struct ToolPaths {
    /// `cargo install --root` directory for boringtun-cli.
    pub tools_dir: PathBuf,
    /// wireguard-go binary (`$WIREGUARD_GO`, else Debian's).
    pub wireguard_go: PathBuf,
}

/// A candidate whose path carries traffic between host_a and host_b. Dropping it stops
/// its daemons (before the topology goes away).
pub struct Ready {
    /// Gateway daemons on gw_a and gw_b whose CPU is measured; `None` for kernel paths.
    pub gateway_pids: [Option<u32>; 2],
    /// Why CPU is not attributed, when it is not.
    pub cpu_note: Option<&'static str>,
    /// MTU of the tunnel (or link) between the sites.
    pub path_mtu: u32,
    /// gw_a's device towards site B (tunnel device, or the underlay link): all measured
    /// traffic must leave through it, which its counters confirm.
    pub path_dev: String,
    /// Daemons, configs, keys: dropped in order (processes first).
    pub keep: Vec<Box<dyn std::any::Any>>,
}

impl fmt::Debug for Ready {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ready")
            .field("gateway_pids", &self.gateway_pids)
            .field("cpu_note", &self.cpu_note)
            .field("path_mtu", &self.path_mtu)
            .field("path_dev", &self.path_dev)
            .field("keep", &self.keep.len())
            .finish()
    }
}

/// What setting a candidate up gave.
#[derive(Debug)]
pub enum Setup {
    Ready(Ready),
    /// A tool it needs is not installed (and could not be installed).
    Skipped(String),
    /// The candidate cannot be run by this build yet.
    Unavailable(String),
}

/// The version of the tool `id` runs, when it can say (shown next to its name).
pub fn version(id: CandidateId, tools: &ToolPaths) -> Option<String> {
    match id {
        CandidateId::WireguardGo => wireguard_go::version(&tools.wireguard_go),
        _ => None,
    }
}

/// Sets `id` up in `topo`.
pub fn setup(id: CandidateId, topo: &BenchTopology, tools: &ToolPaths) -> Result<Setup> {
    match id {
        CandidateId::Plain => plain::setup(topo),
        CandidateId::StrongswanGcm => strongswan::setup(topo, strongswan::Esp::AesGcm128),
        CandidateId::StrongswanCbc => strongswan::setup(topo, strongswan::Esp::AesCbc128Sha256),
        CandidateId::Boringtun => boringtun::setup(topo, &tools.tools_dir),
        CandidateId::WireguardGo => wireguard_go::setup(topo, &tools.wireguard_go),
        CandidateId::VpngwGcm => vpngw::setup(topo, vpngw::Suite::AesGcm128),
        CandidateId::VpngwCbc => vpngw::setup(topo, vpngw::Suite::AesCbc128Sha256),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_accepts_names_and_families_in_table_order() {
        assert_eq!(
            CandidateId::parse_list("plain").unwrap(),
            vec![CandidateId::Plain]
        );
        assert_eq!(
            CandidateId::parse_list("wireguard-go, strongswan").unwrap(),
            vec![
                CandidateId::StrongswanGcm,
                CandidateId::StrongswanCbc,
                CandidateId::WireguardGo
            ]
        );
        assert_eq!(
            CandidateId::parse_list("vpngw,plain,vpngw-gcm").unwrap(),
            vec![
                CandidateId::VpngwGcm,
                CandidateId::VpngwCbc,
                CandidateId::Plain
            ]
        );
        assert!(CandidateId::parse_list("openvpn").is_err());
        assert!(CandidateId::parse_list(" , ").is_err());
    }

    #[test]
    fn names_are_unique() {
        for (i, a) in CandidateId::ALL.iter().enumerate() {
            for b in CandidateId::ALL.iter().skip(i + 1) {
                assert_ne!(a.name(), b.name());
            }
        }
    }
}
