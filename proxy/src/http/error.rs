//! Errors of the HTTP recording proxy.

use std::net::SocketAddr;
use std::path::PathBuf;

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
    /// A certificate or key file could not be read.
    #[error("could not read the {what} file {path}")]
    ReadPem {
        /// "certificate", "private key", "CA certificate".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// A PEM file held nothing of the expected kind.
    #[error("{path} holds no usable {what}; expected a PEM file")]
    EmptyPem {
        /// "certificate", "private key", "CA certificate".
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// rustls refused the certificate, key or settings.
    #[error("the TLS settings were rejected: {0}")]
    Tls(#[from] rustls::Error),
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
