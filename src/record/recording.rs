//! What every recorder of `recplay record` is given and gives back: the
//! test set, the test windows, the shutdown signal, and a summary once it
//! has drained.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use recplay_proxy::testset::redact::Redactor;
use recplay_proxy::testset::TestSetDir;
use recplay_proxy::window::TestWindows;
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// What every recorder shares.
#[derive(Clone)]
pub struct Recording {
    pub dir: Arc<TestSetDir>,
    pub windows: TestWindows,
    pub shutdown: Shutdown,
    /// Lets a recorder that cannot go on stop the whole recording.
    pub stop_all: Arc<watch::Sender<bool>>,
    pub grace: Duration,
    /// The test set's redactor, shared by every recorder writing into it
    /// so a secret has one placeholder across tests and mocks.
    pub redactor: Arc<Redactor>,
}

/// Resolves once recording should stop; cheap to clone.
#[derive(Clone)]
pub struct Shutdown(pub(super) watch::Receiver<bool>);

impl Shutdown {
    /// Waits for the stop signal (also when its sender is gone).
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// What one recorder reports after draining.
pub struct RecorderSummary {
    /// "HTTP", "PostgreSQL".
    pub kind: &'static str,
    /// Tests or mocks written.
    pub recorded: u64,
    /// Exchanges not recorded (failed upstream, cut at the deadline, write errors).
    pub not_recorded: u64,
    /// Singular and plural noun for `recorded`.
    pub noun: (&'static str, &'static str),
}

pub type RecorderTask = JoinHandle<Result<RecorderSummary>>;
