//! Scratch directories for configs and logs, kept for inspection when a test fails.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use crate::error::{HarnessError, Result};

/// Set this variable (to anything) to keep every work directory after the run.
pub const KEEP_ENV: &str = "E2E_KEEP";

static KEEP_ALL: AtomicBool = AtomicBool::new(false);

/// From now on every work directory stays, silently: for an owner that removes their
/// common parent (`TMPDIR`) itself, as `vpngw lab` does with its work dir.
pub fn keep_all_work_dirs() {
    KEEP_ALL.store(true, Ordering::SeqCst);
}

/// A temporary directory removed on drop, unless the thread is panicking or
/// [`KEEP_ENV`] is set: then it stays and its path is printed, logs and all.
#[derive(Debug)]
pub struct WorkDir {
    dir: Option<tempfile::TempDir>,
    path: PathBuf,
}

impl WorkDir {
    /// Creates `/tmp/vpngwt-<label>-XXXX` (honours `TMPDIR`).
    pub fn new(label: &str) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix(&format!("vpngwt-{label}-"))
            .tempdir()
            .map_err(|e| HarnessError::io("create work directory", e))?;
        let path = dir.path().to_path_buf();
        Ok(WorkDir {
            dir: Some(dir),
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// `path()/name`.
    pub fn join(&self, name: &str) -> PathBuf {
        self.path.join(name)
    }

    /// Writes `contents` to `path()/name` and returns the full path.
    pub fn write(&self, name: &str, contents: &str) -> Result<PathBuf> {
        let path = self.join(name);
        std::fs::write(&path, contents)
            .map_err(|e| HarnessError::io(format!("write {}", path.display()), e))?;
        Ok(path)
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        if KEEP_ALL.load(Ordering::SeqCst) {
            if let Some(dir) = self.dir.take() {
                let _ = dir.keep();
            }
            return;
        }
        if std::thread::panicking() || std::env::var_os(KEEP_ENV).is_some() {
            if let Some(dir) = self.dir.take() {
                let kept = dir.keep();
                eprintln!("netlab: kept work directory {}", kept.display());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn removed_on_drop_and_kept_on_panic() {
        let dir = WorkDir::new("unit").unwrap();
        let path = dir.write("a.txt", "hello").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "hello");
        let root = dir.path().to_path_buf();
        drop(dir);
        assert!(!root.exists());

        let (tx, rx) = std::sync::mpsc::channel();
        let result = std::panic::catch_unwind(move || {
            let dir = WorkDir::new("unit-panic").unwrap();
            tx.send(dir.path().to_path_buf()).unwrap();
            panic!("deliberate panic to check that logs are kept");
        });
        assert!(result.is_err());
        let kept = rx.recv().unwrap();
        assert!(kept.exists());
        std::fs::remove_dir_all(kept).unwrap();
    }
}
