//! rustls settings: trust for https:// upstreams and the certificate for an
//! optional TLS listener.

use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use super::error::HttpProxyError;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(
    path: &Path,
    what: &'static str,
) -> Result<Vec<CertificateDer<'static>>, HttpProxyError> {
    let pem = std::fs::read(path).map_err(|source| HttpProxyError::ReadPem {
        what,
        path: path.to_path_buf(),
        source,
    })?;
    let certs: Vec<_> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|source| HttpProxyError::ReadPem {
            what,
            path: path.to_path_buf(),
            source,
        })?;
    if certs.is_empty() {
        return Err(HttpProxyError::EmptyPem {
            what,
            path: path.to_path_buf(),
        });
    }
    Ok(certs)
}

/// Trust for https:// upstreams: the public web roots, plus `extra_ca`
/// (typically the self-signed CA of a development or staging app).
pub fn client_config(extra_ca: Option<&Path>) -> Result<Arc<ClientConfig>, HttpProxyError> {
    let mut roots = RootCertStore {
        roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
    };
    if let Some(path) = extra_ca {
        for cert in read_certs(path, "CA certificate")? {
            roots.add(cert)?;
        }
    }
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth();
    // The proxy speaks HTTP/1.1 to the upstream.
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The listener's certificate chain and key, both PEM.
pub fn server_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, HttpProxyError> {
    let chain = read_certs(cert, "certificate")?;
    let key_pem = std::fs::read(key).map_err(|source| HttpProxyError::ReadPem {
        what: "private key",
        path: key.to_path_buf(),
        source,
    })?;
    let key_der: PrivateKeyDer<'static> = rustls_pemfile::private_key(&mut key_pem.as_slice())
        .map_err(|source| HttpProxyError::ReadPem {
            what: "private key",
            path: key.to_path_buf(),
            source,
        })?
        .ok_or_else(|| HttpProxyError::EmptyPem {
            what: "private key",
            path: key.to_path_buf(),
        })?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(chain, key_der)?;
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}
