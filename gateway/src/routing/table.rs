//! The published forwarding table: dataplane threads `load()` the current `Fib` lock-free;
//! the control plane `publish`es a new one after every change.

use super::fib::Fib;
use super::rib::Rib;
use arc_swap::{ArcSwap, Guard};
use std::sync::Arc;

#[derive(Debug)]
pub struct RoutingTable {
    current: ArcSwap<Fib>,
}

impl Default for RoutingTable {
    fn default() -> Self {
        Self::new()
    }
}

impl RoutingTable {
    /// Starts empty: nothing is routed until the first `publish`.
    pub fn new() -> Self {
        Self {
            current: ArcSwap::from_pointee(Fib::default()),
        }
    }

    /// The current snapshot; cheap, lock-free, and it stays valid while held even if a new
    /// snapshot is published meanwhile.
    pub fn load(&self) -> Guard<Arc<Fib>> {
        self.current.load()
    }

    /// Atomically replaces the snapshot.
    pub fn publish(&self, fib: Fib) {
        self.current.store(Arc::new(fib));
    }

    /// Builds a snapshot of `rib` and publishes it.
    pub fn publish_rib(&self, rib: &Rib) {
        self.publish(rib.build());
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::routing::{SelectionMode, TunnelId};

    #[test]
    fn readers_see_each_published_snapshot_while_holding_old_ones() {
        let table = RoutingTable::new();
        let dst = "10.99.1.1".parse().unwrap();
        assert_eq!(table.load().lookup(dst, 0), None);
        let mut rib = Rib::new();
        rib.add_tunnel(TunnelId(0), SelectionMode::ActiveStandby);
        rib.add_tunnel(TunnelId(1), SelectionMode::ActiveStandby);
        rib.set_tunnel_up(TunnelId(0), true).unwrap();
        rib.set_tunnel_up(TunnelId(1), true).unwrap();
        rib.add_static("10.99.0.0/16".parse().unwrap(), &[TunnelId(0), TunnelId(1)])
            .unwrap();
        table.publish_rib(&rib);
        let before = table.load();
        rib.set_tunnel_up(TunnelId(0), false).unwrap();
        table.publish_rib(&rib);
        assert_eq!(
            before.lookup(dst, 0),
            Some(TunnelId(0)),
            "old snapshot is immutable"
        );
        assert_eq!(table.load().lookup(dst, 0), Some(TunnelId(1)));
    }

    #[test]
    fn concurrent_readers_always_find_a_route_during_failover() {
        let table = Arc::new(RoutingTable::new());
        let mut rib = Rib::new();
        for t in 0..2 {
            rib.add_tunnel(TunnelId(t), SelectionMode::ActiveStandby);
        }
        rib.set_tunnel_up(TunnelId(0), true).unwrap();
        rib.add_static("0.0.0.0/0".parse().unwrap(), &[TunnelId(0), TunnelId(1)])
            .unwrap();
        table.publish_rib(&rib);
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let readers: Vec<_> = (0..2)
            .map(|_| {
                let (table, stop) = (table.clone(), stop.clone());
                std::thread::spawn(move || {
                    let mut n = 0u64;
                    loop {
                        // Make-before-break below: some tunnel is always UP.
                        assert!(table
                            .load()
                            .lookup("192.0.2.1".parse().unwrap(), 0)
                            .is_some());
                        n += 1;
                        if stop.load(std::sync::atomic::Ordering::Relaxed) {
                            break;
                        }
                    }
                    n
                })
            })
            .collect();
        for i in 0..2000 {
            let (on, off) = if i % 2 == 0 { (1, 0) } else { (0, 1) };
            rib.set_tunnel_up(TunnelId(on), true).unwrap();
            table.publish_rib(&rib);
            rib.set_tunnel_up(TunnelId(off), false).unwrap();
            table.publish_rib(&rib);
        }
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for r in readers {
            assert!(r.join().unwrap() > 0);
        }
    }
}
