//! The recording PostgreSQL wire proxy.
//!
//! Clients connect here instead of to the server. Every byte is forwarded
//! unchanged in both directions; a copy goes to a single writer thread that
//! decodes and groups it into exchanges ([`crate::testset::pg_exchange`]) and appends each
//! completed exchange as one document to the test set's `mocks.yaml`, so
//! names (`mock-1`, `mock-2`, ...) follow completion order across
//! connections.
//!
//! The same copy is written ahead to the test set's PostgreSQL journal
//! ([`crate::journal`]) before the client gets the server's answer; after
//! a crash, [`recover`] replays it and adds to mocks.yaml the mocks the
//! writer had not written yet.
//!
//! - [`connection`]: one client connection (TLS negotiation, upstream
//!   connect, the two pumps).
//! - [`event`]: one step of a connection's traffic, and how far the writer
//!   has followed each connection.
//! - [`handover`]: how connections hand their events to the writer and the
//!   journal.
//! - [`entry`]: one event as a journal record.
//! - [`writer`]: the writer thread, and the replay of a journal.
//! - [`recover`]: a crashed recording's journal into mocks.yaml.
//! - [`calendar`]: the calendar times of the connections' clock readings.

mod calendar;
mod connection;
mod entry;
mod event;
mod handover;
pub mod recover;
mod writer;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;

use thiserror::Error;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::oneshot;

use crate::journal::{self, JournalError, JournalWriter};
use crate::serve::{self, ServeLimits, Service, Shutdown};
use crate::testset::TestSetDir;
use crate::window::TestWindows;

/// Traffic waiting for the writer, in events (a read from either side; two
/// or so per exchange). When the writer falls this far behind, connections
/// wait before forwarding more: recording slows traffic down rather than
/// buffering without bound and losing the backlog at shutdown.
const EVENT_QUEUE: usize = 8192;

/// Client connections served at once unless the caller sets another
/// limit; one more is refused with FATAL 53300, as PostgreSQL does.
pub const DEFAULT_MAX_CONNECTIONS: usize = 1024;

/// What the recorder needs to run.
#[derive(Clone)]
pub struct PgRecorderConfig {
    /// Where clients connect; a loopback address unless `allow_remote`.
    pub listen: SocketAddr,
    /// Whether `listen` may be a non-loopback address (the caller has
    /// warned that recorded traffic may include secrets).
    pub allow_remote: bool,
    /// Client connections served at once; one more gets FATAL 53300.
    pub max_connections: usize,
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
    #[error("refusing to listen on {0}: the PostgreSQL recorder listens on a loopback address such as 127.0.0.1 unless remote listening is allowed (--allow-remote)")]
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
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    #[error("the mock writer stopped unexpectedly; mocks.yaml may be missing the last exchanges")]
    WriterLost,
    #[error("could not start the PostgreSQL recorder's thread: {0}")]
    Thread(std::io::Error),
    #[error("the PostgreSQL recorder's journal: {0}")]
    Journal(#[from] JournalError),
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
    /// Connections forwarded without being recorded to the end: traffic
    /// recplay cannot decode into a mock (each was logged with the reason).
    pub unrecorded_connections: u64,
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
        if !config.listen.ip().is_loopback() && !config.allow_remote {
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
        let journal = Arc::new(JournalWriter::create(&journal::pg_path_in(
            test_set.root(),
        ))?);
        let (event_tx, event_rx) = tokio::sync::mpsc::channel(EVENT_QUEUE);
        let writer_set = Arc::clone(&test_set);
        let (written_tx, written_rx) = oneshot::channel();
        std::thread::Builder::new()
            .name("recplay-pg-mocks".into())
            .spawn(move || {
                writer::yield_to_traffic();
                // A panic drops the sender, which `run` reports below.
                let _ = written_tx.send(writer::run(event_rx, &writer_set, windows));
            })
            .map_err(RecordError::Thread)?;

        let shared = Arc::new(connection::Shared {
            upstream: self.config.upstream.clone(),
            client_tls: self.config.client_tls.map(tokio_rustls::TlsAcceptor::from),
            upstream_tls: self
                .config
                .upstream_tls
                .map(tokio_rustls::TlsConnector::from),
            events: event_tx,
            journal: Arc::clone(&journal),
            next_connection: AtomicU64::new(1),
        });
        let listener = self.listener.into_std().map_err(RecordError::Thread)?;
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(RecordError::Thread)?;
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        // Dropped when `run` is (a caller's grace period ran out): the
        // proxy's thread then drops its connections at once.
        let (_abandon_tx, abandon_rx) = oneshot::channel::<()>();
        let (done_tx, done_rx) = oneshot::channel::<()>();
        let proxy_shared = Arc::clone(&shared);
        let max_connections = self.config.max_connections;
        std::thread::Builder::new()
            .name("recplay-pg".into())
            .spawn(move || {
                runtime.block_on(async move {
                    tokio::select! {
                        () = serve_clients(listener, proxy_shared, max_connections, stop_rx) => {}
                        _ = abandon_rx => {}
                    }
                });
                // Dropping the runtime drops whatever connections remain.
                drop(runtime);
                let _ = done_tx.send(());
            })
            .map_err(RecordError::Thread)?;
        shutdown.await;
        let _ = stop_tx.send(());
        // An error means the thread ended without saying so (a panic): its
        // connections are gone either way.
        let _ = done_rx.await;
        let connections_seen = shared
            .next_connection
            .load(std::sync::atomic::Ordering::Relaxed)
            - 1;
        drop(shared);
        let written = written_rx.await.map_err(|_| RecordError::WriterLost)?;
        let synced = test_set.sync();
        if let Err(e) = &synced {
            tracing::error!("{e}");
        }
        finish_journal(&journal, synced.is_ok() && written.failures == 0);
        Ok(RecordSummary {
            connections: connections_seen,
            mocks: written.mocks,
            write_failures: written.failures,
            unrecorded_connections: written.unrecorded_connections,
        })
    }
}

/// Closes the journal and removes it when every mock it holds is on disk;
/// otherwise keeps it for the next command to recover from.
fn finish_journal(journal: &JournalWriter, mocks_on_disk: bool) {
    let written = journal.close();
    let path = journal.path().display();
    match (&written.failed, mocks_on_disk) {
        (None, true) => {
            if let Err(e) = std::fs::remove_file(journal.path()) {
                tracing::warn!("{path}: could not remove the finished journal: {e}");
            }
        }
        (failed, _) => tracing::error!(
            "{path} is kept{}: `recplay record`, `recplay test` or `recplay coverage` on this \
             directory adds the mocks it holds to mocks.yaml once there is room",
            failed
                .as_ref()
                .map(|f| format!(" ({f})"))
                .unwrap_or_default()
        ),
    }
}

/// One PostgreSQL client connection on the shared [`crate::serve`] loop.
struct PgService {
    shared: Arc<connection::Shared>,
}

impl Service for PgService {
    async fn serve(self: Arc<Self>, tcp: TcpStream, peer: SocketAddr, _id: u64, stop: Shutdown) {
        connection::serve(tcp, peer, Arc::clone(&self.shared), stop.into_receiver()).await;
    }

    async fn refuse(self: Arc<Self>, tcp: TcpStream) {
        crate::pg::refuse::too_many_connections(tcp, "--pg-max-connections").await;
    }
}

/// Accepts and serves clients on the proxy's own thread until `stop`, then
/// stops accepting and waits for every connection to finish the exchanges
/// it has in flight and close.
///
/// All connections share one thread, as in pgbouncer: a round trip then
/// wakes one thread instead of handing work between a runtime's workers,
/// and on small machines those hand-overs cost more than the forwarding.
async fn serve_clients(
    listener: std::net::TcpListener,
    shared: Arc<connection::Shared>,
    max_connections: usize,
    stop: oneshot::Receiver<()>,
) {
    let listener = match TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => {
            tracing::error!("the PostgreSQL recorder could not listen: {e}");
            return;
        }
    };
    let limits = ServeLimits {
        max_connections,
        grace: None,
    };
    let report = serve::run(listener, Arc::new(PgService { shared }), limits, async {
        let _ = stop.await;
    })
    .await;
    if report.refused > 0 {
        tracing::warn!(
            "PostgreSQL: {} connections refused at the limit of {max_connections} (--pg-max-connections)",
            report.refused
        );
    }
}
