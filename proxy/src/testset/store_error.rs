//! What went wrong reading or writing a test set, for every part of the
//! store (the set's directory, its test files, atomic writes).

use std::path::{Path, PathBuf};

/// What went wrong reading or writing a test set.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid recplay/Keploy document: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: could not serialise: {message}")]
    Serialise { path: PathBuf, message: String },
}

pub(super) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}
