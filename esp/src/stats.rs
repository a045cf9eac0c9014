//! Per-SA counters (atomics on the hot path) and their plain snapshots.

use std::sync::atomic::{AtomicU64, Ordering};

use crate::error::DropReason;

/// Drops of one inbound SA, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DropCounts {
    pub truncated: u64,
    pub bad_length: u64,
    pub unknown_spi: u64,
    pub replayed: u64,
    pub outside_window: u64,
    pub icv_mismatch: u64,
    pub bad_padding: u64,
    pub bad_next_header: u64,
    pub bad_inner_packet: u64,
    /// TFC dummy packets (next header 59): authentic, dropped on purpose.
    pub tfc_dummy: u64,
    pub sa_expired: u64,
}

impl DropCounts {
    /// Sum of all drops except TFC dummies, which are not errors.
    pub fn errors(&self) -> u64 {
        self.truncated
            + self.bad_length
            + self.unknown_spi
            + self.replayed
            + self.outside_window
            + self.icv_mismatch
            + self.bad_padding
            + self.bad_next_header
            + self.bad_inner_packet
            + self.sa_expired
    }
}

/// Snapshot of an inbound SA's counters, for `vpngw status`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct InboundStats {
    /// Packets delivered (inner packets handed back to the caller).
    pub packets: u64,
    /// Inner bytes delivered.
    pub bytes: u64,
    /// Highest sequence number authenticated so far.
    pub highest_seq: u64,
    pub drops: DropCounts,
}

/// Snapshot of an outbound SA's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutboundStats {
    /// Packets encapsulated.
    pub packets: u64,
    /// Inner bytes encapsulated.
    pub bytes: u64,
    /// Last sequence number handed out.
    pub last_seq: u64,
    /// Packets refused because the SA had expired.
    pub refused_expired: u64,
    /// Packets refused for bad buffers or inner packets (caller errors).
    pub refused_invalid: u64,
}

pub(crate) struct DropCounters([AtomicU64; DropReason::COUNT]);

impl DropCounters {
    pub(crate) fn new() -> Self {
        DropCounters(std::array::from_fn(|_| AtomicU64::new(0)))
    }

    pub(crate) fn count(&self, reason: DropReason) {
        if let Some(c) = self.0.get(reason.index()) {
            c.fetch_add(1, Ordering::Relaxed);
        }
    }

    pub(crate) fn snapshot(&self) -> DropCounts {
        let get = |r: DropReason| {
            self.0
                .get(r.index())
                .map_or(0, |c| c.load(Ordering::Relaxed))
        };
        DropCounts {
            truncated: get(DropReason::Truncated),
            bad_length: get(DropReason::BadLength),
            unknown_spi: get(DropReason::UnknownSpi(0)),
            replayed: get(DropReason::Replayed),
            outside_window: get(DropReason::OutsideWindow),
            icv_mismatch: get(DropReason::IcvMismatch),
            bad_padding: get(DropReason::BadPadding),
            bad_next_header: get(DropReason::BadNextHeader(0)),
            bad_inner_packet: get(DropReason::BadInnerPacket),
            tfc_dummy: get(DropReason::TfcDummy),
            sa_expired: get(DropReason::SaExpired),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_its_own_counter() {
        let c = DropCounters::new();
        let reasons = [
            DropReason::Truncated,
            DropReason::BadLength,
            DropReason::UnknownSpi(9),
            DropReason::Replayed,
            DropReason::OutsideWindow,
            DropReason::IcvMismatch,
            DropReason::BadPadding,
            DropReason::BadNextHeader(17),
            DropReason::BadInnerPacket,
            DropReason::TfcDummy,
            DropReason::SaExpired,
        ];
        for (i, r) in reasons.iter().enumerate() {
            for _ in 0..=i {
                c.count(*r);
            }
        }
        let s = c.snapshot();
        let got = [
            s.truncated,
            s.bad_length,
            s.unknown_spi,
            s.replayed,
            s.outside_window,
            s.icv_mismatch,
            s.bad_padding,
            s.bad_next_header,
            s.bad_inner_packet,
            s.tfc_dummy,
            s.sa_expired,
        ];
        assert_eq!(got, [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        assert_eq!(s.errors(), 66 - 10);
    }
}
