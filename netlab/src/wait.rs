//! Waiting for a condition by polling it, instead of sleeping a fixed time.

use std::time::{Duration, Instant};

use crate::error::{HarnessError, Result};

/// What one look at the condition found.
#[derive(Debug)]
pub enum Poll<T> {
    /// The condition holds; the value is returned to the waiter.
    Ready(T),
    /// Not yet; the text describes the current state for the timeout message.
    Pending(String),
}

/// Polls `probe` until it returns [`Poll::Ready`] or `timeout` passes. The interval starts
/// at 10 ms and doubles up to 200 ms, so fast conditions are seen quickly without
/// spinning on slow ones. An `Err` from the probe ends the wait at once (a crashed
/// daemon will not recover), and so does a [stop request](crate::stop). On timeout the
/// error carries the last pending state.
pub fn wait_for<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl FnMut() -> Result<Poll<T>>,
) -> Result<T> {
    let start = Instant::now();
    let mut interval = Duration::from_millis(10);
    loop {
        if crate::stop::requested() {
            return Err(HarnessError::Interrupted(what.to_owned()));
        }
        let last = match probe()? {
            Poll::Ready(value) => return Ok(value),
            Poll::Pending(state) => state,
        };
        let waited = start.elapsed();
        if waited >= timeout {
            return Err(HarnessError::Timeout {
                what: what.to_owned(),
                waited,
                last: Some(last),
            });
        }
        std::thread::sleep(interval.min(timeout - waited));
        interval = (interval * 2).min(Duration::from_millis(200));
    }
}

/// [`wait_for`] for a yes/no condition.
pub fn wait_until(
    what: &str,
    timeout: Duration,
    mut condition: impl FnMut() -> bool,
) -> Result<()> {
    wait_for(what, timeout, || {
        Ok(if condition() {
            Poll::Ready(())
        } else {
            Poll::Pending("condition still false".into())
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn returns_the_ready_value() {
        let mut calls = 0;
        let got = wait_for("third call", Duration::from_secs(5), || {
            calls += 1;
            Ok(if calls == 3 {
                Poll::Ready(calls * 10)
            } else {
                Poll::Pending(format!("call {calls}"))
            })
        })
        .unwrap();
        assert_eq!(got, 30);
    }

    #[test]
    fn timeout_reports_the_last_state() {
        let start = Instant::now();
        let err = wait_for::<()>("never", Duration::from_millis(100), || {
            Ok(Poll::Pending("still down".into()))
        })
        .unwrap_err();
        assert!(start.elapsed() >= Duration::from_millis(100));
        assert!(start.elapsed() < Duration::from_secs(2));
        let text = err.to_string();
        assert!(
            text.contains("never") && text.contains("still down"),
            "{text}"
        );
    }

    #[test]
    fn probe_error_stops_the_wait() {
        let err = wait_for::<()>("broken", Duration::from_secs(60), || {
            Err(HarnessError::Invalid("daemon died".into()))
        })
        .unwrap_err();
        assert!(matches!(err, HarnessError::Invalid(_)));
    }

    #[test]
    fn wait_until_sees_a_flag() {
        let mut n = 0;
        wait_until("n reaches 2", Duration::from_secs(5), || {
            n += 1;
            n >= 2
        })
        .unwrap();
        assert!(wait_until("false", Duration::from_millis(30), || false).is_err());
    }
}
