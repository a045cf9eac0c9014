//! Config errors: each names the file, the field path and the reason; all are collected.

use std::fmt;
use std::path::PathBuf;

/// One problem found in a config file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Issue {
    /// Field path such as `connections[0].tunnels[1].psk` (or `VPNGW_...` for an env override).
    pub path: String,
    pub reason: String,
}

impl fmt::Display for Issue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.reason)
    }
}

/// Why a config could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{file}: cannot read: {source}")]
    Read {
        file: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{file}: TOML syntax: {message}")]
    Syntax { file: PathBuf, message: String },
    #[error("{}", render_invalid(file, issues))]
    Invalid { file: PathBuf, issues: Vec<Issue> },
}

impl ConfigError {
    /// Every problem as `file: path: reason` lines.
    pub fn lines(&self) -> Vec<String> {
        match self {
            ConfigError::Invalid { file, issues } => issues
                .iter()
                .map(|i| format!("{}: {i}", file.display()))
                .collect(),
            other => vec![other.to_string()],
        }
    }

    /// The field-level issues (empty for read or syntax errors).
    pub fn issues(&self) -> &[Issue] {
        match self {
            ConfigError::Invalid { issues, .. } => issues,
            _ => &[],
        }
    }
}

fn render_invalid(file: &std::path::Path, issues: &[Issue]) -> String {
    issues
        .iter()
        .map(|i| format!("{}: {i}", file.display()))
        .collect::<Vec<_>>()
        .join("\n")
}

/// Collects issues while walking the config, tracking the current field path.
#[derive(Default)]
pub struct Issues {
    list: Vec<Issue>,
}

impl Issues {
    pub fn push(&mut self, path: impl Into<String>, reason: impl Into<String>) {
        self.list.push(Issue {
            path: path.into(),
            reason: reason.into(),
        });
    }

    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    pub fn into_vec(self) -> Vec<Issue> {
        self.list
    }
}
