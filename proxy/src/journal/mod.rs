//! The recording journal: one append-only file per test set that every
//! finished exchange is written to before its client gets the last bytes.
//!
//! Creating a file per exchange on the traffic's path costs more than the
//! proxying itself, and a queue in memory in front of those files is lost
//! to a kill -9. The journal is what the hot path writes instead: framed
//! records (see [`record`]) appended with group commit ([`writer`]): the
//! exchange's own thread writes every record gathered so far with one
//! `write`, no fsync (the page cache survives the death of the process). The Keploy
//! files are made from it behind the traffic, and after a crash by the next
//! command on the test set ([`reader`] tells complete records from a torn
//! tail).
//!
//! # Layout
//! - [`record`]: the frame (`[len][crc32c][kind][payload]`) and the field
//!   layout of payloads.
//! - [`writer`]: [`JournalWriter`], the group-commit writer, and
//!   [`Progress`], how far the file is written, for whoever reads behind.
//! - [`reader`]: [`JournalReader`], record by record, torn tails reported.
//! - `recovered`: [`JournalRecovery`], what a recovery did with a journal.
//!
//! The file starts with a fixed header: [`MAGIC`] and [`FORMAT_VERSION`].

pub mod reader;
pub mod record;
mod recovered;
pub mod writer;

#[cfg(test)]
mod tests;

use std::fs::File;
use std::path::{Path, PathBuf};

pub use reader::{JournalReader, Next, Record};
pub use record::RecordKind;
pub use recovered::JournalRecovery;
pub use writer::{JournalWriter, Progress, Written};

/// The journal's name inside a test-set directory (hidden: it is not part
/// of the test set, and is gone once a recording finished).
pub const FILE_NAME: &str = ".recplay-journal";

/// The PostgreSQL recorder's journal in a test-set directory. It has one of
/// its own: the PostgreSQL and HTTP recorders start and finish on their
/// own, and each removes its journal once everything in it is on disk.
pub const PG_FILE_NAME: &str = ".recplay-pg-journal";

/// First bytes of every journal.
pub const MAGIC: [u8; 8] = *b"RECPLAYJ";

/// The record layout this build writes and reads.
pub const FORMAT_VERSION: u16 = 1;

/// Magic, version (u16 little-endian), six reserved zero bytes.
pub const HEADER_LEN: usize = 16;

/// The journal of the test set at `dir`.
pub fn path_in(dir: &Path) -> PathBuf {
    dir.join(FILE_NAME)
}

/// The PostgreSQL recorder's journal of the test set at `dir`.
pub fn pg_path_in(dir: &Path) -> PathBuf {
    dir.join(PG_FILE_NAME)
}

/// The header every journal starts with.
pub fn header() -> [u8; HEADER_LEN] {
    let mut header = [0; HEADER_LEN];
    header[..8].copy_from_slice(&MAGIC);
    header[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    header
}

/// Why a journal could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum JournalError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} is in use by another recplay recording into the same test set; stop it first, or record into another directory")]
    Locked { path: PathBuf },
    #[error("{path} already exists: a recording into this test set did not finish; run `recplay record`, `recplay test` or `recplay coverage` on its directory to recover it")]
    Exists { path: PathBuf },
    #[error("{path} is not a recplay journal (it does not start with the journal's magic bytes); move it away and try again")]
    NotAJournal { path: PathBuf },
    #[error("{path} has journal format version {found}, and this recplay reads version {supported}; recover it with the recplay that wrote it, or move it away")]
    Version {
        path: PathBuf,
        found: u16,
        supported: u16,
    },
    #[error("a journal record {0}")]
    Payload(String),
    #[error("the journal could not be written, so recording stopped: {0}")]
    Stopped(String),
}

pub(crate) fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> JournalError + '_ {
    move |source| JournalError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A journal a recording left behind, as a recovery finds it.
pub(crate) enum LeftBehind {
    /// There is none.
    Nothing,
    /// A recording still holds it.
    InUse,
    /// Opened for reading and writing, and locked for the recovery.
    Taken(File),
}

/// Opens and locks the journal at `path` for a recovery, if there is one
/// and no recording holds it.
pub(crate) fn take_left_behind(path: &Path) -> Result<LeftBehind, JournalError> {
    let file = match std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
    {
        Ok(file) => file,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(LeftBehind::Nothing),
        Err(source) => return Err(io_err(path)(source)),
    };
    match lock(&file, path) {
        Ok(()) => Ok(LeftBehind::Taken(file)),
        Err(JournalError::Locked { .. }) => Ok(LeftBehind::InUse),
        Err(e) => Err(e),
    }
}

/// Takes the journal's lock without waiting: two recplays writing one test
/// set would interleave their numbering, and a recovery must not read a
/// journal that is still being written.
pub(crate) fn lock(file: &File, path: &Path) -> Result<(), JournalError> {
    #[cfg(target_os = "linux")]
    {
        use rustix::fs::{flock, FlockOperation};
        match flock(file, FlockOperation::NonBlockingLockExclusive) {
            Ok(()) => Ok(()),
            Err(rustix::io::Errno::WOULDBLOCK) => Err(JournalError::Locked {
                path: path.to_path_buf(),
            }),
            Err(e) => Err(io_err(path)(e.into())),
        }
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = (file, path);
        Ok(())
    }
}
