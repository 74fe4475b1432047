//! Turns the journal's HTTP records into Keploy's `tests/test-N.yaml`
//! files, behind the traffic.
//!
//! While recording, one thread at a background priority, paced while
//! traffic is heavy ([`super::pace`]), follows the journal as the writer
//! extends it (reading only whole records the writer
//! has finished), and writes each exchange's test file the way the
//! recorder always has: [`build_test_case`], then a temp file renamed into
//! place, so a file is either absent or whole. A record whose test file
//! already exists is left alone: that is what makes a recovery after a
//! crash write every test exactly once.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crate::journal::{JournalError, JournalReader, Next, Progress, Record, RecordKind};
use crate::testset::{StoreError, TestSetDir};

use super::case::build_test_case;
use super::entry;
use super::pace::Pace;
use crate::testset::redact::Redactor;

/// How long the thread sleeps when the journal does not grow; the writer
/// wakes it sooner as soon as records are written.
const IDLE_WAIT: Duration = Duration::from_millis(200);

/// What became of one record.
#[derive(Debug)]
pub enum Outcome {
    /// Its test file was written.
    Written(PathBuf),
    /// Its test file was there already (written before a crash).
    AlreadyThere,
    /// Not an HTTP exchange, or one that cannot be read: why.
    Skipped(String),
}

/// Why materializing stopped.
#[derive(Debug, thiserror::Error)]
pub enum MaterializeError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("could not write a test file: {0}")]
    Store(#[from] StoreError),
}

/// Writes the test file of `record` into `dir`, unless it exists.
///
/// `redactor` is the test set's, so a secret gets the same placeholder in
/// every test of the set.
pub fn materialize(
    record: &Record,
    dir: &TestSetDir,
    redactor: &Redactor,
) -> Result<Outcome, MaterializeError> {
    if RecordKind::from_byte(record.kind) != Some(RecordKind::HttpExchange) {
        return Ok(Outcome::Skipped(format!(
            "the record at byte {} is of kind {}, which this recplay does not turn into tests",
            record.offset, record.kind
        )));
    }
    let decoded = match entry::decode(&record.payload) {
        Ok(decoded) => decoded,
        Err(e) => {
            return Ok(Outcome::Skipped(format!(
                "the record at byte {}: {e}",
                record.offset
            )))
        }
    };
    let path = dir
        .root()
        .join("tests")
        .join(format!("{}.yaml", decoded.exchange.name));
    if path.exists() {
        return Ok(Outcome::AlreadyThere);
    }
    let case = build_test_case(decoded.exchange, decoded.body_cap, redactor);
    Ok(Outcome::Written(dir.write_test_unsynced(&case)?))
}

/// Counts kept by the materializer thread, read by the recorder.
#[derive(Debug, Default)]
pub struct Tally {
    /// Test files written.
    pub written: AtomicU64,
    /// Records that did not become a test file.
    pub failed: AtomicU64,
}

/// The thread following a journal while it is written.
pub struct Materializer {
    thread: std::thread::JoinHandle<Result<(), MaterializeError>>,
}

impl Materializer {
    /// Starts following the journal at `path` (already created, with its
    /// header). `stopped` is called once if the thread has to give up.
    pub fn spawn(
        path: &Path,
        progress: Arc<Progress>,
        dir: Arc<TestSetDir>,
        tally: Arc<Tally>,
        redactor: Arc<Redactor>,
        stopped: impl FnOnce(String) + Send + 'static,
    ) -> Result<Self, JournalError> {
        let reader = JournalReader::open(path)?;
        let thread = std::thread::Builder::new()
            .name("recplay-materializer".to_string())
            .spawn(move || {
                crate::priority::yield_to_traffic();
                let outcome = follow(reader, &progress, &dir, &tally, &redactor);
                if let Err(e) = &outcome {
                    stopped(e.to_string());
                }
                outcome
            })
            .map_err(|source| JournalError::Io {
                path: path.to_path_buf(),
                source,
            })?;
        Ok(Materializer { thread })
    }

    /// Waits until the journal's writer is closed and every record it
    /// wrote has its test file.
    pub fn join(self) -> Result<(), MaterializeError> {
        self.thread.join().unwrap_or_else(|_| {
            Err(MaterializeError::Journal(JournalError::Stopped(
                "the materializer thread panicked".to_string(),
            )))
        })
    }
}

fn follow(
    mut reader: JournalReader,
    progress: &Progress,
    dir: &TestSetDir,
    tally: &Tally,
    redactor: &Redactor,
) -> Result<(), MaterializeError> {
    let mut pace = Pace::new(progress.now().end);
    loop {
        let written = progress.wait_beyond(reader.offset(), IDLE_WAIT);
        if reader.offset() >= written.end {
            pace.restart(written.end);
        }
        while reader.offset() < written.end {
            // Looked up afresh: once recording stops, the backlog goes at
            // full speed.
            let now = progress.now();
            if !now.closed {
                pace.between_records(now.end);
            }
            match reader.next_record()? {
                Next::Record(record) => match materialize(&record, dir, redactor)? {
                    Outcome::Written(_) => {
                        tally.written.fetch_add(1, Ordering::Relaxed);
                    }
                    Outcome::AlreadyThere => {}
                    Outcome::Skipped(why) => {
                        tally.failed.fetch_add(1, Ordering::Relaxed);
                        tracing::error!("not turned into a test: {why}");
                    }
                },
                Next::End => break,
                Next::Torn { reason, .. } => {
                    return Err(MaterializeError::Journal(JournalError::Payload(format!(
                        "being written was found cut while recording: {reason}"
                    ))))
                }
            }
        }
        if written.closed && reader.offset() >= written.end {
            return Ok(());
        }
    }
}
