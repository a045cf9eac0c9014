//! Seeds a `Rib` from the config: one `TunnelId` per tunnel in config order, every static
//! route, all tunnels DOWN until their SAs are up.

use super::{Rib, RouteError, TunnelId};
use crate::config::Config;

/// The tunnels of a config, indexed by `TunnelId`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TunnelNames(Vec<String>);

impl TunnelNames {
    pub fn id(&self, name: &str) -> Option<TunnelId> {
        let i = self.0.iter().position(|n| n == name)?;
        u16::try_from(i).ok().map(TunnelId)
    }

    pub fn name(&self, id: TunnelId) -> Option<&str> {
        self.0.get(usize::from(id.0)).map(String::as_str)
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl Rib {
    /// The RIB for a validated config, and the tunnel numbering it uses.
    pub fn from_config(config: &Config) -> Result<(Rib, TunnelNames), RouteError> {
        let mut rib = Rib::new();
        let mut names = Vec::new();
        for conn in &config.connections {
            for t in &conn.tunnels {
                let id =
                    TunnelId(u16::try_from(names.len()).map_err(|_| RouteError::TooManyTunnels)?);
                rib.add_tunnel(id, conn.mode);
                names.push(t.name.clone());
            }
        }
        let names = TunnelNames(names);
        for conn in &config.connections {
            for r in &conn.routes {
                let via: Vec<TunnelId> = r
                    .via
                    .iter()
                    .map(|n| {
                        names
                            .id(n)
                            .ok_or_else(|| RouteError::UnknownTunnelName(n.clone()))
                    })
                    .collect::<Result<_, _>>()?;
                rib.add_static(r.prefix, &via)?;
            }
        }
        Ok((rib, names))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn customer_reference_config_routes_over_tun1_then_tun2() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/customer.toml");
        let config = Config::load_with_env(&path, Vec::new()).unwrap();
        let (mut rib, names) = Rib::from_config(&config).unwrap();
        assert_eq!(names.len(), 2);
        let (t1, t2) = (names.id("tun1").unwrap(), names.id("tun2").unwrap());
        assert_eq!(names.name(t2), Some("tun2"));
        let dst = "172.16.5.5".parse().unwrap();
        assert_eq!(rib.build().lookup(dst, 0), None, "all tunnels start DOWN");
        rib.set_tunnel_up(t2, true).unwrap();
        assert_eq!(rib.build().lookup(dst, 0), Some(t2));
        rib.set_tunnel_up(t1, true).unwrap();
        assert_eq!(
            rib.build().lookup(dst, 0),
            Some(t1),
            "active-standby prefers tun1"
        );
        assert_eq!(rib.build().lookup("10.10.0.1".parse().unwrap(), 0), None);
    }
}
