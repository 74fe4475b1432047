//! Loading TLS settings, one place for both proxies: the certificate a
//! listener serves (HTTP clients, PostgreSQL clients after SSLRequest) and
//! the trust used towards an upstream (an https:// app, a PostgreSQL server
//! with `--pg-upstream-tls`). rustls with the ring provider throughout.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

/// ALPN for the HTTP proxy: it speaks HTTP/1.1 on both sides.
pub const HTTP_1_1: &[&[u8]] = &[b"http/1.1"];

/// The ALPN name of HTTP/2.
pub const H2: &[u8] = b"h2";

/// ALPN for the TLS recplay ends inside a `CONNECT` tunnel: the app may
/// speak HTTP/2 there, and is served in the protocol it picks.
pub const H2_AND_HTTP_1_1: &[&[u8]] = &[H2, b"http/1.1"];

/// No ALPN: PostgreSQL's SSLRequest negotiation does not use it.
pub const NO_ALPN: &[&[u8]] = &[];

/// Why TLS settings could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// A certificate or key file could not be read or parsed as PEM.
    #[error("could not read the {what} file {path}: {source}")]
    Read {
        /// "certificate", "private key", "CA certificate".
        what: &'static str,
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A PEM file held nothing of the expected kind.
    #[error("{path} holds no usable {what}; expected a PEM file")]
    Empty {
        /// "certificate", "private key", "CA certificate".
        what: &'static str,
        /// The file.
        path: PathBuf,
    },
    /// rustls refused the certificate, key, CA or settings.
    #[error("the TLS settings from {path} were rejected: {source}; check that the certificate and key belong together")]
    Rejected {
        /// The file the rejected settings came from (empty: none).
        path: PathBuf,
        /// What rustls said.
        source: rustls::Error,
    },
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_pem(path: &Path, what: &'static str) -> Result<Vec<u8>, TlsError> {
    std::fs::read(path).map_err(|source| TlsError::Read {
        what,
        path: path.to_path_buf(),
        source,
    })
}

fn read_certs(path: &Path, what: &'static str) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let pem = read_pem(path, what)?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|source| TlsError::Read {
            what,
            path: path.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(TlsError::Empty {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsError> {
    let what = "private key";
    let pem = read_pem(path, what)?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|source| TlsError::Read {
            what,
            path: path.to_path_buf(),
            source,
        })?
        .ok_or_else(|| TlsError::Empty {
            what,
            path: path.to_path_buf(),
        })
}

fn rejected(path: &Path) -> impl Fn(rustls::Error) -> TlsError + '_ {
    move |source| TlsError::Rejected {
        path: path.to_path_buf(),
        source,
    }
}

/// A listener's certificate chain and key, both PEM, offering `alpn`.
pub fn server_config(
    cert: &Path,
    key: &Path,
    alpn: &[&[u8]],
) -> Result<Arc<ServerConfig>, TlsError> {
    let chain = read_certs(cert, "certificate")?;
    let key_der = read_key(key)?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(rejected(cert))?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)
        .map_err(rejected(cert))?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}

/// Trust towards an upstream: the public web roots, plus `extra_ca`
/// (typically the self-signed CA of a development or staging server),
/// offering `alpn`.
pub fn client_config(
    extra_ca: Option<&Path>,
    alpn: &[&[u8]],
) -> Result<Arc<ClientConfig>, TlsError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    let ca_path = extra_ca.unwrap_or(Path::new(""));
    if let Some(path) = extra_ca {
        for cert in read_certs(path, "CA certificate")? {
            roots.add(cert).map_err(rejected(path))?;
        }
    }
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(rejected(ca_path))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(Arc::new(config))
}
