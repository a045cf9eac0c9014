//! A port-translating NAT router in a namespace (an enterprise edge, a home router):
//! nftables source NAT of the UDP leaving one interface, and its "reboot".
//!
//! The translated ports come from a range that never holds 500 or 4500, so a peer seen
//! at a translated port is unmistakably behind the NAT. A reboot loads a new range and
//! flushes the mappings (conntrack), so the same inside socket shows up from a new port,
//! as after a real NAT restart or an idle mapping dropped.

use std::net::Ipv4Addr;
use std::ops::RangeInclusive;

use crate::error::{HarnessError, Result};
use crate::netns::Netns;
use crate::tools::Tool;

/// Ports the NAT translates to when built.
pub const NAT_PORTS: RangeInclusive<u16> = 40000..=40999;
/// Ports after [`reboot_nat`] with the default of the site-to-site topology.
pub const NAT_PORTS_AFTER_REBOOT: RangeInclusive<u16> = 41000..=41999;

/// Replaces the ruleset of `ns` with source NAT of the UDP leaving `dev` to
/// `public`:`ports` (one nftables transaction: there is no moment without NAT).
pub fn translate_udp(
    ns: &Netns,
    dev: &str,
    public: Ipv4Addr,
    ports: &RangeInclusive<u16>,
) -> Result<()> {
    ns.run(&[Tool::Nft.path(), snat_rules(dev, public, ports)?.as_str()])
        .map(drop)
}

/// The nftables commands of [`translate_udp`].
fn snat_rules(dev: &str, public: Ipv4Addr, ports: &RangeInclusive<u16>) -> Result<String> {
    if ports.contains(&500) || ports.contains(&4500) || ports.is_empty() {
        return Err(HarnessError::Invalid(format!(
            "NAT port range {ports:?}: must be non-empty and hold neither 500 nor 4500"
        )));
    }
    Ok(format!(
        "flush ruleset; add table ip nat; \
         add chain ip nat post {{ type nat hook postrouting priority srcnat; policy accept; }}; \
         add rule ip nat post oifname \"{dev}\" meta l4proto udp snat to {public}:{}-{}",
        ports.start(),
        ports.end()
    ))
}

/// The NAT reboots: UDP leaving `dev` is translated to `ports` from now on, and every
/// existing mapping is forgotten.
pub fn reboot_nat(
    ns: &Netns,
    dev: &str,
    public: Ipv4Addr,
    ports: &RangeInclusive<u16>,
) -> Result<()> {
    translate_udp(ns, dev, public, ports)?;
    ns.run(&[Tool::Conntrack.path(), "-F"]).map(drop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_ranges_are_disjoint_and_avoid_the_ike_ports() {
        for r in [&NAT_PORTS, &NAT_PORTS_AFTER_REBOOT] {
            assert!(!r.contains(&500) && !r.contains(&4500));
        }
        assert!(NAT_PORTS.end() < NAT_PORTS_AFTER_REBOOT.start());
    }

    #[test]
    fn the_rules_translate_udp_leaving_the_device_and_refuse_the_ike_ports() {
        let public = Ipv4Addr::new(192, 0, 2, 2);
        let rules = snat_rules("out0", public, &NAT_PORTS).unwrap();
        assert!(rules.starts_with("flush ruleset;"), "{rules}");
        assert!(
            rules.ends_with("oifname \"out0\" meta l4proto udp snat to 192.0.2.2:40000-40999"),
            "{rules}"
        );
        #[allow(clippy::reversed_empty_ranges)] // an empty range must be refused
        let empty = 2..=1;
        for bad in [4000..=5000, 500..=500, empty] {
            assert!(snat_rules("out0", public, &bad).is_err(), "{bad:?}");
        }
    }
}
