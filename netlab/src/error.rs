//! The one error type of the harness: every failure says what was run and what came back.

use std::path::PathBuf;
use std::time::Duration;

/// Why a harness operation failed.
#[derive(Debug, thiserror::Error)]
pub enum HarnessError {
    /// A command could not be started at all (binary missing, permission...).
    #[error("cannot run `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },

    /// A command ran and exited unsuccessfully.
    #[error("`{command}` failed ({status})\nstdout: {stdout}\nstderr: {stderr}")]
    Command {
        command: String,
        status: String,
        stdout: String,
        stderr: String,
    },

    /// A file-system or process operation failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// A tool the tests need is not installed.
    #[error("`{tool}` not found: {hint}")]
    MissingTool { tool: String, hint: String },

    /// Output of a tool did not have the expected shape.
    #[error("cannot parse {what}: {detail}")]
    Parse { what: String, detail: String },

    /// A condition did not become true in time.
    #[error("timed out after {waited:?} waiting for {what}{}", last_seen(.last))]
    Timeout {
        what: String,
        waited: Duration,
        /// The last observation, to say what the state was when we gave up.
        last: Option<String>,
    },

    /// A background process ended while it should still be running.
    #[error("{name} exited early ({status}); log {log:?}:\n{tail}")]
    ProcessExited {
        name: String,
        status: String,
        log: PathBuf,
        tail: String,
    },

    /// Something failed around a daemon; its log tail says why.
    #[error("{source}\n--- {daemon} log {log:?} (last lines) ---\n{tail}")]
    WithLog {
        daemon: String,
        log: PathBuf,
        tail: String,
        #[source]
        source: Box<HarnessError>,
    },

    /// A stop was requested (SIGINT/SIGTERM, see [`crate::stop`]) while waiting.
    #[error("interrupted while waiting for {0}")]
    Interrupted(String),

    /// A topology or configuration request that cannot be built.
    #[error("invalid setup: {0}")]
    Invalid(String),
}

fn last_seen(last: &Option<String>) -> String {
    match last {
        Some(seen) => format!("; last seen:\n{seen}"),
        None => String::new(),
    }
}

impl HarnessError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        HarnessError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn parse(what: impl Into<String>, detail: impl Into<String>) -> Self {
        HarnessError::Parse {
            what: what.into(),
            detail: detail.into(),
        }
    }
}

/// Result of harness operations.
pub type Result<T, E = HarnessError> = std::result::Result<T, E>;
