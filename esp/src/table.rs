//! Inbound SA table keyed by SPI, read by every worker without a lock.
//!
//! Readers load an `arc-swap` snapshot of an immutable map; writers (the
//! control plane, rarely) copy the map, change the copy and swap it in.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;

use crate::error::DropReason;
use crate::inbound::{Decapped, InboundSa};
use crate::stats::InboundStats;

/// SPIs are chosen locally at random, so a cheap multiplicative hash spreads
/// them well; peers can send any SPI but cannot add entries.
#[derive(Default)]
pub struct SpiHasher(u64);

impl Hasher for SpiHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        }
    }

    fn write_u32(&mut self, n: u32) {
        self.0 = (self.0 ^ u64::from(n)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    }
}

type SpiMap = HashMap<u32, Arc<InboundSa>, BuildHasherDefault<SpiHasher>>;

/// Inbound SAs by SPI.
#[derive(Default)]
pub struct SaTable {
    map: ArcSwap<SpiMap>,
    /// Serialises writers so concurrent installs do not lose each other's entries.
    writer: Mutex<()>,
    unknown_spi: AtomicU64,
    /// Bumped by every install and removal, so a reader can tell the table changed.
    generation: AtomicU64,
}

impl SaTable {
    pub fn new() -> Self {
        Self::default()
    }

    /// Installs `sa` under its SPI; returns the SA it replaced, if any.
    pub fn insert(&self, sa: Arc<InboundSa>) -> Option<Arc<InboundSa>> {
        self.update(|m| m.insert(sa.spi(), sa))
    }

    /// Removes the SA with this SPI.
    pub fn remove(&self, spi: u32) -> Option<Arc<InboundSa>> {
        self.update(|m| m.remove(&spi))
    }

    pub fn get(&self, spi: u32) -> Option<Arc<InboundSa>> {
        self.map.load().get(&spi).cloned()
    }

    pub fn len(&self) -> usize {
        self.map.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.load().is_empty()
    }

    /// Looks up the SA by the packet's SPI and decapsulates with it. Unknown
    /// SPIs are counted here (see [`SaTable::unknown_spi_drops`]).
    pub fn decap(&self, buf: &mut [u8]) -> Result<(u32, Decapped), DropReason> {
        self.snapshot().decap(buf)
    }

    /// The table as it is now, for a batch of packets: one snapshot load instead of one
    /// per packet. SAs installed or removed later are seen by the next snapshot, so keep
    /// it only for one batch.
    pub fn snapshot(&self) -> SaSnapshot<'_> {
        SaSnapshot {
            map: self.map.load(),
            table: self,
        }
    }

    /// Packets dropped because no SA had their SPI.
    pub fn unknown_spi_drops(&self) -> u64 {
        self.unknown_spi.load(Ordering::Relaxed)
    }

    /// Counts a packet dropped for an unknown SPI by a caller that first held it back
    /// (see [`SaSnapshot::decap_held`]).
    pub fn count_unknown_spi(&self) {
        self.unknown_spi.fetch_add(1, Ordering::Relaxed);
    }

    /// Changes whenever an SA is installed or removed.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Counters of every installed SA, sorted by SPI.
    pub fn stats(&self) -> Vec<(u32, InboundStats)> {
        let map = self.map.load();
        let mut v: Vec<_> = map.iter().map(|(spi, sa)| (*spi, sa.stats())).collect();
        v.sort_by_key(|(spi, _)| *spi);
        v
    }

    fn update<T>(&self, f: impl FnOnce(&mut SpiMap) -> T) -> T {
        let _w = self.writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut next = SpiMap::clone(&self.map.load());
        let out = f(&mut next);
        self.map.store(Arc::new(next));
        self.generation.fetch_add(1, Ordering::Release);
        out
    }
}

/// See [`SaTable::snapshot`].
pub struct SaSnapshot<'a> {
    map: arc_swap::Guard<Arc<SpiMap>>,
    table: &'a SaTable,
}

impl SaSnapshot<'_> {
    /// [`SaTable::decap`] against this snapshot.
    pub fn decap(&self, buf: &mut [u8]) -> Result<(u32, Decapped), DropReason> {
        let r = self.decap_held(buf);
        if matches!(r, Err(DropReason::UnknownSpi(_))) {
            self.table.count_unknown_spi();
        }
        r
    }

    /// [`SaSnapshot::decap`] without counting an unknown SPI: for a caller that may
    /// hold the packet until its SA is installed, and counts it with
    /// [`SaTable::count_unknown_spi`] only if that never happens.
    pub fn decap_held(&self, buf: &mut [u8]) -> Result<(u32, Decapped), DropReason> {
        let spi = buf
            .get(0..4)
            .and_then(|b| b.try_into().ok())
            .map(u32::from_be_bytes)
            .ok_or(DropReason::Truncated)?;
        match self.map.get(&spi) {
            Some(sa) => sa.decap(buf).map(|d| (spi, d)),
            None => Err(DropReason::UnknownSpi(spi)),
        }
    }
}
