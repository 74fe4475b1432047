//! The sink that records exchanges into a test set: each is appended to
//! the test set's journal before its client gets the last bytes, and the
//! materializer turns the journal into `tests/test-N.yaml` behind the
//! traffic. It also keeps the test windows the PostgreSQL recorder reads.
//!
//! Nothing on the request path creates a file or renders YAML: a record is
//! a few copies into the journal's shared buffer and a `write` on the
//! exchange's own thread, shared by every exchange that finished with it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use tokio::sync::watch;

use crate::journal::{self, JournalError, JournalWriter, RecordKind};
use crate::testset::redact::Redactor;
use crate::testset::TestSetDir;
use crate::window::TestWindows;

use super::entry;
use super::exchange::{Exchange, ExchangeSink, Hold, RequestHead, SinkFuture};
use super::materializer::{Materializer, Tally};

/// Records each exchange as the next `test-N` of a test set.
///
/// A record is written before its exchange's client gets the last bytes,
/// so none waits in memory; records wait in the journal file until the
/// materializer reaches them.
pub struct TestSetRecorder {
    inner: Arc<Inner>,
}

struct Inner {
    windows: TestWindows,
    next: AtomicU64,
    body_cap: u64,
    failed: AtomicU64,
    tally: Arc<Tally>,
    journal: JournalWriter,
    materializer: Mutex<Option<Materializer>>,
    /// Set once recording cannot go on (the journal or a test file could
    /// not be written), with the reason.
    stop: watch::Sender<Option<String>>,
}

/// Counts after a run.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecorderCounts {
    /// Test files written.
    pub recorded: u64,
    /// Exchanges that did not complete or could not be written.
    pub failed: u64,
}

impl TestSetRecorder {
    /// Creates the test set's journal and starts its writer and its
    /// materializer. `body_cap` must match the proxy's: it also bounds how
    /// far a compressed body is expanded before it is stored. `redactor`
    /// is the test set's: its placeholders are stable across the set.
    pub fn new(
        dir: Arc<TestSetDir>,
        windows: TestWindows,
        body_cap: u64,
        redactor: Arc<Redactor>,
    ) -> Result<Self, JournalError> {
        let journal = JournalWriter::create(&journal::path_in(dir.root()))?;
        let tally = Arc::new(Tally::default());
        let (stop, _) = watch::channel(None);
        let materializer = Materializer::spawn(
            journal.path(),
            journal.progress(),
            dir,
            tally.clone(),
            redactor,
            {
                let stop = stop.clone();
                move |why| {
                    tracing::error!("test files could not be written, so recording stops: {why}");
                    stop.send_if_modified(|s| {
                        let first = s.is_none();
                        s.get_or_insert(why);
                        first
                    });
                }
            },
        )?;
        Ok(TestSetRecorder {
            inner: Arc::new(Inner {
                windows,
                next: AtomicU64::new(1),
                body_cap,
                failed: AtomicU64::new(0),
                tally,
                journal,
                materializer: Mutex::new(Some(materializer)),
                stop,
            }),
        })
    }

    /// What has been recorded so far.
    pub fn counts(&self) -> RecorderCounts {
        let inner = &self.inner;
        RecorderCounts {
            recorded: inner.tally.written.load(Ordering::Relaxed),
            failed: inner.failed.load(Ordering::Relaxed)
                + inner.tally.failed.load(Ordering::Relaxed),
        }
    }

    /// Resolves, with the reason, once recording cannot go on: the journal
    /// or a test file could not be written (a full disk). Everything
    /// journaled before stays, and is recovered by the next command.
    pub fn stopped(&self) -> impl std::future::Future<Output = String> + Send + 'static {
        let mut stop = self.inner.stop.subscribe();
        async move {
            let why = stop.wait_for(Option::is_some).await.map(|why| why.clone());
            match why {
                Ok(why) => why.unwrap_or_default(),
                // The recorder is gone: nothing will stop it any more.
                Err(_) => std::future::pending().await,
            }
        }
    }

    /// Why recording stopped early, if it did.
    pub fn stop_reason(&self) -> Option<String> {
        self.inner.stop.borrow().clone()
    }
}

impl Inner {
    fn stop_with(&self, why: &str) {
        self.stop.send_if_modified(|s| {
            if s.is_some() {
                return false;
            }
            *s = Some(why.to_string());
            true
        });
    }

    /// Closes the journal, waits for the materializer to write every test
    /// and removes the journal; keeps it when something could not be
    /// written, for the next command to recover.
    fn finish(&self) {
        let written = self.journal.close();
        let materializer = self
            .materializer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take();
        let Some(materializer) = materializer else {
            return;
        };
        let materialized = materializer.join();
        match (&written.failed, materialized) {
            (None, Ok(())) => {
                if let Err(e) = std::fs::remove_file(self.journal.path()) {
                    tracing::warn!(
                        "{}: could not remove the finished journal: {e}",
                        self.journal.path().display()
                    );
                }
            }
            (failed, materialized) => {
                let why = failed
                    .as_ref()
                    .map(|f| f.to_string())
                    .or(materialized.err().map(|e| e.to_string()))
                    .unwrap_or_default();
                self.stop_with(&why);
                tracing::error!(
                    "{} is kept: {why}; `recplay record`, `recplay test` or `recplay coverage` on this directory turns what it holds into tests once there is room",
                    self.journal.path().display()
                );
            }
        }
    }
}

impl ExchangeSink for TestSetRecorder {
    fn request_arrived(&self, head: &RequestHead) -> String {
        let n = self.inner.next.fetch_add(1, Ordering::Relaxed);
        let name = format!("test-{n}");
        self.inner.windows.open(&name, head.received_at);
        name
    }

    fn exchange_complete(&self, exchange: Exchange) -> Option<Hold> {
        let inner = &self.inner;
        inner.windows.close(&exchange.name, exchange.completed_at);
        // Written here, on the exchange's own thread, before its last bytes
        // go out: handing the record to a writer thread and waiting for it
        // cost two wake-ups and two context switches, more than the write.
        let written = inner
            .journal
            .append_in_place(RecordKind::HttpExchange, |buf| {
                entry::put_exchange(buf, &exchange, inner.body_cap)
            })
            .and_then(|()| inner.journal.flush());
        let Err(e) = written else {
            return None;
        };
        inner.failed.fetch_add(1, Ordering::Relaxed);
        let why = e.to_string();
        tracing::error!(test = %exchange.name, "not recorded: {why}");
        inner.stop_with(&why);
        Some(Box::pin(std::future::ready(Err(why))))
    }

    fn exchange_failed(&self, name: &str, reason: &str) {
        self.inner.windows.close(name, Utc::now());
        self.inner.failed.fetch_add(1, Ordering::Relaxed);
        tracing::info!(test = %name, "not recorded: {reason}");
    }

    fn flush(&self) -> SinkFuture<'_> {
        let inner = self.inner.clone();
        Box::pin(async move {
            let finished = tokio::task::spawn_blocking(move || inner.finish()).await;
            if finished.is_err() {
                tracing::error!(
                    "finishing the journal stopped unexpectedly; some tests may not be written"
                );
            }
        })
    }
}
