//! The control socket's documents (docs/operating.md): requests, responses, status and
//! routes. Shared by the daemon (serialises) and the CLI (parses and prints tables).

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "lowercase")]
pub enum Request {
    Status,
    Routes,
    Tunnel { action: TunnelAction, name: String },
    Reload,
    Bgp,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TunnelAction {
    Disable,
    Enable,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<serde_json::Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Response {
    pub fn ok(data: serde_json::Value) -> Self {
        Response {
            ok: true,
            data: Some(data),
            error: None,
        }
    }

    pub fn err(message: impl Into<String>) -> Self {
        Response {
            ok: false,
            data: None,
            error: Some(message.into()),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub tunnels: Vec<TunnelStatus>,
    /// Dataplane-wide counters (drops without a tunnel, keepalives).
    #[serde(default)]
    pub dataplane: BTreeMap<String, u64>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TunnelStatus {
    pub connection: String,
    pub name: String,
    /// "UP" or "DOWN".
    pub state: String,
    /// Unix seconds of the last state change.
    pub since: u64,
    pub reason: Option<String>,
    pub local: String,
    pub peer: String,
    /// The largest inner packet sent now: the configured `mtu`, or less where the
    /// underlay's path MTU to the peer does not carry it.
    #[serde(default)]
    pub mtu: u16,
    pub ike: Option<IkeStatus>,
    pub child_sas: Vec<ChildStatus>,
    /// Inbound SPIs of CHILD SAs deleted by a rekey, a disable or a reload, still
    /// decrypting (for 5 s) what the peer sent on them before it switched.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub retiring_spis_in: Vec<String>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub packets_in: u64,
    pub packets_out: u64,
    pub drops: BTreeMap<String, u64>,
    /// IKE datagrams dropped or refused by cause, and INVALID_IKE_SPI notifications sent;
    /// non-zero ones only.
    pub ike_counters: BTreeMap<String, u64>,
    /// Unix seconds of the last authenticated IKE message from the peer.
    pub last_dpd: Option<u64>,
    /// NAT detection on the IKE SA: `none`, `local` (we are behind a NAT), `peer` or
    /// `both`; absent without an IKE SA.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nat: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IkeStatus {
    pub spi_i: String,
    pub spi_r: String,
    /// The negotiated IKE proposal, e.g. `aes128gcm16-prfsha256-modp2048`.
    pub proposal: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChildStatus {
    pub spi_in: String,
    pub spi_out: String,
    pub proposal: String,
    pub established: u64,
    /// This SA pair's own counters (what its volume limits count: inner bytes).
    #[serde(default)]
    pub bytes_in: u64,
    #[serde(default)]
    pub bytes_out: u64,
    #[serde(default)]
    pub packets_in: u64,
    #[serde(default)]
    pub packets_out: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Routes {
    pub routes: Vec<RouteStatus>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteStatus {
    pub prefix: String,
    /// "static", "bgp" or "connected".
    pub source: String,
    pub via: Vec<String>,
    pub active: Vec<String>,
}

impl Status {
    /// A table for people.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<16} {:<5} {:<20} {:<22} {:<5} {:>5} {:<10} {:<10} {:>10} {:>10}",
            "TUNNEL",
            "STATE",
            "REASON",
            "PEER",
            "NAT",
            "MTU",
            "SPI_IN",
            "SPI_OUT",
            "PKTS_IN",
            "PKTS_OUT"
        );
        for t in &self.tunnels {
            let child = t.child_sas.last();
            let _ = writeln!(
                out,
                "{:<16} {:<5} {:<20} {:<22} {:<5} {:>5} {:<10} {:<10} {:>10} {:>10}",
                t.name,
                t.state,
                t.reason.as_deref().unwrap_or("-"),
                t.peer,
                t.nat.as_deref().unwrap_or("-"),
                t.mtu,
                child.map_or("-", |c| c.spi_in.as_str()),
                child.map_or("-", |c| c.spi_out.as_str()),
                t.packets_in,
                t.packets_out
            );
        }
        // Dataplane counters that moved: drops by stage, batch sizes.
        let moved: Vec<String> = self
            .dataplane
            .iter()
            .filter(|(_, v)| **v > 0)
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        if !moved.is_empty() {
            let _ = writeln!(out, "\nDATAPLANE");
            for line in moved.chunks(4) {
                let _ = writeln!(out, "  {}", line.join("  "));
            }
        }
        out
    }
}

impl Routes {
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<22} {:<10} {:<24} ACTIVE",
            "PREFIX", "SOURCE", "VIA"
        );
        for r in &self.routes {
            let active = if r.active.is_empty() {
                "(withdrawn)".to_owned()
            } else {
                r.active.join(",")
            };
            let _ = writeln!(
                out,
                "{:<22} {:<10} {:<24} {}",
                r.prefix,
                r.source,
                r.via.join(","),
                active
            );
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_have_the_documented_shape() {
        let r: Request =
            serde_json::from_str(r#"{"cmd":"tunnel","action":"disable","name":"tun1"}"#).unwrap();
        assert_eq!(
            r,
            Request::Tunnel {
                action: TunnelAction::Disable,
                name: "tun1".into()
            }
        );
        assert_eq!(
            serde_json::to_string(&Request::Status).unwrap(),
            r#"{"cmd":"status"}"#
        );
        assert!(serde_json::from_str::<Request>(r#"{"cmd":"reboot"}"#).is_err());
    }

    #[test]
    fn error_responses_carry_no_data() {
        let s = serde_json::to_string(&Response::err("no such tunnel")).unwrap();
        assert_eq!(s, r#"{"ok":false,"error":"no such tunnel"}"#);
    }
}
