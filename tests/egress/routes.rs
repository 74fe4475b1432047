//! Recording through the two ways in, seen from outside: a named route to
//! an HTTPS service (rustls, trusting `--upstream-ca`) records the call
//! with its API key written as a placeholder, and a `CONNECT` tunnel the
//! client leaves idle does not hold the recording's end back.

use std::io::{Read, Write};
use std::time::Duration;

use recplay_proxy::tls;

use crate::support::http::call;
use crate::support::recplay::RecplayRecord;
use crate::support::upstream::Upstream;

/// `…on http://ADDR …` → `ADDR`.
fn addr_in(line: &str) -> String {
    line.split("http://")
        .nth(1)
        .and_then(|rest| rest.split([' ', ')']).next())
        .expect("an address in the line")
        .to_string()
}

#[test]
fn a_named_https_route_records_and_an_idle_tunnel_does_not_hold_the_stop() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let dir = tempfile::tempdir().expect("tempdir");
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).expect("write key");
    let upstream = Upstream::start_tls(
        tls::server_config(&cert_path, &key_path, tls::HTTP_1_1).expect("server TLS"),
    );
    let secure = format!("https://localhost:{}", upstream.addr.port());
    let keploy = dir.path().join("keploy");
    let rec = RecplayRecord::start(
        &keploy,
        &secure,
        &[
            "--egress",
            &format!("secure={secure}"),
            "--upstream-ca",
            cert_path.to_str().expect("utf-8 path"),
            "--egress-proxy",
            "--grace",
            "120",
        ],
    );
    let route = rec.wait_for_line("outgoing HTTP: route secure on ", Duration::from_secs(10));
    assert!(route.ends_with("(RECPLAY_EGRESS_SECURE_URL)"), "{route}");
    let proxy = rec.wait_for_line("outgoing HTTP: forward proxy on ", Duration::from_secs(10));

    let answer = call(
        "POST",
        &format!("http://{}/echo/charge?amount=5", addr_in(&route)),
        &[
            ("Content-Type", "application/json"),
            ("X-Api-Key", "key-123"),
        ],
        br#"{"card":"tok"}"#,
    );
    assert_eq!(answer.status, 200);
    let echoed: serde_json::Value = serde_json::from_slice(&answer.body).expect("json");
    assert_eq!(
        echoed["headers"]["x-api-key"][0], "key-123",
        "sent in clear"
    );

    let mut tcp = std::net::TcpStream::connect(addr_in(&proxy)).expect("connect");
    tcp.write_all(b"CONNECT api.example:443 HTTP/1.1\r\nHost: api.example:443\r\n\r\n")
        .expect("write");
    tcp.set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    let mut got = vec![0; 4096];
    let n = tcp.read(&mut got).expect("read");
    let got = String::from_utf8_lossy(&got[..n]);
    assert!(got.starts_with("HTTP/1.1 200"), "{got}");
    // The tunnel stays open and no TLS comes: it must not hold the
    // recording's end back.

    rec.signal(nix::sys::signal::Signal::SIGINT);
    // With a grace far beyond the wait, an idle connection that held the
    // stop back would fail the wait.
    let (status, out, err) = rec.wait(Duration::from_secs(30));
    drop(tcp);
    assert!(status.success(), "{out}\n{err}");
    let mocks = std::fs::read_to_string(keploy.join("test-set-0/mocks.yaml")).expect("mocks");
    // The echo service's answer repeats the key in its body; that is the
    // service's data. The request's header is what must not be in clear.
    assert!(!mocks.contains("X-Api-Key: key-123"), "{mocks}");
    let doc: serde_yaml::Value =
        serde_yaml::from_str(mocks.trim_start_matches("---\n")).expect("one document");
    assert_eq!(doc["kind"], "Http");
    assert_eq!(doc["name"], "http-1");
    let spec = &doc["spec"];
    assert_eq!(spec["req"]["url"], format!("{secure}/echo/charge?amount=5"));
    assert_eq!(
        spec["req"]["header"]["X-Api-Key"],
        "{{recplay.secret.x_api_key_1}}"
    );
    assert_eq!(spec["metadata"]["recplay_route"], "secure");
    assert!(
        spec["metadata"].get("recplay_test").is_none(),
        "no test was open"
    );
    assert_eq!(spec["resp"]["status_code"], 200);
}
