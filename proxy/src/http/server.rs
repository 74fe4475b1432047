//! The accept loop: plain or TLS connections, HTTP/1.1 with keep-alive and
//! pipelining, and a graceful drain on shutdown (mini-redis style: a
//! broadcast tells connections to stop, and the proxy knows all recording is
//! done when the last clone of an mpsc sender is dropped).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpListener;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio_rustls::TlsAcceptor;

use super::error::HttpProxyError;
use super::exchange::ExchangeSink;
use super::forward::{ConnInfo, Forwarder};
use super::link::UpstreamLink;
use super::upstream::{self, Upstream};

/// Default recording cap: bodies above it keep only size and sha256.
pub const DEFAULT_BODY_CAP: u64 = 10 * 1024 * 1024;

/// How the proxy is set up.
#[derive(Clone)]
pub struct HttpProxyConfig {
    /// Where every request goes.
    pub upstream: Upstream,
    /// Largest body kept whole in a recording.
    pub body_cap: u64,
    /// Serve TLS to clients with this certificate.
    pub server_tls: Option<Arc<rustls::ServerConfig>>,
    /// Trust for an https:// upstream (default: the public web roots).
    pub upstream_tls: Option<Arc<rustls::ClientConfig>>,
}

impl HttpProxyConfig {
    /// Plain HTTP on both sides, default cap.
    pub fn new(upstream: Upstream) -> Self {
        HttpProxyConfig {
            upstream,
            body_cap: DEFAULT_BODY_CAP,
            server_tls: None,
            upstream_tls: None,
        }
    }
}

/// What a finished run did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct DrainReport {
    /// Connections accepted over the whole run.
    pub connections: u64,
    /// Connections still busy when the grace period ran out, and cut.
    pub cut_at_deadline: usize,
}

/// A bound, not yet running proxy.
pub struct HttpProxy {
    listener: TcpListener,
    forwarder: Arc<Forwarder>,
    tls: Option<TlsAcceptor>,
    in_flight_rx: mpsc::Receiver<()>,
}

impl HttpProxy {
    /// Binds `addr` (port 0 picks a free one) and prepares the upstream
    /// client. Nothing is accepted until [`HttpProxy::run`].
    pub async fn bind(
        addr: SocketAddr,
        config: HttpProxyConfig,
        sink: Arc<dyn ExchangeSink>,
    ) -> Result<Self, HttpProxyError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| HttpProxyError::Bind { addr, source })?;
        let connector = upstream::connector(&config.upstream, config.upstream_tls.clone())?;
        let (in_flight, in_flight_rx) = mpsc::channel(1);
        let forwarder = Arc::new(Forwarder {
            client: upstream::client(connector.clone()),
            connector,
            upstream: config.upstream,
            body_cap: config.body_cap,
            sink,
            in_flight,
        });
        Ok(HttpProxy {
            listener,
            forwarder,
            tls: config.server_tls.map(TlsAcceptor::from),
            in_flight_rx,
        })
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> Result<SocketAddr, HttpProxyError> {
        let addr = self.listener.local_addr();
        addr.map_err(|source| HttpProxyError::Bind {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            source,
        })
    }

    /// Serves until `shutdown` resolves, then stops accepting, lets
    /// in-flight exchanges finish for up to `grace`, cuts what is left, and
    /// returns once every completed exchange has been handed to the sink
    /// and the sink has finished with it.
    pub async fn run(self, shutdown: impl Future<Output = ()>, grace: Duration) -> DrainReport {
        let HttpProxy {
            listener,
            forwarder,
            tls,
            mut in_flight_rx,
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut connections = JoinSet::new();
        let mut accepted = 0u64;
        tokio::pin!(shutdown);
        loop {
            tokio::select! {
                _ = &mut shutdown => break,
                Some(_) = connections.join_next(), if !connections.is_empty() => {}
                incoming = listener.accept() => match incoming {
                    Ok((stream, client)) => {
                        accepted += 1;
                        let _ = stream.set_nodelay(true);
                        let conn = ConnInfo { client, id: accepted };
                        let forwarder = forwarder.clone();
                        let tls = tls.clone();
                        let stop = stop_rx.clone();
                        connections.spawn(async move {
                            match tls {
                                None => serve(stream, forwarder, conn, stop).await,
                                Some(acceptor) => match acceptor.accept(stream).await {
                                    Ok(stream) => serve(stream, forwarder, conn, stop).await,
                                    Err(e) => tracing::warn!(client = %client, "TLS handshake failed: {e}"),
                                },
                            }
                        });
                    }
                    // Out of file descriptors and the like: wait, keep serving.
                    Err(e) => {
                        tracing::warn!("accepting a connection failed: {e}; retrying");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                    }
                },
            }
        }
        drop(listener);
        let _ = stop_tx.send(true);
        let busy = connections.len();
        if busy > 0 {
            tracing::info!(
                connections = busy,
                "waiting up to {grace:?} for in-flight exchanges"
            );
        }
        let drained = tokio::time::timeout(grace, async {
            while connections.join_next().await.is_some() {}
        })
        .await;
        let cut_at_deadline = if drained.is_err() {
            let cut = connections.len();
            tracing::warn!(
                connections = cut,
                "grace period over; closing what is still open"
            );
            connections.abort_all();
            while connections.join_next().await.is_some() {}
            cut
        } else {
            0
        };
        // Exchanges not yet handed over hold clones of the sender inside
        // the forwarder; once they all have been, the sink finishes them.
        let sink = forwarder.sink.clone();
        drop(forwarder);
        while in_flight_rx.recv().await.is_some() {}
        sink.flush().await;
        DrainReport {
            connections: accepted,
            cut_at_deadline,
        }
    }
}

async fn serve<S>(
    stream: S,
    forwarder: Arc<Forwarder>,
    conn: ConnInfo,
    mut stop: watch::Receiver<bool>,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let (link, link_driver) = UpstreamLink::new();
    let service = service_fn(move |req| {
        let forwarder = forwarder.clone();
        let link = link.clone();
        async move { Ok::<_, Infallible>(forwarder.handle(req, conn, link).await) }
    });
    // Not `pipeline_flush`: it lets hyper queue a response body without
    // limit, so a fast upstream and a slow client would fill memory.
    // Pipelined requests are still answered in order without it.
    let connection = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(stream), service)
        .with_upgrades();
    tokio::pin!(connection);
    tokio::pin!(link_driver);
    // The driver never completes: it only moves the upstream side along.
    let result = tokio::select! {
        result = connection.as_mut() => result,
        _ = stop.changed() => {
            // Finish the exchange in progress, then close.
            connection.as_mut().graceful_shutdown();
            tokio::select! {
                result = connection.as_mut() => result,
                _ = link_driver.as_mut() => unreachable_driver(),
            }
        }
        _ = link_driver.as_mut() => unreachable_driver(),
    };
    if let Err(e) = result {
        tracing::debug!(client = %conn.client, "connection ended: {e}");
    }
}

/// [`super::link::LinkDriver`] is pending forever; this arm exists only so
/// `select!` polls it.
fn unreachable_driver() -> Result<(), hyper::Error> {
    Ok(())
}
