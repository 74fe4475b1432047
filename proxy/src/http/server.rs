//! The HTTP listener: plain or TLS connections, each served by
//! [`connection`] (HTTP/1.1 with keep-alive and pipelining, within its
//! [`HttpLimits`]), and a graceful drain on shutdown. Accepting, the connection cap and the drain are the shared
//! [`crate::serve`] loop's; this file says what an HTTP connection is, and
//! how one over the cap is refused (`503`, `Retry-After: 1`).

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;

use crate::serve::{self, ServeLimits, Service, Shutdown};

use super::connection::{self, ConnInfo, Forwarder};
use super::error::HttpProxyError;
use super::exchange::ExchangeSink;
use super::limits::HttpLimits;
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
    /// Connections, timeouts and header size.
    pub limits: HttpLimits,
}

impl HttpProxyConfig {
    /// Plain HTTP on both sides, default cap.
    pub fn new(upstream: Upstream) -> Self {
        HttpProxyConfig {
            upstream,
            body_cap: DEFAULT_BODY_CAP,
            server_tls: None,
            upstream_tls: None,
            limits: HttpLimits::default(),
        }
    }
}

pub use crate::serve::DrainReport;

/// What a connection over the cap is told.
const REFUSAL: &str =
    "recplay: too many connections (--http-max-connections); retry in a second.\n";

/// Answers a plain-HTTP connection over a listener's cap with `503`,
/// `Retry-After: 1` and `text`, then closes it (`Connection: close`).
pub async fn refuse_with_503(mut stream: TcpStream, text: &str) {
    let answer = format!(
        "HTTP/1.1 503 Service Unavailable\r\nRetry-After: 1\r\n\
         Content-Type: text/plain; charset=utf-8\r\nConnection: close\r\n\
         Content-Length: {}\r\n\r\n{text}",
        text.len()
    );
    if stream.write_all(answer.as_bytes()).await.is_ok() {
        let _ = stream.shutdown().await;
        // Read what the client sent until it closes, so the close is not
        // a reset that could destroy the answer before it is read.
        let mut sink = [0u8; 4096];
        while matches!(stream.read(&mut sink).await, Ok(n) if n > 0) {}
    }
}

/// A bound, not yet running proxy.
pub struct HttpProxy {
    listener: TcpListener,
    service: Arc<HttpService>,
}

/// What every HTTP connection shares.
struct HttpService {
    forwarder: Arc<Forwarder>,
    tls: Option<TlsAcceptor>,
    limits: HttpLimits,
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
        let forwarder = Arc::new(Forwarder {
            connector,
            host: config.upstream.authority(),
            upstream: config.upstream,
            body_cap: config.body_cap,
            limits: config.limits,
            sink,
        });
        let service = Arc::new(HttpService {
            forwarder,
            tls: config.server_tls.map(TlsAcceptor::from),
            limits: config.limits,
        });
        Ok(HttpProxy { listener, service })
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
    /// returns once the sink has finished with every exchange: each was
    /// handed over inside its connection's task, so all have been once the
    /// connections are done.
    pub async fn run(self, shutdown: impl Future<Output = ()>, grace: Duration) -> DrainReport {
        let HttpProxy { listener, service } = self;
        let limits = ServeLimits {
            max_connections: service.limits.max_connections,
            grace: Some(grace),
        };
        let sink = service.forwarder.sink.clone();
        let report = serve::run(listener, service, limits, shutdown).await;
        sink.flush().await;
        report
    }
}

impl Service for HttpService {
    async fn serve(
        self: Arc<Self>,
        stream: TcpStream,
        client: SocketAddr,
        id: u64,
        stop: Shutdown,
    ) {
        let conn = ConnInfo { client, id };
        let forwarder = self.forwarder.clone();
        if let Err(e) = stream.set_nodelay(true) {
            tracing::debug!(client = %client, "could not set TCP_NODELAY: {e}");
        }
        match &self.tls {
            None => connection::serve(stream, forwarder, conn, stop).await,
            Some(acceptor) => {
                let handshake = acceptor.accept(stream);
                match tokio::time::timeout(self.limits.header_timeout, handshake).await {
                    Ok(Ok(stream)) => connection::serve(stream, forwarder, conn, stop).await,
                    Ok(Err(e)) => tracing::warn!(client = %client, "TLS handshake failed: {e}"),
                    Err(_) => tracing::warn!(client = %client, "TLS handshake timed out"),
                }
            }
        }
    }

    async fn refuse(self: Arc<Self>, stream: TcpStream) {
        // A TLS client could not read a plain answer: it is just closed.
        if self.tls.is_none() {
            refuse_with_503(stream, REFUSAL).await;
        }
    }
}
