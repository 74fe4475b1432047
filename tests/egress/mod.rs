//! Outgoing HTTP calls: a real Python app that, per request, queries
//! PostgreSQL and calls an external service (an OpenAI-compatible fake
//! streaming SSE through a named route, a JSON endpoint through the forward
//! proxy) is recorded, then replayed with the database and the service
//! stopped; a changed recorded answer fails the right test, naming the call.
//! And Keploy-written `kind: Http` mocks are served to a real client.

mod https_proxy;
mod keploy_fixture;
mod node_proxy;
mod routes;
mod url_noise;

use std::path::Path;
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::http::call;
use crate::support::pg::{free_port, PgCluster};
use crate::support::python::test_venv;
use crate::support::recplay::RecplayRecord;

const APP: &str = include_str!("app.py");
const FAKE: &str = include_str!("fake_llm.py");

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for_port(port: u16) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "nothing listened on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `recplay test` of the app in `dir`, its database and its outgoing
/// calls served from the recording; or, given `real_pg` (the real
/// database's port), with `--no-mocks`.
fn replay(
    dir: &Path,
    python: &Path,
    app_port: u16,
    fake_url: &str,
    real_pg: Option<u16>,
) -> Output {
    let mock_port = free_port();
    let (pg_port, mode) = match real_pg {
        Some(port) => (port, Some("--no-mocks")),
        None => (mock_port, None),
    };
    let serve = format!(
        "exec {} {} {app_port}",
        python.display(),
        dir.join("app.py").display()
    );
    Command::new(env!("CARGO_BIN_EXE_recplay"))
        .args(["test", "--path", "keploy", "--delay", "20", "-c", &serve])
        .args(["--http-target", &format!("http://127.0.0.1:{app_port}")])
        .args(["--pg-listen", &format!("127.0.0.1:{mock_port}")])
        .args(["--egress", &format!("llm={fake_url}"), "--egress-proxy"])
        .args(mode)
        .env("APP_PG_PORT", pg_port.to_string())
        .env("RATES_URL", fake_url)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .env_remove("HTTP_PROXY")
        .env_remove("http_proxy")
        .current_dir(dir)
        .output()
        .expect("run recplay test")
}

#[test]
fn an_apps_streamed_and_proxied_calls_replay_with_the_services_stopped() {
    let venv = test_venv();
    let python = venv.join("bin/python");
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("app.py"), APP).expect("app");
    std::fs::write(dir.path().join("fake_llm.py"), FAKE).expect("fake");
    let pg = PgCluster::start();
    pg.psql(
        "CREATE TABLE quotes (id int PRIMARY KEY, text text); \
         INSERT INTO quotes VALUES (1, 'to be or not'), (2, 'the quick brown fox'), (3, 'hello world')",
    );
    let fake_port = free_port();
    let fake = Killed(
        Command::new(&python)
            .arg(dir.path().join("fake_llm.py"))
            .arg(fake_port.to_string())
            .stdout(Stdio::null())
            .spawn()
            .expect("start the fake LLM"),
    );
    wait_for_port(fake_port);
    let fake_url = format!("http://127.0.0.1:{fake_port}");
    let app_port = free_port();
    let pg_port = free_port();
    let keploy = dir.path().join("keploy");
    // The app's settings go in its command: the test process's own
    // environment is shared with the tests running beside it.
    let serve = format!(
        "APP_PG_PORT={pg_port} RATES_URL={fake_url} exec {} {} {app_port}",
        python.display(),
        dir.path().join("app.py").display()
    );
    let rec = RecplayRecord::start(
        &keploy,
        &format!("http://127.0.0.1:{app_port}"),
        &[
            "--pg-listen",
            &format!("127.0.0.1:{pg_port}"),
            "--pg-upstream",
            &pg.addr(),
            "--egress",
            &format!("llm={fake_url}"),
            "--egress-proxy",
            "-c",
            &serve,
        ],
    );
    let mut recorded = Vec::new();
    for n in 1..=3 {
        let answer = call("GET", &rec.url(&format!("/quote/{n}")), &[], b"");
        let text = String::from_utf8_lossy(&answer.body).to_string();
        assert_eq!(answer.status, 200, "{text}\n{}", rec.stderr_text());
        recorded.push(serde_json::from_str::<serde_json::Value>(&text).expect("json"));
    }
    assert_eq!(recorded[1]["summary"], "THE QUICK BROWN FOX");
    assert_eq!(recorded[1]["events"], 5, "four words and [DONE]");
    assert_eq!(recorded[1]["rate"], 1.02);
    rec.signal(nix::sys::signal::Signal::SIGINT);
    let (status, out, err) = rec.wait(Duration::from_secs(30));
    assert!(status.success(), "{out}\n{err}");
    assert!(
        out.contains("outgoing HTTP: recorded 3 mocks"),
        "{out}\n{err}"
    );
    assert!(
        out.contains("outgoing HTTP (proxy): recorded 3 mocks"),
        "{out}"
    );

    let mocks_path = keploy.join("test-set-0/mocks.yaml");
    let mocks = std::fs::read_to_string(&mocks_path).expect("mocks.yaml");
    assert!(
        !mocks.contains("sk-test-secret"),
        "the API key is not written"
    );
    assert!(mocks.contains("kind: Postgres") || mocks.contains("kind: recplay-Postgres"));
    let docs: Vec<serde_yaml::Value> = mocks
        .split("\n---\n")
        .filter_map(|d| serde_yaml::from_str(d.trim_start_matches("---\n")).ok())
        .filter(|d: &serde_yaml::Value| d["kind"] == "Http")
        .collect();
    assert_eq!(docs.len(), 6, "{mocks}");
    let chat = docs
        .iter()
        .find(|d| {
            d["spec"]["metadata"]["recplay_test"] == "test-2"
                && d["spec"]["metadata"]["recplay_route"] == "llm"
        })
        .expect("test-2's LLM call");
    assert_eq!(chat["version"], "api.keploy.io/v1beta1");
    let events = chat["spec"]["resp"]["body"]
        .as_sequence()
        .expect("kept as events");
    assert_eq!(events.len(), 5, "{chat:?}");
    assert_eq!(
        chat["spec"]["req"]["header"]["Authorization"],
        "Bearer {{recplay.secret.authorization_1}}"
    );

    // Without mocks the same set runs against the real database and
    // service (the app's reads change nothing, so it passes).
    let run = replay(dir.path(), &python, app_port, &fake_url, Some(pg.port));
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("test-set-0: 3 passed, 0 failed"),
        "{stdout}"
    );
    assert!(stderr.contains("no PostgreSQL mock server"), "{stderr}");

    // Nothing real is left to answer.
    drop(fake);
    pg.stop();
    let run = replay(dir.path(), &python, app_port, &fake_url, None);
    let stdout = String::from_utf8_lossy(&run.stdout);
    let stderr = String::from_utf8_lossy(&run.stderr);
    assert_eq!(run.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("test-set-0: 3 passed, 0 failed"),
        "{stdout}"
    );
    let report = std::fs::read_to_string(keploy.join("reports/test-run-1/test-set-0-report.yaml"))
        .expect("the mocked run's report");
    assert!(report.contains("http_mocks:"), "{report}");
    assert!(!report.contains("http_misses:"), "{report}");

    // The rate test-2 was given, changed in the recording: only test-2
    // fails, and its summary names the call that answered.
    let changed = mocks.replace("\"rate\": 1.02", "\"rate\": 7.77");
    assert_ne!(changed, mocks, "the recorded rate is in mocks.yaml");
    std::fs::write(&mocks_path, changed).expect("edit mocks.yaml");
    let run = replay(dir.path(), &python, app_port, &fake_url, None);
    let stdout = String::from_utf8_lossy(&run.stdout);
    assert_eq!(run.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("test-set-0: 2 passed, 1 failed"),
        "{stdout}"
    );
    assert!(stdout.contains("FAIL test-set-0/test-2"), "{stdout}");
    let named = stdout.lines().any(|l| {
        l.contains("outgoing call answered from the recording: http-")
            && l.contains("/v1/rates?id=2&cur=EUR")
    });
    assert!(named, "{stdout}");
}
