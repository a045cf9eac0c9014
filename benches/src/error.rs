//! The harness's error type: what failed while setting up or measuring a candidate.

/// Why a benchmark step failed.
#[derive(Debug, thiserror::Error)]
pub enum BenchError {
    /// A namespace, process or tool operation of the e2e harness failed.
    #[error(transparent)]
    Harness(#[from] e2e::HarnessError),

    /// Reading or writing a file failed.
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },

    /// A /proc file or tool output did not have the expected shape.
    #[error("cannot parse {what}: {detail}")]
    Parse { what: String, detail: String },

    /// Options that cannot be run (unknown candidate, zero runs...).
    #[error("{0}")]
    Usage(String),

    /// SIGINT/SIGTERM/SIGHUP: the run stopped; what it had set up is torn down.
    #[error("interrupted")]
    Interrupted,

    /// The candidate was set up but its tunnel does not carry traffic.
    #[error("tunnel of {candidate} does not carry traffic: {detail}")]
    TunnelDown { candidate: String, detail: String },
}

impl BenchError {
    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> Self {
        BenchError::Io {
            context: context.into(),
            source,
        }
    }

    pub(crate) fn parse(what: impl Into<String>, detail: impl Into<String>) -> Self {
        BenchError::Parse {
            what: what.into(),
            detail: detail.into(),
        }
    }
}

/// Result of harness operations.
pub type Result<T, E = BenchError> = std::result::Result<T, E>;
