//! The replay server: answers the app's PostgreSQL connections from
//! mocks.yaml, with no database running.
//!
//! - this module: the accept loop, shutdown, and the handle the replayer
//!   keeps to read what each test used;
//! - [`connection`]: one client connection — start-up, grouping client
//!   messages into exchanges, COPY, writing the recorded answers;
//! - [`startup`]: the answer to a start-up packet.
//!
//! Connections at replay need not map onto recorded ones: every connection
//! draws from the same matcher, so a pool may open more or fewer
//! connections than it did while recording. The matcher learns which test
//! is being replayed from the [`TestWindows`] the replayer opens and closes.

mod connection;
mod startup;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::net::{TcpListener, TcpStream};

use crate::serve::{self, ServeLimits, Service, Shutdown};

use super::matcher::{Checkpoint, Index, MatchStrategy, Matcher, TestUsage};
use crate::testset::pg_mock::PgMock;
use crate::window::TestWindows;

/// At most this many client connections are served at once; one more is
/// refused with FATAL 53300, as PostgreSQL does past `max_connections`.
const MAX_CONNECTIONS: usize = 512;

/// Why the mock server could not start.
#[derive(Debug, thiserror::Error)]
pub enum MockServerError {
    /// The address is not a loopback address: recorded data must not be
    /// served to the network.
    #[error("the PostgreSQL mock server listens on loopback only; {0} is not a loopback address (use 127.0.0.1:PORT)")]
    NotLoopback(SocketAddr),
    /// Binding failed (port in use, permissions).
    // The reason is part of the message and not the error's source, so
    // printing the error with its causes does not say it twice.
    #[error("could not listen on {addr} for the PostgreSQL mock server: {reason}; choose another --pg-listen port")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// What the operating system reported.
        reason: std::io::Error,
    },
}

/// State shared by every connection.
#[derive(Debug)]
struct Shared {
    matcher: Mutex<Matcher>,
    windows: TestWindows,
}

impl Shared {
    /// A poisoned lock only means a connection task panicked mid-update;
    /// the matcher's data stays consistent, so keep serving.
    fn matcher(&self) -> MutexGuard<'_, Matcher> {
        self.matcher.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A bound, not yet running, mock server.
#[derive(Debug)]
pub struct MockServer {
    listener: TcpListener,
    shared: Arc<Shared>,
}

/// Cheap to clone; lets the replayer read what each test used while the
/// server runs and after it stops.
#[derive(Debug, Clone)]
pub struct MockServerHandle {
    shared: Arc<Shared>,
}

impl MockServer {
    /// Indexes `mocks` (in recorded order, as loaded from mocks.yaml) and
    /// binds `addr` (loopback only; port 0 picks a free one). `windows` is
    /// the registry the replayer opens a window in for each test it sends.
    pub async fn bind(
        addr: SocketAddr,
        mocks: Vec<PgMock>,
        windows: TestWindows,
        strategy: MatchStrategy,
    ) -> Result<MockServer, MockServerError> {
        MockServer::bind_index(addr, Index::build(mocks), windows, strategy).await
    }

    /// [`MockServer::bind`] over an index built while mocks.yaml was read
    /// (see [`crate::testset::mock_file`]): answers are read from the file
    /// when served, so a recording larger than memory can be replayed.
    pub async fn bind_index(
        addr: SocketAddr,
        index: Index,
        windows: TestWindows,
        strategy: MatchStrategy,
    ) -> Result<MockServer, MockServerError> {
        if !addr.ip().is_loopback() {
            return Err(MockServerError::NotLoopback(addr));
        }
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|reason| MockServerError::Bind { addr, reason })?;
        let matcher = Matcher::from_index(index, strategy);
        for name in matcher.unindexed() {
            tracing::warn!(mock = %name, "a recorded Bind names a statement the recording never prepared; this mock cannot be matched");
        }
        Ok(MockServer {
            listener,
            shared: Arc::new(Shared {
                matcher: Mutex::new(matcher),
                windows,
            }),
        })
    }

    /// The address clients connect to (useful with port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// A handle for reading per-test usage.
    pub fn handle(&self) -> MockServerHandle {
        MockServerHandle {
            shared: self.shared.clone(),
        }
    }

    /// Serves until `shutdown` completes, then closes every connection and
    /// returns once they are gone.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let limits = ServeLimits {
            max_connections: MAX_CONNECTIONS,
            grace: None,
        };
        let service = Arc::new(MockService {
            shared: self.shared,
        });
        let report = serve::run(self.listener, service, limits, shutdown).await;
        if report.refused > 0 {
            tracing::warn!(
                "the PostgreSQL mock server refused {} connections past its limit of {MAX_CONNECTIONS}",
                report.refused
            );
        }
    }
}

/// One app connection on the shared [`crate::serve`] loop.
struct MockService {
    shared: Arc<Shared>,
}

impl Service for MockService {
    async fn serve(self: Arc<Self>, stream: TcpStream, peer: SocketAddr, _id: u64, stop: Shutdown) {
        connection::serve(stream, Arc::clone(&self.shared), stop.into_receiver()).await;
        tracing::debug!(%peer, "mock connection closed");
    }

    async fn refuse(self: Arc<Self>, stream: TcpStream) {
        crate::pg::refuse::too_many_connections(stream, "the mock server's connection limit").await;
    }
}

impl MockServerHandle {
    /// What `test` used: mocks served, misses, fallbacks. Empty when the
    /// test touched no database.
    pub fn usage_for(&self, test: &str) -> TestUsage {
        self.shared.matcher().usage_for(test)
    }

    /// Starts the recording over for a second replay pass: data mocks
    /// become available again.
    pub fn rewind(&self) {
        self.shared.matcher().rewind();
    }

    /// What is consumed now, for [`MockServerHandle::restore`].
    pub fn checkpoint(&self) -> Checkpoint {
        self.shared.matcher().checkpoint()
    }

    /// Consumption as it was at `checkpoint`, so a test replayed again
    /// from there gets the answers it got the first time.
    pub fn restore(&self, checkpoint: &Checkpoint) {
        self.shared.matcher().restore(checkpoint);
    }

    /// What exchanges outside any test's window used (app start-up, work
    /// between tests).
    pub fn usage_outside_tests(&self) -> TestUsage {
        self.shared.matcher().usage_outside_tests()
    }
}

#[cfg(test)]
mod lazy_tests;
#[cfg(test)]
mod tests;
