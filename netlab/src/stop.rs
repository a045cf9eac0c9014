//! A process-wide stop request (set from a SIGINT/SIGTERM/SIGHUP handler): every wait of
//! the harness gives up with [`HarnessError::Interrupted`](crate::HarnessError::Interrupted)
//! once it is set, so whoever owns the namespaces and processes can tear them down
//! instead of dying with them left behind.

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

extern "C" fn on_signal(_sig: libc::c_int) {
    request();
}

/// Makes SIGINT, SIGTERM and SIGHUP only request a stop (for programs that own
/// namespaces and processes: the lab, the benchmark harness).
pub fn install_handlers() -> std::io::Result<()> {
    for sig in [libc::SIGINT, libc::SIGTERM, libc::SIGHUP] {
        // SAFETY: a zeroed sigaction is valid; the handler only does an atomic store,
        // which is async-signal-safe.
        let rc = unsafe {
            let mut sa: libc::sigaction = std::mem::zeroed();
            sa.sa_sigaction = on_signal as extern "C" fn(libc::c_int) as libc::sighandler_t;
            sa.sa_flags = libc::SA_RESTART;
            libc::sigemptyset(&mut sa.sa_mask);
            libc::sigaction(sig, &sa, std::ptr::null_mut())
        };
        if rc != 0 {
            return Err(std::io::Error::last_os_error());
        }
    }
    Ok(())
}
