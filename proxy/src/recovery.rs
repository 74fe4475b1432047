//! Recovering what a crashed recording left: its journal becomes test
//! files, its PostgreSQL journal becomes the mocks mocks.yaml is missing
//! ([`crate::pg::record::recover`]), and half-written temp files go.
//!
//! Every command that reads or writes test sets runs this first. Each
//! complete record becomes its test file exactly once: the record carries
//! its test's name, and a test file that exists already (written before the
//! crash) is kept. A torn tail — a write cut by the crash — is cut and
//! counted. A journal still locked belongs to a recording in progress and
//! is left alone.
//!
//! Redaction happens as tests are materialized, so the journal holds a
//! crashed recording's secrets until this runs. The redactor's map of
//! placeholders died with the recording: recovered tests get placeholders
//! numbered after every one the set's test files already hold, so no
//! number stands for two values.

use std::fs;
use std::path::Path;

use crate::http::materializer::{materialize, MaterializeError, Outcome};
use crate::journal::{self, JournalError, JournalReader, JournalRecovery, LeftBehind, Next};
use crate::pg::record::recover::{recover_pg_journal, PgRecovered, PgRecoveryError};
use crate::testset::redact::{RedactConfig, RedactError, Redactor};
use crate::testset::store::list_test_sets;
use crate::testset::{StoreError, TestSetDir};

/// What recovery did to one test set.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// The test set's folder name.
    pub set: String,
    /// What became of the HTTP journal's records as test files.
    pub journal: JournalRecovery,
    /// Temp files of interrupted writes that were removed.
    pub temp_files_removed: u64,
    /// What became of the PostgreSQL recorder's journal.
    pub pg: PgRecovered,
}

impl Recovered {
    /// True when there is nothing to tell.
    pub fn is_quiet(&self) -> bool {
        self.journal.is_quiet() && self.temp_files_removed == 0 && self.pg.journal.is_quiet()
    }
}

/// Why recovery could not run.
#[derive(Debug, thiserror::Error)]
pub enum RecoveryError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Pg(#[from] PgRecoveryError),
    #[error("keploy.yml record.redact: {0}")]
    Redact(#[from] RedactError),
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
/// exist), redacting with `redact`; returns one entry per test set that had
/// something to recover.
pub fn recover_all(
    keploy_dir: &Path,
    redact: &RedactConfig,
) -> Result<Vec<Recovered>, RecoveryError> {
    if !keploy_dir.is_dir() {
        return Ok(Vec::new());
    }
    let mut recovered = Vec::new();
    for set in list_test_sets(keploy_dir)? {
        let done = recover_test_set(&set, redact)?;
        if !done.is_quiet() {
            recovered.push(done);
        }
    }
    Ok(recovered)
}

/// Recovers one test set.
pub fn recover_test_set(
    dir: &TestSetDir,
    redact: &RedactConfig,
) -> Result<Recovered, RecoveryError> {
    let mut done = Recovered {
        set: dir.name(),
        ..Recovered::default()
    };
    let path = journal::path_in(dir.root());
    let file = match journal::take_left_behind(&path)? {
        LeftBehind::Nothing => None,
        LeftBehind::InUse => {
            done.journal.in_use = true;
            return Ok(done);
        }
        LeftBehind::Taken(file) => Some(file),
    };
    if let Some(file) = file {
        done.journal.had_journal = true;
        let read = file.try_clone().map_err(|source| RecoveryError::Io {
            path: path.clone(),
            source,
        })?;
        let mut reader = JournalReader::from_file(read, &path)?;
        let redactor = redactor_after_existing_tests(dir, redact)?;
        loop {
            match reader.next_record()? {
                Next::Record(record) => match materialize(&record, dir, &redactor)? {
                    Outcome::Written(_) => done.journal.written += 1,
                    Outcome::AlreadyThere => done.journal.already_there += 1,
                    Outcome::Skipped(why) => done.journal.skipped.push(why),
                },
                Next::End => break,
                Next::Torn { bytes, reason, .. } => {
                    done.journal.torn = Some((bytes, reason));
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
    done.pg = recover_pg_journal(dir)?;
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

/// A redactor whose placeholder numbers start after those the set's test
/// files already use.
fn redactor_after_existing_tests(
    dir: &TestSetDir,
    redact: &RedactConfig,
) -> Result<Redactor, RecoveryError> {
    let redactor = Redactor::new(redact)?;
    let tests = dir.root().join("tests");
    let entries = match fs::read_dir(&tests) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(redactor),
        Err(source) => {
            return Err(RecoveryError::Io {
                path: tests,
                source,
            })
        }
    };
    for entry in entries.flatten() {
        // An unreadable test file holds no numbers this could reuse.
        if let Ok(text) = fs::read_to_string(entry.path()) {
            redactor.reserve_existing(&text);
        }
    }
    Ok(redactor)
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use chrono::Utc;
    use http::{HeaderMap, Method, StatusCode, Version};

    use super::*;
    use crate::http::capture::CapturedBody;
    use crate::http::entry;
    use crate::http::exchange::{Exchange, RequestHead, ResponseHead};

    fn exchange(n: u64) -> Exchange {
        let now = Utc::now();
        let body = |text: &str| CapturedBody {
            bytes: text.as_bytes().to_vec(),
            size: text.len() as u64,
            sha256: None,
            complete: true,
        };
        Exchange {
            name: format!("test-{n}"),
            request: RequestHead {
                method: Method::GET,
                version: Version::HTTP_11,
                url: format!("http://127.0.0.1:1/item/{n}"),
                path_and_query: format!("/item/{n}"),
                headers: HeaderMap::new(),
                received_at: now,
                client: "127.0.0.1:2".parse().expect("addr"),
                connection: 1,
            },
            request_body: body(""),
            response: ResponseHead {
                status: StatusCode::OK,
                version: Version::HTTP_11,
                headers: HeaderMap::new(),
                received_at: now,
            },
            response_body: body(&format!("item {n}")),
            completed_at: now,
        }
    }

    #[test]
    fn each_record_becomes_its_test_once_and_the_torn_tail_and_temp_files_go() {
        let keploy = tempfile::tempdir().expect("tempdir");
        let set = TestSetDir::create_next(keploy.path()).expect("set");
        let tests = set.root().join("tests");
        let mut bytes = journal::header().to_vec();
        for n in 1..=3 {
            bytes.extend(entry::encode(&exchange(n), 1024));
        }
        bytes.extend(&entry::encode(&exchange(4), 1024)[..20]);
        fs::write(journal::path_in(set.root()), bytes).expect("journal");
        // Written before the crash: kept as it is, not written again.
        fs::write(tests.join("test-2.yaml"), "written before the crash").expect("test-2");
        let mut tmp = fs::File::create(tests.join(".test-3.yaml.tmp-999")).expect("tmp");
        tmp.write_all(b"half").expect("tmp");

        let done = recover_test_set(&set, &RedactConfig::default()).expect("recover");
        assert_eq!((done.journal.written, done.journal.already_there), (2, 1));
        assert_eq!(done.journal.torn.as_ref().map(|t| t.0), Some(20));
        assert_eq!(done.temp_files_removed, 1);
        assert!(!journal::path_in(set.root()).exists());
        let kept = fs::read_to_string(tests.join("test-2.yaml")).expect("test-2");
        assert_eq!(kept, "written before the crash");
        let loaded = set.load().expect("load");
        let names: Vec<_> = loaded.tests.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["test-1", "test-3"]);
        assert_eq!(loaded.tests[1].spec.resp.body.body, "item 3");

        // Run again: nothing left to do.
        assert!(recover_test_set(&set, &RedactConfig::default())
            .expect("again")
            .is_quiet());
    }

    #[test]
    fn a_journal_in_use_by_a_recording_is_left_alone() {
        let keploy = tempfile::tempdir().expect("tempdir");
        let set = TestSetDir::create_next(keploy.path()).expect("set");
        let writer = journal::JournalWriter::create(&journal::path_in(set.root())).expect("writer");
        let done = recover_test_set(&set, &RedactConfig::default()).expect("recover");
        assert!(done.journal.in_use);
        assert!(writer.path().exists());
    }
}
