use std::path::PathBuf;

/// Errors from the write-ahead log.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum WalError {
    #[error("WAL I/O error on {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("record of {len} bytes exceeds the WAL record limit of {max} bytes")]
    RecordTooLarge { len: usize, max: usize },
    #[error("the WAL is unusable after an earlier fsync or write failure: {reason}")]
    Poisoned { reason: String },
    #[error("the WAL is shut down")]
    Closed,
}

impl WalError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Self::Io {
            path: path.into(),
            source,
        }
    }

    /// Whether retrying the same append later may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Io { .. } | Self::Poisoned { .. } | Self::Closed => true,
            Self::RecordTooLarge { .. } => false,
        }
    }
}
