//! Parsers for `birdc show protocols` and `birdc show route all` (BIRD 2, with the
//! `%T` time format the harness configures).

use std::net::IpAddr;

use crate::cidr::Cidr;
use crate::error::{HarnessError, Result};

/// One row of `show protocols`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProtocolStatus {
    pub name: String,
    /// `BGP`, `Static`, `Kernel`, `Device`...
    pub proto: String,
    pub table: String,
    /// `up`, `down`, `start`...
    pub state: String,
    pub since: String,
    /// For BGP the session state first (`Established`, `Active`, `Connect`...), then
    /// any last error.
    pub info: String,
}

impl ProtocolStatus {
    /// A BGP protocol with its session established.
    pub fn is_established(&self) -> bool {
        self.state == "up" && self.info.split_whitespace().next() == Some("Established")
    }
}

/// One route of `show route all`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub table: String,
    pub prefix: Cidr,
    /// `unicast`, `blackhole`, `unreachable`...
    pub kind: String,
    /// The protocol that supplied it (a BGP peer name, `originated`...).
    pub protocol: String,
    /// The best route for its prefix (marked `*`).
    pub primary: bool,
    pub preference: Option<u32>,
    pub via: Option<IpAddr>,
    pub interface: Option<String>,
    /// `BGP.as_path`, empty for non-BGP routes.
    pub as_path: Vec<u32>,
    /// Every `Key: value` attribute line (`Type`, `BGP.origin`, `BGP.next_hop`...).
    pub attributes: Vec<(String, String)>,
}

impl Route {
    pub fn attribute(&self, key: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find_map(|(k, v)| (k == key).then_some(v.as_str()))
    }
}

/// Parses `show protocols` output.
pub fn parse_protocols(text: &str) -> Result<Vec<ProtocolStatus>> {
    let what = "birdc show protocols";
    let mut lines = text.lines().skip_while(|l| !l.starts_with("Name"));
    if lines.next().is_none() {
        return Err(HarnessError::parse(what, format!("no header in {text:?}")));
    }
    let mut out = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let mut cols = line.split_whitespace();
        let (Some(name), Some(proto), Some(table), Some(state), Some(since)) = (
            cols.next(),
            cols.next(),
            cols.next(),
            cols.next(),
            cols.next(),
        ) else {
            return Err(HarnessError::parse(what, format!("short row {line:?}")));
        };
        out.push(ProtocolStatus {
            name: name.into(),
            proto: proto.into(),
            table: table.into(),
            state: state.into(),
            since: since.into(),
            info: cols.collect::<Vec<_>>().join(" "),
        });
    }
    Ok(out)
}

/// Parses `show route all` output (several tables, alternative routes, attributes).
pub fn parse_routes(text: &str) -> Result<Vec<Route>> {
    let what = "birdc show route all";
    let mut table = String::new();
    let mut routes: Vec<Route> = Vec::new();
    for line in text.lines() {
        if line.trim().is_empty() || line.starts_with("BIRD ") {
            continue;
        }
        if let Some(name) = line.strip_prefix("Table ") {
            table = name.trim_end_matches(':').to_owned();
        } else if let Some(detail) = line.strip_prefix('\t') {
            let route = routes.last_mut().ok_or_else(|| {
                HarnessError::parse(what, format!("detail before any route: {line:?}"))
            })?;
            add_detail(route, detail.trim()).map_err(|d| HarnessError::parse(what, d))?;
        } else if line.starts_with(' ') {
            // An alternative route for the prefix of the previous line.
            let prefix = routes.last().map(|r| r.prefix).ok_or_else(|| {
                HarnessError::parse(what, format!("alternative before any route: {line:?}"))
            })?;
            routes.push(
                route_line(&table, prefix, line.trim())
                    .map_err(|d| HarnessError::parse(what, d))?,
            );
        } else {
            let (prefix, rest) = line
                .split_once(char::is_whitespace)
                .ok_or_else(|| HarnessError::parse(what, format!("route line {line:?}")))?;
            let prefix: Cidr = prefix
                .parse()
                .map_err(|_| HarnessError::parse(what, format!("prefix in {line:?}")))?;
            routes.push(
                route_line(&table, prefix, rest.trim())
                    .map_err(|d| HarnessError::parse(what, d))?,
            );
        }
    }
    Ok(routes)
}

/// `unicast [peer1 00:46:53 from 192.0.2.9] * (100) [AS65000i]`
fn route_line(table: &str, prefix: Cidr, rest: &str) -> std::result::Result<Route, String> {
    let (kind, rest) = rest
        .split_once(' ')
        .ok_or_else(|| format!("route {rest:?}"))?;
    let open = rest
        .find('[')
        .ok_or_else(|| format!("no [protocol] in {rest:?}"))?;
    let close = rest[open..]
        .find(']')
        .map(|c| open + c)
        .ok_or_else(|| format!("unclosed [ in {rest:?}"))?;
    let protocol = rest[open + 1..close]
        .split_whitespace()
        .next()
        .ok_or_else(|| format!("empty [protocol] in {rest:?}"))?;
    let tail = &rest[close + 1..];
    let preference = tail
        .split_whitespace()
        .find_map(|t| t.strip_prefix('(')?.strip_suffix(')')?.parse().ok());
    Ok(Route {
        table: table.to_owned(),
        prefix,
        kind: kind.to_owned(),
        protocol: protocol.to_owned(),
        primary: tail.split_whitespace().any(|t| t == "*"),
        preference,
        via: None,
        interface: None,
        as_path: Vec::new(),
        attributes: Vec::new(),
    })
}

/// `via 192.0.2.1 on e0` or `Key: value`.
fn add_detail(route: &mut Route, detail: &str) -> std::result::Result<(), String> {
    if let Some(rest) = detail.strip_prefix("via ") {
        let mut words = rest.split_whitespace();
        let addr = words.next().ok_or_else(|| format!("via {rest:?}"))?;
        route.via = Some(addr.parse().map_err(|_| format!("next hop {addr:?}"))?);
        if words.next() == Some("on") {
            route.interface = words.next().map(str::to_owned);
        }
        return Ok(());
    }
    if let Some(rest) = detail.strip_prefix("dev ") {
        route.interface = rest.split_whitespace().next().map(str::to_owned);
        return Ok(());
    }
    let (key, value) = detail
        .split_once(':')
        .ok_or_else(|| format!("attribute {detail:?}"))?;
    let value = value.trim();
    if key == "BGP.as_path" {
        route.as_path = value
            .split_whitespace()
            .map(|asn| asn.parse().map_err(|_| format!("AS path {value:?}")))
            .collect::<std::result::Result<_, _>>()?;
    }
    route.attributes.push((key.to_owned(), value.to_owned()));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn protocols_established() {
        let p = parse_protocols(include_str!("../../testdata/birdc-show-protocols.txt")).unwrap();
        let names: Vec<_> = p.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["device1", "static_routes", "kernel1", "peer1"]);
        let peer = &p[3];
        assert_eq!((peer.proto.as_str(), peer.state.as_str()), ("BGP", "up"));
        assert_eq!(peer.info, "Established");
        assert!(peer.is_established());
        assert!(!p[0].is_established());
        assert_eq!(p[1].table, "master4");
    }

    #[test]
    fn protocols_after_peer_shutdown() {
        let p =
            parse_protocols(include_str!("../../testdata/birdc-show-protocols-down.txt")).unwrap();
        let peer = p.iter().find(|p| p.name == "peer1").unwrap();
        assert_eq!(peer.state, "start");
        assert_eq!(peer.info, "Active Received: Administrative shutdown");
        assert!(!peer.is_established());
    }

    #[test]
    fn routes_with_attributes() {
        let r = parse_routes(include_str!("../../testdata/birdc-show-route-all.txt")).unwrap();
        assert_eq!(r.len(), 2);
        let bgp = &r[0];
        assert_eq!(bgp.table, "master4");
        assert_eq!(bgp.prefix.to_string(), "10.20.0.0/24");
        assert_eq!(
            (bgp.kind.as_str(), bgp.protocol.as_str()),
            ("unicast", "peer1")
        );
        assert!(bgp.primary);
        assert_eq!(bgp.preference, Some(100));
        assert_eq!(bgp.via, Some("192.0.2.1".parse().unwrap()));
        assert_eq!(bgp.interface.as_deref(), Some("e0"));
        assert_eq!(bgp.as_path, [65000]);
        assert_eq!(bgp.attribute("BGP.origin"), Some("IGP"));
        assert_eq!(bgp.attribute("BGP.local_pref"), Some("100"));
        let st = &r[1];
        assert_eq!(
            (st.kind.as_str(), st.protocol.as_str()),
            ("blackhole", "static_routes")
        );
        assert_eq!(st.preference, Some(200));
        assert_eq!(st.via, None);
        assert!(st.as_path.is_empty());
        assert_eq!(st.attribute("Type"), Some("static univ"));
    }

    #[test]
    fn alternative_routes_share_the_prefix() {
        let text = "Table master4:\n\
            10.1.0.0/16          unicast [a 00:00:01] * (100) [AS65001i]\n\
            \tvia 192.0.2.1 on e0\n\
            \tBGP.as_path: 65001\n\
            \x20                    unicast [b 00:00:02] (100) [AS65002i]\n\
            \tvia 192.0.2.5 on e1\n\
            \tBGP.as_path: 65002 65003\n";
        let r = parse_routes(text).unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].prefix, r[0].prefix);
        assert!(r[0].primary && !r[1].primary);
        assert_eq!(r[1].as_path, [65002, 65003]);
        assert_eq!(r[1].interface.as_deref(), Some("e1"));
    }

    #[test]
    fn real_alternative_route_over_the_second_tunnel() {
        let text = include_str!("../../testdata/birdc-show-route-all-two-peers.txt");
        let r = parse_routes(text).unwrap();
        let summary: Vec<_> = r
            .iter()
            .map(|r| (r.prefix.to_string(), r.protocol.as_str(), r.primary))
            .collect();
        assert_eq!(
            summary,
            [
                ("10.20.0.0/24".to_owned(), "originated", true),
                ("10.10.0.0/24".to_owned(), "tunnel1", true),
                ("10.10.0.0/24".to_owned(), "tunnel2", false),
            ]
        );
        assert_eq!(r[2].via, Some("169.254.11.2".parse().unwrap()));
        assert_eq!(r[2].interface.as_deref(), Some("ipsec0"));
        assert_eq!(r[2].as_path, [65010]);
        assert_eq!(r[2].attribute("BGP.next_hop"), Some("169.254.11.2"));
    }

    #[test]
    fn malformed_output_is_an_error() {
        assert!(parse_protocols("BIRD 2.0.12 ready.\n").is_err());
        assert!(parse_protocols("Name Proto\nx y\n").is_err());
        assert!(parse_routes("\tvia 1.2.3.4 on e0\n").is_err());
        assert!(parse_routes("10.0.0.0/8 unicast no-bracket\n").is_err());
        assert!(parse_routes("not-a-prefix unicast [p 00:00:00] (1)\n").is_err());
        assert!(parse_routes("10.0.0.0/8 unicast [p 0] *\n\tBGP.as_path: 1 x\n").is_err());
    }
}
