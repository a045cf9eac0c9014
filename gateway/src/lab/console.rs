//! What the customer device of `vpngw lab cloud` must be configured with, as a cloud
//! console's downloadable configuration or as a strongSwan swanctl.conf snippet.

use std::fmt::Write as _;
use std::net::Ipv4Addr;

use super::ConsoleFormat;

#[derive(Debug, Clone)]
pub struct TunnelSettings {
    pub name: String,
    pub cloud_public: Ipv4Addr,
    pub customer_public: Ipv4Addr,
    pub psk: String,
    pub cloud_inner: Ipv4Addr,
    pub customer_inner: Ipv4Addr,
}

#[derive(Debug, Clone)]
pub struct ConnectionPlan {
    pub name: String,
    pub tunnels: Vec<TunnelSettings>,
}

/// Everything `lab cloud` sets up, in the terms the customer needs.
#[derive(Debug, Clone)]
pub struct CloudPlan {
    pub connections: Vec<ConnectionPlan>,
    pub ike_proposals: String,
    pub esp_proposals: String,
    /// (soft = rekey, hard) lifetimes.
    pub ike_lifetime: (&'static str, &'static str),
    pub child_lifetime: (&'static str, &'static str),
    /// (interval, timeout, action).
    pub dpd: (&'static str, &'static str, &'static str),
    pub cloud_initiates: bool,
    pub cloud_asn: u32,
    pub customer_asn: u32,
    pub vpc_prefix: String,
    pub mtu: u16,
    /// `None`: the root namespace.
    pub attach: Option<String>,
    pub ifname: String,
    pub underlay_cloud: Ipv4Addr,
    pub underlay_customer: Ipv4Addr,
    pub cloud_public_prefix: String,
}

pub fn render(plan: &CloudPlan, format: ConsoleFormat) -> String {
    match format {
        ConsoleFormat::Console => console(plan),
        ConsoleFormat::Swanctl => swanctl(plan),
    }
}

fn field(out: &mut String, label: &str, value: impl std::fmt::Display) {
    // Dotted leaders like a console download; " : " separates label and value.
    let _ = writeln!(out, "  {:.<37} : {value}", format!("{label} "));
}

fn console(p: &CloudPlan) -> String {
    let mut out = String::new();
    let side = p.attach.as_deref().map_or_else(
        || "the root namespace".to_owned(),
        |ns| format!("namespace {ns}"),
    );
    let _ = writeln!(
        out,
        "\n# Customer gateway configuration for the vpngw lab cloud endpoint\n\
         # {} VPN connection(s), two tunnels each. Cloud border gateway ASN {}.\n\
         #\n\
         # Underlay: interface {} in {side} has {}/24; the cloud side of the veth is {}.\n\
         # The cloud endpoints ({}) are routed via {} there.\n\
         # Traffic selectors 0.0.0.0/0 <-> 0.0.0.0/0 (route-based); UDP 500/4500, NAT-T.\n\
         # The cloud sends to your prefixes over the tunnel with the shortest AS path to\n\
         # them (tunnel 1 when equal): for active/standby, prepend your ASN on the standby\n\
         # tunnel's advertisements and send over the other one.",
        p.connections.len(),
        p.cloud_asn,
        p.ifname,
        p.underlay_customer,
        p.underlay_cloud,
        p.cloud_public_prefix,
        p.underlay_cloud,
    );
    for c in &p.connections {
        let _ = writeln!(out, "\n## VPN connection {}", c.name);
        for (j, t) in c.tunnels.iter().enumerate() {
            let _ = writeln!(out, "\n### Tunnel {} ({})", j + 1, t.name);
            field(&mut out, "Customer gateway address", t.customer_public);
            field(
                &mut out,
                "Cloud endpoint (IKE peer) address",
                t.cloud_public,
            );
            field(&mut out, "Pre-shared key", &t.psk);
            field(&mut out, "IKE version", "IKEv2");
            field(&mut out, "IKE proposals", &p.ike_proposals);
            field(&mut out, "ESP proposals", &p.esp_proposals);
            field(
                &mut out,
                "IKE SA lifetime",
                format!(
                    "{} (cloud rekeys at {})",
                    p.ike_lifetime.1, p.ike_lifetime.0
                ),
            );
            field(
                &mut out,
                "Child SA lifetime",
                format!(
                    "{} (cloud rekeys at {})",
                    p.child_lifetime.1, p.child_lifetime.0
                ),
            );
            field(
                &mut out,
                "Dead peer detection",
                format!(
                    "interval {}, timeout {}, action {}",
                    p.dpd.0, p.dpd.1, p.dpd.2
                ),
            );
            field(
                &mut out,
                "Initiator",
                if p.cloud_initiates {
                    "cloud (the customer device responds)"
                } else {
                    "customer device (the cloud waits)"
                },
            );
            field(
                &mut out,
                "Inner address, customer side",
                format!("{}/30", t.customer_inner),
            );
            field(
                &mut out,
                "Inner address, cloud side",
                format!("{}/30", t.cloud_inner),
            );
            field(
                &mut out,
                "MTU",
                format!("{} (clamp TCP MSS to {})", p.mtu, p.mtu - 40),
            );
            field(&mut out, "BGP customer ASN", p.customer_asn);
            field(&mut out, "BGP cloud ASN", p.cloud_asn);
            field(&mut out, "BGP neighbour address", t.cloud_inner);
            field(
                &mut out,
                "BGP prefixes advertised by the cloud",
                &p.vpc_prefix,
            );
        }
    }
    out
}

fn swanctl(p: &CloudPlan) -> String {
    let mut out = String::from(
        "\n# swanctl.conf for the customer side of the vpngw lab cloud endpoint.\n\
         # Route-based: add the inner addresses and routes to your IPsec interface (e.g.\n\
         # an XFRM interface with if_id_in/if_id_out, or kernel-libipsec's ipsec0) yourself.\n\
         connections {\n",
    );
    let start = if p.cloud_initiates { "none" } else { "start" };
    for c in &p.connections {
        for t in &c.tunnels {
            let _ = write!(
                out,
                "    {name} {{\n        version = 2\n        local_addrs = {lp}\n        remote_addrs = {rp}\n        \
                 encap = yes\n        mobike = no\n        proposals = {ike}\n        rekey_time = {ikerekey}\n        \
                 dpd_delay = {dpd}\n        local {{\n            auth = psk\n            id = {lp}\n        }}\n        \
                 remote {{\n            auth = psk\n            id = {rp}\n        }}\n        children {{\n            \
                 {name} {{\n                local_ts = 0.0.0.0/0\n                remote_ts = 0.0.0.0/0\n                \
                 esp_proposals = {esp}\n                rekey_time = {childrekey}\n                \
                 start_action = {start}\n                dpd_action = restart\n            }}\n        }}\n    }}\n",
                name = t.name,
                lp = t.customer_public,
                rp = t.cloud_public,
                ike = p.ike_proposals,
                esp = p.esp_proposals,
                ikerekey = p.ike_lifetime.0,
                childrekey = p.child_lifetime.0,
                dpd = p.dpd.0,
            );
        }
    }
    out.push_str("}\n\nsecrets {\n");
    for c in &p.connections {
        for t in &c.tunnels {
            let hex: String = t.psk.bytes().map(|b| format!("{b:02x}")).collect();
            let _ = write!(
                out,
                "    ike-{name} {{\n        id-1 = {lp}\n        id-2 = {rp}\n        secret = 0x{hex}\n    }}\n",
                name = t.name,
                lp = t.customer_public,
                rp = t.cloud_public,
            );
        }
    }
    out.push_str("}\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> CloudPlan {
        CloudPlan {
            connections: vec![ConnectionPlan {
                name: "conn1".into(),
                tunnels: vec![TunnelSettings {
                    name: "conn1-tun1".into(),
                    cloud_public: Ipv4Addr::new(203, 0, 113, 1),
                    customer_public: Ipv4Addr::new(198, 18, 0, 2),
                    psk: "secret-key-1".into(),
                    cloud_inner: Ipv4Addr::new(169, 254, 10, 1),
                    customer_inner: Ipv4Addr::new(169, 254, 10, 2),
                }],
            }],
            ike_proposals: "aes128gcm16-prfsha256-modp2048".into(),
            esp_proposals: "aes128gcm16-modp2048".into(),
            ike_lifetime: ("21h", "24h"),
            child_lifetime: ("50m", "1h"),
            dpd: ("10s", "60s", "restart"),
            cloud_initiates: true,
            cloud_asn: 65000,
            customer_asn: 65010,
            vpc_prefix: "10.20.0.0/24".into(),
            mtu: 1400,
            attach: None,
            ifname: "vlab1".into(),
            underlay_cloud: Ipv4Addr::new(198, 18, 0, 1),
            underlay_customer: Ipv4Addr::new(198, 18, 0, 2),
            cloud_public_prefix: "203.0.113.0/24".into(),
        }
    }

    fn value<'a>(text: &'a str, label: &str) -> Option<&'a str> {
        text.lines()
            .find(|l| l.trim_start().starts_with(label))
            .and_then(|l| l.split_once(" : "))
            .map(|(_, v)| v)
    }

    #[test]
    fn console_lists_every_setting_the_device_needs() {
        let text = render(&plan(), ConsoleFormat::Console);
        assert_eq!(value(&text, "Pre-shared key"), Some("secret-key-1"));
        assert_eq!(
            value(&text, "Cloud endpoint (IKE peer) address"),
            Some("203.0.113.1")
        );
        assert_eq!(
            value(&text, "Inner address, customer side"),
            Some("169.254.10.2/30")
        );
        assert_eq!(value(&text, "BGP cloud ASN"), Some("65000"));
        assert_eq!(value(&text, "BGP neighbour address"), Some("169.254.10.1"));
        assert!(text.contains("### Tunnel 1 (conn1-tun1)"), "{text}");
    }

    #[test]
    fn swanctl_snippet_has_hex_secret_and_responder_start_action() {
        let text = render(&plan(), ConsoleFormat::Swanctl);
        assert!(
            text.contains("secret = 0x7365637265742d6b65792d31"),
            "{text}"
        );
        assert!(text.contains("remote_addrs = 203.0.113.1"), "{text}");
        assert!(text.contains("start_action = none"), "{text}");
        assert_eq!(text.matches('{').count(), text.matches('}').count());
    }
}
