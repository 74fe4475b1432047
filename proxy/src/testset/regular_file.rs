//! Reading a file of a test set only when it is a regular file: a
//! directory, a FIFO that would block the reader or a dangling link where
//! a test file or mocks.yaml should be is named, never followed or waited on.

use std::fs;
use std::path::Path;

/// The bytes of `path`; `None` when there is no such file. Anything else
/// that is not a readable regular file (a directory, a FIFO that would
/// block the reader, a dangling link) is an error saying what it is.
pub(super) fn read_regular_file(path: &Path) -> Result<Option<Vec<u8>>, String> {
    if check_regular_file(path)?.is_none() {
        return Ok(None);
    }
    fs::read(path).map(Some).map_err(|e| e.to_string())
}

/// `Some(())` when `path` is a regular file (or a link to one), `None`
/// when there is no such file, else what it is instead.
pub(super) fn check_regular_file(path: &Path) -> Result<Option<()>, String> {
    let meta = match fs::symlink_metadata(path) {
        Ok(meta) => meta,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let meta = if meta.file_type().is_symlink() {
        fs::metadata(path).map_err(|e| format!("is a link that cannot be followed: {e}"))?
    } else {
        meta
    };
    if meta.is_dir() {
        return Err("is a directory, not a file".to_string());
    }
    if !meta.is_file() {
        return Err("is not a regular file".to_string());
    }
    Ok(Some(()))
}
