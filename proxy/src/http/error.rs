//! Errors of the HTTP recording proxy.

use std::net::SocketAddr;

/// Why the proxy could not be set up or keep listening. Failures of single
/// exchanges never surface here: they become a 502 for that client.
#[derive(Debug, thiserror::Error)]
pub enum HttpProxyError {
    /// `--http-upstream` is not an http:// or https:// URL we can use.
    #[error("invalid upstream URL {url:?}: {reason}; give http://HOST:PORT or https://HOST:PORT")]
    InvalidUpstream {
        /// As given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The certificate, key or CA could not be loaded.
    #[error(transparent)]
    Tls(#[from] crate::tls::TlsError),
    /// The listening address could not be bound.
    #[error("could not listen on {addr} (is another process using that port?)")]
    Bind {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}
