//! BGP over the tunnels: a tokio shell around the sans-IO `bgp` crate.
//!
//! One eBGP session per tunnel, over the tunnel's inner addresses (port 179; we listen
//! on ours and dial the peer's). The daemon calls [`BgpSpeaker::start`] when a tunnel
//! goes UP and [`BgpSpeaker::stop`] when it goes DOWN; stopping sends Cease to the peer
//! and withdraws every route the session taught us. All sessions feed one Loc-RIB
//! (`bgp::Rib`), whose best-route changes come out of the channel returned by
//! [`BgpSpeaker::new`] as [`BgpRouteChange`]s, ready for `routing::Rib` (where static
//! routes keep winning over BGP for the same prefix).
//!
//! ```text
//! let (speaker, mut changes) = BgpSpeaker::new()?;        // inside the runtime
//! speaker.start(SessionSpec::from_config(id, tunnel, bgp)?)?;   // tunnel UP
//! while let Some(batch) = changes.recv().await { for c in batch { c.apply(&mut rib)? }; publish(rib.build()) }
//! speaker.stop(id).await;                                  // tunnel DOWN
//! ```

mod error;
mod routes;
mod shared;
mod spec;
mod status;
mod table;
mod task;

pub use error::SpeakerError;
pub use routes::{BgpRouteChange, Translator};
pub use spec::{SessionSpec, BGP_PORT, CONNECT_RETRY};
pub use status::{bgp_table, BgpSessionStatus};
pub use table::{BgpRouteEntry, BgpRouteTable, KernelEdit};

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use bgp::{Ipv4Prefix, Session};
use tokio::runtime::Handle;
use tokio::sync::mpsc::{self, UnboundedReceiver, UnboundedSender};
use tokio::task::JoinHandle;

use crate::routing::TunnelId;
use shared::Shared;
use task::{Command, SessionTask};

/// How long `stop` waits for a session to say goodbye before cutting it off.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

struct Running {
    commands: UnboundedSender<Command>,
    task: JoinHandle<()>,
    generation: u16,
}

/// The BGP sessions of the gateway, one per tunnel that is UP.
pub struct BgpSpeaker {
    runtime: Handle,
    shared: Arc<Shared>,
    sessions: Mutex<BTreeMap<TunnelId, Running>>,
    /// The generation the next session started gets.
    next_generation: AtomicU16,
}

impl std::fmt::Debug for BgpSpeaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BgpSpeaker")
            .field("sessions", &self.status())
            .finish()
    }
}

impl BgpSpeaker {
    /// A speaker with no session, and the receiving end of its route changes. Must be
    /// called inside a tokio runtime; sessions run as tasks of that runtime.
    pub fn new() -> Result<(Self, UnboundedReceiver<Vec<BgpRouteChange>>), SpeakerError> {
        let runtime = Handle::try_current().map_err(|_| SpeakerError::NoRuntime)?;
        let (tx, rx) = mpsc::unbounded_channel();
        let speaker = Self {
            runtime,
            shared: Arc::new(Shared::new(tx)),
            sessions: Mutex::new(BTreeMap::new()),
            next_generation: AtomicU16::new(0),
        };
        Ok((speaker, rx))
    }

    /// Starts the session of `spec.tunnel` (it listens, dials and retries by itself).
    pub fn start(&self, mut spec: SessionSpec) -> Result<(), SpeakerError> {
        let mut sessions = self.sessions.lock().unwrap_or_else(PoisonError::into_inner);
        if sessions
            .get(&spec.tunnel)
            .is_some_and(|r| !r.task.is_finished())
        {
            return Err(SpeakerError::AlreadyRunning(spec.tunnel));
        }
        let session =
            Session::new(spec.session.clone()).map_err(|source| SpeakerError::Session {
                tunnel: spec.name.clone(),
                source,
            })?;
        tracing::info!(tunnel = %spec.name, local = %spec.local_address(), peer = %spec.peer_address(), as_path_prepend = spec.session.as_path_prepend, "bgp session starting");
        let tunnel = spec.tunnel;
        spec.generation = self.next_generation.fetch_add(1, Ordering::Relaxed);
        let generation = spec.generation;
        self.shared.set_selection(&spec);
        self.shared.set_status(&spec, session.stats(), true);
        let (commands, rx) = mpsc::unbounded_channel();
        let task = SessionTask::new(spec, session, self.shared.clone(), rx);
        let task = self.runtime.spawn(task.run());
        sessions.insert(
            tunnel,
            Running {
                commands,
                task,
                generation,
            },
        );
        Ok(())
    }

    /// Removes `tunnel`'s running session from the table, if any, and tells it to stop:
    /// its task and generation. `withdraw_now`: its routes leave the Loc-RIB now, else
    /// when the session has ended.
    fn take_stopping(&self, tunnel: TunnelId, withdraw_now: bool) -> Option<(JoinHandle<()>, u16)> {
        let running = self
            .sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&tunnel)?;
        // A send error means the task already ended; awaiting it is still right.
        let _ = running.commands.send(Command::Stop);
        if withdraw_now {
            self.shared.stopping(tunnel, running.generation);
        }
        Some((running.task, running.generation))
    }

    /// Stops the session of `tunnel`: Cease to the peer, connection closed, and every
    /// route it taught us withdrawn (the changes are on the channel when this returns).
    /// False if no session ran there.
    pub async fn stop(&self, tunnel: TunnelId) -> bool {
        let Some((mut task, generation)) = self.take_stopping(tunnel, true) else {
            return false;
        };
        if tokio::time::timeout(STOP_TIMEOUT, &mut task).await.is_err() {
            tracing::warn!(?tunnel, "bgp session did not stop in time; aborted");
            task.abort();
        }
        // The task's own Down event already did this unless it was aborted.
        self.shared.session_gone(tunnel, generation);
        true
    }

    /// `stop` for callers that cannot wait (the daemon's synchronous tunnel DOWN
    /// handler): the session is told to stop and its goodbye goes on in the background.
    /// Its routes are withdrawn now (the changes are on the channel when this returns)
    /// if `withdraw_now`, else when the goodbye is over: for a session replaced over a
    /// tunnel that stays UP (the peer restarted), whose routes still carry traffic until
    /// the next session has learned them again. False if no session ran there.
    pub fn stop_detached(&self, tunnel: TunnelId, withdraw_now: bool) -> bool {
        self.stop_in_background(tunnel, withdraw_now, None)
            .is_some()
    }

    /// `stop_detached` with its routes withdrawn now, and `(tunnel, generation)` sent on
    /// `said` once the goodbye is over (Cease written and the connection closed, or cut
    /// off): for a tunnel that stays UP until its peer has been told. The session's
    /// generation, or `None` if no session ran there.
    pub fn stop_and_report(
        &self,
        tunnel: TunnelId,
        said: UnboundedSender<(TunnelId, u16)>,
    ) -> Option<u16> {
        self.stop_in_background(tunnel, true, Some(said))
    }

    fn stop_in_background(
        &self,
        tunnel: TunnelId,
        withdraw_now: bool,
        said: Option<UnboundedSender<(TunnelId, u16)>>,
    ) -> Option<u16> {
        let (mut task, generation) = self.take_stopping(tunnel, withdraw_now)?;
        let shared = self.shared.clone();
        // The next session of this tunnel may start before this one has said goodbye;
        // the generation keeps the two apart.
        self.runtime.spawn(async move {
            if tokio::time::timeout(STOP_TIMEOUT, &mut task).await.is_err() {
                task.abort();
            }
            shared.session_gone(tunnel, generation);
            if let Some(said) = said {
                let _ = said.send((tunnel, generation));
            }
        });
        Some(generation)
    }

    /// Replaces the prefixes `tunnel`'s session advertises. False if it does not run.
    pub fn advertise(&self, tunnel: TunnelId, prefixes: Vec<Ipv4Prefix>) -> bool {
        self.sessions
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&tunnel)
            .is_some_and(|r| r.commands.send(Command::Advertise(prefixes)).is_ok())
    }

    /// Every session started so far (stopped ones show `running: false`), by tunnel.
    pub fn status(&self) -> Vec<BgpSessionStatus> {
        self.shared.status()
    }

    /// The Loc-RIB: each prefix with the tunnel and next hop of its best route.
    pub fn best_routes(&self) -> Vec<(Ipv4Prefix, TunnelId, Ipv4Addr)> {
        self.shared.best_routes()
    }
}

impl Drop for BgpSpeaker {
    fn drop(&mut self) {
        // Tasks see their command channel close and stop (Cease to the peer) by themselves.
        self.sessions
            .get_mut()
            .unwrap_or_else(PoisonError::into_inner)
            .clear();
    }
}
