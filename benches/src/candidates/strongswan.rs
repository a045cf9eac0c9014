//! strongSwan's charon with kernel-libipsec on both gateways: ESP in UDP through the
//! `ipsec0` TUN device, encrypted in charon's userspace.

use std::time::Duration;

use e2e::charon::StartAction;
use e2e::{require, wait_for, Charon, CharonConfig, Poll, Psk, Tool, TunnelConfig};

use crate::candidates::{Ready, Setup};
use crate::error::{BenchError, Result};
use crate::topology::{BenchTopology, Side};

/// charon's TUN device, created with MTU 1400.
const DEV: &str = "ipsec0";
const DEV_MTU: u32 = 1400;
const TUNNEL: &str = "bench";
const UP_TIMEOUT: Duration = Duration::from_secs(30);

/// The ESP transform under test.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Esp {
    AesGcm128,
    AesCbc128Sha256,
}

impl Esp {
    /// The swanctl `esp_proposals` string (no PFS group: only the first CHILD SA runs).
    pub fn proposal(self) -> &'static str {
        match self {
            Esp::AesGcm128 => "aes128gcm16",
            Esp::AesCbc128Sha256 => "aes128-sha256",
        }
    }
}

/// A fresh random PSK for one benchmark tunnel.
pub fn random_psk() -> Result<Psk> {
    let mut bytes = zeroize::Zeroizing::new([0u8; 32]);
    let mut urandom =
        std::fs::File::open("/dev/urandom").map_err(|e| BenchError::io("/dev/urandom", e))?;
    std::io::Read::read_exact(&mut urandom, bytes.as_mut())
        .map_err(|e| BenchError::io("/dev/urandom", e))?;
    Ok(Psk::new(bytes.to_vec()))
}

fn tunnel(side: Side, esp: Esp, psk: Psk) -> TunnelConfig {
    let mut t = TunnelConfig::new(TUNNEL, side.wan().into(), side.peer_wan().into(), psk, 1);
    t.ike_proposals = "aes128-sha256-x25519".into();
    t.esp_proposals = esp.proposal().into();
    t.local_ts = side.local_site().into();
    t.remote_ts = side.remote_site().into();
    if side == Side::A {
        t.start_action = StartAction::Start;
    }
    t
}

/// Starts charon on both gateways (gw_a initiates), waits for the CHILD SA and routes
/// the sites into `ipsec0`.
pub fn setup(topo: &BenchTopology, esp: Esp) -> Result<Setup> {
    let needed = [
        Tool::Charon,
        Tool::Swanctl,
        Tool::Unshare,
        Tool::LibipsecPlugin,
    ];
    if let Err(e) = require(&needed) {
        return Ok(Setup::Skipped(e.to_string()));
    }
    let psk = random_psk()?;
    // The responder first, so the initiator's first IKE_SA_INIT finds it listening.
    let mut b = Charon::start(
        topo.gw(Side::B)?,
        &CharonConfig::new(vec![tunnel(Side::B, esp, psk.clone())]),
    )?;
    let mut a = Charon::start(
        topo.gw(Side::A)?,
        &CharonConfig::new(vec![tunnel(Side::A, esp, psk)]),
    )?;
    a.wait_up(&[TUNNEL], UP_TIMEOUT)?;
    b.wait_up(&[TUNNEL], UP_TIMEOUT)?;
    for side in Side::BOTH {
        let ns = topo.gw(side)?;
        wait_for("charon's ipsec0 device", UP_TIMEOUT, || {
            Ok(match ns.ip(&["link", "show", "dev", DEV]) {
                Ok(_) => Poll::Ready(()),
                Err(e) => Poll::Pending(e.to_string()),
            })
        })?;
    }
    topo.route_sites_via_dev(|_| DEV.to_owned())?;
    Ok(Setup::Ready(Ready {
        gateway_pids: [Some(a.pid()), Some(b.pid())],
        cpu_note: None,
        path_mtu: DEV_MTU,
        path_dev: DEV.to_owned(),
        keep: vec![Box::new(a), Box::new(b)],
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn initiator_and_responder_mirror_each_other() {
        let psk = Psk::from("x");
        let a = tunnel(Side::A, Esp::AesGcm128, psk.clone());
        let b = tunnel(Side::B, Esp::AesCbc128Sha256, psk);
        assert_eq!(a.start_action, StartAction::Start);
        assert_eq!(b.start_action, StartAction::None);
        assert_eq!(a.local_addr, b.remote_addr);
        assert_eq!(a.local_ts, b.remote_ts);
        assert_eq!(a.esp_proposals, "aes128gcm16");
        assert_eq!(b.esp_proposals, "aes128-sha256");
        let conf = e2e::charon::swanctl_conf(&CharonConfig::new(vec![a])).unwrap();
        assert!(
            conf.contains("local_ts = 10.101.0.0/24"),
            "{}",
            conf.as_str()
        );
    }
}
