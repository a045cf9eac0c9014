//! Background processes owned by a test: stopped by PID (and reaped) when the guard drops.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use crate::command::describe;
use crate::error::{HarnessError, Result};

/// How long a process gets to exit after SIGTERM before SIGKILL. charon needs about 2 s
/// to send its DELETEs and tear down its TUN device.
const TERM_GRACE: Duration = Duration::from_secs(4);

/// A running child process. Dropping the guard sends SIGTERM to its PID, then SIGKILL
/// after a grace period, and waits for it, so nothing outlives the test (also on panic).
///
/// The child is only reaped by this guard, so its PID cannot be recycled while the
/// guard exists: signalling by PID never hits an unrelated process.
#[derive(Debug)]
pub struct ProcessGuard {
    name: String,
    child: Option<Child>,
    log: PathBuf,
}

impl ProcessGuard {
    /// Starts `cmd` with stdout and stderr appended to `log`.
    pub fn spawn(name: impl Into<String>, mut cmd: Command, log: &Path) -> Result<Self> {
        let name = name.into();
        let out = File::options()
            .create(true)
            .append(true)
            .open(log)
            .map_err(|e| HarnessError::io(format!("open log {}", log.display()), e))?;
        let err = out
            .try_clone()
            .map_err(|e| HarnessError::io("duplicate log handle", e))?;
        cmd.stdin(Stdio::null()).stdout(out).stderr(err);
        let child = cmd.spawn().map_err(|source| HarnessError::Spawn {
            command: describe(&cmd),
            source,
        })?;
        Ok(ProcessGuard {
            name,
            child: Some(child),
            log: log.to_path_buf(),
        })
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().map_or(0, Child::id)
    }

    /// The name given at spawn time.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The file receiving the process's stdout and stderr.
    pub fn log_path(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of the log, for failure messages.
    pub fn log_tail(&self, lines: usize) -> String {
        tail_of_file(&self.log, lines)
    }

    /// `Ok(())` while the process runs; an error with its log tail once it has exited.
    pub fn check_running(&mut self) -> Result<()> {
        let status = match self.child.as_mut() {
            Some(child) => child
                .try_wait()
                .map_err(|e| HarnessError::io(format!("wait for {}", self.name), e))?,
            None => return Err(self.exited("already stopped".into())),
        };
        match status {
            None => Ok(()),
            Some(status) => Err(self.exited(status.to_string())),
        }
    }

    fn exited(&self, status: String) -> HarnessError {
        HarnessError::ProcessExited {
            name: self.name.clone(),
            status,
            log: self.log.clone(),
            tail: self.log_tail(30),
        }
    }

    /// Stops the process (SIGTERM, then SIGKILL after a grace period) and returns how
    /// it ended. Idempotent: later calls return `None`.
    pub fn stop(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        signal(child.id(), libc::SIGTERM);
        let deadline = Instant::now() + TERM_GRACE;
        while Instant::now() < deadline {
            match child.try_wait() {
                Ok(Some(status)) => return Some(status),
                Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                Err(_) => break,
            }
        }
        signal(child.id(), libc::SIGKILL);
        child.wait().ok()
    }
}

impl Drop for ProcessGuard {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sends `sig` to `pid`; errors (already gone) are irrelevant to the callers.
pub(crate) fn signal(pid: u32, sig: libc::c_int) {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return;
    };
    if pid > 0 {
        // SAFETY: kill(2) has no memory-safety preconditions.
        unsafe {
            libc::kill(pid, sig);
        }
    }
}

/// Whether a process with this PID exists (zombies included).
pub fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill(2) with signal 0 only checks for existence and permission.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// The last `lines` lines of a text file (reads at most the last 64 KiB).
pub fn tail_of_file(path: &Path, lines: usize) -> String {
    const MAX: u64 = 64 * 1024;
    let Ok(mut file) = File::open(path) else {
        return format!("<no log at {}>", path.display());
    };
    let len = file.metadata().map(|m| m.len()).unwrap_or(0);
    if file.seek(SeekFrom::Start(len.saturating_sub(MAX))).is_err() {
        return String::new();
    }
    let mut bytes = Vec::new();
    if file.read_to_end(&mut bytes).is_err() {
        return String::new();
    }
    let text = String::from_utf8_lossy(&bytes);
    let all: Vec<&str> = text.lines().collect();
    all[all.len().saturating_sub(lines)..].join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn drop_kills_and_reaps_the_process() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("sleep.log");
        let mut cmd = Command::new("sleep");
        cmd.arg("600");
        let mut guard = ProcessGuard::spawn("sleep", cmd, &log).unwrap();
        let pid = guard.pid();
        assert!(pid_alive(pid));
        guard.check_running().unwrap();
        drop(guard);
        assert!(!pid_alive(pid), "pid {pid} still exists after drop");
    }

    #[test]
    fn early_exit_is_reported_with_the_log() {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("fail.log");
        let mut cmd = Command::new("sh");
        cmd.args(["-c", "echo first; echo last-words >&2; exit 7"]);
        let mut guard = ProcessGuard::spawn("failing", cmd, &log).unwrap();
        let err = loop {
            match guard.check_running() {
                Ok(()) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => break e.to_string(),
            }
        };
        assert!(err.contains("exit status: 7"), "{err}");
        assert!(err.contains("last-words"), "{err}");
    }

    #[test]
    fn tail_keeps_the_last_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.log");
        std::fs::write(&path, "a\nb\nc\nd\n").unwrap();
        assert_eq!(tail_of_file(&path, 2), "c\nd");
        assert_eq!(tail_of_file(&path, 10), "a\nb\nc\nd");
        assert!(tail_of_file(&dir.path().join("none"), 2).starts_with("<no log"));
    }
}
