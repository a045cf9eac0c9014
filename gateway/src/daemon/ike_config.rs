//! Maps a validated tunnel config onto the IKE engine's per-tunnel config.

use crate::config::{self, DpdAction, Identity, StartAction};
use ike::sa::{self as ikesa, Psk};
use ike::wire::TrafficSelector;
use std::net::SocketAddr;
use std::time::Duration;

/// Why a tunnel cannot be handed to the IKE engine.
#[derive(Debug, thiserror::Error)]
pub enum IkeConfigError {
    #[error("tunnel {tunnel}: {what} identity `{id}`: email identities are not supported")]
    Identity {
        tunnel: String,
        what: &'static str,
        id: String,
    },
    #[error("tunnel {tunnel}: {source}")]
    Ike {
        tunnel: String,
        #[source]
        source: ike::ConfigError,
    },
}

/// After giving up on an unreachable peer, wait this long before trying again.
const RETRY_INTERVAL: Duration = Duration::from_secs(10);

pub fn ike_config(t: &config::Tunnel) -> Result<ikesa::Config, IkeConfigError> {
    let id = |what, i: &Identity| match i {
        Identity::Ip(a) => Ok(ikesa::Identity::Addr(*a)),
        Identity::Fqdn(f) => Ok(ikesa::Identity::Fqdn(f.clone())),
        Identity::KeyId(k) => Ok(ikesa::Identity::KeyId(k.clone())),
        Identity::Email(e) => Err(IkeConfigError::Identity {
            tunnel: t.name.clone(),
            what,
            id: e.clone(),
        }),
    };
    let mut cfg = ikesa::Config::new(
        SocketAddr::new(t.local_address, 500),
        SocketAddr::new(t.peer, 500),
        id("local", &t.local_id)?,
        id("remote", &t.remote_id)?,
        Psk::new(t.psk.expose().to_vec()),
        t.ike_proposals.proposals.clone(),
        t.esp_proposals.proposals.clone(),
    );
    cfg.ike_lifetime = lifetime(t.ike_lifetime);
    cfg.child_lifetime = lifetime(t.child_lifetime);
    cfg.dpd = match t.dpd.action {
        DpdAction::None => None,
        DpdAction::Restart | DpdAction::Clear => Some(ikesa::Dpd {
            interval: t.dpd.interval,
            action: if t.dpd.action == DpdAction::Restart {
                ikesa::DpdAction::Restart
            } else {
                ikesa::DpdAction::Clear
            },
        }),
    };
    cfg.start_action = match t.start_action {
        StartAction::Initiate => ikesa::StartAction::Initiate,
        StartAction::Respond => ikesa::StartAction::Respond,
    };
    // ESP always travels in UDP/4500: one socket type, no raw ESP socket, NAT-proof.
    cfg.force_encap = true;
    cfg.allow_weak_groups = t.allow_weak_groups;
    cfg.retry_interval = RETRY_INTERVAL;
    // A peer that answers neither a DPD probe nor any other request within the DPD
    // timeout is dead: retransmit (1, 2, 4 .. 16 s apart) until then.
    cfg.retransmit.max_retransmits = retransmits_within(cfg.retransmit, t.dpd.timeout);
    cfg.local_ts = t.local_ts.iter().map(selector).collect();
    cfg.remote_ts = t.remote_ts.iter().map(selector).collect();
    cfg.additional_children = t.additional_child_sas;
    cfg.reauth_time = t.reauth_time;
    let weak: Vec<u16> = t
        .ike_proposals
        .proposals
        .iter()
        .flat_map(|p| p.dh.iter())
        .chain(t.esp_proposals.proposals.iter().flat_map(|p| p.dh.iter()))
        .filter(|g| g.is_weak())
        .map(|g| g.id())
        .collect();
    if !weak.is_empty() {
        tracing::warn!(tunnel = %t.name, groups = ?weak, "weak DH groups (MODP-1024/1536) configured: use them only where the peer offers nothing stronger");
    }
    cfg.validate().map_err(|source| IkeConfigError::Ike {
        tunnel: t.name.clone(),
        source,
    })?;
    Ok(cfg)
}

/// How many retransmissions fit before giving up at `timeout` after the first send.
fn retransmits_within(r: ikesa::Retransmit, timeout: Duration) -> u32 {
    let mut waited = r.initial;
    let mut n = 0u32;
    while waited < timeout && n < 1000 {
        n += 1;
        let factor = 1u32.checked_shl(n).unwrap_or(u32::MAX);
        waited += r.initial.saturating_mul(factor).min(r.max_interval);
    }
    n
}

/// A prefix as a traffic selector (all protocols and ports).
pub fn selector(n: &ipnet::IpNet) -> TrafficSelector {
    TrafficSelector {
        ip_proto: 0,
        start_port: 0,
        end_port: 65535,
        start: n.network(),
        end: n.broadcast(),
    }
}

/// Rekey jitter: a tenth of the soft lifetime, at most five minutes.
fn lifetime(l: config::Lifetime) -> ikesa::Lifetime {
    ikesa::Lifetime {
        rekey: l.soft,
        hard: l.hard,
        jitter: (l.soft / 10).min(Duration::from_secs(300)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpd_timeout_sets_the_retransmission_budget() {
        let r = ikesa::Retransmit {
            initial: Duration::from_secs(1),
            max_interval: Duration::from_secs(16),
            max_retransmits: 5,
        };
        // 1 + 2 + 4 + 8 + 16 + 16 = 47 s with five retransmissions.
        assert_eq!(retransmits_within(r, Duration::from_secs(47)), 5);
        assert_eq!(retransmits_within(r, Duration::from_secs(48)), 6);
        // The default 150 s: 1 + 2 + 4 + 8 + 16 * 9 = 159 s, the first total past 150.
        assert_eq!(retransmits_within(r, Duration::from_secs(150)), 12);
        assert_eq!(retransmits_within(r, Duration::from_millis(500)), 0);
    }
}
