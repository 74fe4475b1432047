//! End to end: a real psycopg2 app recorded through `recplay record` (its
//! HTTP tests) while its database traffic is written in one of Keploy's
//! Postgres layouts (v1 packets or V3 invocations), then `recplay test`
//! with PostgreSQL stopped, the database served from Keploy's mocks.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use recplay_proxy::testset::{Lifetime, LoadedTestSet, TestSetDir};

use super::{load, SEED};
use crate::support::http::call;
use crate::support::keploy_v1::Capture;
use crate::support::keploy_v3::keploy_v3;
use crate::support::pg::{free_port, PgCluster};
use crate::support::python::test_venv;
use crate::support::recplay::RecplayRecord;

/// A small JSON service over psycopg2 (literals inlined, simple Queries),
/// on the port in argv[1], its database on `APP_PG_PORT`.
const APP: &str = r#"
import json, os, sys
from http.server import BaseHTTPRequestHandler, HTTPServer
import psycopg2

conn = None

def db():
    global conn
    if conn is None:
        conn = psycopg2.connect(host="127.0.0.1", port=int(os.environ["APP_PG_PORT"]),
                                user="postgres", dbname="postgres", connect_timeout=10)
        conn.autocommit = True
    return conn.cursor()

class Handler(BaseHTTPRequestHandler):
    def answer(self, body):
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        cur = db()
        if self.path == "/count":
            cur.execute("SELECT count(*) FROM items")
            self.answer({"count": cur.fetchone()[0]})
        else:
            cur.execute("SELECT id, name, price FROM items WHERE id = %s",
                        (int(self.path.rsplit("/", 1)[1]),))
            row = cur.fetchone()
            self.answer({"item": row and {"id": row[0], "name": row[1], "price": row[2]}})

    def do_POST(self):
        item = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        cur = db()
        cur.execute("INSERT INTO items (id, name, price) VALUES (%s, %s, %s) RETURNING id",
                    (item["id"], item["name"], item["price"]))
        self.answer({"created": cur.fetchone()[0]})

    def log_message(self, *args):
        pass

HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"#;

struct App(Child);

impl Drop for App {
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

/// A recorded test set whose mocks.yaml is in a Keploy layout, and what
/// replaying it needs.
struct Recorded {
    dir: tempfile::TempDir,
    python: PathBuf,
    script: PathBuf,
    app_port: u16,
    set: LoadedTestSet,
}

/// Records six HTTP tests of the app with `recplay record` while its
/// database traffic goes through a [`Capture`], then replaces the set's
/// mocks.yaml with what `layout` writes from that traffic and stops
/// PostgreSQL.
fn record(layout: fn(&Capture) -> String) -> Recorded {
    let venv = test_venv();
    let dir = tempfile::tempdir().expect("tempdir");
    let script = dir.path().join("app.py");
    std::fs::write(&script, APP).expect("app");
    let python = venv.join("bin/python");
    let app_port = free_port();
    let pg = PgCluster::start();
    pg.psql(SEED);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let capture = runtime.block_on(Capture::start(&pg.addr()));

    let keploy = dir.path().join("keploy");
    {
        let _app = App(Command::new(&python)
            .arg(&script)
            .arg(app_port.to_string())
            .env("APP_PG_PORT", capture.addr.port().to_string())
            .stdout(Stdio::null())
            .spawn()
            .expect("start the app"));
        wait_for_port(app_port);
        let rec = RecplayRecord::start(&keploy, &format!("http://127.0.0.1:{app_port}"), &[]);
        let json = [("Content-Type", "application/json")];
        for (method, path, body) in [
            ("GET", "/items/2", ""),
            ("GET", "/count", ""),
            (
                "POST",
                "/items",
                r#"{"id": 6, "name": "zeta", "price": 6.5}"#,
            ),
            ("GET", "/count", ""),
            ("GET", "/items/6", ""),
            ("GET", "/items/3", ""),
        ] {
            let answer = call(method, &rec.url(path), &json, body.as_bytes());
            assert_eq!(answer.status, 200, "{method} {path}");
        }
        rec.signal(nix::sys::signal::Signal::SIGINT);
        let (status, out, err) = rec.wait(Duration::from_secs(30));
        assert!(status.success(), "{out}\n{err}");
    }
    let set = keploy.join("test-set-0");
    std::fs::write(set.join("mocks.yaml"), layout(&capture)).expect("mocks.yaml");
    drop(capture);
    pg.stop();
    let set = load(&TestSetDir::open(set));
    assert_eq!(set.tests.len(), 6);
    Recorded {
        dir,
        python,
        script,
        app_port,
        set,
    }
}

/// The tests that own at least one mock.
fn owners(set: &LoadedTestSet) -> BTreeSet<&str> {
    set.mocks
        .iter()
        .filter_map(|m| match &m.spec.lifetime {
            Lifetime::Test(name) => Some(name.as_str()),
            _ => None,
        })
        .collect()
}

/// `recplay test` on the recorded set, the app's database on the mock
/// server: every test must pass.
fn replay(recorded: &Recorded) {
    let dir: &Path = recorded.dir.path();
    std::fs::write(
        dir.join("keploy.yml"),
        include_str!("../../keploy.yml.template"),
    )
    .expect("config");
    let mock_port = free_port();
    let app_port = recorded.app_port;
    let serve = format!(
        "exec {} {} {app_port}",
        recorded.python.display(),
        recorded.script.display()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_recplay"))
        .args(["test", "--delay", "20", "-c", &serve])
        .args(["--http-target", &format!("http://127.0.0.1:{app_port}")])
        .args(["--pg-listen", &format!("127.0.0.1:{mock_port}")])
        .env("APP_PG_PORT", mock_port.to_string())
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .current_dir(dir)
        .output()
        .expect("run recplay test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(
        stdout.contains("test-set-0: 6 passed, 0 failed"),
        "{stdout}"
    );
}

#[test]
fn a_psycopg2_app_replays_from_keploys_v1_mocks_with_postgres_stopped() {
    let recorded = record(Capture::keploy_v1);
    let attributed = recorded
        .set
        .mocks
        .iter()
        .filter(|m| matches!(m.spec.lifetime, Lifetime::Test(_)))
        .count();
    assert_eq!(attributed, 6, "every request's query belongs to its test");
    replay(&recorded);
}

/// V3 keeps invocations, not packets: each query becomes one mock per way
/// a client may ask it, all owned by the test that was in flight.
#[test]
fn a_psycopg2_app_replays_from_keploys_v3_mocks_with_postgres_stopped() {
    let recorded = record(keploy_v3);
    let tests: BTreeSet<&str> = recorded.set.tests.iter().map(|t| t.name.as_str()).collect();
    assert_eq!(owners(&recorded.set), tests, "every test owns its query");
    assert!(
        recorded
            .set
            .mocks
            .iter()
            .any(|m| m.spec.lifetime == Lifetime::Session && m.spec.connection == 0),
        "the session document is served as the start-up"
    );
    replay(&recorded);
}
