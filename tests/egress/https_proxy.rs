//! HTTPS through the forward proxy: a Python app calls an HTTPS service
//! with urllib (through `HTTPS_PROXY`, verifying TLS against the bundle
//! recplay's `SSL_CERT_FILE` names); the calls are recorded under their
//! `https://` URLs, and replay with the service stopped. A client that
//! does not trust the project's CA fails verification: the TLS is real.

use std::process::Command;
use std::time::Duration;

use recplay_proxy::tls;

use crate::support::http::call;
use crate::support::pg::free_port;
use crate::support::recplay::RecplayRecord;
use crate::support::upstream::Upstream;

const APP: &str = include_str!("https_app.py");

/// Tries `url` through the proxy with Python's default, verifying TLS and
/// no `SSL_CERT_FILE`: the system's roots only. Prints the status or the
/// error.
const UNTRUSTING: &str = r#"
import sys, urllib.request
try:
    with urllib.request.urlopen(sys.argv[1], timeout=10) as r:
        print("status", r.status)
except Exception as e:
    print("error", e)
"#;

#[test]
fn an_apps_https_calls_through_the_proxy_record_and_replay_with_the_service_stopped() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let cert_path = dir.path().join("service-ca.pem");
    let key_path = dir.path().join("service-key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).expect("write key");
    let service = Upstream::start_tls(
        tls::server_config(&cert_path, &key_path, tls::HTTP_1_1).expect("server TLS"),
    );
    let service_url = format!("https://localhost:{}", service.addr.port());
    let app = dir.path().join("app.py");
    std::fs::write(&app, APP).expect("app");
    let app_port = free_port();
    // The app's settings go in its command: the test process's own
    // environment is shared with the tests running beside it.
    let serve = format!(
        "unset NO_PROXY no_proxy; UPSTREAM={service_url} exec python3 {} {app_port}",
        app.display()
    );
    let keploy = dir.path().join("keploy");
    let rec = RecplayRecord::start(
        &keploy,
        &format!("http://127.0.0.1:{app_port}"),
        &[
            "--egress-proxy",
            "--upstream-ca",
            cert_path.to_str().expect("utf-8 path"),
            "-c",
            &serve,
        ],
    );
    let proxy_line = rec.wait_for_line("outgoing HTTP: forward proxy on ", Duration::from_secs(10));
    let proxy = proxy_line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split(' ').next())
        .expect("the proxy's address")
        .to_string();
    super::wait_for_port(app_port);
    for n in 1..=2 {
        let answer = call("GET", &rec.url(&format!("/item/{n}")), &[], b"");
        let text = String::from_utf8_lossy(&answer.body).to_string();
        assert_eq!(answer.status, 200, "{text}\n{}", rec.stderr_text());
        let got: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(got["path"], "/echo/item", "{text}");
        assert_eq!(got["query"], format!("n={n}"), "{text}");
    }

    let untrusting = Command::new("python3")
        .args(["-c", UNTRUSTING, &format!("{service_url}/echo/untrusted")])
        .env("HTTPS_PROXY", format!("http://{proxy}"))
        .env_remove("SSL_CERT_FILE")
        .env_remove("SSL_CERT_DIR")
        .env_remove("NO_PROXY")
        .env_remove("no_proxy")
        .output()
        .expect("run the untrusting client");
    let said = String::from_utf8_lossy(&untrusting.stdout);
    // The proxy's certificate, whose issuer (the project CA) is unknown;
    // the service's own would be a self-signed one.
    assert!(said.contains("CERTIFICATE_VERIFY_FAILED"), "{said}");
    assert!(
        said.contains("unable to get local issuer certificate"),
        "{said}"
    );

    rec.signal(nix::sys::signal::Signal::SIGINT);
    let (status, out, err) = rec.wait(Duration::from_secs(30));
    assert!(status.success(), "{out}\n{err}");
    assert!(
        out.contains("outgoing HTTP (proxy): recorded 2 mocks"),
        "{out}"
    );
    let mocks = std::fs::read_to_string(keploy.join("test-set-0/mocks.yaml")).expect("mocks");
    let urls: Vec<String> = mocks
        .split("\n---\n")
        .filter_map(|d| {
            serde_yaml::from_str::<serde_yaml::Value>(d.trim_start_matches("---\n")).ok()
        })
        .filter(|d| d["kind"] == "Http")
        .filter_map(|d| d["spec"]["req"]["url"].as_str().map(str::to_string))
        .collect();
    assert_eq!(
        urls,
        [1, 2].map(|n| format!("{service_url}/echo/item?n={n}")),
        "{mocks}"
    );
    let ca_dir = keploy.join(".recplay-ca");
    let ca = std::fs::read(ca_dir.join("ca.pem")).expect("the project CA");
    {
        use std::os::unix::fs::PermissionsExt;
        let key = std::fs::metadata(ca_dir.join("ca-key.pem")).expect("the CA key");
        assert_eq!(key.permissions().mode() & 0o777, 0o600);
    }

    drop(service);
    let run = Command::new(env!("CARGO_BIN_EXE_recplay"))
        .args(["test", "--path", "keploy", "--delay", "10", "-c", &serve])
        .args(["--http-target", &format!("http://127.0.0.1:{app_port}")])
        .arg("--egress-proxy")
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .current_dir(dir.path())
        .output()
        .expect("run recplay test");
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("test-set-0: 2 passed, 0 failed"),
        "{stdout}"
    );
    assert_eq!(
        std::fs::read(ca_dir.join("ca.pem")).expect("the project CA"),
        ca,
        "the CA is reused, not made again"
    );
}
