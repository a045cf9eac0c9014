//! One session's settings, built from the gateway config for one tunnel.

use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

use bgp::{Ipv4Prefix, SessionConfig};
use ipnet::IpNet;

use super::SpeakerError;
use crate::config::{BgpConfig, Tunnel};
use crate::routing::TunnelId;

/// The well-known BGP port.
pub const BGP_PORT: u16 = 179;

/// Wait between our connection attempts. Shorter than the RFC's 120 s suggestion: the
/// peer sits at the far end of a tunnel that just came UP, and one SYN per few seconds
/// costs nothing.
pub const CONNECT_RETRY: Duration = Duration::from_secs(5);

/// Everything the speaker needs to run the session of one tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionSpec {
    pub tunnel: TunnelId,
    /// The tunnel's name, for logs and `vpngw bgp`.
    pub name: String,
    /// Addresses, ASNs, timers, max-prefix and the prefixes to advertise.
    pub session: SessionConfig,
    /// TCP port to listen on and dial (179 except in tests that cannot bind it).
    pub port: u16,
    /// Sessions of one group share prefixes they learn at equal cost (multipath): the
    /// tunnels of a connection in ECMP mode. `None`: the best route alone.
    pub multipath_group: Option<u32>,
    /// Local rank among the connection's tunnels (see `bgp::Rib::set_rank`).
    pub rank: u16,
    /// Which of the tunnel's sessions this is (the speaker numbers them as it starts
    /// them): a stopped session may still be saying goodbye when the next one starts, and
    /// must not touch the newer one's routes or status.
    pub generation: u16,
}

impl SessionSpec {
    /// The session over `tunnel`'s inner addresses with its connection's `bgp` section.
    /// The router ID is our inner address: unique per session, and the cloud side only
    /// needs it to differ from its own.
    pub fn from_config(
        id: TunnelId,
        tunnel: &Tunnel,
        bgp: &BgpConfig,
    ) -> Result<Self, SpeakerError> {
        let name = tunnel.name.clone();
        let (IpAddr::V4(local), IpAddr::V4(peer)) = (tunnel.inner.local, tunnel.inner.peer) else {
            return Err(SpeakerError::NotIpv4 { tunnel: name });
        };
        let hold_secs = bgp.hold_time.as_secs();
        let hold_time = u16::try_from(hold_secs).map_err(|_| SpeakerError::HoldTime {
            tunnel: name.clone(),
            secs: hold_secs,
        })?;
        let local_prefixes = bgp
            .advertise
            .iter()
            .map(|p| ipv4_prefix(&name, *p))
            .collect::<Result<Vec<_>, _>>()?;
        let mut session = SessionConfig::new(bgp.local_asn, local, local, peer);
        session.peer_asn = bgp.peer_asn;
        session.hold_time = hold_time;
        session.connect_retry_time = CONNECT_RETRY;
        session.max_prefixes = Some(bgp.max_prefix);
        session.local_prefixes = local_prefixes;
        session.validate().map_err(|source| SpeakerError::Session {
            tunnel: name.clone(),
            source,
        })?;
        Ok(Self {
            tunnel: id,
            name,
            session,
            port: BGP_PORT,
            multipath_group: None,
            rank: 0,
            generation: 0,
        })
    }

    pub fn local_address(&self) -> Ipv4Addr {
        self.session.local_address
    }

    pub fn peer_address(&self) -> Ipv4Addr {
        self.session.peer_address
    }
}

fn ipv4_prefix(tunnel: &str, prefix: IpNet) -> Result<Ipv4Prefix, SpeakerError> {
    let refuse = || SpeakerError::Ipv6Prefix {
        tunnel: tunnel.to_owned(),
        prefix,
    };
    match prefix.trunc() {
        IpNet::V4(n) => Ipv4Prefix::new(n.network(), n.prefix_len()).map_err(|_| refuse()),
        IpNet::V6(_) => Err(refuse()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::path::Path;

    /// The example config shipped in configs/ (customer side, two tunnels, eBGP).
    fn customer() -> Config {
        let text = include_str!("../../../configs/customer.toml");
        Config::parse(text, Path::new("customer.toml"), Path::new("."), [])
            .expect("configs/customer.toml is valid")
    }

    #[test]
    fn sessions_come_from_each_tunnels_inner_addresses() {
        let config = customer();
        let conn = &config.connections[0];
        let bgp = conn.bgp.as_ref().expect("customer.toml has a bgp section");
        let one = SessionSpec::from_config(TunnelId(0), &conn.tunnels[0], bgp).unwrap();
        let two = SessionSpec::from_config(TunnelId(1), &conn.tunnels[1], bgp).unwrap();
        assert_eq!(one.name, conn.tunnels[0].name);
        assert_eq!(one.local_address(), Ipv4Addr::new(169, 254, 10, 2));
        assert_eq!(one.peer_address(), Ipv4Addr::new(169, 254, 10, 1));
        assert_eq!(two.peer_address(), Ipv4Addr::new(169, 254, 11, 1));
        assert_eq!(
            (one.session.local_asn, one.session.peer_asn),
            (65010, 65000)
        );
        assert_eq!(one.session.router_id, one.local_address());
        assert_eq!(one.session.hold_time, 90);
        assert_eq!(one.session.max_prefixes, Some(100));
        assert_eq!(
            one.session.local_prefixes,
            vec!["10.10.0.0/16".parse::<Ipv4Prefix>().unwrap()]
        );
        assert_eq!(one.port, BGP_PORT);
    }

    #[test]
    fn ipv6_is_refused_with_the_tunnel_name() {
        let config = customer();
        let conn = &config.connections[0];
        let mut bgp = conn.bgp.clone().unwrap();
        bgp.advertise.push("2001:db8::/32".parse().unwrap());
        let err = SessionSpec::from_config(TunnelId(0), &conn.tunnels[0], &bgp).unwrap_err();
        assert!(matches!(err, SpeakerError::Ipv6Prefix { ref tunnel, .. } if tunnel == "tun1"));

        let mut tunnel = conn.tunnels[0].clone();
        tunnel.inner.local = "fd00::2".parse().unwrap();
        tunnel.inner.peer = "fd00::1".parse().unwrap();
        let bgp = conn.bgp.as_ref().unwrap();
        assert_eq!(
            SessionSpec::from_config(TunnelId(0), &tunnel, bgp),
            Err(SpeakerError::NotIpv4 {
                tunnel: "tun1".into()
            })
        );
    }

    #[test]
    fn an_open_cannot_carry_a_huge_hold_time() {
        let config = customer();
        let conn = &config.connections[0];
        let mut bgp = conn.bgp.clone().unwrap();
        bgp.hold_time = Duration::from_secs(70_000);
        assert!(matches!(
            SessionSpec::from_config(TunnelId(0), &conn.tunnels[0], &bgp),
            Err(SpeakerError::HoldTime { secs: 70_000, .. })
        ));
    }
}
