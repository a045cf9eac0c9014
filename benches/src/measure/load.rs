//! Is the machine busy with other work? A quiet window before and after each run shows it.

use std::time::Duration;

use serde::Serialize;

use crate::error::{BenchError, Result};

/// A run is disturbed when more than this share of all CPUs was busy while nothing of
/// the benchmark was sending traffic.
pub const DISTURBED_BUSY_PERCENT: f64 = 20.0;

/// How long each quiet window lasts.
pub const WINDOW: Duration = Duration::from_millis(1000);

/// Aggregate CPU time counters from the first line of `/proc/stat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CpuTimes {
    pub busy: u64,
    pub total: u64,
}

impl CpuTimes {
    /// Parses the `cpu ...` line of `/proc/stat`. Idle and iowait count as not busy.
    pub fn parse(proc_stat: &str) -> Result<Self> {
        let what = "/proc/stat";
        let line = proc_stat
            .lines()
            .find(|l| l.starts_with("cpu "))
            .ok_or_else(|| BenchError::parse(what, "no aggregate cpu line"))?;
        let values: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .map(str::parse)
            .collect::<std::result::Result<_, _>>()
            .map_err(|_| BenchError::parse(what, format!("bad number in {line:?}")))?;
        // user nice system idle iowait irq softirq steal [guest guest_nice]; guest time is
        // already included in user, so only the first eight are summed.
        if values.len() < 8 {
            return Err(BenchError::parse(
                what,
                format!("too few fields in {line:?}"),
            ));
        }
        let counted = values.get(..8).unwrap_or_default();
        let total: u64 = counted.iter().sum();
        let idle = counted.get(3).copied().unwrap_or(0) + counted.get(4).copied().unwrap_or(0);
        Ok(CpuTimes {
            busy: total.saturating_sub(idle),
            total,
        })
    }

    pub fn read() -> Result<Self> {
        let text =
            std::fs::read_to_string("/proc/stat").map_err(|e| BenchError::io("/proc/stat", e))?;
        Self::parse(&text)
    }

    /// Share of all CPUs that was busy between `earlier` and `self`, in percent.
    pub fn busy_percent_since(&self, earlier: &CpuTimes) -> Option<f64> {
        let total = self.total.checked_sub(earlier.total)?;
        let busy = self.busy.checked_sub(earlier.busy)?;
        if total == 0 {
            return None;
        }
        Some(busy as f64 / total as f64 * 100.0)
    }
}

/// The 1-minute load average from `/proc/loadavg` text.
pub fn parse_loadavg(text: &str) -> Result<f64> {
    text.split_whitespace()
        .next()
        .and_then(|v| v.parse().ok())
        .ok_or_else(|| BenchError::parse("/proc/loadavg", format!("{text:?}")))
}

/// Busy percent of all CPUs over a window in which the caller sends nothing.
pub fn quiet_window_busy_percent(window: Duration) -> Result<f64> {
    let before = CpuTimes::read()?;
    std::thread::sleep(window);
    let after = CpuTimes::read()?;
    after
        .busy_percent_since(&before)
        .ok_or_else(|| BenchError::parse("/proc/stat", "counters did not advance"))
}

/// What the machine was doing around one run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct LoadCheck {
    /// Busy share of all CPUs in the quiet window before the run.
    pub busy_before_percent: f64,
    /// Busy share of all CPUs in the quiet window right after the run.
    pub busy_after_percent: f64,
    /// 1-minute load average when the run started.
    pub loadavg_before: f64,
    pub disturbed: bool,
}

impl LoadCheck {
    pub fn new(busy_before_percent: f64, busy_after_percent: f64, loadavg_before: f64) -> Self {
        LoadCheck {
            busy_before_percent,
            busy_after_percent,
            loadavg_before,
            disturbed: busy_before_percent > DISTURBED_BUSY_PERCENT
                || busy_after_percent > DISTURBED_BUSY_PERCENT,
        }
    }
}

/// Samples the quiet window before a run (and the load average).
pub fn before_run() -> Result<(f64, f64)> {
    let text =
        std::fs::read_to_string("/proc/loadavg").map_err(|e| BenchError::io("/proc/loadavg", e))?;
    let loadavg = parse_loadavg(&text)?;
    Ok((quiet_window_busy_percent(WINDOW)?, loadavg))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_proc_stat_line() {
        let t = CpuTimes::parse(include_str!("../../testdata/proc-stat.txt")).unwrap();
        // cpu  581954 30149 79560 129049 545 0 2522 1017 0 0
        let total = 581_954 + 30_149 + 79_560 + 129_049 + 545 + 2_522 + 1_017;
        assert_eq!(t.total, total);
        assert_eq!(t.busy, total - 129_049 - 545);
    }

    #[test]
    fn busy_share_between_samples() {
        let a = CpuTimes {
            busy: 100,
            total: 1000,
        };
        let b = CpuTimes {
            busy: 150,
            total: 1200,
        };
        assert_eq!(b.busy_percent_since(&a), Some(25.0));
        assert_eq!(a.busy_percent_since(&a), None);
        assert_eq!(a.busy_percent_since(&b), None, "counters never go back");
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(CpuTimes::parse("intr 1 2 3").is_err());
        assert!(CpuTimes::parse("cpu  1 2 x 4 5 6 7 8").is_err());
        assert!(CpuTimes::parse("cpu  1 2 3").is_err());
        assert!(parse_loadavg("").is_err());
    }

    #[test]
    fn real_loadavg() {
        let l = parse_loadavg(include_str!("../../testdata/proc-loadavg.txt")).unwrap();
        assert_eq!(l, 15.10);
    }

    #[test]
    fn disturbed_when_either_window_is_busy() {
        assert!(!LoadCheck::new(5.0, 10.0, 0.3).disturbed);
        assert!(LoadCheck::new(35.0, 10.0, 0.3).disturbed);
        assert!(LoadCheck::new(5.0, 60.0, 0.3).disturbed);
    }
}
