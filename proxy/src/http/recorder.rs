//! The sink that turns exchanges into `tests/test-N.yaml` files of a test
//! set, and keeps the test windows the PostgreSQL recorder reads.
//!
//! Files are built and written by one dedicated thread. Creating files in
//! one directory from many threads at once makes them queue on the
//! directory's lock — spinning, on Linux — and that CPU is taken from the
//! proxy itself; one writer keeps recording off the request path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use chrono::Utc;
use tokio::sync::{mpsc, oneshot};

use crate::testset::TestSetDir;
use crate::window::TestWindows;

use super::case::build_test_case;
use super::exchange::{Exchange, ExchangeSink, RequestHead, SinkFuture};

/// Exchanges waiting for the writer. When it falls this far behind,
/// completed exchanges wait (holding their capped bodies) rather than
/// queueing without bound.
const QUEUE: usize = 4096;

type Job = (Exchange, oneshot::Sender<()>);

/// Records each exchange as the next `test-N` of a test set.
pub struct TestSetRecorder {
    windows: TestWindows,
    next: AtomicU64,
    counts: Arc<Counts>,
    queue: mpsc::Sender<Job>,
}

#[derive(Default)]
struct Counts {
    recorded: AtomicU64,
    failed: AtomicU64,
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
    /// Starts the writer thread. `body_cap` must match the proxy's: it also
    /// bounds how far a compressed body is expanded before it is stored.
    pub fn new(dir: Arc<TestSetDir>, windows: TestWindows, body_cap: u64) -> Self {
        let (queue, jobs) = mpsc::channel(QUEUE);
        let counts = Arc::new(Counts::default());
        let writer_counts = counts.clone();
        // The thread ends when the recorder (the only sender) is dropped.
        std::thread::Builder::new()
            .name("recplay-http-writer".to_string())
            .spawn(move || write_loop(jobs, &dir, body_cap, &writer_counts))
            .map_err(|e| tracing::error!("could not start the test writer thread: {e}"))
            .ok();
        TestSetRecorder {
            windows,
            next: AtomicU64::new(1),
            counts,
            queue,
        }
    }

    /// What has been recorded so far.
    pub fn counts(&self) -> RecorderCounts {
        RecorderCounts {
            recorded: self.counts.recorded.load(Ordering::Relaxed),
            failed: self.counts.failed.load(Ordering::Relaxed),
        }
    }

    async fn write(&self, exchange: Exchange) {
        let name = exchange.name.clone();
        self.windows.close(&name, exchange.completed_at);
        let (done, written) = oneshot::channel();
        if self.queue.send((exchange, done)).await.is_err() || written.await.is_err() {
            self.counts.failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(test = %name, "not recorded: the test writer thread is gone");
        }
    }
}

fn write_loop(mut jobs: mpsc::Receiver<Job>, dir: &TestSetDir, body_cap: u64, counts: &Counts) {
    while let Some((exchange, done)) = jobs.blocking_recv() {
        let name = exchange.name.clone();
        let case = build_test_case(exchange, body_cap);
        match dir.write_test_unsynced(&case) {
            Ok(path) => {
                counts.recorded.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(test = %name, path = %path.display(), "recorded");
            }
            Err(e) => {
                counts.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(test = %name, "could not write the test case: {e}");
            }
        }
        let _ = done.send(());
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
        self.counts.failed.fetch_add(1, Ordering::Relaxed);
        tracing::info!(test = %name, "not recorded: {reason}");
    }
}
