//! Snapshot cost per test and added replay time, coverage on vs off.
//!
//! Generates a WSGI app of doccano's size (300 modules, ~27k statements,
//! all imported at start-up as Django does), runs it under gunicorn with 2
//! workers twice per round — without coverage, then with the agent and the
//! real collector snapshotting after every request — and reports the median
//! snapshot time and the replay-time ratio measured in the same run.
//!
//! Run: `cargo bench --bench coverage_snapshots` (needs python3; the venv
//! under target/ is created on first use, as the integration tests do).

#[path = "../../src/coverage"]
#[allow(dead_code, unused_imports)]
mod recplay_coverage {
    pub mod agent;
    pub mod collector;
    pub mod model;
    pub mod protocol;
}

// Its own `#![allow(dead_code)]` covers the helpers this bench leaves unused.
#[path = "../../tests/support/mod.rs"]
mod support;

use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use recplay_coverage::collector::{CollectorOptions, CoverageCollector};
use support::pg::free_port;
use support::python::{http, test_venv, wait_http_ready, ServerProcess};

const MODULES: usize = 300;
const FUNCTIONS: usize = 10;
const REQUESTS: usize = 120;
const ROUNDS: usize = 2;

fn write_app(dir: &Path) {
    let pkg = dir.join("bigapp");
    std::fs::create_dir_all(&pkg).expect("mkdir");
    std::fs::write(pkg.join("__init__.py"), "").expect("write");
    for m in 0..MODULES {
        let mut src = format!("\"\"\"Generated module {m}.\"\"\"\n\nWEIGHT = {m}\n\n");
        for f in 0..FUNCTIONS {
            src.push_str(&format!(
                "\ndef f{f}(x):\n    total = 0\n    for k in range(x):\n        if k % 3 == 0:\n            total += k + WEIGHT\n        elif k % 3 == 1:\n            total -= {f}\n        else:\n            total *= 1\n    return total\n\n"
            ));
        }
        std::fs::write(pkg.join(format!("mod_{m}.py")), src).expect("write module");
    }
    let imports: String = (0..MODULES)
        .map(|m| format!("from bigapp import mod_{m}\n"))
        .collect();
    let names: Vec<String> = (0..MODULES).map(|m| format!("mod_{m}")).collect();
    let app = format!(
        "import difflib\nimport json\n{imports}\nMODULES = [{}]\n{}",
        names.join(", "),
        APPLICATION
    );
    std::fs::write(dir.join("app.py"), app).expect("write app");
}

/// The request handler: app code in 40 modules, then framework-like work
/// outside the measured tree (as Django's is).
const APPLICATION: &str = r#"

def application(environ, start_response):
    n = int(environ.get("PATH_INFO", "/0").rsplit("/", 1)[-1] or 0)
    results = []
    for i in range(40):
        module = MODULES[(n * 7 + i * 13) % len(MODULES)]
        results.append(module.f3(12))
        results.append(module.f7(12))
    text = " ".join(str(r) for r in results) * 8
    ratio = difflib.SequenceMatcher(None, text, text[::-1]).quick_ratio()
    body = json.dumps({"n": n, "sum": sum(results), "ratio": ratio}).encode()
    headers = [("Content-Type", "application/json"), ("Content-Length", str(len(body)))]
    start_response("200 OK", headers)
    return [body]
"#;

fn gunicorn(venv: &Path, app: &Path, port: u16) -> Command {
    let mut command = Command::new(venv.join("bin/gunicorn"));
    command
        .args([
            "-w",
            "2",
            "-k",
            "sync",
            "-b",
            &format!("127.0.0.1:{port}"),
            "app:application",
        ])
        .current_dir(app)
        .env_remove("PYTHONPATH");
    command
}

fn request(port: u16, n: usize) {
    let (status, body) = http(port, "GET", &format!("/work/{n}"), None).expect("request");
    assert_eq!(status, 200, "{body}");
}

/// Replay without coverage: total time of the requests.
fn replay_off(venv: &Path, app: &Path) -> Duration {
    let port = free_port();
    let server = ServerProcess::spawn(gunicorn(venv, app, port), app.join("off.log"));
    wait_http_ready(port, "/work/0", &server, Duration::from_secs(60));
    request(port, 0);
    let started = Instant::now();
    for n in 1..=REQUESTS {
        request(port, n);
    }
    let elapsed = started.elapsed();
    server.stop(Duration::from_secs(10));
    elapsed
}

/// Replay with the agent and a snapshot after each request: total time and
/// each snapshot's time.
fn replay_on(venv: &Path, app: &Path, rt: &tokio::runtime::Runtime) -> (Duration, Vec<Duration>) {
    let mut collector = rt
        .block_on(async { CoverageCollector::start(CollectorOptions::default()) })
        .expect("collector");
    let port = free_port();
    let mut command = gunicorn(venv, app, port);
    for (k, v) in collector.app_env().expect("env") {
        command.env(k, v);
    }
    let server = ServerProcess::spawn(command, app.join("on.log"));
    assert_eq!(
        rt.block_on(collector.wait_for_agents(3, Duration::from_secs(60))),
        3
    );
    wait_http_ready(port, "/work/0", &server, Duration::from_secs(60));
    request(port, 0);
    rt.block_on(collector.warm_up()).expect("warm-up");
    let mut snapshots = Vec::with_capacity(REQUESTS);
    let started = Instant::now();
    for n in 1..=REQUESTS {
        request(port, n);
        let t = Instant::now();
        let test = rt
            .block_on(collector.snapshot_all(&format!("bench/test-{n}")))
            .expect("snapshot");
        snapshots.push(t.elapsed());
        assert!(test.lines_covered > 0 && test.agents_failed == 0);
    }
    let elapsed = started.elapsed();
    let run = rt.block_on(collector.finish()).expect("finish");
    server.stop(Duration::from_secs(10));
    println!(
        "  coverage run: {} files described, {} statements, {:.1}% lines covered",
        run.statics.len(),
        run.totals.statements,
        run.totals.line_percent
    );
    (elapsed, snapshots)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    if values.len() % 2 == 0 {
        (values[mid - 1] + values[mid]) / 2.0
    } else {
        values[mid]
    }
}

fn percentile(mut values: Vec<f64>, p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    let index = ((values.len() as f64 - 1.0) * p).round() as usize;
    values[index]
}

fn main() {
    // `cargo bench` passes --bench; a filter argument that doesn't match
    // this benchmark's name skips it.
    if let Some(filter) = std::env::args().skip(1).find(|a| !a.starts_with('-')) {
        if !"coverage_snapshots".contains(&filter) {
            return;
        }
    }
    let venv = test_venv();
    let dir = tempfile::tempdir().expect("tempdir");
    let app = dir.path().canonicalize().expect("canonical");
    write_app(&app);
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    let mut off_ms = Vec::new();
    let mut on_ms = Vec::new();
    let mut snapshot_ms = Vec::new();
    for round in 1..=ROUNDS {
        println!("round {round}/{ROUNDS}");
        let off = replay_off(&venv, &app);
        let (on, snapshots) = replay_on(&venv, &app, &rt);
        println!(
            "  {REQUESTS} requests: off {:.0} ms, on {:.0} ms",
            off.as_secs_f64() * 1e3,
            on.as_secs_f64() * 1e3
        );
        off_ms.push(off.as_secs_f64() * 1e3);
        on_ms.push(on.as_secs_f64() * 1e3);
        snapshot_ms.extend(snapshots.iter().map(|d| d.as_secs_f64() * 1e3));
    }
    let off = median(off_ms);
    let on = median(on_ms);
    println!("\ncoverage snapshots ({MODULES} modules, {REQUESTS} requests x {ROUNDS} rounds, gunicorn -w 2):");
    println!(
        "  snapshot per test: median {:.2} ms, p90 {:.2} ms (target <= 10 ms)",
        median(snapshot_ms.clone()),
        percentile(snapshot_ms, 0.9)
    );
    println!(
        "  replay time: off {off:.0} ms, on {on:.0} ms, added {:+.1}% (target <= 25%)",
        (on / off - 1.0) * 100.0
    );
}
