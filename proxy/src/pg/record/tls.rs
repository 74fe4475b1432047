//! rustls configurations for both legs of the proxy.

use std::fs::File;
use std::io::BufReader;
use std::path::Path;
use std::sync::Arc;

use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use super::RecordError;

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn read_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, RecordError> {
    let bad = |message: String| RecordError::Tls {
        path: path.to_path_buf(),
        message,
    };
    let file = File::open(path).map_err(|e| bad(e.to_string()))?;
    let certs = rustls_pemfile::certs(&mut BufReader::new(file))
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| bad(e.to_string()))?;
    if certs.is_empty() {
        return Err(bad("no PEM certificate in the file".into()));
    }
    Ok(certs)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, RecordError> {
    let bad = |message: String| RecordError::Tls {
        path: path.to_path_buf(),
        message,
    };
    let file = File::open(path).map_err(|e| bad(e.to_string()))?;
    rustls_pemfile::private_key(&mut BufReader::new(file))
        .map_err(|e| bad(e.to_string()))?
        .ok_or_else(|| bad("no PEM private key in the file".into()))
}

/// The server side of TLS towards clients that send SSLRequest, from a PEM
/// certificate chain and key.
pub fn client_facing_config(cert: &Path, key: &Path) -> Result<Arc<ServerConfig>, RecordError> {
    let certs = read_certs(cert)?;
    let key = read_key(key)?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| RecordError::Tls {
            path: cert.to_path_buf(),
            message: e.to_string(),
        })?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|e| RecordError::Tls {
            path: cert.to_path_buf(),
            message: format!("certificate and key do not make a usable pair: {e}"),
        })?;
    Ok(Arc::new(config))
}

/// The client side of TLS towards the server: the public web roots, plus a
/// PEM CA file for servers with a private CA or a self-signed certificate.
pub fn upstream_config(extra_ca: Option<&Path>) -> Result<Arc<ClientConfig>, RecordError> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    if let Some(path) = extra_ca {
        for cert in read_certs(path)? {
            roots.add(cert).map_err(|e| RecordError::Tls {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        }
    }
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| RecordError::Tls {
            path: extra_ca.map(Path::to_path_buf).unwrap_or_default(),
            message: e.to_string(),
        })?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}
