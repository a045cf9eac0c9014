//! The packet path: worker threads moving packets between the TUN device and the underlay
//! UDP sockets. Control-plane state reaches it only through lock-free snapshots (the
//! routing table, each tunnel's outbound SA slot) and the shared inbound `SaTable`.

mod counters;
mod inbound;
mod outbound;
mod sa_events;
mod sockets;
mod tunnel;

pub use counters::{Counters, CountersSnapshot};
pub use sa_events::{SaEvent, SaEvents};
pub use sockets::{IkeDatagram, UnderlaySockets};
pub use tunnel::{Selected, TunnelPath};

use crate::routing::RoutingTable;
use crate::sys::Tun;
use esp::SaTable;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

/// How long a blocked worker waits before looking at the stop flag again.
const POLL: Duration = Duration::from_millis(200);

/// Everything the workers share.
pub struct Shared {
    pub tun: Tun,
    pub sockets: UnderlaySockets,
    pub sas: SaTable,
    pub routing: RoutingTable,
    /// Indexed by `TunnelId`.
    pub tunnels: Vec<Arc<TunnelPath>>,
    pub counters: Counters,
    /// Soft/hard SA lifetime events for the control plane.
    pub sa_events: SaEvents,
    stop: AtomicBool,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("tun", &self.tun)
            .field("sas", &self.sas.len())
            .field("tunnels", &self.tunnels)
            .finish_non_exhaustive()
    }
}

impl Shared {
    pub fn new(
        tun: Tun,
        sockets: UnderlaySockets,
        routing: RoutingTable,
        tunnels: Vec<Arc<TunnelPath>>,
    ) -> Self {
        Shared {
            tun,
            sockets,
            sas: SaTable::new(),
            routing,
            tunnels,
            counters: Counters::default(),
            sa_events: SaEvents::default(),
            stop: AtomicBool::new(false),
        }
    }

    fn stopped(&self) -> bool {
        self.stop.load(Ordering::Relaxed)
    }
}

/// The running worker threads; `stop` ends them.
#[derive(Debug)]
pub struct Workers {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    /// One thread reads the TUN device; one thread per underlay socket receives.
    /// IKE datagrams go to `ike_tx` for the control plane.
    pub fn start(
        shared: Arc<Shared>,
        ike_tx: tokio::sync::mpsc::UnboundedSender<IkeDatagram>,
    ) -> std::io::Result<Workers> {
        let mut threads = Vec::new();
        let s = shared.clone();
        threads.push(
            std::thread::Builder::new()
                .name("vpngw-tun".into())
                .spawn(move || outbound::run(&s))?,
        );
        for index in 0..shared.sockets.len() {
            let (s, tx) = (shared.clone(), ike_tx.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("vpngw-udp{index}"))
                    .spawn(move || inbound::run(&s, index, &tx))?,
            );
        }
        Ok(Workers { shared, threads })
    }

    pub fn stop(self) {
        self.shared.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            let _ = t.join();
        }
    }
}
