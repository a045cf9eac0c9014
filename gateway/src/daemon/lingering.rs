//! Inbound SAs of rekeyed CHILD SAs, kept a while after their DELETE exchange. The peer
//! switches to the new SA before the exchange, but ESP it sent on the old one can still
//! arrive after it: its dataplane flushes batches already encrypted, or the path reorders.
//! Removed at once, each rekey at full speed lost a few packets (to `unknown_spi`) and
//! TCP took a retransmit burst. strongSwan keeps them 5 s too (`delete_rekeyed_delay`).
//! The same holds for a tunnel whose SAs we delete ourselves (disabled, or renegotiated
//! after a reload): the peer keeps sending on it until our DELETE reaches it, a window's
//! worth at full speed, which then arrives on the lingering SAs while our routes already
//! point at the other tunnel.

use crate::dataplane::Shared;
use esp::InboundSa;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long a rekeyed or locally deleted CHILD SA still decrypts.
pub const GRACE: Duration = Duration::from_secs(5);

#[derive(Debug, Default)]
pub struct Lingering {
    sas: Vec<(Instant, Arc<InboundSa>)>,
}

impl Lingering {
    /// Keeps `sa` (still installed in the dataplane) until `now + GRACE`.
    pub fn keep(&mut self, now: Instant, sa: Arc<InboundSa>) {
        self.sas.push((now + GRACE, sa));
    }

    /// When the next one is due.
    pub fn next_expiry(&self) -> Option<Instant> {
        self.sas.iter().map(|(at, _)| *at).min()
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<InboundSa>> {
        self.sas.iter().map(|(_, sa)| sa)
    }

    /// Uninstalls those due at `now`; returns them (for their final counters).
    pub fn expire(&mut self, now: Instant, shared: &Shared) -> Vec<Arc<InboundSa>> {
        let (due, keep) = std::mem::take(&mut self.sas)
            .into_iter()
            .partition(|(at, _)| *at <= now);
        self.sas = keep;
        due.into_iter()
            .map(|(_, sa)| {
                uninstall(shared, &sa);
                sa
            })
            .collect()
    }
}

/// Removes `sa` from the dataplane, unless its SPI meanwhile belongs to another SA.
fn uninstall(shared: &Shared, sa: &Arc<InboundSa>) {
    let spi = sa.spi();
    if shared.sas.get(spi).is_some_and(|s| Arc::ptr_eq(&s, sa)) {
        shared.remove_inbound(spi);
    }
}
