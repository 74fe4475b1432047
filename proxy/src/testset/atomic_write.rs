//! Writing a file of a test set so that a reader, or a crash, sees the old
//! file or the new one, never a mix: a temp file beside it, then a rename.

use std::fs;
use std::io::Write;
use std::path::Path;

use super::store_error::{io_err, StoreError};

/// Writes `bytes` to `path` through a temp file in the same directory and a
/// rename, so readers see the old file or the new one, never a mix.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    write_through_temp(path, true, |out| out.write_all(bytes))
}

/// [`write_atomically`] without the fsync: atomic against a crash of the
/// process (the page cache survives it), not against a power cut.
pub fn write_atomically_unsynced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    write_through_temp(path, false, |out| out.write_all(bytes))
}

/// [`write_atomically`] of what `fill` writes, for a file too big to be
/// built in memory first (a JUnit report of 100,000 tests). An error of
/// `fill` is reported against the temp file, which is removed.
pub fn write_atomically_with(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), StoreError> {
    write_through_temp(path, true, fill)
}

fn write_through_temp(
    path: &Path,
    fsync: bool,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let written = (|| {
        let file = fs::File::create(&tmp).map_err(io_err(&tmp))?;
        let mut out = std::io::BufWriter::new(file);
        fill(&mut out).map_err(io_err(&tmp))?;
        let file = out.into_inner().map_err(|e| io_err(&tmp)(e.into_error()))?;
        if fsync {
            file.sync_data().map_err(io_err(&tmp))?;
        }
        drop(file);
        fs::rename(&tmp, path).map_err(io_err(path))
    })();
    // A write that failed (a full disk) leaves no temp file behind.
    if written.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    written
}
