//! The packet path: worker threads moving packets between the TUN device and the underlay
//! UDP sockets. Control-plane state reaches it only through lock-free snapshots (the
//! routing table, each tunnel's outbound SA slot) and the shared inbound `SaTable`.
//!
//! Workers: one per TUN queue (read, split super-packets, encrypt, send in GSO runs) and
//! one per underlay socket (receive in batches, decrypt, coalesce TCP segments in place and
//! write super-packets to the TUN device). With N workers the TUN device has N queues and
//! each local address N `SO_REUSEPORT` sockets on 4500, so the kernel spreads flows over
//! cores; nothing on the hot path takes a lock shared by all of them (sequence numbers and replay windows are
//! atomics, see `esp`).

pub mod counters;
mod failure;
pub mod gro;
mod ike_queue;
mod inbound;
mod outbound;
mod parked;
mod policy;
mod sa_events;
mod sockets;
mod sources;
mod strangers;
mod tunnel;
mod udp_io;
mod wake;

pub use counters::{Counters, CountersSnapshot};
pub use failure::Failure;
pub use ike_queue::{ike_queue, is_init_request, IkeInbox, IkeQueue};
pub use policy::{is_any as selectors_cover_all, InboundPolicy};
pub use sa_events::{SaEvent, SaEventKind, SaEvents};
pub use sockets::{IkeDatagram, UnderlaySockets};
pub use strangers::KnownPeers;
pub use tunnel::{Selected, TunnelPath};

use crate::routing::RoutingTable;
use crate::sys::Tun;
use esp::SaTable;
use std::sync::atomic::{AtomicBool, AtomicU16, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use wake::StopEvent;

/// Everything the workers share.
pub struct Shared {
    pub tun: Tun,
    pub sockets: UnderlaySockets,
    pub sas: SaTable,
    /// Traffic selectors of the narrow inbound SAs (RFC 4301 inbound check).
    pub policy: InboundPolicy,
    pub routing: RoutingTable,
    /// Indexed by `TunnelId`.
    pub tunnels: Vec<Arc<TunnelPath>>,
    pub counters: Counters,
    /// Soft/hard SA lifetime events for the control plane.
    pub sa_events: SaEvents,
    /// Set when the dataplane cannot go on; the daemon then stops.
    pub failure: Failure,
    /// Whose IKE goes to the control plane; the rest is the workers' to drop.
    pub known_peers: KnownPeers,
    stopped: AtomicBool,
    /// The largest TUN MTU a worker has seen: one that found it raised tells the others,
    /// so they regrow their buffers before a larger packet reaches them too.
    tun_mtu: AtomicU16,
    /// Wakes workers waiting for input when the dataplane stops.
    stop: StopEvent,
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
    ) -> std::io::Result<Self> {
        Ok(Shared {
            tun,
            sockets,
            sas: SaTable::new(),
            policy: InboundPolicy::default(),
            routing,
            tunnels,
            counters: Counters::default(),
            sa_events: SaEvents::default(),
            failure: Failure::default(),
            known_peers: KnownPeers::default(),
            stopped: AtomicBool::new(false),
            tun_mtu: AtomicU16::new(0),
            stop: StopEvent::new()?,
        })
    }

    fn stopped(&self) -> bool {
        self.stopped.load(Ordering::Relaxed)
    }

    /// The packet path of the tunnel an SA belongs to (its `owner`).
    fn tunnel_of(&self, owner: u32) -> Option<&TunnelPath> {
        let i = usize::try_from(owner).ok()?;
        self.tunnels.get(i).map(|t| &**t)
    }

    /// Takes inbound SA `spi` out of the packet path, with its traffic selectors.
    pub fn remove_inbound(&self, spi: u32) {
        self.sas.remove(spi);
        self.policy.remove(spi);
    }
}

/// The running worker threads; `stop` ends them.
#[derive(Debug)]
pub struct Workers {
    shared: Arc<Shared>,
    threads: Vec<JoinHandle<()>>,
}

impl Workers {
    /// One thread per TUN queue; one thread per underlay socket.
    /// IKE datagrams go to `ike` for the control plane.
    pub fn start(shared: Arc<Shared>, ike: IkeQueue) -> std::io::Result<Workers> {
        let mut threads = Vec::new();
        for queue in 0..shared.tun.queues() {
            let s = shared.clone();
            threads.push(
                std::thread::Builder::new()
                    .name(format!("vpngw-tun{queue}"))
                    .spawn(move || outbound::run(&s, queue))?,
            );
        }
        for index in 0..shared.sockets.len() {
            let (s, tx) = (shared.clone(), ike.clone());
            threads.push(
                std::thread::Builder::new()
                    .name(format!("vpngw-udp{index}"))
                    .spawn(move || inbound::run(&s, index, &tx))?,
            );
        }
        Ok(Workers { shared, threads })
    }

    pub fn stop(self) {
        self.shared.stopped.store(true, Ordering::Relaxed);
        if let Err(e) = self.shared.stop.trigger() {
            tracing::warn!(error = %e, "waking the dataplane workers failed");
        }
        for t in self.threads {
            let _ = t.join();
        }
    }
}
