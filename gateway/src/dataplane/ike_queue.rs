//! The IKE datagrams the UDP workers hand to the control plane. Two bounded queues: a
//! flood of IKE_SA_INIT requests (the cheapest thing to send us) fills only its own short
//! queue, and the control plane takes the other one first, so the IKE SAs that exist keep
//! their DPD, rekeys and DELETEs. A full queue drops the datagram and counts it: memory
//! stays bounded however fast datagrams come.

use super::counters::{bump, Counters};
use super::sockets::{IkeDatagram, NAT_T_PORT};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::mpsc::{self, error::TrySendError};

/// Datagrams of existing IKE SAs (and anything not an IKE_SA_INIT request) waiting.
pub const OTHER_CAPACITY: usize = 1024;
/// IKE_SA_INIT requests waiting. A flood's are answered or dropped in microseconds (a
/// cookie, or the tunnel's rate limit), but real ones cost a DH computation each, up to
/// milliseconds: room for every tunnel of a large config re-initiating at once (a peer
/// that lost its state), so those are not dropped and retried a second later.
pub const INIT_CAPACITY: usize = 256;
/// How often a sustained overflow is logged.
const WARN_EVERY: Duration = Duration::from_secs(10);

const IKE_SA_INIT: u8 = 34;
const FLAG_RESPONSE: u8 = 0x20;

/// Whether `bytes` (an IKE datagram, on 4500 with the non-ESP marker) is an IKE_SA_INIT request.
pub fn is_init_request(bytes: &[u8], port: u16) -> bool {
    let msg = if port == NAT_T_PORT {
        bytes.get(4..)
    } else {
        Some(bytes)
    };
    let (Some(&exchange), Some(&flags)) =
        (msg.and_then(|m| m.get(18)), msg.and_then(|m| m.get(19)))
    else {
        return false;
    };
    exchange == IKE_SA_INIT && flags & FLAG_RESPONSE == 0
}

/// The workers' end.
#[derive(Debug, Clone)]
pub struct IkeQueue {
    init: mpsc::Sender<IkeDatagram>,
    other: mpsc::Sender<IkeDatagram>,
    warned: Arc<Warned>,
}

/// The control plane's end.
#[derive(Debug)]
pub struct IkeInbox {
    init: mpsc::Receiver<IkeDatagram>,
    other: mpsc::Receiver<IkeDatagram>,
}

/// When an overflow was last logged, as milliseconds after `base` (0: never).
#[derive(Debug)]
struct Warned {
    base: Instant,
    at_ms: AtomicU64,
}

/// A connected pair of ends.
pub fn ike_queue() -> (IkeQueue, IkeInbox) {
    ike_queue_with(INIT_CAPACITY, OTHER_CAPACITY)
}

fn ike_queue_with(init: usize, other: usize) -> (IkeQueue, IkeInbox) {
    let (init_tx, init_rx) = mpsc::channel(init);
    let (other_tx, other_rx) = mpsc::channel(other);
    let warned = Arc::new(Warned {
        base: Instant::now(),
        at_ms: AtomicU64::new(0),
    });
    (
        IkeQueue {
            init: init_tx,
            other: other_tx,
            warned,
        },
        IkeInbox {
            init: init_rx,
            other: other_rx,
        },
    )
}

impl IkeQueue {
    /// Queues `dg` for the control plane, or drops and counts it when its queue is full.
    /// Never blocks: the caller is a dataplane worker.
    pub fn push(&self, dg: IkeDatagram, counters: &Counters) {
        let init = is_init_request(&dg.bytes, dg.local.port());
        let queue = if init { &self.init } else { &self.other };
        match queue.try_send(dg) {
            Ok(()) => {}
            Err(TrySendError::Full(dg)) => {
                bump(&counters.ike_dropped_busy);
                if init {
                    bump(&counters.ike_init_dropped_busy);
                }
                self.warn(&dg, init);
            }
            // The control plane has stopped: nothing to count.
            Err(TrySendError::Closed(_)) => {}
        }
    }

    /// Logs an overflow, at most once per `WARN_EVERY` over all workers.
    fn warn(&self, dg: &IkeDatagram, init: bool) {
        let w = &self.warned;
        let now_ms = u64::try_from(w.base.elapsed().as_millis())
            .unwrap_or(u64::MAX)
            .max(1);
        let last = w.at_ms.load(Ordering::Relaxed);
        let due = last == 0 || now_ms.saturating_sub(last) >= WARN_EVERY.as_millis() as u64;
        if due
            && w.at_ms
                .compare_exchange(last, now_ms, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(remote = %dg.remote, ike_sa_init = init, "IKE datagrams dropped: the control plane is behind (a flood?); see ike_dropped_busy in vpngw status");
        }
    }
}

impl IkeInbox {
    /// The next datagram, those of existing IKE SAs first; `None` once every worker is gone.
    pub async fn recv(&mut self) -> Option<IkeDatagram> {
        tokio::select! {
            biased;
            Some(dg) = self.other.recv() => Some(dg),
            Some(dg) = self.init.recv() => Some(dg),
            else => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    fn dg(exchange: u8, flags: u8, port: u16) -> IkeDatagram {
        let mut bytes = vec![0u8; 28];
        bytes[18] = exchange;
        bytes[19] = flags;
        if port == NAT_T_PORT {
            bytes.splice(0..0, [0u8; 4]);
        }
        IkeDatagram {
            local: SocketAddr::from(([192, 0, 2, 2], port)),
            remote: SocketAddr::from(([192, 0, 2, 1], port)),
            bytes,
        }
    }

    #[test]
    fn recognises_init_requests_on_both_ports() {
        assert!(is_init_request(&dg(34, 0x08, 500).bytes, 500));
        assert!(is_init_request(&dg(34, 0x08, 4500).bytes, 4500));
        assert!(
            !is_init_request(&dg(34, 0x20, 500).bytes, 500),
            "a response is not a request"
        );
        assert!(
            !is_init_request(&dg(37, 0, 500).bytes, 500),
            "INFORMATIONAL"
        );
        assert!(!is_init_request(&[0u8; 5], 500), "truncated");
    }

    #[tokio::test]
    async fn a_flood_of_init_requests_is_dropped_and_counted_and_leaves_room_for_the_rest() {
        let (q, mut inbox) = ike_queue_with(4, 8);
        let c = Counters::default();
        for _ in 0..100 {
            q.push(dg(34, 0x08, 500), &c);
        }
        for _ in 0..3 {
            q.push(dg(37, 0x08, 4500), &c);
        }
        let s = c.snapshot();
        assert_eq!((s.ike_dropped_busy, s.ike_init_dropped_busy), (96, 96));
        // The INFORMATIONAL requests come out first, then the four queued IKE_SA_INITs.
        let mut order = Vec::new();
        while let Ok(Some(d)) = tokio::time::timeout(Duration::from_millis(50), inbox.recv()).await
        {
            order.push(is_init_request(&d.bytes, d.local.port()));
        }
        assert_eq!(order, [false, false, false, true, true, true, true]);
    }

    #[tokio::test]
    async fn a_full_queue_of_other_datagrams_counts_them_too() {
        let (q, _inbox) = ike_queue_with(4, 2);
        let c = Counters::default();
        for _ in 0..5 {
            q.push(dg(37, 0, 500), &c);
        }
        let s = c.snapshot();
        assert_eq!((s.ike_dropped_busy, s.ike_init_dropped_busy), (3, 0));
    }

    #[tokio::test]
    async fn the_inbox_ends_when_every_worker_is_gone() {
        let (q, mut inbox) = ike_queue_with(4, 4);
        q.push(dg(34, 0x08, 500), &Counters::default());
        drop(q);
        assert!(inbox.recv().await.is_some());
        assert!(inbox.recv().await.is_none());
    }
}
