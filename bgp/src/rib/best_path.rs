//! Best-path selection between the candidates for one prefix.
//!
//! Deliberately simple, for eBGP sessions to one provider (RFC 4271 section 9.1.2.2, with
//! LOCAL_PREF not used because eBGP peers may not set it):
//! 0. a route without GRACEFUL_SHUTDOWN (RFC 8326: as if the tagged one had LOCAL_PREF
//!    0, the lowest), so that traffic leaves a path its peer is about to take down,
//! 1. shortest AS_PATH (an AS_SET counts as one),
//! 2. lowest ORIGIN (IGP < EGP < INCOMPLETE),
//! 3. lowest MED, compared between all candidates whatever their neighbouring AS
//!    ("always-compare-med"); a missing MED counts as 0,
//! 4. lowest local rank of the session (local policy, 0 by default: the gateway ranks
//!    an active-standby connection's tunnels by their order),
//! 5. lowest peer BGP identifier,
//! 6. lowest peer address.

use std::cmp::Ordering;
use std::net::Ipv4Addr;

use crate::wire::{Origin, PathAttributes};

/// What the tie-breaks need to know about the peer a route came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PeerInfo {
    pub router_id: Ipv4Addr,
    pub address: Ipv4Addr,
}

/// One candidate route: its attributes, the session's local rank and its peer.
pub type Candidate<'a> = (&'a PathAttributes, u16, &'a PeerInfo);

/// The ordering key: smaller is better.
fn key((attrs, rank, peer): Candidate<'_>) -> (bool, usize, Origin, u32, u16, Ipv4Addr, Ipv4Addr) {
    (
        attrs.graceful_shutdown(),
        attrs.as_path.as_ref().map_or(0, |p| p.path_len()),
        attrs.origin.unwrap_or(Origin::Incomplete),
        attrs.med.unwrap_or(0),
        rank,
        peer.router_id,
        peer.address,
    )
}

/// Compares two candidates; `Ordering::Less` means `a` is preferred.
pub fn compare(a: Candidate<'_>, b: Candidate<'_>) -> Ordering {
    key(a).cmp(&key(b))
}

/// Whether two routes may share a prefix's traffic (multipath, ECMP): equal up to the
/// tie-breaks, and, as routers require for eBGP multipath unless told otherwise, the
/// same AS_PATH (the same neighbouring AS and the same way beyond it).
pub fn equal_cost(a: &PathAttributes, b: &PathAttributes) -> bool {
    a.graceful_shutdown() == b.graceful_shutdown()
        && a.as_path == b.as_path
        && a.origin.unwrap_or(Origin::Incomplete) == b.origin.unwrap_or(Origin::Incomplete)
        && a.med.unwrap_or(0) == b.med.unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::AsPath;

    fn attrs(path: Vec<u32>, origin: Origin, med: Option<u32>) -> PathAttributes {
        PathAttributes {
            origin: Some(origin),
            as_path: Some(AsPath::sequence(path)),
            med,
            ..Default::default()
        }
    }

    fn peer(id: u8, addr: u8) -> PeerInfo {
        PeerInfo {
            router_id: Ipv4Addr::new(10, 0, 0, id),
            address: Ipv4Addr::new(169, 254, 0, addr),
        }
    }

    #[test]
    fn each_step_decides() {
        let p1 = peer(1, 1);
        let p2 = peer(2, 2);
        // 0. a route its peer is shutting down gracefully loses to any other.
        let mut leaving = attrs(vec![65000], Origin::Igp, Some(0));
        leaving.communities = vec![65000 << 16 | 7, crate::wire::GRACEFUL_SHUTDOWN];
        let longer = attrs(vec![65000, 65010, 65020], Origin::Incomplete, Some(100));
        assert_eq!(
            compare((&longer, 1, &p2), (&leaving, 0, &p1)),
            Ordering::Less
        );
        // 1. shorter AS path wins even against worse origin, MED and rank.
        let short = attrs(vec![65000], Origin::Incomplete, Some(100));
        let long = attrs(vec![65000, 65010], Origin::Igp, Some(0));
        assert_eq!(compare((&short, 1, &p2), (&long, 0, &p1)), Ordering::Less);
        // 2. origin.
        let igp = attrs(vec![65000], Origin::Igp, Some(100));
        let egp = attrs(vec![65000], Origin::Egp, Some(0));
        assert_eq!(compare((&igp, 1, &p2), (&egp, 0, &p1)), Ordering::Less);
        // 3. MED, missing counts as 0.
        let med5 = attrs(vec![65000], Origin::Igp, Some(5));
        let none = attrs(vec![65000], Origin::Igp, None);
        assert_eq!(compare((&none, 1, &p2), (&med5, 0, &p1)), Ordering::Less);
        // 4. local rank, before the peer's identity.
        assert_eq!(compare((&med5, 0, &p2), (&med5, 1, &p1)), Ordering::Less);
        // 5. router id.
        assert_eq!(compare((&med5, 0, &p1), (&med5, 0, &p2)), Ordering::Less);
        // 6. peer address.
        assert_eq!(
            compare((&med5, 0, &peer(1, 1)), (&med5, 0, &peer(1, 9))),
            Ordering::Less
        );
        assert_eq!(compare((&med5, 0, &p1), (&med5, 0, &p1)), Ordering::Equal);
    }

    #[test]
    fn equal_cost_needs_the_same_path_origin_and_med() {
        let base = attrs(vec![65000], Origin::Igp, None);
        let mut leaving = base.clone();
        leaving.communities = vec![crate::wire::GRACEFUL_SHUTDOWN];
        assert!(!equal_cost(&base, &leaving));
        let mut other = base.clone();
        other.communities = vec![65000 << 16 | 7];
        assert!(equal_cost(&base, &other));
        assert!(equal_cost(&base, &attrs(vec![65000], Origin::Igp, Some(0))));
        assert!(!equal_cost(&base, &attrs(vec![65001], Origin::Igp, None)));
        assert!(!equal_cost(&base, &attrs(vec![65000], Origin::Egp, None)));
        assert!(!equal_cost(
            &base,
            &attrs(vec![65000], Origin::Igp, Some(1))
        ));
    }
}
