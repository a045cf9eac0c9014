//! vpngw <-> vpngw through the e2e crate's `Vpngw` driver (`vpngw run --config F`).
//!
//! A vpngw connection always has two tunnels to two different endpoints, so gw_a gets a
//! second underlay address: tunnel1 runs 172.31.0.1 <-> 172.31.0.2, tunnel2
//! 172.31.0.3 <-> 172.31.0.2. Routes are active-standby, so every measured packet goes
//! through tunnel1; tunnel2 is up but idle. gw_a initiates (one local address per
//! tunnel, like the cloud side of the e2e plan), gw_b responds. vpngw itself installs the
//! remote site's prefix into the kernel towards its TUN device.

use std::ffi::OsString;
use std::net::Ipv4Addr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use e2e::{wait_for, Poll, Psk, Vpngw, VpngwConfig, VpngwTunnel, VPNGW_BIN_ENV};

use crate::candidates::strongswan::random_psk;
use crate::candidates::{Ready, Setup};
use crate::error::Result;
use crate::topology::{BenchTopology, Side, GW_A_WAN, GW_B_WAN};

/// vpngw's TUN device on both gateways.
const DEV: &str = "vpngw0";
/// Tunnel MTU (the TUN MTU is the largest tunnel MTU): as strongSwan's `ipsec0`.
const TUNNEL_MTU: u16 = 1400;
const TUNNELS: [&str; 2] = ["tunnel1", "tunnel2"];
/// gw_a's second underlay address, the local end of tunnel2.
const GW_A_WAN2: Ipv4Addr = Ipv4Addr::new(172, 31, 0, 3);
/// Inner /30 networks of the two tunnels: (gw_a's end, gw_b's end).
const INNER: [(Ipv4Addr, Ipv4Addr); 2] = [
    (
        Ipv4Addr::new(169, 254, 10, 1),
        Ipv4Addr::new(169, 254, 10, 2),
    ),
    (
        Ipv4Addr::new(169, 254, 11, 1),
        Ipv4Addr::new(169, 254, 11, 2),
    ),
];
const IKE_PROPOSAL: &str = "aes128gcm16-prfsha256-curve25519";
const UP_TIMEOUT: Duration = Duration::from_secs(30);

/// The ESP transform under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Suite {
    AesGcm128,
    AesCbc128Sha256,
}

impl Suite {
    /// The `esp_proposals` string of a vpngw tunnel config (strongSwan syntax; no PFS
    /// group: only the first CHILD SA runs during a benchmark).
    pub fn esp_proposal(self) -> &'static str {
        match self {
            Suite::AesGcm128 => "aes128gcm16",
            Suite::AesCbc128Sha256 => "aes128-sha256",
        }
    }
}

/// The daemon to benchmark: `$VPNGW_BIN`, else `vpngw` next to the running netbench
/// (`target/release/`, where `benches/run` builds it). A build in a `debug` directory is
/// refused: its figures would say nothing about vpngw.
pub fn binary(env: Option<OsString>, current_exe: &Path) -> Result<PathBuf, String> {
    let path = match env {
        Some(p) => PathBuf::from(p),
        None => current_exe
            .parent()
            .map(|dir| dir.join("vpngw"))
            .ok_or_else(|| format!("no directory above {}", current_exe.display()))?,
    };
    if !path.is_file() {
        return Err(format!(
            "{} not found: build it with `cargo build --release -p gateway --bin vpngw` \
             or set {VPNGW_BIN_ENV}",
            path.display()
        ));
    }
    let in_debug_dir = path
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|d| d == "debug");
    if in_debug_dir {
        return Err(format!(
            "{} is a debug build; benchmark a release build \
             (`cargo build --release -p gateway --bin vpngw`)",
            path.display()
        ));
    }
    Ok(path)
}

/// A fresh random PSK as 64 hex digits: a vpngw config holds its PSKs as TOML text
/// without control characters, so raw random bytes will not do.
pub fn text_psk() -> Result<Psk> {
    let raw = random_psk()?;
    let mut hex = zeroize::Zeroizing::new(String::with_capacity(2 * raw.as_bytes().len()));
    for b in raw.as_bytes() {
        hex.push(char::from(HEX_DIGITS[usize::from(b >> 4)]));
        hex.push(char::from(HEX_DIGITS[usize::from(b & 0x0f)]));
    }
    Ok(Psk::new(hex.as_bytes().to_vec()))
}

const HEX_DIGITS: &[u8; 16] = b"0123456789abcdef";

/// One side's config: gw_a initiates tunnel1 from its first and tunnel2 from its second
/// underlay address; gw_b answers both on its one address.
pub fn config(side: Side, suite: Suite, psks: [Psk; 2]) -> VpngwConfig {
    let a_locals = [GW_A_WAN, GW_A_WAN2];
    let tunnels = TUNNELS
        .iter()
        .zip(psks)
        .enumerate()
        .map(|(i, (name, psk))| {
            let (a_inner, b_inner) = INNER[i];
            let (local_address, peer, inner, inner_peer) = match side {
                Side::A => (Some(a_locals[i].into()), GW_B_WAN, a_inner, b_inner),
                Side::B => (None, a_locals[i], b_inner, a_inner),
            };
            VpngwTunnel {
                name: (*name).to_owned(),
                local_address,
                peer: peer.into(),
                psk,
                ike_proposals: IKE_PROPOSAL.into(),
                esp_proposals: suite.esp_proposal().into(),
                start_action: match side {
                    Side::A => "initiate",
                    Side::B => "respond",
                }
                .into(),
                // Far beyond any benchmark: no rekey while measuring.
                ike_lifetime: ("4h".into(), "5h".into()),
                child_lifetime: ("3h".into(), "4h".into()),
                child_limits: Vec::new(),
                inner_address: format!("{inner}/30"),
                inner_peer,
                mtu: TUNNEL_MTU,
                reauth_time: None,
                extra: Vec::new(),
            }
        })
        .collect();
    VpngwConfig {
        local_address: side.wan().into(),
        local_id: None,
        tun_name: DEV.into(),
        connection: "bench".into(),
        tunnels,
        routes: vec![(
            side.remote_site().into(),
            TUNNELS.iter().map(|t| (*t).to_owned()).collect(),
        )],
        bgp: None,
        ecmp: false,
    }
}

/// Starts vpngw on both gateways (gw_b first, so gw_a's IKE_SA_INIT finds it
/// listening), waits for both tunnels and for the remote-site routes into `vpngw0`.
pub fn setup(topo: &BenchTopology, suite: Suite) -> Result<Setup> {
    let exe = std::env::current_exe().map_err(|e| crate::error::BenchError::io("netbench", e))?;
    let bin = match binary(std::env::var_os(VPNGW_BIN_ENV), &exe) {
        Ok(bin) => bin,
        Err(reason) => return Ok(Setup::Skipped(reason)),
    };
    // The e2e driver finds the daemon through this variable (and keeps it, like every
    // VPNGW_* variable, out of the daemon's environment). netbench runs candidates one
    // after the other on its main thread, so nothing reads the environment meanwhile.
    std::env::set_var(VPNGW_BIN_ENV, &bin);

    topo.gw(Side::A)?
        .ip(&["addr", "add", &format!("{GW_A_WAN2}/24"), "dev", "wan0"])?;
    let psks = [text_psk()?, text_psk()?];
    let mut b = Vpngw::start(topo.gw(Side::B)?, &config(Side::B, suite, psks.clone()))?;
    let mut a = Vpngw::start(topo.gw(Side::A)?, &config(Side::A, suite, psks))?;
    a.wait_up(&TUNNELS, UP_TIMEOUT)?;
    b.wait_up(&TUNNELS, UP_TIMEOUT)?;
    for side in Side::BOTH {
        let ns = topo.gw(side)?;
        let what = format!(
            "vpngw's route to {} in gw_{}",
            side.remote_site(),
            side.letter()
        );
        wait_for(&what, UP_TIMEOUT, || {
            let routes = ns.ip(&["route", "show", side.remote_site()])?;
            Ok(if routes.contains(&format!("dev {DEV}")) {
                Poll::Ready(())
            } else {
                Poll::Pending(routes)
            })
        })?;
    }
    Ok(Setup::Ready(Ready {
        gateway_pids: [Some(a.pid()), Some(b.pid())],
        cpu_note: None,
        path_mtu: TUNNEL_MTU.into(),
        path_dev: DEV.to_owned(),
        keep: vec![Box::new(a), Box::new(b)],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sides_mirror_each_other_and_pass_the_pair_rules() {
        let psks = || [Psk::from("one"), Psk::from("two")];
        let a = config(Side::A, Suite::AesGcm128, psks());
        let b = config(Side::B, Suite::AesGcm128, psks());
        for (ta, tb) in a.tunnels.iter().zip(&b.tunnels) {
            assert_eq!(ta.name, tb.name);
            assert_eq!(ta.local_address, Some(tb.peer));
            assert_eq!(tb.local_address, None);
            assert_eq!(ta.peer, b.local_address);
            assert_eq!(ta.inner_address, format!("{}/30", tb.inner_peer));
            assert_eq!(tb.inner_address, format!("{}/30", ta.inner_peer));
            assert_eq!((ta.mtu, tb.mtu), (TUNNEL_MTU, TUNNEL_MTU));
            assert_eq!(ta.start_action, "initiate");
            assert_eq!(tb.start_action, "respond");
        }
        // vpngw refuses a connection whose tunnels share (local, peer) or inner network.
        let [t1, t2] = [&a.tunnels[0], &a.tunnels[1]];
        assert_ne!((t1.local_address, t1.peer), (t2.local_address, t2.peer));
        assert_ne!(INNER[0], INNER[1]);
        assert_eq!(
            a.routes,
            vec![(
                crate::topology::SITE_B.to_owned(),
                vec!["tunnel1".to_owned(), "tunnel2".to_owned()]
            )]
        );
        assert_eq!(b.routes[0].0, crate::topology::SITE_A);
    }

    #[test]
    fn suites_render_their_esp_proposal() {
        let gcm = config(Side::A, Suite::AesGcm128, [Psk::from("1"), Psk::from("2")]);
        let cbc = config(
            Side::B,
            Suite::AesCbc128Sha256,
            [Psk::from("1"), Psk::from("2")],
        );
        let gcm = gcm.render();
        let cbc = cbc.render();
        assert!(gcm.contains("esp_proposals = \"aes128gcm16\""), "{gcm}");
        assert!(cbc.contains("esp_proposals = \"aes128-sha256\""), "{cbc}");
        assert!(gcm.contains("local_address = \"172.31.0.3\""), "{gcm}");
        assert!(cbc.contains("peer = \"172.31.0.3\""), "{cbc}");
        assert!(gcm.contains("mtu = 1400"), "{gcm}");
    }

    #[test]
    fn psks_are_fresh_hex_text() {
        let (a, b) = (text_psk().unwrap(), text_psk().unwrap());
        assert_eq!(a.as_bytes().len(), 64);
        assert!(a.as_bytes().iter().all(u8::is_ascii_hexdigit));
        assert_ne!(a.as_bytes(), b.as_bytes());
    }

    #[test]
    fn binary_from_env_or_next_to_netbench_but_never_debug() {
        let dir = tempfile::tempdir().unwrap();
        let release = dir.path().join("release");
        let debug = dir.path().join("debug");
        std::fs::create_dir_all(&release).unwrap();
        std::fs::create_dir_all(&debug).unwrap();
        let exe = release.join("netbench");

        let missing = binary(None, &exe).unwrap_err();
        assert!(missing.contains("cargo build --release"), "{missing}");

        std::fs::write(release.join("vpngw"), b"").unwrap();
        assert_eq!(binary(None, &exe).unwrap(), release.join("vpngw"));

        std::fs::write(debug.join("vpngw"), b"").unwrap();
        let env = Some(debug.join("vpngw").into_os_string());
        let refused = binary(env, &exe).unwrap_err();
        assert!(refused.contains("debug build"), "{refused}");

        let custom = dir.path().join("vpngw-custom");
        std::fs::write(&custom, b"").unwrap();
        assert_eq!(
            binary(Some(custom.clone().into_os_string()), &exe).unwrap(),
            custom
        );
    }
}
