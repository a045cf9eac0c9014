//! Declarative topologies: namespaces joined by veth pairs, with addresses and static routes.

use std::net::IpAddr;

use crate::cidr::Cidr;
use crate::error::{HarnessError, Result};
use crate::netns::Netns;

/// Linux limits interface names to 15 bytes.
const MAX_IFNAME: usize = 15;

#[derive(Debug, Clone)]
struct HostSpec {
    name: String,
    forwarding: bool,
}

#[derive(Debug, Clone)]
struct LinkSpec {
    a: (String, String, String),
    b: (String, String, String),
}

#[derive(Debug, Clone)]
struct AddrSpec {
    host: String,
    ifname: String,
    cidr: String,
}

#[derive(Debug, Clone)]
struct RouteSpec {
    host: String,
    dest: String,
    via: String,
}

/// Describes a topology; [`TopologyBuilder::build`] creates it. Host names double as
/// namespace labels (`[a-z0-9_]`). Every namespace gets its loopback up.
///
/// ```no_run
/// # fn main() -> Result<(), netlab::HarnessError> {
/// let topo = netlab::TopologyBuilder::new()
///     .host("left")
///     .router("mid")
///     .host("right")
///     .link(("left", "eth0", "10.1.0.2/24"), ("mid", "eth0", "10.1.0.1/24"))
///     .link(("mid", "eth1", "10.2.0.1/24"), ("right", "eth0", "10.2.0.2/24"))
///     .route("left", "default", "10.1.0.1")
///     .route("right", "default", "10.2.0.1")
///     .build()?;
/// let stats = netlab::ping(topo.ns("left")?, "10.2.0.2".parse().unwrap(), &netlab::PingOptions::default())?;
/// # Ok(()) }
/// ```
#[derive(Debug, Clone, Default)]
pub struct TopologyBuilder {
    hosts: Vec<HostSpec>,
    links: Vec<LinkSpec>,
    addresses: Vec<AddrSpec>,
    routes: Vec<RouteSpec>,
    name_prefix: Option<String>,
}

impl TopologyBuilder {
    pub fn new() -> Self {
        Self::default()
    }

    /// Names each namespace `<prefix><host>` exactly (see [`Netns::create`]) instead of
    /// `vpngwt-<pid>-<n>-<host>`.
    pub fn namespace_prefix(mut self, prefix: &str) -> Self {
        self.name_prefix = Some(prefix.to_owned());
        self
    }

    /// An end host (no forwarding).
    pub fn host(mut self, name: &str) -> Self {
        self.hosts.push(HostSpec {
            name: name.into(),
            forwarding: false,
        });
        self
    }

    /// A host with `net.ipv4.ip_forward = 1`.
    pub fn router(mut self, name: &str) -> Self {
        self.hosts.push(HostSpec {
            name: name.into(),
            forwarding: true,
        });
        self
    }

    /// A veth pair: `(host, interface, address/prefix)` at each end.
    pub fn link(mut self, a: (&str, &str, &str), b: (&str, &str, &str)) -> Self {
        let own = |(h, i, c): (&str, &str, &str)| (h.to_owned(), i.to_owned(), c.to_owned());
        self.links.push(LinkSpec {
            a: own(a),
            b: own(b),
        });
        self
    }

    /// An extra address on an existing interface (e.g. a public address on `lo`).
    pub fn address(mut self, host: &str, ifname: &str, cidr: &str) -> Self {
        self.addresses.push(AddrSpec {
            host: host.into(),
            ifname: ifname.into(),
            cidr: cidr.into(),
        });
        self
    }

    /// A static route: `dest` is a prefix or `default`, `via` a next-hop address.
    pub fn route(mut self, host: &str, dest: &str, via: &str) -> Self {
        self.routes.push(RouteSpec {
            host: host.into(),
            dest: dest.into(),
            via: via.into(),
        });
        self
    }

    /// Validates the description, then creates namespaces, links, addresses and routes.
    /// If a step fails, everything created so far is removed again.
    pub fn build(self) -> Result<Topology> {
        self.validate()?;
        let mut topo = Topology { hosts: Vec::new() };
        for host in &self.hosts {
            let ns = match &self.name_prefix {
                Some(prefix) => Netns::create(&format!("{prefix}{}", host.name))?,
                None => Netns::new(&host.name)?,
            };
            if host.forwarding {
                ns.sysctl("net.ipv4.ip_forward", "1")?;
            }
            topo.hosts.push((host.name.clone(), ns));
        }
        for link in &self.links {
            let (ha, ia, ca) = &link.a;
            let (hb, ib, cb) = &link.b;
            let nb = topo.ns(hb)?.name().to_owned();
            let na = topo.ns(ha)?;
            // Both ends are created directly inside their namespaces, so interface names
            // never collide in the root namespace between parallel tests.
            na.ip(&[
                "link", "add", ia, "type", "veth", "peer", "name", ib, "netns", &nb,
            ])?;
            for (host, ifname, cidr) in [(ha, ia, ca), (hb, ib, cb)] {
                let ns = topo.ns(host)?;
                ns.ip(&["addr", "add", cidr, "dev", ifname])?;
                ns.ip(&["link", "set", ifname, "up"])?;
            }
        }
        for a in &self.addresses {
            let ns = topo.ns(&a.host)?;
            ns.ip(&["addr", "add", &a.cidr, "dev", &a.ifname])?;
            ns.ip(&["link", "set", &a.ifname, "up"])?;
        }
        for r in &self.routes {
            topo.ns(&r.host)?
                .ip(&["route", "add", &r.dest, "via", &r.via])?;
        }
        Ok(topo)
    }

    fn validate(&self) -> Result<()> {
        let known = |h: &str| self.hosts.iter().any(|s| s.name == h);
        for (i, h) in self.hosts.iter().enumerate() {
            if self.hosts.iter().skip(i + 1).any(|o| o.name == h.name) {
                return Err(HarnessError::Invalid(format!(
                    "host {:?} declared twice",
                    h.name
                )));
            }
        }
        let check_end = |(host, ifname, cidr): &(String, String, String)| -> Result<()> {
            if !known(host) {
                return Err(HarnessError::Invalid(format!(
                    "link to unknown host {host:?}"
                )));
            }
            if ifname.is_empty() || ifname.len() > MAX_IFNAME || ifname.contains(['/', ' ']) {
                return Err(HarnessError::Invalid(format!("interface name {ifname:?}")));
            }
            cidr.parse::<Cidr>()?;
            Ok(())
        };
        for l in &self.links {
            check_end(&l.a)?;
            check_end(&l.b)?;
            if l.a.0 == l.b.0 {
                return Err(HarnessError::Invalid(format!(
                    "link from {:?} to itself",
                    l.a.0
                )));
            }
        }
        for a in &self.addresses {
            if !known(&a.host) {
                return Err(HarnessError::Invalid(format!(
                    "address on unknown host {:?}",
                    a.host
                )));
            }
            a.cidr.parse::<Cidr>()?;
        }
        for r in &self.routes {
            if !known(&r.host) {
                return Err(HarnessError::Invalid(format!(
                    "route on unknown host {:?}",
                    r.host
                )));
            }
            if r.dest != "default" {
                r.dest.parse::<Cidr>()?;
            }
            r.via
                .parse::<IpAddr>()
                .map_err(|_| HarnessError::Invalid(format!("next hop {:?}", r.via)))?;
        }
        Ok(())
    }
}

/// A built topology. Dropping it deletes every namespace (and kills what runs inside).
#[derive(Debug)]
pub struct Topology {
    hosts: Vec<(String, Netns)>,
}

impl Topology {
    /// The namespace of a host by its name in the builder.
    pub fn ns(&self, host: &str) -> Result<&Netns> {
        self.hosts
            .iter()
            .find(|(name, _)| name == host)
            .map(|(_, ns)| ns)
            .ok_or_else(|| HarnessError::Invalid(format!("no host {host:?} in topology")))
    }

    /// Hands the namespaces over (in creation order), e.g. to a typed wrapper.
    pub fn into_namespaces(self) -> Vec<(String, Netns)> {
        self.hosts
    }

    /// Host names with their namespace names, in creation order.
    pub fn namespaces(&self) -> Vec<(String, String)> {
        self.hosts
            .iter()
            .map(|(host, ns)| (host.clone(), ns.name().to_owned()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn invalid(b: TopologyBuilder) -> String {
        match b.validate() {
            Err(HarnessError::Invalid(why)) => why,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn validation_catches_mistakes_before_creating_anything() {
        let base = || TopologyBuilder::new().host("a").host("b");
        assert!(invalid(base().host("a")).contains("twice"));
        assert!(
            invalid(base().link(("a", "e0", "10.0.0.1/24"), ("c", "e0", "10.0.0.2/24")))
                .contains("unknown host")
        );
        assert!(
            invalid(base().link(("a", "e0", "10.0.0.1"), ("b", "e0", "10.0.0.2/24")))
                .contains("missing /prefix")
        );
        assert!(invalid(base().link(
            ("a", "much_too_long_ifname", "10.0.0.1/24"),
            ("b", "e", "10.0.0.2/24")
        ))
        .contains("interface name"));
        assert!(
            invalid(base().link(("a", "e0", "10.0.0.1/24"), ("a", "e1", "10.0.0.2/24")))
                .contains("itself")
        );
        assert!(invalid(base().route("a", "10.9.0.0/16", "nowhere")).contains("next hop"));
        assert!(invalid(base().route("z", "default", "10.0.0.1")).contains("unknown host"));
        assert!(invalid(base().address("a", "lo", "300.0.0.1/32")).contains("not an IP"));
        base()
            .link(("a", "e0", "10.0.0.1/24"), ("b", "e0", "10.0.0.2/24"))
            .route("a", "default", "10.0.0.2")
            .validate()
            .unwrap();
    }
}
