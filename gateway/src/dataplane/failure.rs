//! A dataplane that cannot go on (its TUN device was deleted under it) says so once, and
//! the daemon stops with that error instead of running on with tunnels that look UP and
//! carry nothing: its peers get our DELETEs and fail over at once, and a supervisor
//! (systemd `Restart=on-failure`) starts it again with a new device.

use std::sync::Mutex;
use tokio::sync::Notify;

#[derive(Debug, Default)]
pub struct Failure {
    reason: Mutex<Option<String>>,
    wake: Notify,
}

impl Failure {
    /// Called by a worker thread; the first reason wins.
    pub fn report(&self, reason: String) {
        // A poisoned lock only means another worker panicked while reporting.
        let mut r = self.reason.lock().unwrap_or_else(|p| p.into_inner());
        if r.is_none() {
            tracing::error!(%reason, "dataplane failed");
            *r = Some(reason);
            drop(r);
            self.wake.notify_one();
        }
    }

    /// Completes with the reason once a worker reported one (at once if one did already).
    pub async fn wait(&self) -> String {
        loop {
            if let Some(r) = self.reason() {
                return r;
            }
            self.wake.notified().await;
        }
    }

    pub fn reason(&self) -> Option<String> {
        self.reason
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::time::Duration;

    #[tokio::test]
    async fn the_first_reason_reported_by_a_worker_reaches_the_waiter() {
        let f = Arc::new(Failure::default());
        let g = f.clone();
        std::thread::spawn(move || {
            g.report("TUN device gone".into());
            g.report("something later".into());
        })
        .join()
        .unwrap();
        let reason = tokio::time::timeout(Duration::from_secs(5), f.wait())
            .await
            .expect("woken");
        assert_eq!(reason, "TUN device gone");
    }
}
