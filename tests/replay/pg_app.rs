//! `recplay test` on an app backed by PostgreSQL, served from the
//! recording: `--detect-noise` must serve both passes of a test the same
//! recorded answers, and a query the recording lacks must lead the failed
//! test's summary.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::json;

use super::{latest_run, recplay, set_report, Run};
use crate::support::http::call;
use crate::support::pg::{free_port, PgCluster};
use crate::support::recplay::RecplayRecord;

/// An HTTP app in a thread of its own: each `GET /visit` opens a
/// connection to `database`, records a visit and answers with every
/// visit so far, so each test's answer depends on which recorded rows
/// it is served.
struct VisitsApp {
    addr: SocketAddr,
    /// How the app lists the visits; a test changes it to ask the
    /// recording something it does not hold.
    listing: Arc<Mutex<&'static str>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl VisitsApp {
    fn start(database: String) -> Self {
        let listing = Arc::new(Mutex::new(LISTING));
        let shared = listing.clone();
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                addr_tx.send(listener.local_addr().expect("addr")).expect("send");
                loop {
                    tokio::select! {
                        _ = &mut stopped => return,
                        accepted = listener.accept() => {
                            let Ok((stream, _)) = accepted else { continue };
                            let database = database.clone();
                            let listing = shared.clone();
                            tokio::spawn(async move {
                                let service = service_fn(move |req| {
                                    let listing = *listing.lock().expect("lock");
                                    visit(req, database.clone(), listing)
                                });
                                let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                                    .serve_connection(TokioIo::new(stream), service)
                                    .await;
                            });
                        }
                    }
                }
            });
        });
        let addr = addr_rx.recv().expect("the app reports its address");
        VisitsApp {
            addr,
            listing,
            stop: Some(stop),
            thread: Some(thread),
        }
    }

    fn list_with(&self, sql: &'static str) {
        *self.listing.lock().expect("lock") = sql;
    }

    fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for VisitsApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn visit(
    _req: Request<hyper::body::Incoming>,
    database: String,
    listing: &'static str,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let (status, body) = match visits(&database, listing).await {
        Ok(body) => (200, body),
        Err(e) => (500, json!({"error": e.to_string()})),
    };
    Ok(Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("response"))
}

const LISTING: &str = "SELECT id FROM visits ORDER BY id";

async fn visits(database: &str, listing: &str) -> Result<serde_json::Value, tokio_postgres::Error> {
    let (client, connection) = tokio_postgres::connect(database, tokio_postgres::NoTls).await?;
    tokio::spawn(connection);
    let id: i32 = client
        .query_one("INSERT INTO visits DEFAULT VALUES RETURNING id", &[])
        .await?
        .get(0);
    let all: Vec<i32> = client
        .query(listing, &[])
        .await?
        .iter()
        .map(|r| r.get(0))
        .collect();
    Ok(json!({"id": id, "visits": all}))
}

const VISITS: usize = 4;

fn record_visits(dir: &Path, pg_port: u16) -> VisitsApp {
    let pg = PgCluster::start();
    pg.psql("CREATE TABLE visits (id serial PRIMARY KEY)");
    let database = format!("host=127.0.0.1 port={pg_port} user=postgres dbname=postgres");
    let app = VisitsApp::start(database);
    let pg_listen = format!("127.0.0.1:{pg_port}");
    let recorder = RecplayRecord::start(
        &dir.join("keploy"),
        &app.url(),
        &["--pg-listen", &pg_listen, "--pg-upstream", &pg.addr()],
    );
    for _ in 0..VISITS {
        let answer = call("GET", &recorder.url("/visit"), &[], b"");
        assert_eq!(
            answer.status,
            200,
            "{}",
            String::from_utf8_lossy(&answer.body)
        );
    }
    recorder.signal(nix::sys::signal::Signal::SIGINT);
    let (status, stdout, stderr) = recorder.wait(Duration::from_secs(30));
    assert!(status.success(), "{stdout}\n{stderr}");
    pg.stop();
    app
}

/// `recplay test` against the app, its database served from the
/// recording on `pg_port`.
fn replay_from_mocks(dir: &Path, app: &VisitsApp, pg_port: u16, extra: &[&str]) -> Run {
    let pg_listen = format!("127.0.0.1:{pg_port}");
    let target = app.url();
    let mut args = vec![
        "test",
        "--http-target",
        target.as_str(),
        "--pg-listen",
        pg_listen.as_str(),
        "--delay",
        "5",
    ];
    args.extend_from_slice(extra);
    recplay(dir, &args)
}

#[test]
fn both_passes_of_a_test_get_the_same_recorded_answers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pg_port = free_port();
    let app = record_visits(dir.path(), pg_port);
    let run = replay_from_mocks(dir.path(), &app, pg_port, &["--detect-noise"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    // Nothing the database answers varies, so no body field is proposed;
    // the Date header the app's server adds is, as it looks volatile.
    let text = std::fs::read_to_string(latest_run(dir.path()).join("noise-proposal.yaml"))
        .expect("proposal written");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("proposal is YAML");
    let set = &doc["test"]["globalNoise"]["test-sets"]["test-set-0"];
    assert!(set.get("body").is_none(), "{text}");
    assert!(set["header"].get("Date").is_some(), "{text}");
    // And no test was served another test's answers or a reused one.
    let report = set_report(dir.path(), "test-set-0");
    let tests = report["tests"].as_sequence().expect("tests");
    assert_eq!(tests.len(), VISITS);
    for test in tests {
        assert!(test.get("pg_fallbacks").is_none(), "{test:?}");
        assert!(test.get("pg_misses").is_none(), "{test:?}");
        assert_eq!(test["status"].as_str(), Some("PASSED"), "{test:?}");
    }
}

#[test]
fn a_query_the_recording_lacks_leads_the_failed_tests_summary() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pg_port = free_port();
    let app = record_visits(dir.path(), pg_port);
    app.list_with("SELECT id FROM visits ORDER BY id DESC");
    let run = replay_from_mocks(dir.path(), &app, pg_port, &[]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    // The miss comes first, with the nearest recording; the 500 it caused
    // follows, and its Content-Length, which only follows the body, is
    // left out.
    let failure = run
        .stdout
        .split("FAIL test-set-0/test-1")
        .nth(1)
        .expect("test-1 failed");
    let lines: Vec<&str> = failure.lines().collect();
    assert!(
        lines[1]
            .contains("database: no recorded answer for: SELECT id FROM visits ORDER BY id DESC"),
        "{failure}"
    );
    assert!(
        lines[2].contains("nearest recorded:")
            && lines[2].contains("SELECT id FROM visits ORDER BY id"),
        "{failure}"
    );
    assert!(
        lines[3].contains("status: expected 200, got 500"),
        "{failure}"
    );
    let own: String = failure
        .split("FAIL ")
        .next()
        .unwrap_or_default()
        .to_string();
    assert!(!own.contains("Content-Length"), "{own}");
}
