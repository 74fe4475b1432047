//! TLS terminated by the proxy: a libpq client (psql) with sslmode=require.

use std::process::Command;

use recplay_proxy::pg::record::{tls, PgRecorderConfig};

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
        upstream: pg.addr(),
        client_tls: Some(tls::client_facing_config(&cert_path, &key_path).expect("tls config")),
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
