//! CPU time a process used, from the utime+stime of `/proc/<pid>/stat` (all its threads).

use std::time::Instant;

use crate::error::{BenchError, Result};

/// utime + stime of a process in clock ticks, parsed from `/proc/<pid>/stat` text.
pub fn parse_stat_ticks(stat: &str) -> Result<u64> {
    let what = "/proc/<pid>/stat";
    // The command name (field 2) is in parentheses and may itself contain spaces or
    // parentheses: the fields we want are counted from the last ')'.
    let rest = stat
        .rfind(')')
        .and_then(|i| stat.get(i + 1..))
        .ok_or_else(|| BenchError::parse(what, "no ')' after the command name"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ')' comes field 3 (state); utime and stime are fields 14 and 15.
    let field = |index: usize, name: &str| -> Result<u64> {
        fields
            .get(index)
            .ok_or_else(|| BenchError::parse(what, format!("no {name} field")))?
            .parse()
            .map_err(|_| BenchError::parse(what, format!("{name} is not a number")))
    };
    let utime = field(11, "utime")?;
    let stime = field(12, "stime")?;
    Ok(utime.saturating_add(stime))
}

/// The process's CPU time so far, in clock ticks.
pub fn process_ticks(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).map_err(|e| BenchError::io(path, e))?;
    parse_stat_ticks(&text)
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`, 100 on Linux).
pub fn ticks_per_second() -> f64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if hz > 0 {
        hz as f64
    } else {
        100.0
    }
}

/// CPU use as a percentage of one core: 100 means one core busy the whole time; a
/// multi-threaded process can exceed it.
pub fn percent_of_core(ticks: u64, hz: f64, elapsed_secs: f64) -> Option<f64> {
    if elapsed_secs <= 0.0 || hz <= 0.0 {
        return None;
    }
    Some(ticks as f64 / hz / elapsed_secs * 100.0)
}

/// Measures the CPU use of some processes over an interval.
#[derive(Debug)]
pub struct CpuMeter {
    start: Vec<Option<(u32, u64)>>,
    started: Instant,
}

impl CpuMeter {
    /// Takes the starting sample; `None` entries (no process to attribute) stay `None`.
    pub fn start(pids: &[Option<u32>]) -> Result<Self> {
        let start = pids
            .iter()
            .map(|pid| pid.map(|p| process_ticks(p).map(|t| (p, t))).transpose())
            .collect::<Result<_>>()?;
        Ok(CpuMeter {
            start,
            started: Instant::now(),
        })
    }

    /// Percent of one core each process used since [`CpuMeter::start`].
    pub fn finish(&self) -> Result<Vec<Option<f64>>> {
        let elapsed = self.started.elapsed().as_secs_f64();
        let hz = ticks_per_second();
        self.start
            .iter()
            .map(|entry| match entry {
                None => Ok(None),
                Some((pid, before)) => {
                    let now = process_ticks(*pid)?;
                    Ok(percent_of_core(now.saturating_sub(*before), hz, elapsed))
                }
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_stat_line() {
        // Captured from a running cargo: utime 43, stime 38.
        let stat = include_str!("../../testdata/proc-pid-stat-cargo.txt");
        assert_eq!(parse_stat_ticks(stat).unwrap(), 43 + 38);
    }

    #[test]
    fn command_names_with_spaces_and_parens() {
        let stat = "42 (a) b) (c) S 1 42 42 0 -1 4194560 10 0 0 0 7 3 0 0 20 0 1 0 100 0 0";
        assert_eq!(parse_stat_ticks(stat).unwrap(), 10);
    }

    #[test]
    fn truncated_or_garbage_stat_is_an_error() {
        assert!(parse_stat_ticks("").is_err());
        assert!(parse_stat_ticks("1 (x) S 1 2 3").is_err());
        assert!(parse_stat_ticks("1 (x) S 1 1 1 0 -1 0 0 0 0 0 x 3").is_err());
    }

    #[test]
    fn own_process_uses_cpu() {
        let before = process_ticks(std::process::id()).unwrap();
        let mut x = 0u64;
        let start = Instant::now();
        while start.elapsed().as_millis() < 150 {
            x = x.wrapping_mul(31).wrapping_add(7);
        }
        std::hint::black_box(x);
        let after = process_ticks(std::process::id()).unwrap();
        assert!(after > before, "{before} -> {after}");
    }

    #[test]
    fn percent_of_one_core() {
        assert_eq!(percent_of_core(200, 100.0, 2.0), Some(100.0));
        assert_eq!(percent_of_core(50, 100.0, 1.0), Some(50.0));
        assert_eq!(percent_of_core(50, 100.0, 0.0), None);
    }
}
