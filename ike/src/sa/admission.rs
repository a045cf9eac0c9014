//! Admission of new responder IKE SAs: each costs a Diffie-Hellman computation, so a peer
//! address that floods IKE_SA_INIT and echoes our COOKIEs (one on the path, or a broken
//! peer) may not have more of them than a token bucket allows. Without this the work is
//! unbounded: the cookie only proves that the sender receives at the address it claims.

use std::time::{Duration, Instant};

/// How often a tunnel warns about refused requests while they go on.
const WARN_EVERY: Duration = Duration::from_secs(10);

/// A token bucket for new responder SAs, with its own rate-limited warning.
#[derive(Debug)]
pub(crate) struct InitGate {
    /// Tokens added per second, and the most the bucket holds.
    rate: u32,
    tokens: f64,
    refilled: Option<Instant>,
    /// Refused since the last warning, and when that was.
    refused_unreported: u64,
    warned: Option<Instant>,
}

impl InitGate {
    /// A full bucket; `rate` 0 admits nothing.
    pub(crate) fn new(rate: u32) -> Self {
        InitGate {
            rate,
            tokens: f64::from(rate),
            refilled: None,
            refused_unreported: 0,
            warned: None,
        }
    }

    /// Takes a token if there is one.
    pub(crate) fn admit(&mut self, now: Instant) -> bool {
        let cap = f64::from(self.rate);
        if let Some(last) = self.refilled {
            let elapsed = now.saturating_duration_since(last).as_secs_f64();
            self.tokens = (self.tokens + elapsed * cap).min(cap);
        }
        self.refilled = Some(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return true;
        }
        self.refused_unreported += 1;
        false
    }

    /// The number of requests refused since the last report, when a warning is due (the
    /// first refusal, then at most every `WARN_EVERY`).
    pub(crate) fn report_due(&mut self, now: Instant) -> Option<u64> {
        if self.refused_unreported == 0 {
            return None;
        }
        if self.warned.is_some_and(|t| now < t + WARN_EVERY) {
            return None;
        }
        self.warned = Some(now);
        Some(std::mem::take(&mut self.refused_unreported))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn admits_a_burst_then_the_rate() {
        let t0 = Instant::now();
        let mut g = InitGate::new(10);
        assert_eq!((0..100).filter(|_| g.admit(t0)).count(), 10);
        // Half a second later: five more.
        let t1 = t0 + Duration::from_millis(500);
        assert_eq!((0..100).filter(|_| g.admit(t1)).count(), 5);
        // A long pause refills no more than the burst.
        let t2 = t1 + Duration::from_secs(60);
        assert_eq!((0..100).filter(|_| g.admit(t2)).count(), 10);
    }

    #[test]
    fn rate_zero_admits_nothing() {
        let mut g = InitGate::new(0);
        assert!(!g.admit(Instant::now()));
    }

    #[test]
    fn warns_on_the_first_refusal_then_every_ten_seconds_with_the_count() {
        let t0 = Instant::now();
        let mut g = InitGate::new(1);
        assert!(g.admit(t0));
        assert_eq!(g.report_due(t0), None, "nothing refused yet");
        assert!(!g.admit(t0));
        assert_eq!(g.report_due(t0), Some(1));
        for _ in 0..5 {
            assert!(!g.admit(t0));
        }
        assert_eq!(g.report_due(t0 + Duration::from_secs(9)), None);
        assert_eq!(g.report_due(t0 + WARN_EVERY), Some(5));
    }
}
