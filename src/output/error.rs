//! Errors of the output writers and readers. Every message names the file.

use std::path::PathBuf;

/// What went wrong while writing or reading a result file.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// The operating system refused a read or write.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A signal does not have one value per sweep point.
    #[error("{path}: signal `{signal}` has {len} values but the sweep has {expected} points")]
    LengthMismatch {
        path: PathBuf,
        signal: String,
        len: usize,
        expected: usize,
    },

    /// A raw file that could not be understood.
    #[error("{path}:{line}: {message}")]
    RawFormat {
        path: PathBuf,
        /// 1-based line of the problem (for binary data: the `Binary:` line).
        line: usize,
        message: String,
    },

    /// A JSON file that could not be written or read.
    #[error("{path}: {source}")]
    Json {
        path: PathBuf,
        #[source]
        source: serde_json::Error,
    },

    /// A figure asked for a signal that the waveforms do not hold.
    #[error("{path}: no signal named `{signal}` (available: {available})")]
    MissingSignal {
        path: PathBuf,
        signal: String,
        available: String,
    },

    /// Figure inputs that cannot be drawn (bad time constant, mismatched series).
    #[error("{path}: {message}")]
    InvalidFigureInput { path: PathBuf, message: String },

    /// plotters failed while laying out or drawing the figure.
    #[error("{path}: drawing failed: {message}")]
    Drawing { path: PathBuf, message: String },
}

impl OutputError {
    pub(crate) fn io(path: &std::path::Path, source: std::io::Error) -> Self {
        OutputError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}
