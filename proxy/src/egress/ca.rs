//! The project's own certificate authority, for HTTPS through the forward
//! proxy: recplay ends the app's TLS itself (to see the call), so it shows
//! the app a certificate for the host it asked for, signed by a CA the app
//! is told to trust.
//!
//! The CA is made once per project and reused, so a client configured to
//! trust it stays configured: `ca.pem` and `ca-key.pem` (mode 0600) in one
//! directory, with a `.gitignore` that keeps both out of the repository,
//! and `bundle.pem`: the CA plus the system's roots, because
//! `SSL_CERT_FILE` replaces an OpenSSL client's whole store.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::ServerConfig;

/// The CA's directory, inside the keploy directory: hidden, so it is
/// never taken for a test set.
pub const CA_DIR: &str = ".recplay-ca";

/// The system's roots, appended to the bundle when present.
const SYSTEM_ROOTS: &str = "/etc/ssl/certs/ca-certificates.crt";
/// The CA's name: leaves name it as their issuer, so it must not change
/// between the run that made the CA and the runs that reuse it.
const CA_NAME: &str = "recplay project CA";

/// Why the CA could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum CaError {
    /// A file of the CA directory could not be read or written.
    #[error("recplay CA: {path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The key or a certificate could not be made or parsed.
    #[error("recplay CA: {what}: {source}; delete the CA directory to have a new CA made")]
    Cert {
        /// What was being done.
        what: String,
        /// What rcgen said.
        source: rcgen::Error,
    },
    /// rustls refused a leaf certificate.
    #[error("recplay CA: the certificate for {host} was rejected: {source}")]
    Rejected {
        /// The host it was for.
        host: String,
        /// What rustls said.
        source: rustls::Error,
    },
}

impl std::fmt::Debug for ProjectCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProjectCa").field("dir", &self.dir).finish()
    }
}

/// A loaded CA, minting (and keeping) one leaf per host.
pub struct ProjectCa {
    key: KeyPair,
    /// Rebuilt from the name and key: signing needs only those, and they
    /// are what the stored `ca.pem` carries.
    issuer: rcgen::Certificate,
    dir: PathBuf,
    leaves: Mutex<HashMap<String, Arc<ServerConfig>>>,
}

fn io(path: &Path) -> impl Fn(std::io::Error) -> CaError + '_ {
    move |source| CaError::Io {
        path: path.to_path_buf(),
        source,
    }
}

fn cert_err(what: &str) -> impl Fn(rcgen::Error) -> CaError + '_ {
    move |source| CaError::Cert {
        what: what.to_string(),
        source,
    }
}

fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, CA_NAME);
    name.push(DnType::OrganizationName, "recplay");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

impl ProjectCa {
    /// The CA in `dir`, made there first if it is not (the directory too).
    pub fn load_or_create(dir: &Path) -> Result<Self, CaError> {
        // Absolute: the app may run elsewhere, and reads the bundle's path.
        let dir = &std::path::absolute(dir).map_err(io(dir))?;
        let cert_path = dir.join("ca.pem");
        let key_path = dir.join("ca-key.pem");
        let key = if key_path.exists() && cert_path.exists() {
            let pem = std::fs::read_to_string(&key_path).map_err(io(&key_path))?;
            KeyPair::from_pem(&pem).map_err(cert_err("reading ca-key.pem"))?
        } else {
            std::fs::create_dir_all(dir).map_err(io(dir))?;
            std::fs::write(dir.join(".gitignore"), "*\n").map_err(io(dir))?;
            let key = KeyPair::generate().map_err(cert_err("making the CA key"))?;
            write_private(&key_path, key.serialize_pem().as_bytes())?;
            let cert = ca_params()
                .self_signed(&key)
                .map_err(cert_err("making the CA certificate"))?;
            std::fs::write(&cert_path, cert.pem()).map_err(io(&cert_path))?;
            key
        };
        let issuer = ca_params()
            .self_signed(&key)
            .map_err(cert_err("loading the CA"))?;
        let ca = ProjectCa {
            key,
            issuer,
            dir: dir.to_path_buf(),
            leaves: Mutex::new(HashMap::new()),
        };
        ca.write_bundle()?;
        Ok(ca)
    }

    /// The CA certificate (PEM).
    pub fn cert_path(&self) -> PathBuf {
        self.dir.join("ca.pem")
    }

    /// The CA plus the system's roots (PEM): what the app's TLS trusts.
    pub fn bundle_path(&self) -> PathBuf {
        self.dir.join("bundle.pem")
    }

    fn write_bundle(&self) -> Result<(), CaError> {
        let cert_path = self.cert_path();
        let mut bundle = std::fs::read(&cert_path).map_err(io(&cert_path))?;
        if let Ok(system) = std::fs::read(SYSTEM_ROOTS) {
            bundle.push(b'\n');
            bundle.extend(system);
        }
        let path = self.bundle_path();
        std::fs::write(&path, bundle).map_err(io(&path))
    }

    /// The environment that makes common clients trust the CA: OpenSSL
    /// (Python's ssl, curl), requests, and Node.
    pub fn trust_env(&self) -> Vec<(String, String)> {
        let bundle = self.bundle_path().display().to_string();
        ["SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "NODE_EXTRA_CA_CERTS"]
            .into_iter()
            .map(|var| (var.to_string(), bundle.clone()))
            .collect()
    }

    /// A TLS server config presenting a certificate for `host`, offering
    /// HTTP/2 and HTTP/1.1; made on first use, then kept.
    pub fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, CaError> {
        let mut leaves = self.leaves.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(config) = leaves.get(host) {
            return Ok(config.clone());
        }
        let what = format!("making a certificate for {host}");
        let mut params = CertificateParams::new(vec![host.to_string()]).map_err(cert_err(&what))?;
        params.distinguished_name = DistinguishedName::new();
        params.distinguished_name.push(DnType::CommonName, host);
        params.use_authority_key_identifier_extension = true;
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let leaf_key = KeyPair::generate().map_err(cert_err(&what))?;
        let leaf = params
            .signed_by(&leaf_key, &self.issuer, &self.key)
            .map_err(cert_err(&what))?;
        let chain = vec![leaf.der().clone()];
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
        let rejected = |source| CaError::Rejected {
            host: host.to_string(),
            source,
        };
        let mut config =
            ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .map_err(rejected)?
                .with_no_client_auth()
                .with_single_cert(chain, key)
                .map_err(rejected)?;
        config.alpn_protocols = crate::tls::H2_AND_HTTP_1_1
            .iter()
            .map(|p| p.to_vec())
            .collect();
        let config = Arc::new(config);
        leaves.insert(host.to_string(), config.clone());
        Ok(config)
    }

    /// The CA certificate, DER, for a client that trusts it directly.
    pub fn cert_der(&self) -> Result<CertificateDer<'static>, CaError> {
        let path = self.cert_path();
        let pem = std::fs::read(&path).map_err(io(&path))?;
        let first = rustls_pemfile::certs(&mut pem.as_slice()).next();
        first
            .unwrap_or_else(|| {
                Err(std::io::Error::new(
                    std::io::ErrorKind::InvalidData,
                    "no certificate",
                ))
            })
            .map_err(io(&path))
    }
}

/// Writes `bytes` to a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> Result<(), CaError> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut file = options.open(path).map_err(io(path))?;
    file.write_all(bytes).map_err(io(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A leaf minted after reloading verifies against the first run's
    /// `ca.pem`: the CA is really reused, not silently replaced.
    #[test]
    fn a_reloaded_ca_signs_leaves_the_stored_certificate_verifies() {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca_dir = dir.path().join(".recplay-ca");
        let first = ProjectCa::load_or_create(&ca_dir).expect("create");
        let stored = std::fs::read(first.cert_path()).expect("ca.pem");
        drop(first);
        let again = ProjectCa::load_or_create(&ca_dir).expect("reload");
        assert_eq!(std::fs::read(again.cert_path()).expect("ca.pem"), stored);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(ca_dir.join("ca-key.pem"))
                .expect("key")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert_eq!(
            std::fs::read_to_string(ca_dir.join(".gitignore")).expect("ignore"),
            "*\n"
        );

        let leaf = again.server_config("api.example").expect("leaf");
        assert!(Arc::ptr_eq(
            &leaf,
            &again.server_config("api.example").expect("cached")
        ));
        let mut roots = rustls::RootCertStore::empty();
        roots.add(again.cert_der().expect("der")).expect("root");
        let client = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
        let name = rustls::pki_types::ServerName::try_from("api.example").expect("name");
        let mut client = rustls::ClientConnection::new(Arc::new(client), name).expect("client");
        let mut server = rustls::ServerConnection::new(leaf).expect("server");
        for _ in 0..10 {
            let mut wire = Vec::new();
            while client.wants_write() {
                client.write_tls(&mut wire).expect("client write");
            }
            if !wire.is_empty() {
                server.read_tls(&mut wire.as_slice()).expect("server read");
                server.process_new_packets().expect("server accepts");
            }
            let mut wire = Vec::new();
            while server.wants_write() {
                server.write_tls(&mut wire).expect("server write");
            }
            if !wire.is_empty() {
                client.read_tls(&mut wire.as_slice()).expect("client read");
                client
                    .process_new_packets()
                    .expect("the client verifies the leaf");
            }
        }
        assert!(!client.is_handshaking(), "handshake completed");
    }
}
