//! The FSM timers as deadlines on the caller's clock.

use std::time::Instant;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Timer {
    ConnectRetry = 0,
    Hold = 1,
    Keepalive = 2,
    IdleHold = 3,
}

const ALL: [Timer; 4] = [
    Timer::ConnectRetry,
    Timer::Hold,
    Timer::Keepalive,
    Timer::IdleHold,
];

#[derive(Debug, Clone, Default)]
pub(crate) struct Timers {
    deadlines: [Option<Instant>; 4],
}

impl Timers {
    pub(crate) fn set(&mut self, timer: Timer, at: Instant) {
        if let Some(d) = self.deadlines.get_mut(timer as usize) {
            *d = Some(at);
        }
    }

    pub(crate) fn stop(&mut self, timer: Timer) {
        if let Some(d) = self.deadlines.get_mut(timer as usize) {
            *d = None;
        }
    }

    pub(crate) fn is_running(&self, timer: Timer) -> bool {
        self.deadlines
            .get(timer as usize)
            .is_some_and(Option::is_some)
    }

    pub(crate) fn stop_all(&mut self) {
        self.deadlines = [None; 4];
    }

    pub(crate) fn next(&self) -> Option<Instant> {
        self.deadlines.iter().flatten().min().copied()
    }

    /// The earliest timer due at `now`, cleared so it fires once.
    pub(crate) fn take_expired(&mut self, now: Instant) -> Option<Timer> {
        let (timer, _) = ALL
            .iter()
            .filter_map(|&t| Some((t, self.deadlines.get(t as usize).copied().flatten()?)))
            .filter(|&(_, at)| at <= now)
            .min_by_key(|&(_, at)| at)?;
        self.stop(timer);
        Some(timer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn earliest_first_and_once() {
        let t0 = Instant::now();
        let mut t = Timers::default();
        t.set(Timer::Hold, t0 + Duration::from_secs(9));
        t.set(Timer::Keepalive, t0 + Duration::from_secs(3));
        assert_eq!(t.next(), Some(t0 + Duration::from_secs(3)));
        assert_eq!(t.take_expired(t0), None);
        let late = t0 + Duration::from_secs(10);
        assert_eq!(t.take_expired(late), Some(Timer::Keepalive));
        assert_eq!(t.take_expired(late), Some(Timer::Hold));
        assert_eq!(t.take_expired(late), None);
        assert!(!t.is_running(Timer::Hold));
    }
}
