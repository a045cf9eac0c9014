//! Anti-replay window (RFC 4303 3.4.3) with ESN inference (RFC 4303 Appendix A),
//! shared lock-free by every worker thread that decrypts for the SA.
//!
//! The bitmap is a ring of slots (as in RFC 6479, without shifting). Each slot
//! is one `AtomicU64` holding a block tag (the block number `seq / 32`,
//! truncated to 32 bits) in the high half and the 32 bits of that block in the
//! low half, so a slot is always read and changed as one consistent pair: a
//! thread that moves a slot on to a newer block and one that marks a number in
//! it cannot lose each other's update, and two threads accepting the same
//! number cannot both succeed. `top` only grows (`fetch_max`).

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::DropReason;

/// Default window size in packets.
pub const DEFAULT_REPLAY_WINDOW: u32 = 1024;
/// Largest window size accepted.
pub const MAX_REPLAY_WINDOW: u32 = 65536;

/// Sequence numbers per slot.
const BLOCK_BITS: u64 = 32;

pub(crate) struct ReplayWindow {
    /// Window size W in packets.
    size: u64,
    /// Highest sequence number authenticated so far (0: none yet).
    top: AtomicU64,
    /// One spare slot beyond W so the block holding `top` can be partly filled.
    slots: Box<[AtomicU64]>,
}

/// What a slot says about one sequence number.
enum SlotState {
    /// The slot holds this number's block: the bit says whether it was seen.
    Same(bool),
    /// The slot holds an older (or stale) block: the number is fresh.
    Older,
    /// The slot already moved on to a newer block: the number left the window.
    Newer,
}

impl ReplayWindow {
    /// `size` must be in 1..=MAX_REPLAY_WINDOW (checked by the SA constructor).
    pub(crate) fn new(size: u32) -> Self {
        let size = u64::from(size.clamp(1, MAX_REPLAY_WINDOW));
        let n_slots = size.div_ceil(BLOCK_BITS) + 1;
        ReplayWindow {
            size,
            top: AtomicU64::new(0),
            slots: (0..n_slots).map(|_| AtomicU64::new(0)).collect(),
        }
    }

    pub(crate) fn top(&self) -> u64 {
        self.top.load(Ordering::Acquire)
    }

    /// The full 64-bit sequence number of a packet carrying `seq_lo`
    /// (RFC 4303 A2.1). Without ESN it is `seq_lo` itself.
    pub(crate) fn infer(&self, seq_lo: u32, esn: bool) -> u64 {
        if !esn {
            return u64::from(seq_lo);
        }
        let top = self.top();
        let tl = top as u32;
        let th = (top >> 32) as u32;
        // W fits in u32: MAX_REPLAY_WINDOW is far below 2^32.
        let w = self.size as u32;
        let bottom_lo = tl.wrapping_sub(w).wrapping_add(1);
        let seq_hi = if tl >= w - 1 {
            // Case A: the window lies within one 2^32 subspace.
            if seq_lo >= bottom_lo {
                th
            } else {
                th.wrapping_add(1)
            }
        } else if seq_lo >= bottom_lo && th > 0 {
            // Case B: the window spans two subspaces and seq_lo is in the lower one.
            th - 1
        } else {
            th
        };
        (u64::from(seq_hi) << 32) | u64::from(seq_lo)
    }

    /// Whether `seq` may be accepted; does not change the window.
    pub(crate) fn check(&self, seq: u64) -> Result<(), DropReason> {
        let (slot, _) = self.position(seq);
        let word = self.window_word(seq, slot)?;
        match self.state(word, seq) {
            SlotState::Same(true) => Err(DropReason::Replayed),
            SlotState::Same(false) | SlotState::Older => Ok(()),
            SlotState::Newer => Err(DropReason::OutsideWindow),
        }
    }

    /// Records an authenticated `seq`, re-checking it first (another thread may
    /// have accepted the same packet, or moved the window past it, meanwhile).
    pub(crate) fn accept(&self, seq: u64) -> Result<(), DropReason> {
        let (slot, bit) = self.position(seq);
        let mut word = self.window_word(seq, slot)?;
        let Some(cell) = self.slots.get(slot) else {
            return Err(DropReason::OutsideWindow);
        };
        loop {
            let next = match self.state(word, seq) {
                SlotState::Same(true) => return Err(DropReason::Replayed),
                SlotState::Same(false) => word | bit,
                SlotState::Older => (block_tag(seq) << 32) | bit,
                SlotState::Newer => return Err(DropReason::OutsideWindow),
            };
            match cell.compare_exchange_weak(word, next, Ordering::AcqRel, Ordering::Acquire) {
                Ok(_) => break,
                Err(now) => word = now,
            }
        }
        self.top.fetch_max(seq, Ordering::AcqRel);
        Ok(())
    }

    /// The slot's word, after the checks that need only `top`.
    fn window_word(&self, seq: u64, slot: usize) -> Result<u64, DropReason> {
        if seq == 0 {
            // Sequence numbers start at 1 (RFC 4303 3.3.3).
            return Err(DropReason::OutsideWindow);
        }
        let top = self.top();
        if seq <= top && top - seq >= self.size {
            return Err(DropReason::OutsideWindow);
        }
        self.slots
            .get(slot)
            .map(|c| c.load(Ordering::Acquire))
            .ok_or(DropReason::OutsideWindow)
    }

    fn state(&self, word: u64, seq: u64) -> SlotState {
        let tag = word >> 32;
        let block = block_tag(seq);
        if tag == block {
            return SlotState::Same(word & self.position(seq).1 != 0);
        }
        // Tags are 32-bit block numbers: compare them by wrapping distance. A
        // live slot is within a few thousand blocks of `seq` (the window
        // check passed); a tag "ahead" of the top block can only be stale.
        let newer = (tag as u32).wrapping_sub(block as u32) as i32 > 0;
        let top_block = block_tag(self.top());
        let stale = (tag as u32).wrapping_sub(top_block as u32) as i32 > 0;
        if newer && !stale {
            SlotState::Newer
        } else {
            SlotState::Older
        }
    }

    fn position(&self, seq: u64) -> (usize, u64) {
        let n = self.slots.len() as u64;
        (
            ((seq / BLOCK_BITS) % n) as usize,
            1u64 << (seq % BLOCK_BITS),
        )
    }
}

/// The slot tag of `seq`'s block: the block number's low 32 bits.
fn block_tag(seq: u64) -> u64 {
    (seq / BLOCK_BITS) & u64::from(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn win(size: u32) -> ReplayWindow {
        ReplayWindow::new(size)
    }

    #[test]
    fn in_order_and_duplicates() {
        let w = win(64);
        for s in 1..=500 {
            assert_eq!(w.accept(s), Ok(()));
            assert_eq!(w.accept(s), Err(DropReason::Replayed));
        }
        assert_eq!(w.top(), 500);
    }

    #[test]
    fn zero_is_never_valid() {
        let w = win(64);
        assert_eq!(w.accept(0), Err(DropReason::OutsideWindow));
    }

    #[test]
    fn out_of_order_within_window() {
        let w = win(128);
        assert_eq!(w.accept(200), Ok(()));
        for s in (73..200).rev() {
            assert_eq!(w.accept(s), Ok(()), "seq {s}");
        }
        // 200 - 128 = 72 is the first number left of the window.
        assert_eq!(w.accept(72), Err(DropReason::OutsideWindow));
        for s in 73..=200 {
            assert_eq!(w.check(s), Err(DropReason::Replayed));
        }
    }

    #[test]
    fn jumps_larger_than_the_window_clear_old_bits() {
        for size in [1, 32, 64, 65, 1000, 1024, 4096, MAX_REPLAY_WINDOW] {
            let w = win(size);
            let size = u64::from(size);
            assert_eq!(w.accept(5), Ok(()));
            let far = 5 + 3 * size + 17;
            assert_eq!(w.accept(far), Ok(()));
            assert_eq!(w.check(5), Err(DropReason::OutsideWindow));
            // Everything inside the new window except `far` is fresh.
            for s in (far + 1 - size)..far {
                assert_eq!(w.check(s), Ok(()), "size {size} seq {s}");
            }
            assert_eq!(w.check(far - size), Err(DropReason::OutsideWindow));
        }
    }

    #[test]
    fn exact_window_edges() {
        for size in [1u32, 63, 64, 1024, 4096] {
            let w = win(size);
            let top = 10_000;
            assert_eq!(w.accept(top), Ok(()));
            let oldest = top - u64::from(size) + 1;
            assert_eq!(
                w.check(oldest),
                if oldest == top {
                    Err(DropReason::Replayed)
                } else {
                    Ok(())
                }
            );
            assert_eq!(w.check(oldest - 1), Err(DropReason::OutsideWindow));
        }
    }

    #[test]
    fn sliding_by_small_steps_keeps_marks() {
        // Accept every even number; odd numbers inside the window stay fresh,
        // even ones replayed, across many word boundaries.
        let w = win(256);
        for s in (2..5000u64).step_by(2) {
            assert_eq!(w.accept(s), Ok(()));
            let lo = s.saturating_sub(255).max(1);
            for t in [lo, (lo + s) / 2, s - 1] {
                let expect = if t % 2 == 0 {
                    Err(DropReason::Replayed)
                } else {
                    Ok(())
                };
                assert_eq!(w.check(t), expect, "top {s} seq {t}");
            }
        }
    }

    /// Reference model: a plain set of accepted numbers.
    #[test]
    fn matches_a_set_model() {
        use std::collections::BTreeSet;
        let w = win(100);
        let mut seen = BTreeSet::new();
        let mut top = 0u64;
        // Deterministic pseudo-random walk with jumps back and forward.
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let seq = (top + 40).saturating_sub(x % 160).max(1) + (x >> 60) * 50;
            let expect = if seq + 100 <= top {
                Err(DropReason::OutsideWindow)
            } else if seen.contains(&seq) {
                Err(DropReason::Replayed)
            } else {
                Ok(())
            };
            assert_eq!(w.accept(seq), expect, "seq {seq} top {top}");
            if expect.is_ok() {
                seen.insert(seq);
                top = top.max(seq);
            }
        }
    }

    #[test]
    fn esn_inference_case_a() {
        let w = win(64);
        w.accept((5u64 << 32) | 1000).unwrap();
        // Inside or right of the window: same subspace.
        assert_eq!(w.infer(1000, true), (5 << 32) | 1000);
        assert_eq!(w.infer(937, true), (5 << 32) | 937);
        assert_eq!(w.infer(u32::MAX, true), (5 << 32) | u64::from(u32::MAX));
        // Left of the window: next subspace (the counter wrapped).
        assert_eq!(w.infer(936, true), (6 << 32) | 936);
        assert_eq!(w.infer(0, true), 6 << 32);
        // Without ESN the low bits are the number.
        assert_eq!(w.infer(936, false), 936);
    }

    #[test]
    fn esn_inference_case_b_and_wrap() {
        let w = win(64);
        // Just below the 2^32 boundary.
        let before = (1u64 << 32) - 10;
        w.accept(before).unwrap();
        // After wrapping, low numbers belong to the next subspace.
        assert_eq!(w.infer(3, true), (1 << 32) | 3);
        w.accept(w.infer(3, true)).unwrap();
        assert_eq!(w.top(), (1 << 32) | 3);
        // Now the window spans both subspaces (case B): the old numbers map back.
        assert_eq!(w.infer(u32::MAX - 9, true), before);
        assert_eq!(
            w.check(w.infer(u32::MAX - 9, true)),
            Err(DropReason::Replayed)
        );
        assert_eq!(w.infer(u32::MAX - 5, true), before + 4);
        assert_eq!(w.check(before + 4), Ok(()));
        assert_eq!(w.infer(2, true), (1 << 32) | 2);
        assert_eq!(w.check((1 << 32) | 2), Ok(()));
        // Far below in the old subspace (left of the window) is treated as new
        // subspace-high by case B and is then refused by the window or ICV.
        assert_eq!(w.infer(100, true), (1 << 32) | 100);
    }

    #[test]
    fn esn_case_b_in_first_subspace() {
        let w = win(1024);
        w.accept(10).unwrap();
        // Th = 0: there is no earlier subspace, so a large seq_lo is a jump ahead.
        assert_eq!(w.infer(u32::MAX - 3, true), u64::from(u32::MAX - 3));
        assert_eq!(w.infer(5, true), 5);
    }

    /// Four threads accept overlapping, interleaved numbers: every number is
    /// accepted exactly once, and the window ends where the model says.
    #[test]
    fn concurrent_accepts_are_exactly_once() {
        use std::sync::atomic::AtomicU64;
        let w = win(1024);
        let accepted = AtomicU64::new(0);
        let n: u64 = 200_000;
        std::thread::scope(|s| {
            for t in 0..4u64 {
                let (w, accepted) = (&w, &accepted);
                s.spawn(move || {
                    // Each thread walks all numbers from a different phase, with
                    // small local reordering, so threads race on the same slots.
                    for i in 1..=n {
                        let seq = ((i + t * 7) % n) + 1;
                        let seq = if seq % 3 == 0 && seq > 1 {
                            seq - 1
                        } else {
                            seq
                        };
                        if w.accept(seq).is_ok() {
                            accepted.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                });
            }
        });
        // No number is accepted twice; duplicates and stragglers are refused.
        let got = accepted.load(Ordering::Relaxed);
        assert!(got <= n, "accepted {got} of {n}");
        assert!(got > n / 2, "accepted only {got} of {n}");
        assert_eq!(w.top(), n);
        for seq in (n - 1023)..=n {
            if seq % 3 != 0 {
                assert_eq!(w.check(seq), Err(DropReason::Replayed), "seq {seq}");
            }
        }
    }

    /// Many threads race to accept the same number: exactly one wins.
    #[test]
    fn one_winner_per_number() {
        let w = win(64);
        for seq in 1..2000u64 {
            let wins = std::sync::atomic::AtomicU32::new(0);
            std::thread::scope(|s| {
                for _ in 0..3 {
                    s.spawn(|| {
                        if w.accept(seq).is_ok() {
                            wins.fetch_add(1, Ordering::Relaxed);
                        }
                    });
                }
            });
            assert_eq!(wins.load(Ordering::Relaxed), 1, "seq {seq}");
        }
    }
}
