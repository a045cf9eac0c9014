//! strongswan.conf and swanctl.conf for one charon instance with kernel-libipsec.

use std::fmt::Write as _;
use std::net::IpAddr;
use std::path::Path;
use std::time::Duration;

use zeroize::Zeroizing;

use crate::error::{HarnessError, Result};
use crate::secret::Psk;
use crate::site_to_site::TunnelPlan;

/// Plugins in load order: kernel-libipsec must come before kernel-netlink so that it,
/// not the (missing) kernel XFRM, handles the IPsec SAs. `!` marks a plugin critical:
/// charon refuses to start without it instead of running with no usable IPsec.
const PLUGINS: &str = "random nonce openssl pem pkcs1 pubkey x509 revocation constraints kdf \
aes gcm sha1 sha2 hmac curve25519 gmp kernel-libipsec! kernel-netlink socket-default vici! updown";

/// Which end of the site-to-site link a charon plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The cloud end: initiates, and re-initiates whenever the tunnel closes.
    Cloud,
    /// The customer end: responds by default.
    Customer,
}

/// Whether a connection starts negotiating by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartAction {
    /// Wait for the peer (or an explicit `--initiate`).
    None,
    /// Initiate at load, retry forever, restart on DPD timeout and on close. (`trap`
    /// does not work with kernel-libipsec 5.9.8: no acquires.)
    Start,
}

/// One tunnel: an IKE connection with a single route-based CHILD SA of the same name.
#[derive(Debug, Clone)]
pub struct TunnelConfig {
    pub name: String,
    pub local_addr: IpAddr,
    pub remote_addr: IpAddr,
    /// IKE identities; the addresses when `None`.
    pub local_id: Option<String>,
    pub remote_id: Option<String>,
    pub psk: Psk,
    /// swanctl proposal strings, e.g. `aes256-sha256-modp2048`.
    pub ike_proposals: String,
    pub esp_proposals: String,
    /// Fixed reqid: kernel-libipsec would otherwise give both 0/0 tunnels the same one.
    pub reqid: u32,
    pub start_action: StartAction,
    /// IKE SA rekey interval.
    pub ike_rekey: Duration,
    /// CHILD SA rekey interval.
    pub child_rekey: Duration,
    pub dpd_delay: Duration,
    pub local_ts: String,
    pub remote_ts: String,
    /// A second CHILD SA in the same connection (negotiated with CREATE_CHILD_SA).
    pub extra_child: Option<ExtraChild>,
    /// IKE reauthentication interval (`reauth_time`); off when `None`.
    pub reauth: Option<Duration>,
}

/// A further CHILD SA of a tunnel's connection, with its own selectors.
#[derive(Debug, Clone)]
pub struct ExtraChild {
    pub name: String,
    pub local_ts: String,
    pub remote_ts: String,
    pub reqid: u32,
}

impl TunnelConfig {
    /// A responder tunnel with the defaults: AES-256/SHA-256/MODP-2048 for IKE,
    /// AES-256-GCM for ESP, 0.0.0.0/0 selectors, 1 h / 30 min rekeying, 10 s DPD.
    pub fn new(name: &str, local_addr: IpAddr, remote_addr: IpAddr, psk: Psk, reqid: u32) -> Self {
        TunnelConfig {
            name: name.to_owned(),
            local_addr,
            remote_addr,
            local_id: None,
            remote_id: None,
            psk,
            ike_proposals: "aes256-sha256-modp2048".into(),
            esp_proposals: "aes256gcm16-modp2048".into(),
            reqid,
            start_action: StartAction::None,
            ike_rekey: Duration::from_secs(3600),
            child_rekey: Duration::from_secs(1800),
            dpd_delay: Duration::from_secs(10),
            local_ts: "0.0.0.0/0".into(),
            remote_ts: "0.0.0.0/0".into(),
            extra_child: None,
            reauth: None,
        }
    }

    /// The tunnel of the site-to-site plan as seen from `side`: the cloud initiates.
    pub fn for_plan(plan: &TunnelPlan, side: Side, psk: Psk) -> Self {
        let (local, remote) = match side {
            Side::Cloud => (plan.cloud_public, plan.customer_public),
            Side::Customer => (plan.customer_public, plan.cloud_public),
        };
        let mut t = TunnelConfig::new(plan.name, local.into(), remote.into(), psk, plan.reqid);
        if side == Side::Cloud {
            t.start_action = StartAction::Start;
        }
        t
    }

    fn validate(&self) -> Result<()> {
        let plain = |what: &str, v: &str| {
            let ok = !v.is_empty()
                && v.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"-_.@:/,".contains(&b));
            if ok {
                Ok(())
            } else {
                Err(HarnessError::Invalid(format!(
                    "tunnel {:?}: {what} {v:?}",
                    self.name
                )))
            }
        };
        plain("name", &self.name)?;
        plain("ike proposals", &self.ike_proposals)?;
        plain("esp proposals", &self.esp_proposals)?;
        plain("local_ts", &self.local_ts)?;
        plain("remote_ts", &self.remote_ts)?;
        if let Some(x) = &self.extra_child {
            plain("extra child name", &x.name)?;
            plain("extra child local_ts", &x.local_ts)?;
            plain("extra child remote_ts", &x.remote_ts)?;
        }
        if let Some(id) = &self.local_id {
            plain("local id", id)?;
        }
        if let Some(id) = &self.remote_id {
            plain("remote id", id)?;
        }
        if self.reqid == 0 {
            return Err(HarnessError::Invalid(format!(
                "tunnel {:?}: reqid 0",
                self.name
            )));
        }
        if self.psk.as_bytes().is_empty() {
            return Err(HarnessError::Invalid(format!(
                "tunnel {:?}: empty PSK",
                self.name
            )));
        }
        Ok(())
    }
}

/// Everything one charon instance runs.
#[derive(Debug, Clone, Default)]
pub struct CharonConfig {
    pub tunnels: Vec<TunnelConfig>,
    /// charon's make_before_break: reauthenticate by building the new IKE SA first.
    pub make_before_break: bool,
}

impl CharonConfig {
    pub fn new(tunnels: Vec<TunnelConfig>) -> Self {
        CharonConfig {
            tunnels,
            make_before_break: false,
        }
    }

    /// Both tunnels of the site-to-site plan for `side`, with one PSK each.
    pub fn site_to_site(side: Side, psks: [Psk; 2]) -> Self {
        let tunnels = crate::site_to_site::plan::TUNNELS
            .iter()
            .zip(psks)
            .map(|(plan, psk)| TunnelConfig::for_plan(plan, side, psk))
            .collect();
        CharonConfig {
            tunnels,
            make_before_break: false,
        }
    }

    /// [`CharonConfig::site_to_site`] for `SiteToSite::build_behind_nat`: the customer
    /// leaves from its private address, identifies itself by the NAT's public address
    /// and initiates; the cloud only responds (it cannot reach the customer first).
    pub fn site_to_site_behind_nat(side: Side, psks: [Psk; 2]) -> Self {
        use crate::site_to_site::plan;
        let mut cfg = Self::site_to_site(side, psks);
        for t in &mut cfg.tunnels {
            match side {
                Side::Customer => {
                    t.local_addr = plan::CUSTOMER_GW_PRIVATE.into();
                    t.local_id = Some(plan::CUSTOMER_GW_WAN.to_string());
                    t.start_action = StartAction::Start;
                }
                Side::Cloud => t.start_action = StartAction::None,
            }
        }
        cfg
    }

    pub fn tunnel_mut(&mut self, name: &str) -> Option<&mut TunnelConfig> {
        self.tunnels.iter_mut().find(|t| t.name == name)
    }

    pub(crate) fn validate(&self) -> Result<()> {
        for (i, t) in self.tunnels.iter().enumerate() {
            t.validate()?;
            if self
                .tunnels
                .iter()
                .skip(i + 1)
                .any(|o| o.name == t.name || o.reqid == t.reqid)
            {
                return Err(HarnessError::Invalid(format!(
                    "tunnel {:?}: name or reqid used twice",
                    t.name
                )));
            }
        }
        Ok(())
    }
}

/// strongswan.conf for an instance living in `dir`.
pub fn strongswan_conf(dir: &Path, make_before_break: bool) -> String {
    let dir = dir.display();
    let mbb = if make_before_break { "yes" } else { "no" };
    format!(
        "# Generated by the vpngw e2e harness.
charon {{
    load_modular = no
    load = {PLUGINS}
    # 0/0 selectors must not route the local networks into ipsec0: tests add routes.
    routing_table = 0
    install_routes = no
    install_virtual_ip = no
    # Retry fast: in tests the peer may come up a moment later.
    retransmit_timeout = 1.0
    retransmit_base = 1.4
    retransmit_tries = 4
    make_before_break = {mbb}
    plugins {{
        vici {{
            socket = unix://{dir}/charon.vici
        }}
    }}
    filelog {{
        harness {{
            path = {dir}/charon.log
            time_format = %H:%M:%S
            ike_name = yes
            flush_line = yes
            default = 1
            ike = 2
            # cfg stays at 1: level 2 logs every vici poll and buries the IKE story.
        }}
    }}
    syslog {{
        daemon {{
            default = -1
        }}
    }}
}}
"
    )
}

/// swanctl.conf with the connections and secrets. The PSKs are written as hex; the
/// returned string is wiped when dropped.
pub fn swanctl_conf(config: &CharonConfig) -> Result<Zeroizing<String>> {
    config.validate()?;
    let mut out = Zeroizing::new(String::from(
        "# Generated by the vpngw e2e harness.\nconnections {\n",
    ));
    for t in &config.tunnels {
        render_connection(&mut out, t);
    }
    out.push_str("}\nsecrets {\n");
    for t in &config.tunnels {
        let local_id = t
            .local_id
            .clone()
            .unwrap_or_else(|| t.local_addr.to_string());
        let remote_id = t
            .remote_id
            .clone()
            .unwrap_or_else(|| t.remote_addr.to_string());
        let _ = write!(
            out,
            "    ike-{name} {{\n        id-local = {local_id}\n        id-remote = {remote_id}\n        secret = {secret}\n    }}\n",
            name = t.name,
            secret = t.psk.to_swanctl_hex().as_str(),
        );
    }
    out.push_str("}\n");
    Ok(out)
}

fn render_connection(out: &mut String, t: &TunnelConfig) {
    let local_id = t
        .local_id
        .clone()
        .unwrap_or_else(|| t.local_addr.to_string());
    let remote_id = t
        .remote_id
        .clone()
        .unwrap_or_else(|| t.remote_addr.to_string());
    let (start, close, dpd, keyingtries) = match t.start_action {
        StartAction::Start => ("start", "start", "restart", 0),
        StartAction::None => ("none", "none", "clear", 1),
    };
    let reauth = t.reauth.map_or(0, |d| d.as_secs());
    let child = |name: &str, local_ts: &str, remote_ts: &str, reqid: u32| {
        format!(
            "
            {name} {{
                mode = tunnel
                local_ts = {local_ts}
                remote_ts = {remote_ts}
                esp_proposals = {esp}
                reqid = {reqid}
                rekey_time = {child_rekey}s
                start_action = {start}
                close_action = {close}
                dpd_action = {dpd}
            }}",
            esp = t.esp_proposals,
            child_rekey = t.child_rekey.as_secs(),
        )
    };
    let mut children = child(&t.name, &t.local_ts, &t.remote_ts, t.reqid);
    if let Some(x) = &t.extra_child {
        children.push_str(&child(&x.name, &x.local_ts, &x.remote_ts, x.reqid));
    }
    let _ = write!(
        out,
        "    {name} {{
        version = 2
        local_addrs = {local}
        remote_addrs = {remote}
        proposals = {ike}
        # kernel-libipsec only does ESP in UDP: force NAT-T even without a NAT.
        encap = yes
        mobike = no
        rekey_time = {ike_rekey}s
        reauth_time = {reauth}s
        dpd_delay = {dpd_delay}s
        keyingtries = {keyingtries}
        local {{
            auth = psk
            id = {local_id}
        }}
        remote {{
            auth = psk
            id = {remote_id}
        }}
        children {{{children}
        }}
    }}
",
        name = t.name,
        local = t.local_addr,
        remote = t.remote_addr,
        ike = t.ike_proposals,
        ike_rekey = t.ike_rekey.as_secs(),
        dpd_delay = t.dpd_delay.as_secs(),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn psks() -> [Psk; 2] {
        [Psk::from("one"), Psk::from("two")]
    }

    #[test]
    fn cloud_side_initiates_with_both_tunnels() {
        let conf = swanctl_conf(&CharonConfig::site_to_site(Side::Cloud, psks())).unwrap();
        for needle in [
            "tunnel1 {",
            "tunnel2 {",
            "local_addrs = 203.0.113.1",
            "local_addrs = 203.0.113.2",
            "remote_addrs = 192.0.2.2",
            "reqid = 1",
            "reqid = 2",
            "start_action = start",
            "close_action = start",
            "dpd_action = restart",
            "keyingtries = 0",
            "encap = yes",
            "secret = 0x6f6e65",
            "secret = 0x74776f",
        ] {
            assert!(
                conf.contains(needle),
                "missing {needle:?} in\n{}",
                conf.as_str()
            );
        }
        assert!(!conf.contains("start_action = none"));
    }

    #[test]
    fn customer_side_responds() {
        let conf = swanctl_conf(&CharonConfig::site_to_site(Side::Customer, psks())).unwrap();
        assert!(conf.contains("local_addrs = 192.0.2.2"));
        assert!(conf.contains("remote_addrs = 203.0.113.2"));
        assert!(conf.contains("id-remote = 203.0.113.1"));
        assert!(conf.contains("start_action = none"));
        assert!(!conf.contains("start_action = start"));
    }

    #[test]
    fn braces_balance() {
        let conf = swanctl_conf(&CharonConfig::site_to_site(Side::Cloud, psks())).unwrap();
        let open = conf.matches('{').count();
        assert_eq!(open, conf.matches('}').count());
        let ss = strongswan_conf(Path::new("/tmp/x"), false);
        assert_eq!(ss.matches('{').count(), ss.matches('}').count());
        assert!(ss.contains("socket = unix:///tmp/x/charon.vici"));
        assert!(ss.contains("kernel-libipsec! kernel-netlink"));
    }

    #[test]
    fn unsafe_values_and_duplicates_are_refused() {
        let mut c = CharonConfig::site_to_site(Side::Cloud, psks());
        c.tunnels[0].remote_id = Some("x }\nsecrets {".into());
        assert!(swanctl_conf(&c).is_err());
        let mut c = CharonConfig::site_to_site(Side::Cloud, psks());
        c.tunnels[1].reqid = 1;
        assert!(swanctl_conf(&c).is_err());
        let mut c = CharonConfig::site_to_site(Side::Cloud, psks());
        c.tunnels[1].psk = Psk::new(Vec::new());
        assert!(swanctl_conf(&c).is_err());
    }
}
