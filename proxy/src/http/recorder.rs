//! The sink that turns exchanges into `tests/test-N.yaml` files of a test
//! set, and keeps the test windows the PostgreSQL recorder reads.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::Utc;
use tokio::sync::Semaphore;

use crate::testset::TestSetDir;
use crate::window::TestWindows;

use super::case::build_test_case;
use super::exchange::{Exchange, ExchangeSink, RequestHead, SinkFuture};

/// Writes bodies at once: enough to overlap disk waits, few enough that a
/// burst of large bodies cannot hold unbounded memory in the queue.
const CONCURRENT_WRITES: usize = 32;

/// Records each exchange as the next `test-N` of a test set.
pub struct TestSetRecorder {
    dir: Arc<TestSetDir>,
    windows: TestWindows,
    body_cap: u64,
    next: AtomicU64,
    recorded: AtomicU64,
    failed: AtomicU64,
    writers: Arc<Semaphore>,
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
    /// `body_cap` must match the proxy's: it also bounds how far a
    /// compressed body is expanded before it is stored.
    pub fn new(dir: Arc<TestSetDir>, windows: TestWindows, body_cap: u64) -> Self {
        TestSetRecorder {
            dir,
            windows,
            body_cap,
            next: AtomicU64::new(1),
            recorded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            writers: Arc::new(Semaphore::new(CONCURRENT_WRITES)),
        }
    }

    /// What has been recorded so far.
    pub fn counts(&self) -> RecorderCounts {
        RecorderCounts {
            recorded: self.recorded.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }

    async fn write(&self, exchange: Exchange) {
        let name = exchange.name.clone();
        self.windows.close(&name, exchange.completed_at);
        // Closed only by dropping the recorder, which cannot happen while
        // `self` is borrowed here.
        let Ok(_permit) = self.writers.clone().acquire_owned().await else {
            return;
        };
        let dir = self.dir.clone();
        let cap = self.body_cap;
        let written = tokio::task::spawn_blocking(move || {
            let case = build_test_case(exchange, cap);
            dir.write_test_unsynced(&case)
        })
        .await;
        match written {
            Ok(Ok(path)) => {
                self.recorded.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(test = %name, path = %path.display(), "recorded");
            }
            Ok(Err(e)) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(test = %name, "could not write the test case: {e}");
            }
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(test = %name, "building the test case failed: {e}");
            }
        }
    }
}

impl ExchangeSink for TestSetRecorder {
    fn request_arrived(&self, head: &RequestHead) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let name = format!("test-{n}");
        self.windows.open(&name, head.received_at);
        name
    }

    fn exchange_complete(&self, exchange: Exchange) -> SinkFuture<'_> {
        Box::pin(self.write(exchange))
    }

    fn exchange_failed(&self, name: &str, reason: &str) {
        self.windows.close(name, Utc::now());
        self.failed.fetch_add(1, Ordering::Relaxed);
        tracing::info!(test = %name, "not recorded: {reason}");
    }
}
