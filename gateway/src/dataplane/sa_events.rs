//! SA events handed from the worker threads to the control plane: lifetime limits (soft
//! or hard byte/packet/sequence-number limits), on which it rekeys the CHILD SA, and ESP
//! from a new source (the peer's NAT mapping changed), which it may follow. Events are
//! rare (at most one soft and one hard limit per SA direction; new sources at most once
//! a second per worker), so a short locked queue and a wake-up are enough; the packet
//! path never allocates for them beyond the queue's capacity.

use esp::LifetimeEvent;
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;
use tokio::sync::Notify;

/// Events kept at most until the control plane drains them; beyond, they are counted and
/// dropped (the IKE time lifetime still rekeys those SAs).
const CAPACITY: usize = 256;

/// Something the dataplane saw of the SA with this SPI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SaEvent {
    pub spi: u32,
    /// The SPI is of an outbound SA (else of an inbound one).
    pub outbound: bool,
    pub event: SaEventKind,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SaEventKind {
    /// The SA reached a lifetime limit.
    Lifetime(LifetimeEvent),
    /// Authenticated ESP of this inbound SA came from this address, not from where its
    /// tunnel sends ESP.
    NewSource(SocketAddr),
}

#[derive(Debug)]
pub struct SaEvents {
    queue: Mutex<VecDeque<SaEvent>>,
    wake: Notify,
    /// Events reported by the workers, and those dropped because the queue was full.
    pub reported: AtomicU64,
    pub dropped: AtomicU64,
}

impl Default for SaEvents {
    fn default() -> Self {
        SaEvents {
            queue: Mutex::new(VecDeque::with_capacity(CAPACITY)),
            wake: Notify::new(),
            reported: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
        }
    }
}

impl SaEvents {
    /// Called by a worker thread.
    pub fn report(&self, ev: SaEvent) {
        self.reported.fetch_add(1, Ordering::Relaxed);
        // A poisoned lock only means another worker panicked mid-push; the queue is intact.
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        if q.len() >= CAPACITY {
            self.dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        q.push_back(ev);
        drop(q);
        self.wake.notify_one();
    }

    /// Completes when events may be waiting (a wake-up is never lost: it is stored if
    /// nobody waits yet).
    pub async fn ready(&self) {
        self.wake.notified().await;
    }

    /// Takes the waiting events, oldest first.
    pub fn take(&self) -> Vec<SaEvent> {
        let mut q = self.queue.lock().unwrap_or_else(|p| p.into_inner());
        q.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use esp::LimitKind;
    use std::sync::Arc;

    fn ev(spi: u32) -> SaEvent {
        SaEvent {
            spi,
            outbound: spi & 1 == 0,
            event: SaEventKind::Lifetime(LifetimeEvent::Soft(LimitKind::Bytes)),
        }
    }

    #[tokio::test]
    async fn events_from_workers_wake_the_control_plane_in_order() {
        let events = Arc::new(SaEvents::default());
        let e = events.clone();
        std::thread::spawn(move || {
            e.report(ev(1));
            e.report(ev(2));
        })
        .join()
        .unwrap();
        // The wake-up was stored although nobody was waiting.
        tokio::time::timeout(std::time::Duration::from_secs(5), events.ready())
            .await
            .expect("woken");
        assert_eq!(events.take(), vec![ev(1), ev(2)]);
        assert!(events.take().is_empty());
        assert_eq!(events.reported.load(Ordering::Relaxed), 2);
    }

    #[test]
    fn a_full_queue_counts_and_drops() {
        let events = SaEvents::default();
        for spi in 0..CAPACITY as u32 + 3 {
            events.report(ev(spi));
        }
        assert_eq!(events.dropped.load(Ordering::Relaxed), 3);
        let got = events.take();
        assert_eq!(got.len(), CAPACITY);
        assert_eq!(got.first(), Some(&ev(0)));
    }
}
