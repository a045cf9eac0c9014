//! The IKE and CHILD SAs reported by `swanctl --list-sas --pretty`.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use super::vici_tree::{self, Section};
use crate::error::{HarnessError, Result};

/// IKE SA states as charon names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum IkeSaState {
    Created,
    Connecting,
    Established,
    Passive,
    Rekeying,
    Rekeyed,
    Deleting,
    Destroying,
    Other(String),
}

impl IkeSaState {
    fn parse(s: &str) -> Self {
        match s {
            "CREATED" => Self::Created,
            "CONNECTING" => Self::Connecting,
            "ESTABLISHED" => Self::Established,
            "PASSIVE" => Self::Passive,
            "REKEYING" => Self::Rekeying,
            "REKEYED" => Self::Rekeyed,
            "DELETING" => Self::Deleting,
            "DESTROYING" => Self::Destroying,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// CHILD SA states as charon names them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChildSaState {
    Created,
    Routed,
    Installing,
    Installed,
    Updating,
    Rekeying,
    Rekeyed,
    Retrying,
    Deleting,
    Deleted,
    Destroying,
    Other(String),
}

impl ChildSaState {
    fn parse(s: &str) -> Self {
        match s {
            "CREATED" => Self::Created,
            "ROUTED" => Self::Routed,
            "INSTALLING" => Self::Installing,
            "INSTALLED" => Self::Installed,
            "UPDATING" => Self::Updating,
            "REKEYING" => Self::Rekeying,
            "REKEYED" => Self::Rekeyed,
            "RETRYING" => Self::Retrying,
            "DELETING" => Self::Deleting,
            "DELETED" => Self::Deleted,
            "DESTROYING" => Self::Destroying,
            other => Self::Other(other.to_owned()),
        }
    }
}

/// One IKE SA and its CHILD SAs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IkeSa {
    /// The connection name.
    pub name: String,
    pub unique_id: u32,
    pub version: u8,
    pub state: IkeSaState,
    pub local_host: Option<IpAddr>,
    pub local_port: Option<u16>,
    pub remote_host: Option<IpAddr>,
    pub remote_port: Option<u16>,
    pub local_id: Option<String>,
    pub remote_id: Option<String>,
    /// This end initiated the IKE SA.
    pub initiator: bool,
    pub initiator_spi: u64,
    pub responder_spi: u64,
    /// charon believes the peer is behind a NAT (always, with kernel-libipsec's fake NAT).
    pub nat_remote: bool,
    pub encr_alg: Option<String>,
    pub encr_keysize: Option<u32>,
    pub integ_alg: Option<String>,
    pub prf_alg: Option<String>,
    pub dh_group: Option<String>,
    pub children: Vec<ChildSa>,
}

/// One CHILD SA (an ESP SA pair).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChildSa {
    /// The child config name.
    pub name: String,
    pub unique_id: u32,
    pub reqid: u32,
    pub state: ChildSaState,
    pub mode: Option<String>,
    pub protocol: Option<String>,
    /// ESP in UDP.
    pub encap: bool,
    pub spi_in: u32,
    pub spi_out: u32,
    pub encr_alg: Option<String>,
    pub encr_keysize: Option<u32>,
    pub integ_alg: Option<String>,
    pub dh_group: Option<String>,
    pub bytes_in: u64,
    pub packets_in: u64,
    pub bytes_out: u64,
    pub packets_out: u64,
    pub local_ts: Vec<String>,
    pub remote_ts: Vec<String>,
}

impl IkeSa {
    /// The peer's address and port, when charon reported both.
    pub fn remote(&self) -> Option<SocketAddr> {
        self.remote_host
            .zip(self.remote_port)
            .map(|(ip, port)| SocketAddr::new(ip, port))
    }

    /// ESTABLISHED with at least one INSTALLED CHILD SA: the tunnel is UP.
    pub fn is_up(&self) -> bool {
        self.state == IkeSaState::Established && self.installed_children().next().is_some()
    }

    /// The CHILD SAs currently carrying traffic.
    pub fn installed_children(&self) -> impl Iterator<Item = &ChildSa> {
        self.children
            .iter()
            .filter(|c| c.state == ChildSaState::Installed)
    }

    /// The local SPI of this IKE SA (ours: the initiator SPI if we initiated).
    pub fn local_spi(&self) -> u64 {
        if self.initiator {
            self.initiator_spi
        } else {
            self.responder_spi
        }
    }
}

/// Parses the `--list-sas --pretty` output into IKE SAs.
pub fn parse_list_sas(text: &str) -> Result<Vec<IkeSa>> {
    let root = vici_tree::parse(text)?;
    let mut sas = Vec::new();
    for (message, body) in root.sections() {
        if message != "list-sa event" {
            continue;
        }
        for (name, ike) in body.sections() {
            sas.push(parse_ike(name, ike)?);
        }
    }
    Ok(sas)
}

/// The IKE SA of connection `name` that is up, if any.
pub fn find_up<'a>(sas: &'a [IkeSa], name: &str) -> Option<&'a IkeSa> {
    sas.iter().find(|sa| sa.name == name && sa.is_up())
}

/// One line per SA, for timeout and assertion messages.
pub fn summary(sas: &[IkeSa]) -> String {
    if sas.is_empty() {
        return "no SAs".into();
    }
    let mut lines = Vec::new();
    for sa in sas {
        lines.push(format!("{} #{} {:?}", sa.name, sa.unique_id, sa.state));
        for c in &sa.children {
            lines.push(format!(
                "  {} reqid {} {:?} in {:08x} ({} pkts) out {:08x} ({} pkts)",
                c.name, c.reqid, c.state, c.spi_in, c.packets_in, c.spi_out, c.packets_out
            ));
        }
    }
    lines.join("\n")
}

fn parse_ike(name: &str, s: &Section) -> Result<IkeSa> {
    let ctx = format!("IKE SA {name}");
    let mut children = Vec::new();
    if let Some(child_sas) = s.section("child-sas") {
        for (_, child) in child_sas.sections() {
            children.push(parse_child(child)?);
        }
    }
    Ok(IkeSa {
        name: name.to_owned(),
        unique_id: required(s, "uniqueid", &ctx)?,
        version: required(s, "version", &ctx)?,
        state: IkeSaState::parse(s.value("state").unwrap_or_default()),
        local_host: optional(s, "local-host", &ctx)?,
        local_port: optional(s, "local-port", &ctx)?,
        remote_host: optional(s, "remote-host", &ctx)?,
        remote_port: optional(s, "remote-port", &ctx)?,
        local_id: s.value("local-id").map(str::to_owned),
        remote_id: s.value("remote-id").map(str::to_owned),
        initiator: s.value("initiator") == Some("yes"),
        initiator_spi: hex_u64(s, "initiator-spi", &ctx)?,
        responder_spi: hex_u64(s, "responder-spi", &ctx)?,
        nat_remote: s.value("nat-remote") == Some("yes"),
        encr_alg: s.value("encr-alg").map(str::to_owned),
        encr_keysize: optional(s, "encr-keysize", &ctx)?,
        integ_alg: s.value("integ-alg").map(str::to_owned),
        prf_alg: s.value("prf-alg").map(str::to_owned),
        dh_group: s.value("dh-group").map(str::to_owned),
        children,
    })
}

fn parse_child(s: &Section) -> Result<ChildSa> {
    let name = s.value("name").unwrap_or_default().to_owned();
    let ctx = format!("CHILD SA {name}");
    let counter = |key: &str| optional::<u64>(s, key, &ctx).map(Option::unwrap_or_default);
    Ok(ChildSa {
        unique_id: required(s, "uniqueid", &ctx)?,
        reqid: required(s, "reqid", &ctx)?,
        state: ChildSaState::parse(s.value("state").unwrap_or_default()),
        mode: s.value("mode").map(str::to_owned),
        protocol: s.value("protocol").map(str::to_owned),
        encap: s.value("encap") == Some("yes"),
        spi_in: hex_u32(s, "spi-in", &ctx)?,
        spi_out: hex_u32(s, "spi-out", &ctx)?,
        encr_alg: s.value("encr-alg").map(str::to_owned),
        encr_keysize: optional(s, "encr-keysize", &ctx)?,
        integ_alg: s.value("integ-alg").map(str::to_owned),
        dh_group: s.value("dh-group").map(str::to_owned),
        bytes_in: counter("bytes-in")?,
        packets_in: counter("packets-in")?,
        bytes_out: counter("bytes-out")?,
        packets_out: counter("packets-out")?,
        local_ts: s
            .list("local-ts")
            .map(<[String]>::to_vec)
            .unwrap_or_default(),
        remote_ts: s
            .list("remote-ts")
            .map(<[String]>::to_vec)
            .unwrap_or_default(),
        name,
    })
}

fn optional<T: FromStr>(s: &Section, key: &str, ctx: &str) -> Result<Option<T>> {
    s.value(key)
        .map(|v| {
            v.parse().map_err(|_| {
                HarnessError::parse("swanctl --list-sas", format!("{ctx}: {key} = {v:?}"))
            })
        })
        .transpose()
}

fn required<T: FromStr>(s: &Section, key: &str, ctx: &str) -> Result<T> {
    optional(s, key, ctx)?
        .ok_or_else(|| HarnessError::parse("swanctl --list-sas", format!("{ctx}: no {key}")))
}

fn hex_u64(s: &Section, key: &str, ctx: &str) -> Result<u64> {
    let v = s.value(key).unwrap_or("0");
    u64::from_str_radix(v, 16)
        .map_err(|_| HarnessError::parse("swanctl --list-sas", format!("{ctx}: {key} = {v:?}")))
}

fn hex_u32(s: &Section, key: &str, ctx: &str) -> Result<u32> {
    let v = s.value(key).unwrap_or("0");
    u32::from_str_radix(v, 16)
        .map_err(|_| HarnessError::parse("swanctl --list-sas", format!("{ctx}: {key} = {v:?}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn responder_with_one_tunnel() {
        let sas = parse_list_sas(include_str!(
            "../../testdata/swanctl-list-sas-responder.txt"
        ))
        .unwrap();
        assert_eq!(sas.len(), 1);
        let sa = &sas[0];
        assert_eq!(sa.name, "tunnel1");
        assert_eq!(sa.state, IkeSaState::Established);
        assert!(!sa.initiator);
        assert_eq!(sa.initiator_spi, 0xb3d0_6b05_ad17_db87);
        assert_eq!(sa.responder_spi, 0xf83b_f78a_a917_d2fd);
        assert_eq!(sa.local_spi(), 0xf83b_f78a_a917_d2fd);
        assert_eq!(sa.local_host, Some("192.0.2.2".parse().unwrap()));
        assert_eq!(sa.remote_port, Some(4500));
        assert_eq!(
            sa.remote().map(|a| a.port()),
            Some(4500),
            "address and port together"
        );
        assert!(sa.nat_remote);
        assert_eq!(sa.encr_alg.as_deref(), Some("AES_CBC"));
        assert_eq!(sa.encr_keysize, Some(256));
        assert_eq!(sa.dh_group.as_deref(), Some("MODP_2048"));
        assert!(sa.is_up());
        let child = &sa.children[0];
        assert_eq!(child.reqid, 1);
        assert_eq!(child.state, ChildSaState::Installed);
        assert!(child.encap);
        assert_eq!((child.spi_in, child.spi_out), (0x48a1_dcc0, 0x0628_0043));
        assert_eq!(child.encr_alg.as_deref(), Some("AES_GCM_16"));
        assert_eq!(child.integ_alg, None);
        assert_eq!(child.local_ts, ["0.0.0.0/0"]);
        assert_eq!(child.remote_ts, ["0.0.0.0/0"]);
        assert!(find_up(&sas, "tunnel1").is_some());
        assert!(find_up(&sas, "tunnel2").is_none());
        assert!(summary(&sas).contains("reqid 1 Installed in 48a1dcc0"));
    }

    #[test]
    fn initiator_with_two_tunnels() {
        let text = include_str!("../../testdata/swanctl-list-sas-initiator-two-tunnels.txt");
        let sas = parse_list_sas(text).unwrap();
        let names: Vec<_> = sas.iter().map(|s| s.name.as_str()).collect();
        assert_eq!(names, ["tunnel2", "tunnel1"]);
        let t2 = find_up(&sas, "tunnel2").unwrap();
        assert!(t2.initiator);
        assert_eq!(t2.local_spi(), 0x23ca_d77b_bb29_3784);
        assert_eq!(t2.local_host, Some("203.0.113.2".parse().unwrap()));
        let c2 = t2.installed_children().next().unwrap();
        assert_eq!(
            (c2.reqid, c2.spi_in, c2.spi_out),
            (2, 0xb4cc_f9cb, 0x423d_0e5f)
        );
        assert_eq!(
            (c2.packets_in, c2.bytes_in, c2.packets_out, c2.bytes_out),
            (3, 252, 3, 252)
        );
        let t1 = find_up(&sas, "tunnel1").unwrap();
        assert_eq!(t1.installed_children().next().unwrap().reqid, 1);
        assert_eq!(t1.unique_id, 1);
    }

    #[test]
    fn nothing_established() {
        assert!(parse_list_sas("list-sas reply {\n}\n").unwrap().is_empty());
    }

    #[test]
    fn bad_spi_is_an_error() {
        let text = "list-sa event {\n  t {\n    uniqueid = 1\n    version = 2\n    initiator-spi = zz\n  }\n}\n";
        assert!(parse_list_sas(text).is_err());
    }
}
