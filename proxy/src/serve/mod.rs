//! One accept / limit / drain loop for every listener recplay runs: the
//! HTTP recorder, the PostgreSQL recorder, the PostgreSQL mock server, and
//! the outgoing-call listeners (the recording forward proxy and the replay
//! mock listeners).
//!
//! Modelled on mini-redis's `server.rs`: the loop takes `shutdown: impl
//! Future`, caps connections with a [`Semaphore`], tells connections to stop
//! through a watch channel ([`Shutdown`]), and learns that all of them are
//! done when the last clone of an mpsc sender, one per connection task, is
//! dropped. A connection over the cap is not left waiting in the kernel's
//! backlog: the protocol's own refusal is written ([`Service::refuse`]) and
//! the socket closed, so the client learns why at once.

mod shutdown;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;

pub use shutdown::Shutdown;

/// Refusals being written at once; past this a refused connection is
/// closed without a word, so a flood cannot hold descriptors through them.
/// 512 answers every one of 10,000 connections opened 500 at a time
/// (bench/limits/idle_connections.sh); 64 left most of them unanswered.
const MAX_REFUSALS_IN_FLIGHT: usize = 512;

/// A refusal that the client does not read within this time is dropped.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);

/// Pause after a failed accept (out of descriptors, typically) so the loop
/// does not spin while the condition lasts.
const ACCEPT_BACKOFF: Duration = Duration::from_millis(50);

/// What a listener does with its connections.
pub trait Service: Send + Sync + 'static {
    /// Serves one accepted connection until it ends, returning soon after
    /// `shutdown` fires (once the exchange in flight, if any, is finished).
    /// `id` numbers connections from 1 in accept order.
    fn serve(
        self: Arc<Self>,
        stream: TcpStream,
        peer: SocketAddr,
        id: u64,
        shutdown: Shutdown,
    ) -> impl Future<Output = ()> + Send;

    /// Tells a connection over the limit, in the protocol's own words, that
    /// it is refused; the socket is closed afterwards.
    fn refuse(self: Arc<Self>, stream: TcpStream) -> impl Future<Output = ()> + Send;
}

/// How many connections a listener serves, and how long it waits for them
/// at shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServeLimits {
    /// Connections served at once; further ones are refused.
    pub max_connections: usize,
    /// After the stop signal, connections still open this long are cut.
    /// `None` waits for every connection.
    pub grace: Option<Duration>,
}

/// What a finished run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Connections accepted and served over the whole run.
    pub connections: u64,
    /// Connections refused because `max_connections` were open.
    pub refused: u64,
    /// Connections still busy when the grace period ran out, and cut.
    pub cut_at_deadline: usize,
}

/// Accepts on `listener` until `shutdown` resolves, then stops accepting,
/// tells every connection to stop and waits for them (for
/// [`ServeLimits::grace`] at most), and reports.
pub async fn run<S: Service>(
    listener: TcpListener,
    service: Arc<S>,
    limits: ServeLimits,
    shutdown: impl Future<Output = ()>,
) -> DrainReport {
    let (notify_tx, notify_rx) = watch::channel(false);
    // Each connection task holds a clone; `recv` yields `None` once the
    // last one is gone.
    let (complete_tx, mut complete_rx) = mpsc::channel::<()>(1);
    let permits = Arc::new(Semaphore::new(limits.max_connections.max(1)));
    let refusals = Arc::new(Semaphore::new(MAX_REFUSALS_IN_FLIGHT));
    let mut tasks = JoinSet::new();
    let mut report = DrainReport::default();
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            _ = &mut shutdown => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!("accepting a connection failed: {e}; retrying");
                    tokio::time::sleep(ACCEPT_BACKOFF).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let complete = complete_tx.clone();
        match permits.clone().try_acquire_owned() {
            Ok(permit) => {
                report.connections += 1;
                let id = report.connections;
                let shutdown = Shutdown::new(notify_rx.clone());
                let service = Arc::clone(&service);
                tasks.spawn(async move {
                    service.serve(stream, peer, id, shutdown).await;
                    drop(permit);
                    drop(complete);
                });
            }
            Err(_) => {
                report.refused += 1;
                // One line per refusal would flood the log in a flood of
                // connections: the first is a warning, the run's total is
                // reported at the end.
                if report.refused == 1 {
                    tracing::warn!(
                        max_connections = limits.max_connections,
                        "the connection limit is reached; refusing new connections until some close"
                    );
                }
                tracing::debug!(
                    %peer,
                    max_connections = limits.max_connections,
                    "refusing a connection: the connection limit is reached"
                );
                let Ok(slot) = refusals.clone().try_acquire_owned() else {
                    continue;
                };
                let service = Arc::clone(&service);
                tasks.spawn(async move {
                    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, service.refuse(stream)).await;
                    drop(slot);
                    drop(complete);
                });
            }
        }
    }
    drop(listener);
    let _ = notify_tx.send(true);
    drop(complete_tx);
    while tasks.try_join_next().is_some() {}
    if !tasks.is_empty() {
        tracing::info!(
            connections = tasks.len(),
            "waiting for connections to finish their exchanges in flight"
        );
    }
    let drained = match limits.grace {
        Some(grace) => tokio::time::timeout(grace, complete_rx.recv())
            .await
            .is_ok(),
        None => {
            complete_rx.recv().await;
            true
        }
    };
    if !drained {
        while tasks.try_join_next().is_some() {}
        report.cut_at_deadline = tasks.len();
        tracing::warn!(
            connections = report.cut_at_deadline,
            "grace period over; closing what is still open"
        );
        tasks.abort_all();
    }
    while tasks.join_next().await.is_some() {}
    report
}
