//! TLS on both legs: terminated by the proxy for a libpq client (psql with
//! sslmode=require), and spoken by the proxy to a server with ssl on.

use std::process::Command;

use recplay_proxy::pg::record::PgRecorderConfig;
use recplay_proxy::tls;

use super::Recording;
use crate::support::pg::{pg_bin, PgCluster};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn clients_asking_for_tls_get_it_from_the_proxy() {
    let pg = PgCluster::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".into(), "127.0.0.1".into()])
        .expect("certificate");
    let cert_path = dir.path().join("server.crt");
    let key_path = dir.path().join("server.key");
    std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).expect("write key");

    let rec = Recording::start_with(PgRecorderConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        allow_remote: false,
        max_connections: recplay_proxy::pg::record::DEFAULT_MAX_CONNECTIONS,
        upstream: pg.addr(),
        client_tls: Some(
            tls::server_config(&cert_path, &key_path, tls::NO_ALPN).expect("tls config"),
        ),
        upstream_tls: None,
    })
    .await;
    let conn = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=require",
        rec.addr.port()
    );
    let out = Command::new(pg_bin("psql"))
        .args(["-X", "-A", "-t", "-d", &conn, "-c"])
        .arg("SELECT 'over tls', ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
        .output()
        .expect("psql");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Encrypted to the proxy; the proxy's own leg to the server is plain.
    assert_eq!(String::from_utf8_lossy(&out.stdout).trim(), "over tls|f");
    let recorded = rec.finish().await;
    assert_eq!(
        recorded
            .running("SELECT 'over tls', ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .len(),
        1
    );

    // Without a certificate the proxy declines, and sslmode=require fails
    // with libpq's own clear message.
    let plain = Recording::start(&pg.addr()).await;
    let conn = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=require",
        plain.addr.port()
    );
    let out = Command::new(pg_bin("psql"))
        .args(["-X", "-d", &conn, "-c", "SELECT 1"])
        .output()
        .expect("psql");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("does not support SSL"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    plain.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_speaks_tls_to_a_server_that_requires_it() {
    use rcgen::{BasicConstraints, CertificateParams, IsCa, KeyPair};
    let pg = PgCluster::start();
    let ca_key = KeyPair::generate().expect("CA key");
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).expect("CA");
    let server_key = KeyPair::generate().expect("server key");
    let server = CertificateParams::new(vec!["127.0.0.1".to_string()])
        .expect("server params")
        .signed_by(&server_key, &ca, &ca_key)
        .expect("server certificate");
    pg.enable_ssl(&server.pem(), &server_key.serialize_pem());
    let dir = tempfile::tempdir().expect("temp dir");
    let ca_path = dir.path().join("ca.pem");
    std::fs::write(&ca_path, ca.pem()).expect("write CA");

    let rec = Recording::start_with(PgRecorderConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        allow_remote: false,
        max_connections: recplay_proxy::pg::record::DEFAULT_MAX_CONNECTIONS,
        upstream: pg.addr(),
        client_tls: None,
        upstream_tls: Some(tls::client_config(Some(&ca_path), tls::NO_ALPN).expect("upstream TLS")),
    })
    .await;
    let client = super::connect(&rec.conn_str("postgres")).await;
    let row = client
        .query_one(
            "SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()",
            &[],
        )
        .await
        .expect("query");
    assert!(
        row.get::<_, bool>(0),
        "the server sees an encrypted connection"
    );
    drop(client);
    let recorded = rec.finish().await;
    assert_eq!(
        recorded
            .running("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            .len(),
        1
    );

    // A CA the server's certificate does not chain to is refused, and the
    // client is told why.
    let other_key = KeyPair::generate().expect("key");
    let mut other = CertificateParams::new(Vec::<String>::new()).expect("params");
    other.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    std::fs::write(&ca_path, other.self_signed(&other_key).expect("CA").pem()).expect("write");
    let rec = Recording::start_with(PgRecorderConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        allow_remote: false,
        max_connections: recplay_proxy::pg::record::DEFAULT_MAX_CONNECTIONS,
        upstream: pg.addr(),
        client_tls: None,
        upstream_tls: Some(tls::client_config(Some(&ca_path), tls::NO_ALPN).expect("upstream TLS")),
    })
    .await;
    let err = tokio_postgres::connect(&rec.conn_str("postgres"), tokio_postgres::NoTls)
        .await
        .err()
        .expect("untrusted server certificate");
    let db = err.as_db_error().expect("an ErrorResponse from the proxy");
    assert!(
        db.message().contains("TLS handshake failed"),
        "{}",
        db.message()
    );
    rec.finish().await;
}
