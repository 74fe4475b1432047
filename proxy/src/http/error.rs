//! Errors of the HTTP recording proxy.

use std::net::SocketAddr;
use std::path::PathBuf;

/// Why the proxy could not be set up or keep listening. Failures of single
/// exchanges never surface here: they become a 502 for that client.
#[derive(Debug, thiserror::Error)]
pub enum HttpProxyError {
    #[error("invalid upstream URL {url:?}: {reason}; give http://HOST:PORT or https://HOST:PORT")]
    InvalidUpstream { url: String, reason: String },
    #[error("could not read the {what} file {path}")]
    ReadPem {
        what: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} holds no usable {what}; expected a PEM file")]
    EmptyPem { what: &'static str, path: PathBuf },
    #[error("the TLS settings were rejected: {0}")]
    Tls(#[from] rustls::Error),
    #[error("could not listen on {addr} (is another process using that port?)")]
    Bind {
        addr: SocketAddr,
        #[source]
        source: std::io::Error,
    },
}
