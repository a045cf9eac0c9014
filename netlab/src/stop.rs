//! A process-wide stop request (set from a SIGINT/SIGTERM handler): every wait of the
//! harness gives up with [`HarnessError::Interrupted`](crate::HarnessError::Interrupted)
//! once it is set, so whoever owns the namespaces and processes can tear them down.

use std::sync::atomic::{AtomicBool, Ordering};

static REQUESTED: AtomicBool = AtomicBool::new(false);

/// Asks every wait to give up. Async-signal-safe (one atomic store).
pub fn request() {
    REQUESTED.store(true, Ordering::SeqCst);
}

/// Whether a stop was requested.
pub fn requested() -> bool {
    REQUESTED.load(Ordering::SeqCst)
}
