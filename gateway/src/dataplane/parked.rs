//! ESP packets that arrive just before their SA is installed, held back briefly.
//!
//! A responder starts sending on a new CHILD SA as soon as it has sent the response that
//! creates it, so its first packets can reach us while our control plane is still
//! processing that response: their SPI is not in the table yet. Dropping them loses
//! traffic at every reauthentication and every new CHILD SA (a ping, or a burst of a
//! TCP flow). Instead an inbound worker keeps a few of them, offers them again whenever
//! the SA table changes, and gives up on each after `HOLD`. The space is fixed (a flood
//! of made-up SPIs fills it and is counted, but costs no memory), and each slot's buffer
//! is allocated once and reused.

use std::time::{Duration, Instant};

/// Packets held per worker.
pub const CAPACITY: usize = 32;
/// The largest ESP datagram held (a jumbo-frame underlay's); larger ones are dropped.
pub const MAX_LEN: usize = 9216;
/// How long a packet waits for its SA. Installing takes well under a millisecond once
/// the response is in; this allows for a busy control plane.
pub const HOLD: Duration = Duration::from_millis(100);

#[derive(Debug, Default)]
struct Slot {
    bytes: Vec<u8>,
    /// The outer header's TOS / traffic class it came with.
    tos: u8,
    /// When the packet was held; `None`: the slot is free.
    since: Option<Instant>,
}

/// What became of the packets offered again by [`Parked::retry`].
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Released {
    /// Taken by the caller (delivered or dropped for another reason).
    pub taken: usize,
    /// Held for `HOLD` without their SA appearing.
    pub expired: usize,
}

/// One worker's held packets.
#[derive(Debug, Default)]
pub struct Parked {
    slots: Vec<Slot>,
    held: usize,
    /// The SA table generation the held packets were last offered against.
    tried: u64,
}

impl Parked {
    pub fn is_empty(&self) -> bool {
        self.held == 0
    }

    /// Holds a copy of `pkt` (and its outer `tos`), which failed against SA table
    /// `generation`; `false` if it is too large or every slot is taken.
    pub fn hold(&mut self, pkt: &[u8], tos: u8, generation: u64, now: Instant) -> bool {
        if pkt.len() > MAX_LEN {
            return false;
        }
        if self.slots.len() < CAPACITY && self.held == self.slots.len() {
            self.slots.push(Slot::default());
        }
        let Some(slot) = self.slots.iter_mut().find(|s| s.since.is_none()) else {
            return false;
        };
        slot.bytes.clear();
        slot.bytes.extend_from_slice(pkt);
        slot.tos = tos;
        slot.since = Some(now);
        if self.held == 0 {
            self.tried = generation;
        }
        self.held += 1;
        true
    }

    /// If the table changed since the last try (`generation`), offers every held packet,
    /// oldest first, to `take` (with its outer TOS), which returns `false` to keep holding it (its SPI is
    /// still unknown); then gives up on packets held longer than `HOLD`.
    pub fn retry(
        &mut self,
        generation: u64,
        now: Instant,
        mut take: impl FnMut(&mut [u8], u8) -> bool,
    ) -> Released {
        let mut out = Released::default();
        if self.held == 0 {
            return out;
        }
        if generation != self.tried {
            self.tried = generation;
            let mut order = [(now, 0usize); CAPACITY];
            let mut n = 0;
            for (i, t) in self
                .slots
                .iter()
                .enumerate()
                .filter_map(|(i, s)| Some((i, s.since?)))
            {
                if let Some(o) = order.get_mut(n) {
                    *o = (t, i);
                    n += 1;
                }
            }
            let order = order.get_mut(..n).unwrap_or_default();
            order.sort_unstable();
            for &mut (_, i) in order {
                if let Some(slot) = self.slots.get_mut(i) {
                    if take(&mut slot.bytes, slot.tos) {
                        slot.since = None;
                        self.held -= 1;
                        out.taken += 1;
                    }
                }
            }
        }
        for slot in &mut self.slots {
            if slot.since.is_some_and(|t| now.duration_since(t) >= HOLD) {
                slot.since = None;
                self.held -= 1;
                out.expired += 1;
            }
        }
        out
    }

    /// How long until the oldest held packet expires (`None`: nothing held).
    pub fn next_expiry(&self, now: Instant) -> Option<Duration> {
        self.slots
            .iter()
            .filter_map(|s| s.since)
            .min()
            .map(|t| HOLD.saturating_sub(now.duration_since(t)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn held_packets_are_offered_again_when_the_table_changes() {
        let mut p = Parked::default();
        let t0 = Instant::now();
        assert!(p.hold(b"first", 0x02, 7, t0));
        assert!(p.hold(b"second", 0xb9, 7, t0 + Duration::from_millis(1)));
        // Same table: nothing offered.
        let r = p.retry(7, t0 + Duration::from_millis(2), |_, _| panic!("offered"));
        assert_eq!(r, Released::default());
        // Changed: offered oldest first; the second still has no SA.
        let mut seen = Vec::new();
        let r = p.retry(8, t0 + Duration::from_millis(3), |b, tos| {
            seen.push((b.to_vec(), tos));
            b == b"first"
        });
        assert_eq!(
            seen,
            [(b"first".to_vec(), 0x02), (b"second".to_vec(), 0xb9)]
        );
        assert_eq!((r.taken, r.expired, p.held), (1, 0, 1));
        // Unchanged again, but past HOLD: given up.
        let r = p.retry(8, t0 + HOLD + Duration::from_millis(1), |_, _| {
            panic!("offered")
        });
        assert_eq!((r.taken, r.expired), (0, 1));
        assert!(p.is_empty());
        assert_eq!(p.next_expiry(t0), None);
    }

    #[test]
    fn space_is_fixed_and_reused() {
        let mut p = Parked::default();
        let now = Instant::now();
        assert!(!p.hold(&[0u8; MAX_LEN + 1], 0, 0, now), "too large");
        for i in 0..CAPACITY {
            assert!(p.hold(&[i as u8; 100], 0, 0, now));
        }
        assert!(!p.hold(&[1u8; 100], 0, 0, now), "full");
        assert_eq!(p.next_expiry(now), Some(HOLD));
        let r = p.retry(1, now, |b, _| b[0] % 2 == 0);
        assert_eq!((r.taken, p.held), (CAPACITY / 2, CAPACITY / 2));
        // Freed slots take new packets; no slot beyond CAPACITY is ever made.
        for _ in 0..CAPACITY / 2 {
            assert!(p.hold(&[9u8; 50], 0, 1, now));
        }
        assert!(!p.hold(&[9u8; 50], 0, 1, now));
        assert_eq!(p.slots.len(), CAPACITY);
    }
}
