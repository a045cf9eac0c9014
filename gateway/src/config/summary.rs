//! One-screen summary of a validated config for `vpngw check-config` (never shows a PSK).

use super::model::{Config, DpdAction, Identity, SelectionMode, StartAction};
use std::fmt::Write;

impl std::fmt::Display for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Identity::Ip(ip) => write!(f, "{ip}"),
            Identity::Fqdn(s) => write!(f, "@{s}"),
            Identity::Email(s) => f.write_str(s),
            Identity::KeyId(k) => match std::str::from_utf8(k) {
                Ok(t) if t.chars().all(|c| c.is_ascii_graphic()) => write!(f, "keyid:{t}"),
                _ => {
                    f.write_str("keyid:#")?;
                    k.iter().try_for_each(|b| write!(f, "{b:02x}"))
                }
            },
        }
    }
}

impl Config {
    pub fn summary(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "local {} (id {}), {} connection(s)",
            self.local.address,
            self.local.id,
            self.connections.len()
        );
        for c in &self.connections {
            let mode = match c.mode {
                SelectionMode::ActiveStandby => "active-standby",
                SelectionMode::Ecmp => "ecmp",
            };
            let _ = writeln!(out, "connection {} ({mode})", c.name);
            for t in &c.tunnels {
                let start = match t.start_action {
                    StartAction::Initiate => "initiate",
                    StartAction::Respond => "respond",
                };
                let dpd = match t.dpd.action {
                    DpdAction::Restart => "restart",
                    DpdAction::Clear => "clear",
                    DpdAction::None => "none",
                };
                let _ = writeln!(
                    out,
                    "  tunnel {}: peer {} ({}), inner {}/{} <-> {}, mtu {}, mss clamp {}, dscp copy {}, ecn {}, {start}",
                    t.name,
                    t.peer,
                    t.remote_id,
                    t.inner.local,
                    t.inner.prefix_len,
                    t.inner.peer,
                    t.mtu,
                    if t.mss_clamp { "on" } else { "off" },
                    t.qos.dscp.as_str(),
                    if t.qos.ecn { "on" } else { "off" },
                );
                let _ = writeln!(
                    out,
                    "    ike {} (rekey {}, life {}), esp {} (rekey {}, life {}), dpd {}/{} {dpd}",
                    t.ike_proposals.text,
                    humantime::format_duration(t.ike_lifetime.soft),
                    humantime::format_duration(t.ike_lifetime.hard),
                    t.esp_proposals.text,
                    humantime::format_duration(t.child_lifetime.soft),
                    humantime::format_duration(t.child_lifetime.hard),
                    humantime::format_duration(t.dpd.interval),
                    humantime::format_duration(t.dpd.timeout),
                );
                let ts = |l: &[ipnet::IpNet]| {
                    l.iter()
                        .map(|n| n.to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let _ = writeln!(
                    out,
                    "    ts [{}] <-> [{}], additional CHILD SAs {}",
                    ts(&t.local_ts),
                    ts(&t.remote_ts),
                    if t.additional_child_sas {
                        "accepted"
                    } else {
                        "refused"
                    },
                );
                for c in &t.children {
                    let _ = writeln!(
                        out,
                        "    child [{}] <-> [{}] (requested by us)",
                        ts(&c.local_ts),
                        ts(&c.remote_ts),
                    );
                }
                let v = &t.child_volume;
                let limits: Vec<String> = [(v.bytes, "bytes"), (v.packets, "packets")]
                    .iter()
                    .filter_map(|(l, unit)| {
                        l.map(|l| format!("rekey at {} {unit}, stop at {}", l.soft, l.hard))
                    })
                    .collect();
                if !limits.is_empty() {
                    let _ = writeln!(
                        out,
                        "    esp volume per SA direction: {}",
                        limits.join("; ")
                    );
                }
                if let Some(r) = t.reauth_time {
                    let _ = writeln!(
                        out,
                        "    reauthenticate every {} (make-before-break)",
                        humantime::format_duration(r)
                    );
                }
            }
            for r in &c.routes {
                let _ = writeln!(out, "  route {} via {}", r.prefix, r.via.join(", "));
            }
            if let Some(b) = &c.bgp {
                let adv: Vec<String> = b.advertise.iter().map(|p| p.to_string()).collect();
                let _ = writeln!(
                    out,
                    "  bgp AS{} <-> AS{}, advertise [{}], max-prefix {}{}",
                    b.local_asn,
                    b.peer_asn,
                    adv.join(", "),
                    b.max_prefix,
                    match c.mode {
                        SelectionMode::ActiveStandby if b.standby_prepend > 0 => format!(
                            ", standby tunnels prepend AS{} x{}",
                            b.local_asn, b.standby_prepend
                        ),
                        _ => String::new(),
                    }
                );
            }
        }
        out
    }
}
