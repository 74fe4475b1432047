//! keploy.yml's URL noise for outgoing calls: an app whose call carries a
//! per-run id in a path segment and a timestamp in its query is recorded,
//! then replayed with the service stopped; it passes with `path` and
//! `query` noise set and fails, naming the call, without.

use std::process::{Command, Output, Stdio};
use std::time::Duration;

use super::{wait_for_port, Killed, FAKE};
use crate::support::http::call;
use crate::support::pg::free_port;
use crate::support::python::test_venv;
use crate::support::recplay::RecplayRecord;

const APP: &str = include_str!("noisy_app.py");

const NOISE: &str = "test:\n  globalNoise:\n    global:\n      path: {\"/v1/orders/*/status\": []}\n      query: {ts: []}\n";

fn replay(dir: &std::path::Path, python: &std::path::Path, shop: &str) -> Output {
    let app_port = free_port();
    let serve = format!(
        "exec {} {} {app_port}",
        python.display(),
        dir.join("app.py").display()
    );
    Command::new(env!("CARGO_BIN_EXE_recplay"))
        .args(["test", "--path", "keploy", "--delay", "20", "-c", &serve])
        .args(["--http-target", &format!("http://127.0.0.1:{app_port}")])
        .args(["--pg-listen", &format!("127.0.0.1:{}", free_port())])
        .args(["--egress", &format!("shop={shop}")])
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .current_dir(dir)
        .output()
        .expect("run recplay test")
}

#[test]
fn url_noise_lets_a_per_run_path_segment_and_query_value_replay() {
    let venv = test_venv();
    let python = venv.join("bin/python");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("app.py"), APP).expect("app");
    std::fs::write(dir.path().join("fake.py"), FAKE).expect("fake");
    let fake_port = free_port();
    let fake = Killed(
        Command::new(&python)
            .arg(dir.path().join("fake.py"))
            .arg(fake_port.to_string())
            .stdout(Stdio::null())
            .spawn()
            .expect("start the fake service"),
    );
    wait_for_port(fake_port);
    let shop = format!("http://127.0.0.1:{fake_port}");
    let app_port = free_port();
    let keploy = dir.path().join("keploy");
    let serve = format!(
        "exec {} {} {app_port}",
        python.display(),
        dir.path().join("app.py").display()
    );
    let rec = RecplayRecord::start(
        &keploy,
        &format!("http://127.0.0.1:{app_port}"),
        &["--egress", &format!("shop={shop}"), "-c", &serve],
    );
    let answer = call("GET", &rec.url("/order"), &[], b"");
    let text = String::from_utf8_lossy(&answer.body).to_string();
    assert_eq!(answer.status, 200, "{text}\n{}", rec.stderr_text());
    assert_eq!(text, r#"{"status": "shipped"}"#);
    rec.signal(nix::sys::signal::Signal::SIGINT);
    let (status, out, err) = rec.wait(Duration::from_secs(30));
    assert!(status.success(), "{out}\n{err}");
    let mocks = std::fs::read_to_string(keploy.join("test-set-0/mocks.yaml")).expect("mocks");
    assert!(mocks.contains("/status?ts="), "{mocks}");
    drop(fake);

    // Without the noise the new run's id and time are a miss, named.
    let run = replay(dir.path(), &python, &shop);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(1), "{stdout}");
    let named = stdout.lines().any(|l| {
        l.contains("outgoing call: no recorded answer for: GET ") && l.contains("/v1/orders/")
    });
    assert!(named, "{stdout}");

    // With it the recorded answer is served.
    std::fs::write(dir.path().join("keploy.yml"), NOISE).expect("keploy.yml");
    let run = replay(dir.path(), &python, &shop);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("test-set-0: 1 passed, 0 failed"),
        "{stdout}"
    );
}
