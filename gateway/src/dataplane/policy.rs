//! The inbound policy check of RFC 4301 (5.2): a decrypted packet must lie inside the
//! traffic selectors of the CHILD SA it arrived on, else a peer could inject traffic for
//! networks it was never granted.
//!
//! Only SAs narrower than any/any have an entry, so with the usual 0.0.0.0/0 + ::/0
//! tunnels the check is one atomic load of an empty slot.

use super::tunnel::Flow;
use arc_swap::ArcSwapOption;
use esp::SpiHasher;
use ike::wire::TrafficSelector;
use std::collections::HashMap;
use std::hash::BuildHasherDefault;
use std::sync::Arc;

#[derive(Debug, Clone)]
struct Selectors {
    local: Vec<TrafficSelector>,
    remote: Vec<TrafficSelector>,
}

type Map = HashMap<u32, Arc<Selectors>, BuildHasherDefault<SpiHasher>>;

/// Traffic selectors of the inbound SAs that do not cover everything, by SPI.
#[derive(Debug, Default)]
pub struct InboundPolicy {
    narrow: ArcSwapOption<Map>,
}

impl InboundPolicy {
    /// Records the selectors of inbound SA `spi` (ours = `local`, the peer's = `remote`).
    pub fn set(&self, spi: u32, local: &[TrafficSelector], remote: &[TrafficSelector]) {
        if is_any(local) && is_any(remote) {
            return self.remove(spi);
        }
        let sel = Arc::new(Selectors {
            local: local.to_vec(),
            remote: remote.to_vec(),
        });
        self.narrow.rcu(|cur| {
            let mut m = cur.as_deref().cloned().unwrap_or_default();
            m.insert(spi, sel.clone());
            Some(Arc::new(m))
        });
    }

    pub fn remove(&self, spi: u32) {
        if self
            .narrow
            .load()
            .as_deref()
            .is_none_or(|m| !m.contains_key(&spi))
        {
            return;
        }
        self.narrow.rcu(|cur| {
            let mut m = cur.as_deref().cloned().unwrap_or_default();
            m.remove(&spi);
            (!m.is_empty()).then(|| Arc::new(m))
        });
    }

    /// Whether the decrypted packet `inner` may have come through inbound SA `spi`:
    /// its source inside the peer's selectors, its destination inside ours.
    pub fn allows(&self, spi: u32, inner: &[u8]) -> bool {
        let map = self.narrow.load();
        let Some(sel) = map.as_deref().and_then(|m| m.get(&spi)) else {
            return true;
        };
        Flow::of(inner).is_some_and(|f| f.covered(&sel.remote, &sel.local))
    }
}

/// Whether the selectors cover every address of both families, all protocols and ports.
pub fn is_any(list: &[TrafficSelector]) -> bool {
    [false, true]
        .iter()
        .all(|&v6| list.contains(&TrafficSelector::any(v6)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ts(a: &str, b: &str) -> TrafficSelector {
        TrafficSelector {
            ip_proto: 0,
            start_port: 0,
            end_port: 65535,
            start: a.parse().unwrap(),
            end: b.parse().unwrap(),
        }
    }

    fn v4(src: [u8; 4], dst: [u8; 4]) -> Vec<u8> {
        let mut p = vec![0x45, 0, 0, 28, 0, 0, 0, 0, 64, 17, 0, 0];
        p.extend_from_slice(&src);
        p.extend_from_slice(&dst);
        p.extend_from_slice(&[0x13, 0x88, 0, 53, 0, 8, 0, 0]);
        p
    }

    #[test]
    fn packets_outside_a_narrow_sa_are_refused() {
        let pol = InboundPolicy::default();
        let ours = [ts("10.1.0.0", "10.1.255.255")];
        let theirs = [ts("10.2.0.0", "10.2.0.255")];
        pol.set(7, &ours, &theirs);
        assert!(pol.allows(7, &v4([10, 2, 0, 9], [10, 1, 3, 4])));
        assert!(
            !pol.allows(7, &v4([10, 1, 3, 4], [10, 2, 0, 9])),
            "the reverse direction is outbound traffic"
        );
        assert!(
            !pol.allows(7, &v4([10, 2, 1, 9], [10, 1, 3, 4])),
            "spoofed source"
        );
        assert!(
            !pol.allows(7, &v4([10, 2, 0, 9], [10, 3, 0, 1])),
            "foreign destination"
        );
        assert!(!pol.allows(7, &[0x45, 0, 0]), "not a parsable IP packet");
        // Other SAs are not affected; a removed entry no longer checks.
        assert!(pol.allows(8, &v4([10, 9, 9, 9], [10, 9, 9, 9])));
        pol.remove(7);
        assert!(pol.allows(7, &v4([10, 9, 9, 9], [10, 9, 9, 9])));
        assert!(pol.narrow.load().is_none(), "empty again: the fast path");
    }

    #[test]
    fn any_any_sas_are_not_checked_but_one_family_only_is() {
        let pol = InboundPolicy::default();
        let any = [TrafficSelector::any(false), TrafficSelector::any(true)];
        pol.set(1, &any, &any);
        assert!(pol.narrow.load().is_none());
        let v4_only = [TrafficSelector::any(false)];
        pol.set(2, &v4_only, &v4_only);
        assert!(pol.allows(2, &v4([192, 0, 2, 1], [198, 51, 100, 1])));
        let mut v6 = vec![0x60, 0, 0, 0, 0, 8, 17, 64];
        v6.extend_from_slice(&[0x20; 32]);
        v6.extend_from_slice(&[0; 8]);
        assert!(!pol.allows(2, &v6), "an IPv6 packet in an IPv4-only SA");
        // A rekey to any/any drops the entry.
        pol.set(2, &any, &any);
        assert!(pol.narrow.load().is_none());
    }
}
