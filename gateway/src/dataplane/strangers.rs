//! IKE from addresses no tunnel has, handled where it arrives: the UDP worker drops it
//! (or answers a protected request with INVALID_IKE_SPI, RFC 7296 2.21.4, within a
//! budget), so a flood from strangers costs a lookup per datagram in the workers and
//! nothing in the control plane, which stays free for the tunnels' own IKE.

use super::counters::bump;
use super::Shared;
use arc_swap::ArcSwap;
use ike::sa::unknown_spi::{self, InvalidSpiBudget};
use std::collections::HashSet;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Instant;

/// The (local, peer) address pairs of the configured tunnels, as the control plane
/// matches IKE to tunnels; replaced on reload.
#[derive(Debug, Default)]
pub struct KnownPeers {
    pairs: ArcSwap<HashSet<(IpAddr, IpAddr)>>,
    /// INVALID_IKE_SPI answers to strangers: one budget for all workers.
    budget: Mutex<InvalidSpiBudget>,
}

impl KnownPeers {
    /// Makes `pairs` the addresses whose IKE reaches the control plane.
    pub fn publish(&self, pairs: impl IntoIterator<Item = (IpAddr, IpAddr)>) {
        self.pairs.store(Arc::new(pairs.into_iter().collect()));
    }

    pub fn knows(&self, local: IpAddr, remote: IpAddr) -> bool {
        self.pairs.load().contains(&(local, remote))
    }

    /// Whether an INVALID_IKE_SPI answer may go now.
    fn take_answer(&self, now: Instant) -> bool {
        // A poisoned lock only means a worker panicked mid-`take`: the budget is still valid.
        let mut budget = self.budget.lock().unwrap_or_else(|e| e.into_inner());
        budget.take(now)
    }
}

/// Counts the IKE datagram `bytes` from the stranger `remote` and answers it if it is a
/// protected request and the budget allows.
pub fn answer(shared: &Shared, local: SocketAddr, remote: SocketAddr, bytes: &[u8]) {
    let c = &shared.counters;
    bump(&c.ike_unknown_peer);
    let Some(reply) = unknown_spi::reply_to_datagram(local, bytes) else {
        return;
    };
    if !shared.known_peers.take_answer(Instant::now()) {
        return;
    }
    match shared.sockets.send(local, remote, &reply) {
        Ok(_) => bump(&c.ike_unknown_peer_invalid_spi),
        Err(e) => tracing::debug!(%remote, error = %e, "INVALID_IKE_SPI send failed"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::Ipv4Addr;

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    #[test]
    fn knows_only_the_published_pairs_and_follows_a_reload() {
        let k = KnownPeers::default();
        assert!(!k.knows(ip(1), ip(2)), "nothing before the first publish");
        k.publish([(ip(1), ip(2)), (ip(3), ip(2))]);
        assert!(k.knows(ip(1), ip(2)) && k.knows(ip(3), ip(2)));
        assert!(
            !k.knows(ip(2), ip(1)),
            "local and peer are not interchangeable"
        );
        assert!(!k.knows(ip(1), ip(9)));
        k.publish([(ip(1), ip(9))]);
        assert!(k.knows(ip(1), ip(9)) && !k.knows(ip(1), ip(2)));
    }

    #[test]
    fn the_answer_budget_is_shared_and_refills_each_second() {
        let k = KnownPeers::default();
        let t0 = Instant::now();
        let given = (0..100).filter(|_| k.take_answer(t0)).count();
        assert_eq!(given, unknown_spi::INVALID_SPI_PER_SEC as usize);
        assert!(k.take_answer(t0 + std::time::Duration::from_millis(1001)));
    }
}
