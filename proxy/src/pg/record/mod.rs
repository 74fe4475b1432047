//! The recording PostgreSQL wire proxy.
//!
//! Clients connect here instead of to the server. Every byte is forwarded
//! unchanged in both directions while a copy is decoded and grouped into
//! exchanges ([`exchange`]); each completed exchange becomes one document in
//! the test set's `mocks.yaml`, written by a single writer so names
//! (`mock-1`, `mock-2`, ...) follow completion order across connections.
//!
//! - [`connection`]: one client connection (TLS negotiation, upstream
//!   connect, the two pumps).
//! - [`exchange`]: grouping decoded messages into exchanges.
//! - [`lifetime`]: which statements are session-level.
//! - [`tls`]: rustls configurations for both legs.

mod connection;
pub mod exchange;
pub mod lifetime;
pub mod tls;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use thiserror::Error;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::testset::pg_mock::{MockSpec, PgMock};
use crate::testset::TestSetDir;
use crate::window::TestWindows;

/// Completed exchanges waiting for the writer. When the writer falls this
/// far behind, connections wait before forwarding more answers: recording
/// slows traffic down rather than buffering without bound and losing the
/// backlog at shutdown.
const MOCK_QUEUE: usize = 4096;

/// What the recorder needs to run.
#[derive(Clone)]
pub struct PgRecorderConfig {
    /// Where clients connect; must be a loopback address.
    pub listen: SocketAddr,
    /// The real server, `HOST:PORT`.
    pub upstream: String,
    /// Terminate TLS for clients that ask (SSLRequest); `None` answers `N`.
    pub client_tls: Option<Arc<rustls::ServerConfig>>,
    /// Speak TLS to the server (SSLRequest first, then rustls).
    pub upstream_tls: Option<Arc<rustls::ClientConfig>>,
}

/// Why the recorder could not start or stopped.
#[derive(Debug, Error)]
pub enum RecordError {
    #[error("refusing to listen on {0}: the PostgreSQL recorder only listens on a loopback address such as 127.0.0.1")]
    NotLoopback(SocketAddr),
    // The reason is part of the message and not the error's source, so
    // printing the error with its causes does not say it twice.
    #[error("could not listen on {addr} for PostgreSQL clients: {reason}; is another process using that port?")]
    Bind {
        addr: SocketAddr,
        reason: std::io::Error,
    },
    #[error("--pg-upstream {0:?} is not HOST:PORT")]
    BadUpstream(String),
    #[error("TLS set-up from {path}: {message}")]
    Tls { path: PathBuf, message: String },
    #[error("the mock writer stopped unexpectedly; mocks.yaml may be missing the last exchanges")]
    WriterLost,
}

/// What a finished recording produced.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RecordSummary {
    /// Client connections that completed start-up.
    pub connections: u64,
    /// Mocks written to mocks.yaml.
    pub mocks: u64,
    /// Mocks that could not be written (each was logged).
    pub write_failures: u64,
}

/// A bound, not yet running, recording proxy.
pub struct PgRecorder {
    listener: TcpListener,
    config: PgRecorderConfig,
}

impl PgRecorder {
    /// Binds the listening socket, so callers learn the port (and any
    /// error) before traffic starts.
    pub async fn bind(config: PgRecorderConfig) -> Result<PgRecorder, RecordError> {
        if !config.listen.ip().is_loopback() {
            return Err(RecordError::NotLoopback(config.listen));
        }
        if connection::split_host_port(&config.upstream).is_none() {
            return Err(RecordError::BadUpstream(config.upstream.clone()));
        }
        let listener =
            TcpListener::bind(config.listen)
                .await
                .map_err(|reason| RecordError::Bind {
                    addr: config.listen,
                    reason,
                })?;
        Ok(PgRecorder { listener, config })
    }

    /// The address clients should connect to (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.listener.local_addr().unwrap_or(self.config.listen)
    }

    /// Serves clients until `shutdown` completes, then stops accepting,
    /// lets every connection finish the exchanges it has in flight, closes
    /// the connections, and flushes mocks.yaml. Callers that want a grace
    /// limit wrap this in a timeout.
    pub async fn run(
        self,
        test_set: Arc<TestSetDir>,
        windows: TestWindows,
        shutdown: impl Future<Output = ()>,
    ) -> Result<RecordSummary, RecordError> {
        let (mock_tx, mock_rx) = tokio::sync::mpsc::channel::<MockSpec>(MOCK_QUEUE);
        let writer_set = Arc::clone(&test_set);
        let writer = tokio::task::spawn_blocking(move || write_mocks(mock_rx, &writer_set));

        let shared = Arc::new(connection::Shared {
            upstream: self.config.upstream.clone(),
            client_tls: self.config.client_tls.map(tokio_rustls::TlsAcceptor::from),
            upstream_tls: self
                .config
                .upstream_tls
                .map(tokio_rustls::TlsConnector::from),
            windows,
            mocks: mock_tx,
            next_connection: AtomicU64::new(1),
        });
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut connections = JoinSet::new();
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                accepted = self.listener.accept() => match accepted {
                    Ok((tcp, peer)) => {
                        let _ = tcp.set_nodelay(true);
                        connections.spawn(connection::serve(
                            tcp,
                            peer,
                            Arc::clone(&shared),
                            stop_rx.clone(),
                        ));
                    }
                    Err(e) => {
                        // Out of descriptors and the like: back off, keep serving.
                        tracing::warn!("accepting a PostgreSQL client failed: {e}");
                        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
                    }
                },
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
            }
        }
        drop(self.listener);
        let _ = stop_tx.send(true);
        while connections.join_next().await.is_some() {}
        let connections_seen = shared
            .next_connection
            .load(std::sync::atomic::Ordering::Relaxed)
            - 1;
        drop(shared);
        let (mocks, write_failures) = writer.await.map_err(|_| RecordError::WriterLost)?;
        if let Err(e) = test_set.sync() {
            tracing::error!("{e}");
        }
        Ok(RecordSummary {
            connections: connections_seen,
            mocks,
            write_failures,
        })
    }
}

/// Most mocks written in one go: bounds what a crash can lose to what had
/// completed in the last few milliseconds.
const WRITE_BATCH: usize = 256;

/// Pause between batches; bounds how stale mocks.yaml is while recording.
const WRITE_PAUSE: std::time::Duration = std::time::Duration::from_millis(2);

/// The single writer: names mocks in the order they complete and appends
/// them as they arrive (several in one write when they queue up), so a crash
/// loses at most the exchanges in flight and the batch being written.
fn write_mocks(mut rx: tokio::sync::mpsc::Receiver<MockSpec>, test_set: &TestSetDir) -> (u64, u64) {
    let (mut written, mut failed) = (0u64, 0u64);
    let mut batch = Vec::with_capacity(WRITE_BATCH);
    while let Some(first) = rx.blocking_recv() {
        let mut next = Some(first);
        while let Some(spec) = next {
            let number = written + failed + batch.len() as u64 + 1;
            batch.push(PgMock::new(format!("mock-{number}"), spec));
            next = if batch.len() < WRITE_BATCH {
                rx.try_recv().ok()
            } else {
                None
            };
        }
        match test_set.append_mocks(&batch) {
            Ok(()) => written += batch.len() as u64,
            Err(e) => {
                failed += batch.len() as u64;
                tracing::error!(
                    "could not record {} to {}: {e}",
                    batch
                        .iter()
                        .map(|m| m.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", "),
                    test_set.mocks_path().display()
                );
            }
        }
        batch.clear();
        // Let the next batch gather instead of waking for every mock: under
        // load, wake-ups cost more than the writing itself.
        std::thread::sleep(WRITE_PAUSE);
    }
    (written, failed)
}
