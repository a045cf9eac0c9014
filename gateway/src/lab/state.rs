//! The state file of a lab: what it made, so `vpngw lab down` can remove a kept lab (or
//! one whose process was killed). Written as soon as the first namespace exists, removed
//! when the lab tears itself down.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::LabError;

/// Every lab namespace is named `vpngwlab-<pid>-<host>`: outside the test harness's
/// `vpngwt-` sweep, so a kept lab survives test runs.
pub const NS_PREFIX: &str = "vpngwlab-";

/// The veth end a `lab cloud` put into another namespace, and its route.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Attachment {
    /// `None`: the root namespace.
    pub netns: Option<String>,
    pub ifname: String,
    pub route: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct LabState {
    /// The lab process.
    pub pid: u32,
    /// Left running on purpose (`--keep`).
    pub kept: bool,
    pub namespaces: Vec<String>,
    /// PIDs of the daemons the lab started (all inside its namespaces).
    pub pids: Vec<u32>,
    pub work_dir: PathBuf,
    pub attachment: Option<Attachment>,
}

/// The state file of this process's lab; removed on drop unless [`StateFile::keep`].
#[derive(Debug)]
pub struct StateFile {
    path: PathBuf,
    pub state: LabState,
    kept: bool,
}

impl StateFile {
    pub fn create(dir: &Path, state: LabState) -> Result<Self, LabError> {
        use std::os::unix::fs::DirBuilderExt as _;
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| LabError::io(format!("create state dir {}", dir.display()), e))?;
        let file = StateFile {
            path: dir.join(format!("lab-{}.json", state.pid)),
            state,
            kept: false,
        };
        file.save()?;
        Ok(file)
    }

    pub fn save(&self) -> Result<(), LabError> {
        let text = serde_json::to_string_pretty(&self.state)
            .map_err(|e| LabError::Invalid(format!("lab state: {e}")))?;
        std::fs::write(&self.path, text)
            .map_err(|e| LabError::io(format!("write {}", self.path.display()), e))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Marks the lab kept and leaves the file for `vpngw lab down`.
    pub fn keep(mut self) -> Result<(), LabError> {
        self.state.kept = true;
        self.save()?;
        self.kept = true;
        Ok(())
    }
}

impl Drop for StateFile {
    fn drop(&mut self) {
        if !self.kept {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Every state file in `dir` (unreadable ones are reported and skipped).
pub fn load_all(dir: &Path) -> Result<Vec<(PathBuf, LabState)>, LabError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(LabError::io(format!("read {}", dir.display()), e)),
    };
    let mut labs = Vec::new();
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let parsed = std::fs::read_to_string(&path)
            .map_err(|e| e.to_string())
            .and_then(|t| serde_json::from_str::<LabState>(&t).map_err(|e| e.to_string()));
        match parsed {
            Ok(state) => labs.push((path, state)),
            Err(e) => eprintln!("vpngw lab: skipping {}: {e}", path.display()),
        }
    }
    labs.sort_by_key(|(_, s)| s.pid);
    Ok(labs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_file_round_trips_and_goes_unless_kept() {
        let dir = tempfile::tempdir().unwrap();
        let state = LabState {
            pid: 4242,
            kept: false,
            namespaces: vec!["vpngwlab-4242-cloud_gw".into()],
            pids: vec![7],
            work_dir: "/tmp/x".into(),
            attachment: Some(Attachment {
                netns: None,
                ifname: "vlab4242".into(),
                route: "203.0.113.0/24".into(),
            }),
        };
        let file = StateFile::create(dir.path(), state.clone()).unwrap();
        let loaded = load_all(dir.path()).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].1, state);
        drop(file);
        assert!(load_all(dir.path()).unwrap().is_empty());

        let file = StateFile::create(dir.path(), state.clone()).unwrap();
        file.keep().unwrap();
        let loaded = load_all(dir.path()).unwrap();
        assert!(loaded[0].1.kept);
        std::fs::write(dir.path().join("junk.json"), "{").unwrap();
        assert_eq!(load_all(dir.path()).unwrap().len(), 1, "junk is skipped");
        assert!(load_all(&dir.path().join("none")).unwrap().is_empty());
    }
}
