//! What one proxied exchange looks like to whoever records it, and the hook
//! through which the proxy hands it over.
//!
//! The proxy is organised in phases, like a pingora `ProxyHttp`: a request
//! arrives ([`ExchangeSink::request_arrived`]), it is forwarded while its
//! body streams, the response streams back, and once both bodies have ended
//! the whole exchange is handed to [`ExchangeSink::exchange_complete`]. An
//! exchange that cannot complete (upstream down, client gone) ends in
//! [`ExchangeSink::exchange_failed`] instead. Keeping the recorder behind
//! this trait keeps the proxy free of file formats.

use std::future::Future;
use std::net::SocketAddr;
use std::pin::Pin;

use chrono::{DateTime, Utc};
use http::{HeaderMap, Method, StatusCode, Version};

use super::capture::CapturedBody;

/// The request line and headers as the client sent them.
#[derive(Debug, Clone)]
pub struct RequestHead {
    /// As sent.
    pub method: Method,
    /// The client's HTTP version.
    pub version: Version,
    /// Absolute URL on the upstream, query string included.
    pub url: String,
    /// Path and query as the client sent them.
    pub path_and_query: String,
    /// As received, hop-by-hop headers included.
    pub headers: HeaderMap,
    /// When the request head arrived.
    pub received_at: DateTime<Utc>,
    /// The client's address.
    pub client: SocketAddr,
    /// Which accepted connection carried the request (1, 2, …).
    pub connection: u64,
}

/// The status line and headers as the upstream sent them.
#[derive(Debug, Clone)]
pub struct ResponseHead {
    /// As sent by the upstream.
    pub status: StatusCode,
    /// The upstream's HTTP version.
    pub version: Version,
    /// As received from the upstream.
    pub headers: HeaderMap,
    /// When the response head arrived.
    pub received_at: DateTime<Utc>,
}

/// A finished exchange: both heads and capped copies of both bodies.
#[derive(Debug, Clone)]
pub struct Exchange {
    /// The name [`ExchangeSink::request_arrived`] gave it.
    pub name: String,
    /// The client's request head.
    pub request: RequestHead,
    /// Capped copy of the request body.
    pub request_body: CapturedBody,
    /// The upstream's response head.
    pub response: ResponseHead,
    /// Capped copy of the response body.
    pub response_body: CapturedBody,
    /// When the last byte of the response went to the client.
    pub completed_at: DateTime<Utc>,
}

/// A boxed future, so the trait stays object safe.
pub type SinkFuture<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

pub use super::capture::Hold;

/// Receives exchanges from the proxy. Every call but
/// [`ExchangeSink::flush`] runs on the request path, from inside the
/// proxy's tasks: at most a short write, never a wait on another thread.
pub trait ExchangeSink: Send + Sync + 'static {
    /// A request arrived; returns the name the exchange is recorded under.
    fn request_arrived(&self, head: &RequestHead) -> String;

    /// Both bodies ended. Called from the task that finished the response
    /// body, before its last bytes leave for the client: those wait for
    /// the returned [`Hold`], if any (write-ahead).
    fn exchange_complete(&self, exchange: Exchange) -> Option<Hold>;

    /// The exchange named `name` will not complete; `reason` says why.
    fn exchange_failed(&self, name: &str, reason: &str);

    /// Resolves once every exchange handed over so far has been dealt with
    /// (written, for a recorder); the proxy awaits it before it reports
    /// itself drained.
    fn flush(&self) -> SinkFuture<'_>;
}
