//! State the session tasks share: the Loc-RIB with its outgoing channel, and the stats.

use std::collections::BTreeMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use bgp::{Rib, SessionEvent, SessionId, SessionStats};
use tokio::sync::mpsc::UnboundedSender;

use super::routes::{BgpRouteChange, Translator};
use super::status::{BgpSessionStatus, StatusEntry};
use super::SessionSpec;
use crate::routing::TunnelId;

struct RibState {
    rib: Rib,
    translator: Translator,
    /// Closed receiver = nobody routes any more; changes are then dropped.
    out: UnboundedSender<BgpRouteChange>,
}

pub(crate) struct Shared {
    rib: Mutex<RibState>,
    status: Mutex<BTreeMap<TunnelId, StatusEntry>>,
}

/// A panic elsewhere must not take routing down with it: the data under these locks is
/// always consistent between calls.
fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

pub(crate) fn session_id(tunnel: TunnelId) -> SessionId {
    SessionId(u32::from(tunnel.0))
}

impl Shared {
    pub fn new(out: UnboundedSender<BgpRouteChange>) -> Self {
        Self {
            rib: Mutex::new(RibState {
                rib: Rib::new(),
                translator: Translator::default(),
                out,
            }),
            status: Mutex::new(BTreeMap::new()),
        }
    }

    /// Feeds one session event to the Loc-RIB and publishes what changed. Under one lock,
    /// so changes leave in the order the Loc-RIB made them.
    pub fn apply(&self, tunnel: TunnelId, event: &SessionEvent) {
        let mut st = lock(&self.rib);
        st.rib.apply(session_id(tunnel), event);
        Self::publish(&mut st);
    }

    /// See [`bgp::Rib::set_multipath_group`].
    pub fn set_multipath_group(&self, tunnel: TunnelId, group: Option<u32>) {
        lock(&self.rib)
            .rib
            .set_multipath_group(session_id(tunnel), group);
    }

    /// Forgets every route of `tunnel` (its session ended).
    pub fn session_gone(&self, tunnel: TunnelId) {
        let mut st = lock(&self.rib);
        st.rib.peer_down(session_id(tunnel));
        Self::publish(&mut st);
    }

    fn publish(st: &mut RibState) {
        while let Some(change) = st.rib.poll_change() {
            for c in st.translator.translate(&change) {
                tracing::debug!(change = ?c, "bgp route change");
                // A closed receiver means the daemon is shutting down.
                let _ = st.out.send(c);
            }
        }
    }

    pub fn set_status(&self, spec: &SessionSpec, stats: SessionStats, running: bool) {
        lock(&self.status).insert(
            spec.tunnel,
            StatusEntry {
                spec: spec.clone(),
                stats,
                running,
            },
        );
    }

    pub fn set_running(&self, tunnel: TunnelId, running: bool) {
        if let Some(e) = lock(&self.status).get_mut(&tunnel) {
            e.running = running;
        }
    }

    pub fn status(&self) -> Vec<BgpSessionStatus> {
        let now = Instant::now();
        lock(&self.status).values().map(|e| e.report(now)).collect()
    }

    /// The Loc-RIB: prefix, tunnel and next hop of every best route.
    pub fn best_routes(&self) -> Vec<(bgp::Ipv4Prefix, TunnelId, std::net::Ipv4Addr)> {
        lock(&self.rib)
            .rib
            .best_routes()
            .filter_map(|(p, r)| {
                let t = u16::try_from(r.session.0).ok()?;
                Some((*p, TunnelId(t), r.next_hop))
            })
            .collect()
    }
}
