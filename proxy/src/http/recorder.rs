//! The sink that turns exchanges into `tests/test-N.yaml` files of a test
//! set, and keeps the test windows the PostgreSQL recorder reads.
//!
//! Files are built and written by one dedicated thread. Creating files in
//! one directory from many threads at once makes them queue on the
//! directory's lock — spinning, on Linux — and that CPU is taken from the
//! proxy itself; one writer keeps recording off the request path.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc};

use chrono::Utc;
use tokio::sync::oneshot;

use crate::testset::redact::Redactor;
use crate::testset::TestSetDir;
use crate::window::TestWindows;

use super::backlog::{Backlog, BacklogLimits};
use super::case::build_test_case;
use super::exchange::{Exchange, ExchangeSink, RequestHead, SinkFuture};

/// What the writer thread is asked to do, in order.
enum Job {
    Write(Box<Exchange>),
    /// Answer once everything queued before has been written.
    Flush(oneshot::Sender<()>),
}

/// Records each exchange as the next `test-N` of a test set.
///
/// The proxy hands exchanges over without waiting: they queue for the
/// writer thread, which sleeps only when the queue is empty, so under load
/// it takes exchanges one after another with no wake-up between them. The
/// queue holds finished exchanges only (each with its capped bodies); it is
/// bounded by a [`Backlog`], which new requests wait on when the writer
/// falls behind, and [`ExchangeSink::flush`] waits for it to empty.
pub struct TestSetRecorder {
    windows: TestWindows,
    next: AtomicU64,
    counts: Arc<Counts>,
    queue: mpsc::Sender<Job>,
    backlog: Arc<Backlog>,
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
    /// `redactor` is the test set's: its placeholders are stable across
    /// the set.
    pub fn new(
        dir: Arc<TestSetDir>,
        windows: TestWindows,
        body_cap: u64,
        redactor: Arc<Redactor>,
    ) -> Self {
        Self::with_limits(dir, windows, body_cap, BacklogLimits::default(), redactor)
    }

    /// [`TestSetRecorder::new`] with a queue bounded by `limits`.
    pub fn with_limits(
        dir: Arc<TestSetDir>,
        windows: TestWindows,
        body_cap: u64,
        limits: BacklogLimits,
        redactor: Arc<Redactor>,
    ) -> Self {
        let (queue, jobs) = mpsc::channel();
        let counts = Arc::new(Counts::default());
        let backlog = Arc::new(Backlog::new(limits));
        let writer = Writer {
            counts: counts.clone(),
            backlog: backlog.clone(),
            redactor,
        };
        // The thread ends when the recorder (the only sender) is dropped.
        // If it cannot start, the receiver is dropped with the closure and
        // every exchange is counted as failed when it is handed over.
        let started = std::thread::Builder::new()
            .name("recplay-http-writer".to_string())
            .spawn(move || writer.run(jobs, &dir, body_cap));
        if let Err(e) = started {
            tracing::error!("could not start the test writer thread: {e}");
            backlog.writer_stopped();
        }
        TestSetRecorder {
            windows,
            next: AtomicU64::new(1),
            counts,
            queue,
            backlog,
        }
    }

    /// What has been recorded so far.
    pub fn counts(&self) -> RecorderCounts {
        RecorderCounts {
            recorded: self.counts.recorded.load(Ordering::Relaxed),
            failed: self.counts.failed.load(Ordering::Relaxed),
        }
    }
}

/// Captured body bytes an exchange holds while it waits to be written.
fn held_bytes(exchange: &Exchange) -> u64 {
    (exchange.request_body.bytes.len() + exchange.response_body.bytes.len()) as u64
}

/// The writer thread's side of the recorder.
struct Writer {
    counts: Arc<Counts>,
    backlog: Arc<Backlog>,
    redactor: Arc<Redactor>,
}

impl Writer {
    fn run(self, jobs: mpsc::Receiver<Job>, dir: &TestSetDir, body_cap: u64) {
        // Runs on every way out, a panic included, so no request waits
        // for a writer that is gone.
        struct Stopped<'a>(&'a Backlog);
        impl Drop for Stopped<'_> {
            fn drop(&mut self) {
                self.0.writer_stopped();
            }
        }
        let _stopped = Stopped(&self.backlog);
        while let Ok(job) = jobs.recv() {
            match job {
                Job::Write(exchange) => {
                    let held = held_bytes(&exchange);
                    self.write(*exchange, dir, body_cap);
                    self.backlog.removed(held);
                }
                Job::Flush(done) => {
                    let _ = done.send(());
                }
            }
        }
    }

    fn write(&self, exchange: Exchange, dir: &TestSetDir, body_cap: u64) {
        let name = exchange.name.clone();
        let case = build_test_case(exchange, body_cap, &self.redactor);
        match dir.write_test_unsynced(&case) {
            Ok(path) => {
                self.counts.recorded.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(test = %name, path = %path.display(), "recorded");
            }
            Err(e) => {
                self.counts.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(test = %name, "could not write the test case: {e}");
            }
        }
    }
}

impl ExchangeSink for TestSetRecorder {
    fn ready(&self) -> SinkFuture<'_> {
        Box::pin(self.backlog.room())
    }

    fn request_arrived(&self, head: &RequestHead) -> String {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let name = format!("test-{n}");
        self.windows.open(&name, head.received_at);
        name
    }

    fn exchange_complete(&self, exchange: Exchange) {
        self.windows.close(&exchange.name, exchange.completed_at);
        // Counted before it is sent: the writer may be done with it before
        // `send` returns.
        let held = held_bytes(&exchange);
        self.backlog.added(held);
        if let Err(mpsc::SendError(job)) = self.queue.send(Job::Write(Box::new(exchange))) {
            self.backlog.removed(held);
            self.counts.failed.fetch_add(1, Ordering::Relaxed);
            if let Job::Write(exchange) = job {
                tracing::error!(test = %exchange.name, "not recorded: the test writer thread is gone");
            }
        }
    }

    fn exchange_failed(&self, name: &str, reason: &str) {
        self.windows.close(name, Utc::now());
        self.counts.failed.fetch_add(1, Ordering::Relaxed);
        tracing::info!(test = %name, "not recorded: {reason}");
    }

    fn flush(&self) -> SinkFuture<'_> {
        let (done, flushed) = oneshot::channel();
        let sent = self.queue.send(Job::Flush(done)).is_ok();
        Box::pin(async move {
            if !sent || flushed.await.is_err() {
                tracing::error!("the test writer thread is gone; some tests may not be written");
            }
        })
    }
}
