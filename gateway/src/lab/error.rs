//! What can go wrong in a lab, each error naming the step and where the logs are.

use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, thiserror::Error)]
pub enum LabError {
    /// A step of the lab failed; everything was torn down, the logs stay.
    #[error("step \"{step}\" failed after {:.1}s: {source}\nlogs: {}", .after.as_secs_f64(), .logs.display())]
    Step {
        step: String,
        after: Duration,
        logs: PathBuf,
        #[source]
        source: Box<netlab::HarnessError>,
    },

    /// SIGINT/SIGTERM arrived; everything was torn down.
    #[error("interrupted during \"{step}\"; lab torn down")]
    Interrupted { step: String },

    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// Bad options or an impossible request.
    #[error("{0}")]
    Invalid(String),
}

impl LabError {
    pub fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        LabError::Io {
            context: context.into(),
            source,
        }
    }
}
