//! HTTPS through the forward proxy from a Node.js app: Node ignores
//! `HTTPS_PROXY`, so the app opens the `CONNECT` tunnel to the proxy in
//! `HTTP_PROXY` itself and verifies TLS the default way, trusting only what
//! `NODE_EXTRA_CA_CERTS` adds (recplay's project CA). Its calls are
//! recorded, replay with the service stopped, and a changed recorded answer
//! fails the test that used it, naming the call. A Node client without
//! `NODE_EXTRA_CA_CERTS` is refused by its own verification. The same
//! flow with Node's `http2` module in the tunnel: recplay's TLS offers
//! `h2`, records the calls (going on to the HTTP/1.1-only service as
//! HTTP/1.1) and answers them over HTTP/2 at replay.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use recplay_proxy::tls;

use crate::support::http::call;
use crate::support::pg::free_port;
use crate::support::recplay::RecplayRecord;
use crate::support::upstream::Upstream;

const APP: &str = include_str!("node_app.js");

/// `node`, or a failure saying how to get it: a test that needs Node must
/// not pass without it.
fn node() -> PathBuf {
    match Command::new("node").arg("--version").output() {
        Ok(out) if out.status.success() => PathBuf::from("node"),
        Ok(out) => panic!(
            "`node --version` failed ({}): install Node.js 18 or newer (Debian: apt-get install nodejs)",
            out.status
        ),
        Err(e) => panic!(
            "these tests run a Node.js app, and `node` could not be run ({e}): install Node.js 18 or newer (Debian: apt-get install nodejs)"
        ),
    }
}

/// A recording of the app's calls, ready to replay: its directory, the
/// command that serves the app, the app's port and the service's URL.
struct Recorded {
    dir: tempfile::TempDir,
    serve: String,
    app_port: u16,
    service_url: String,
}

/// A TLS service with its own self-signed certificate (HTTP/1.1 only),
/// and the file of that certificate (the proxy's `--upstream-ca`).
fn start_service(dir: &Path) -> (Upstream, PathBuf) {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let cert_path = dir.join("service-ca.pem");
    let key_path = dir.join("service-key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).expect("write key");
    let service = Upstream::start_tls(
        tls::server_config(&cert_path, &key_path, tls::HTTP_1_1).expect("server TLS"),
    );
    (service, cert_path)
}

/// Records `GET /{version}/1` and `/{version}/2` of the Node app, checks
/// each answer (the call the service echoed, the ALPN the app's TLS agreed
/// on) and the mocks written, then stops the service. `post`: the app's
/// calls are POSTs of `{"n":"N"}` (its HTTP/2 client), else GETs.
fn record(
    version: &str,
    alpn: &str,
    post: bool,
    untrusting: impl FnOnce(&Path, &str, &str),
) -> Recorded {
    let method = if post { "POST" } else { "GET" };
    let sent = |n: u32| {
        if post {
            format!(r#"{{"n":"{n}"}}"#)
        } else {
            String::new()
        }
    };
    let node = node();
    let dir = tempfile::tempdir().expect("tempdir");
    let (service, cert_path) = start_service(dir.path());
    let service_url = format!("https://localhost:{}", service.addr.port());
    let app = dir.path().join("node_app.js");
    std::fs::write(&app, APP).expect("app");
    let app_port = free_port();
    // The app's settings go in its command: the test process's own
    // environment is shared with the tests running beside it.
    let serve = format!(
        "unset NO_PROXY no_proxy NODE_TLS_REJECT_UNAUTHORIZED NODE_OPTIONS; UPSTREAM={service_url} exec {} {} serve {app_port}",
        node.display(),
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
        let answer = call("GET", &rec.url(&format!("/{version}/{n}")), &[], b"");
        let text = String::from_utf8_lossy(&answer.body).to_string();
        assert_eq!(answer.status, 200, "{text}\n{}", rec.stderr_text());
        let got: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(got["path"], "/echo/item", "{text}");
        assert_eq!(got["query"], format!("n={n}"), "{text}");
        assert_eq!(got["method"], method, "{text}");
        assert_eq!(got["body"], sent(n), "{text}");
        assert_eq!(got["alpn"], alpn, "{text}");
    }
    untrusting(&app, &proxy, &service_url);

    rec.signal(nix::sys::signal::Signal::SIGINT);
    let (status, out, err) = rec.wait(Duration::from_secs(30));
    assert!(status.success(), "{out}\n{err}");
    assert!(
        out.contains("outgoing HTTP (proxy): recorded 2 mocks"),
        "{out}\n{err}"
    );
    let mocks = std::fs::read_to_string(keploy.join("test-set-0/mocks.yaml")).expect("mocks");
    // HTTP/2 names the host in `:authority`; the call is recorded as the
    // HTTP/1.1 request that went on to the service, with its `Host`.
    let calls: Vec<(String, String, String, String, Option<u64>, String)> = mocks
        .split("\n---\n")
        .filter_map(|d| {
            serde_yaml::from_str::<serde_yaml::Value>(d.trim_start_matches("---\n")).ok()
        })
        .filter(|d| d["kind"] == "Http")
        .map(|d| {
            let field = |v: &serde_yaml::Value| v.as_str().unwrap_or_default().to_string();
            (
                field(&d["spec"]["metadata"]["recplay_test"]),
                field(&d["spec"]["req"]["method"]),
                field(&d["spec"]["req"]["url"]),
                field(&d["spec"]["req"]["header"]["Host"]),
                d["spec"]["req"]["proto_major"].as_u64(),
                field(&d["spec"]["req"]["body"]),
            )
        })
        .collect();
    assert_eq!(
        calls,
        [1, 2].map(|n| (
            format!("test-{n}"),
            method.to_string(),
            format!("{service_url}/echo/item?n={n}"),
            format!("localhost:{}", service.addr.port()),
            Some(1),
            sent(n),
        )),
        "{mocks}"
    );
    drop(service);
    Recorded {
        dir,
        serve,
        app_port,
        service_url,
    }
}

/// `recplay test` of the recording, the service stopped.
fn replay(rec: &Recorded) -> Output {
    Command::new(env!("CARGO_BIN_EXE_recplay"))
        .args([
            "test", "--path", "keploy", "--delay", "10", "-c", &rec.serve,
        ])
        .args([
            "--http-target",
            &format!("http://127.0.0.1:{}", rec.app_port),
        ])
        .arg("--egress-proxy")
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .current_dir(rec.dir.path())
        .output()
        .expect("run recplay test")
}

/// Replays the recording: both tests pass from the mocks alone; then with
/// test-2's recorded answer changed, test-2 alone fails and its summary
/// names the call that answered it.
fn replay_then_falsify(rec: &Recorded) {
    let run = replay(rec);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("test-set-0: 2 passed, 0 failed"),
        "{stdout}\n{stderr}"
    );

    let mocks_path = rec.dir.path().join("keploy/test-set-0/mocks.yaml");
    let mocks = std::fs::read_to_string(&mocks_path).expect("mocks.yaml");
    // The query the service echoed, in the recorded JSON body.
    let changed = mocks.replace(r#""query":"n=2""#, r#""query":"n=7""#);
    assert_ne!(
        changed, mocks,
        "the echoed query is in mocks.yaml:\n{mocks}"
    );
    std::fs::write(&mocks_path, changed).expect("edit mocks.yaml");
    let run = replay(rec);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("test-set-0: 1 passed, 1 failed"),
        "{stdout}"
    );
    assert!(stdout.contains("FAIL test-set-0/test-2"), "{stdout}");
    let url = format!("{}/echo/item?n=2", rec.service_url);
    let named = stdout.lines().any(|l| {
        l.contains("outgoing call answered from the recording: http-") && l.contains(&url)
    });
    assert!(named, "{stdout}");
}

#[test]
fn a_node_apps_https_calls_through_the_proxy_record_and_replay_trusting_the_project_ca() {
    let recorded = record("h1", "http/1.1", false, |app, proxy, service_url| {
        // The same client, run without NODE_EXTRA_CA_CERTS: Node's own
        // roots only, so the proxy's certificate is refused.
        let untrusting = Command::new(node())
            .arg(app)
            .args(["get", &format!("{service_url}/echo/untrusted")])
            .env("HTTP_PROXY", format!("http://{proxy}"))
            .env_remove("NODE_EXTRA_CA_CERTS")
            .env_remove("NODE_TLS_REJECT_UNAUTHORIZED")
            .env_remove("NODE_OPTIONS")
            .output()
            .expect("run the untrusting client");
        let said = String::from_utf8_lossy(&untrusting.stdout);
        // The proxy's certificate, whose issuer (the project CA) is
        // unknown; the service's own would be DEPTH_ZERO_SELF_SIGNED_CERT.
        assert!(
            said.starts_with("error UNABLE_TO_VERIFY_LEAF_SIGNATURE"),
            "{said}\n{}",
            String::from_utf8_lossy(&untrusting.stderr)
        );
    });
    replay_then_falsify(&recorded);
}

#[test]
fn a_node_apps_http2_calls_inside_the_tunnel_record_and_replay() {
    // The app offers only `h2`: its TLS fails unless recplay offers it
    // too, at record and at replay, and it reports what was agreed. Its
    // POST bodies come without a length, as HTTP/2 allows.
    let recorded = record("h2", "h2", true, |_, _, _| {});
    replay_then_falsify(&recorded);
}
