//! Progress lines (`[  1.2s] starting ...`) and the step wrapper that turns a harness
//! error into a [`LabError`] naming the step and the logs.

use std::io::Write as _;
use std::path::PathBuf;
use std::time::Instant;

use super::LabError;

pub struct Progress {
    start: Instant,
    logs: PathBuf,
}

impl Progress {
    pub fn new(logs: PathBuf) -> Self {
        Progress {
            start: Instant::now(),
            logs,
        }
    }

    /// Prints one progress line with the time since the start.
    pub fn say(&self, text: &str) {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out, "[{:>6.1}s] {text}", self.start.elapsed().as_secs_f64());
        let _ = out.flush();
    }

    /// Announces `name`, runs it, and names it in the error if it fails.
    pub fn step<T>(
        &self,
        name: &str,
        f: impl FnOnce() -> netlab::Result<T>,
    ) -> Result<T, LabError> {
        if netlab::stop::requested() {
            return Err(LabError::Interrupted { step: name.into() });
        }
        self.say(name);
        let result = f();
        if netlab::stop::requested() {
            return Err(LabError::Interrupted { step: name.into() });
        }
        result.map_err(|source| LabError::Step {
            step: name.into(),
            after: self.start.elapsed(),
            logs: self.logs.clone(),
            source: Box::new(source),
        })
    }
}
