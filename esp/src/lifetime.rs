//! SA lifetimes: byte and packet counters against soft and hard limits, and
//! sequence-number exhaustion, surfaced once each as [`LifetimeEvent`]s.

use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};

/// Soft and hard limits of one SA direction; `None` means unlimited.
/// Bytes count inner (plaintext) packet bytes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Limits {
    pub soft_bytes: Option<u64>,
    pub hard_bytes: Option<u64>,
    pub soft_packets: Option<u64>,
    pub hard_packets: Option<u64>,
}

/// Which limit was reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LimitKind {
    Bytes,
    Packets,
    /// The outbound sequence number space (2^32-1, or 2^64-1 with ESN).
    SequenceNumber,
}

impl fmt::Display for LimitKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LimitKind::Bytes => "bytes",
            LimitKind::Packets => "packets",
            LimitKind::SequenceNumber => "sequence number",
        })
    }
}

/// Reported once per SA and kind, with the packet that crossed the limit.
/// At `Soft` the control plane starts a rekey; at `Hard` it must stop using the
/// SA (the packet that carries the event was still processed; later ones are
/// refused with `SaExpired`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LifetimeEvent {
    Soft(LimitKind),
    Hard(LimitKind),
}

/// Counters and limit state shared by the worker threads using one SA.
pub(crate) struct Lifetime {
    limits: Limits,
    packets: AtomicU64,
    bytes: AtomicU64,
    soft_fired: AtomicBool,
    /// 0 while usable, else the code of the hard limit that was reached.
    hard_kind: AtomicU8,
}

impl Lifetime {
    pub(crate) fn new(limits: Limits) -> Self {
        Lifetime {
            limits,
            packets: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            soft_fired: AtomicBool::new(false),
            hard_kind: AtomicU8::new(0),
        }
    }

    pub(crate) fn is_expired(&self) -> bool {
        self.expired_by().is_some()
    }

    /// The hard limit that expired the SA, if any.
    pub(crate) fn expired_by(&self) -> Option<LimitKind> {
        match self.hard_kind.load(Ordering::Relaxed) {
            1 => Some(LimitKind::Bytes),
            2 => Some(LimitKind::Packets),
            3 => Some(LimitKind::SequenceNumber),
            _ => None,
        }
    }

    pub(crate) fn packets(&self) -> u64 {
        self.packets.load(Ordering::Relaxed)
    }

    pub(crate) fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Counts one packet of `len` inner bytes; returns the event if this
    /// packet is the first to reach a limit.
    pub(crate) fn account(&self, len: usize) -> Option<LifetimeEvent> {
        let len = u64::try_from(len).unwrap_or(u64::MAX);
        let packets = self
            .packets
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        let bytes = self
            .bytes
            .fetch_add(len, Ordering::Relaxed)
            .saturating_add(len);
        let reached = |limit: Option<u64>, value: u64| limit.is_some_and(|l| value >= l);
        let hard = if reached(self.limits.hard_bytes, bytes) {
            Some(LimitKind::Bytes)
        } else if reached(self.limits.hard_packets, packets) {
            Some(LimitKind::Packets)
        } else {
            None
        };
        if let Some(kind) = hard {
            return self.fire_hard(kind);
        }
        let soft = if reached(self.limits.soft_bytes, bytes) {
            Some(LimitKind::Bytes)
        } else if reached(self.limits.soft_packets, packets) {
            Some(LimitKind::Packets)
        } else {
            None
        };
        soft.and_then(|kind| self.fire_soft(kind))
    }

    /// Marks the SA hard-expired; the event only for the first caller.
    pub(crate) fn fire_hard(&self, kind: LimitKind) -> Option<LifetimeEvent> {
        let code = match kind {
            LimitKind::Bytes => 1,
            LimitKind::Packets => 2,
            LimitKind::SequenceNumber => 3,
        };
        self.hard_kind
            .compare_exchange(0, code, Ordering::Relaxed, Ordering::Relaxed)
            .ok()
            .map(|_| LifetimeEvent::Hard(kind))
    }

    /// The soft event, only for the first caller.
    pub(crate) fn fire_soft(&self, kind: LimitKind) -> Option<LifetimeEvent> {
        (!self.soft_fired.swap(true, Ordering::Relaxed)).then_some(LifetimeEvent::Soft(kind))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn soft_then_hard_once_each() {
        let lt = Lifetime::new(Limits {
            soft_packets: Some(2),
            hard_packets: Some(4),
            ..Limits::default()
        });
        assert_eq!(lt.account(10), None);
        assert_eq!(
            lt.account(10),
            Some(LifetimeEvent::Soft(LimitKind::Packets))
        );
        assert_eq!(lt.account(10), None);
        assert!(!lt.is_expired());
        assert_eq!(
            lt.account(10),
            Some(LifetimeEvent::Hard(LimitKind::Packets))
        );
        assert!(lt.is_expired());
        assert_eq!(lt.expired_by(), Some(LimitKind::Packets));
        assert_eq!(lt.account(10), None);
        assert_eq!(lt.packets(), 5);
        assert_eq!(lt.bytes(), 50);
    }

    #[test]
    fn byte_limits() {
        let lt = Lifetime::new(Limits {
            soft_bytes: Some(100),
            hard_bytes: Some(250),
            ..Limits::default()
        });
        assert_eq!(lt.account(99), None);
        assert_eq!(lt.account(1), Some(LifetimeEvent::Soft(LimitKind::Bytes)));
        assert_eq!(lt.account(100), None);
        assert_eq!(lt.account(100), Some(LifetimeEvent::Hard(LimitKind::Bytes)));
    }

    #[test]
    fn unlimited_never_fires() {
        let lt = Lifetime::new(Limits::default());
        for _ in 0..1000 {
            assert_eq!(lt.account(1500), None);
        }
        assert!(!lt.is_expired());
    }
}
