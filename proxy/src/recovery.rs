//! Recovering what a crashed recording left: its journal becomes test
//! files, and half-written temp files go.
//!
//! Every command that reads or writes test sets runs this first. Each
//! complete record becomes its test file exactly once: the record carries
//! its test's name, and a test file that exists already (written before the
//! crash) is kept. A torn tail — a write cut by the crash — is cut and
//! counted. A journal still locked belongs to a recording in progress and
//! is left alone.

use std::fs;
use std::path::Path;

use crate::http::materializer::{materialize, MaterializeError, Outcome};
use crate::journal::{self, JournalError, JournalReader, Next};
use crate::testset::store::list_test_sets;
use crate::testset::{StoreError, TestSetDir};

/// What recovery did to one test set.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The test set's folder name.
    pub set: String,
    /// A recording into it is still running (its journal is locked).
    pub in_use: bool,
    /// A journal was found.
    pub had_journal: bool,
    /// Test files written from the journal.
    pub written: u64,
    /// Records whose test file existed already.
    pub already_there: u64,
    /// Records that could not become tests, and why.
    pub skipped: Vec<String>,
    /// The torn tail cut from the journal: its size in bytes and what was
    /// found there.
    pub torn: Option<(u64, String)>,
    /// Temp files of interrupted writes that were removed.
    pub temp_files_removed: u64,
}

impl Recovered {
    /// True when there is nothing to tell.
    pub fn is_quiet(&self) -> bool {
        !self.in_use && !self.had_journal && self.temp_files_removed == 0
    }
}

/// Why recovery could not run.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("{path}: {source}")]
    Io {
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}

impl From<MaterializeError> for RecoveryError {
    fn from(e: MaterializeError) -> Self {
        match e {
            MaterializeError::Journal(e) => RecoveryError::Journal(e),
            MaterializeError::Store(e) => RecoveryError::Store(e),
        }
    }
}

/// Recovers every test set under `keploy_dir` (nothing when it does not
/// exist); returns one entry per test set that had something to recover.
pub fn recover_all(keploy_dir: &Path) -> Result<Vec<Recovered>, RecoveryError> {
    if !keploy_dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut recovered = Vec::new();
    for set in list_test_sets(keploy_dir)? {
        let done = recover_test_set(&set)?;
        if !done.is_quiet() {
            recovered.push(done);
        }
    }
    Ok(recovered)
}

/// Recovers one test set.
pub fn recover_test_set(dir: &TestSetDir) -> Result<Recovered, RecoveryError> {
    let mut done = Recovered {
        set: dir.name(),
        ..Recovered::default()
    };
    let path = journal::path_in(dir.root());
    let file = match fs::OpenOptions::new().read(true).write(true).open(&path) {
        Ok(file) => Some(file),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(source) => return Err(RecoveryError::Io { path, source }),
    };
    if let Some(file) = file {
        match journal::lock(&file, &path) {
            Ok(()) => {}
            Err(JournalError::Locked { .. }) => {
                done.in_use = true;
                return Ok(done);
            }
            Err(e) => return Err(e.into()),
        }
        done.had_journal = true;
        let read = file.try_clone().map_err(|source| RecoveryError::Io {
            path: path.clone(),
            source,
        })?;
        let mut reader = JournalReader::from_file(read, &path)?;
        loop {
            match reader.next_record()? {
                Next::Record(record) => match materialize(&record, dir)? {
                    Outcome::Written(_) => done.written += 1,
                    Outcome::AlreadyThere => done.already_there += 1,
                    Outcome::Skipped(why) => done.skipped.push(why),
                },
                Next::End => break,
                Next::Torn { bytes, reason, .. } => {
                    done.torn = Some((bytes, reason));
                    break;
                }
            }
        }
        // The tests are on disk before the journal that vouches for them
        // goes.
        dir.sync()?;
        fs::remove_file(&path).map_err(|source| RecoveryError::Io {
            path: path.clone(),
            source,
        })?;
        drop(file);
    }
    done.temp_files_removed = remove_temp_files(dir)?;
    Ok(done)
}

/// Removes `.NAME.tmp-PID` files of writes a crash interrupted, in the
/// test set and its tests folder.
fn remove_temp_files(dir: &TestSetDir) -> Result<u64, RecoveryError> {
    let mut removed = 0;
    for folder in [dir.root().to_path_buf(), dir.root().join("tests")] {
        let entries = match fs::read_dir(&folder) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(source) => {
                return Err(RecoveryError::Io {
                    path: folder,
                    source,
                })
            }
        };
        for entry in entries.flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') && name.contains(".tmp-") && entry.path().is_file() {
                let path = entry.path();
                fs::remove_file(&path).map_err(|source| RecoveryError::Io { path, source })?;
                removed += 1;
            }
        }
    }
    Ok(removed)
}
