//! A real WSGI app under gunicorn with 2 pre-fork workers and the agent
//! injected: per-test attribution, equality with coverage.py's own
//! measurement of the same requests, exports read by real consumers, and
//! the gate through the binary.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use super::recplay_coverage::collector::{CollectorOptions, CoverageCollector};
use super::recplay_coverage::model::{CoverageMap, RunCoverage};
use super::recplay_coverage::store;
use crate::support::pg::free_port;
use crate::support::python::{http, test_venv, wait_http_ready, ServerProcess};

/// The replayed tests: name, method, path, body, the view that serves it.
const TESTS: &[(&str, &str, &str, Option<&str>, &str)] = &[
    ("test-set-0/test-1", "GET", "/items", None, "list_items"),
    (
        "test-set-0/test-2",
        "POST",
        "/items",
        Some(r#"{"name": "fig", "tags": ["fruit"]}"#),
        "create_item",
    ),
    ("test-set-0/test-3", "GET", "/items/2", None, "item_detail"),
    (
        "test-set-0/test-4",
        "GET",
        "/items/999",
        None,
        "item_detail",
    ),
    ("test-set-0/test-5", "GET", "/stats", None, "stats"),
    (
        "test-set-0/test-6",
        "POST",
        "/items",
        Some("{}"),
        "create_item",
    ),
    ("test-set-0/test-7", "GET", "/items", None, "list_items"),
    ("test-set-0/test-8", "GET", "/digest", None, "digest"),
];

fn fixture_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wsgi_app");
    for name in ["app.py", "views.py", "reports.py", "feeds.py"] {
        std::fs::copy(src.join(name), dir.path().join(name)).expect("copy the fixture");
    }
    dir
}

fn gunicorn_args(port: u16, worker_class: &str) -> Vec<String> {
    let bind = format!("127.0.0.1:{port}");
    let mut args: Vec<String> = ["-w", "2", "-k", worker_class, "-b", bind.as_str()]
        .iter()
        .map(|s| s.to_string())
        .collect();
    if worker_class == "gthread" {
        // Request threads are created on first use and then reused: later
        // snapshots must keep seeing what these existing threads run.
        args.extend(["--threads".to_string(), "2".to_string()]);
    }
    args.push("app:application".to_string());
    args
}

/// Each `def` in views.py and the line numbers of its body.
fn view_bodies(source: &str) -> BTreeMap<String, BTreeSet<u32>> {
    let mut bodies: BTreeMap<String, BTreeSet<u32>> = BTreeMap::new();
    let mut current: Option<String> = None;
    for (index, line) in source.lines().enumerate() {
        if let Some(rest) = line.strip_prefix("def ") {
            let name = rest.split('(').next().unwrap_or_default().to_string();
            current = Some(name);
            continue;
        }
        let trimmed = line.trim_start();
        if !line.starts_with(' ') && !trimmed.is_empty() {
            current = None;
        }
        if let Some(name) = &current {
            if !trimmed.is_empty() && !trimmed.starts_with('#') {
                bodies
                    .entry(name.clone())
                    .or_default()
                    .insert(index as u32 + 1);
            }
        }
    }
    bodies
}

/// Sends the warm-up and the tests; `after` runs once each response is in,
/// with the test's name (None for the warm-up).
fn replay(port: u16, mut after: impl FnMut(Option<&str>)) {
    let (status, _) = http(port, "GET", "/health", None).expect("warm-up request");
    assert_eq!(status, 200);
    after(None);
    for (name, method, path, body, _) in TESTS {
        let (status, text) = http(port, method, path, *body).expect("request");
        assert!(
            (200..500).contains(&status),
            "{method} {path}: {status} {text}"
        );
        after(Some(name));
    }
}

/// The same requests under `coverage run --parallel-mode` and `coverage
/// combine`: coverage.py's own per-file lines and summary, with branch
/// coverage or lines only.
fn measure_with_coverage_run(
    venv: &Path,
    app: &Path,
    branch: bool,
) -> (BTreeMap<String, BTreeSet<u32>>, serde_json::Value) {
    let data = tempfile::tempdir().expect("tempdir");
    let data_file = data.path().join(".coverage");
    let port = free_port();
    let mut command = Command::new(venv.join("bin/coverage"));
    command
        .args(["run", "--parallel-mode"])
        .args(branch.then_some("--branch"))
        .arg(format!("--include={}/*", app.display()))
        .args(["-m", "gunicorn"])
        .args(gunicorn_args(port, "sync"))
        .current_dir(app)
        .env("COVERAGE_FILE", &data_file)
        .env_remove("PYTHONPATH");
    let server = ServerProcess::spawn(command, data.path().join("gunicorn.log"));
    wait_http_ready(port, "/health", &server, Duration::from_secs(30));
    replay(port, |_| {});
    let log = server.log_text();
    server.stop(Duration::from_secs(15));

    let run = |args: &[&str]| {
        let output = Command::new(venv.join("bin/coverage"))
            .args(args)
            .current_dir(data.path())
            .env("COVERAGE_FILE", &data_file)
            .output()
            .expect("run coverage");
        assert!(
            output.status.success(),
            "coverage {args:?} failed: {}\ngunicorn log:\n{log}",
            String::from_utf8_lossy(&output.stderr)
        );
    };
    run(&["combine", "--quiet"]);
    let report = data.path().join("report.json");
    run(&[
        "json",
        "--quiet",
        "-o",
        report.to_str().expect("utf-8 path"),
    ]);
    let script = "import coverage, json, sys\n\
                  d = coverage.CoverageData(sys.argv[1]); d.read()\n\
                  print(json.dumps({f: sorted(d.lines(f) or []) for f in d.measured_files()}))";
    let output = Command::new(venv.join("bin/python"))
        .args(["-c", script])
        .arg(&data_file)
        .output()
        .expect("read the combined data");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let lines: BTreeMap<String, BTreeSet<u32>> =
        serde_json::from_slice(&output.stdout).expect("lines JSON");
    let summary = serde_json::from_str(&std::fs::read_to_string(report).expect("report"))
        .expect("report JSON");
    (lines, summary)
}

fn union_lines(run: &RunCoverage) -> BTreeMap<String, BTreeSet<u32>> {
    let mut all = CoverageMap::new();
    super::recplay_coverage::model::merge_map(&mut all, &run.startup);
    for test in &run.tests {
        super::recplay_coverage::model::merge_map(&mut all, &test.files);
    }
    all.into_iter()
        .filter(|(_, hits)| !hits.lines.is_empty())
        .map(|(path, hits)| (path, hits.lines))
        .collect()
}

#[test]
fn per_test_coverage_under_gunicorn_matches_coverage_run() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let venv = test_venv();
    let app_dir = fixture_copy();
    let app = app_dir.path().canonicalize().expect("canonical app dir");
    let (expected, summary) = measure_with_coverage_run(&venv, &app, true);
    // The C tracer measures branches by default where the monitor engine
    // does not (below 3.12, and from 3.14); on 3.12 and 3.13 it is asked for.
    let engine = monitor_measures_branches(&venv).then_some("ctrace");
    // "drain" is the agent's default with coverage.py's tracers; "context"
    // is its fallback through coverage.py's own contexts. Both must agree
    // with coverage.py, with single-threaded and threaded workers.
    for (mode, workers) in [
        ("drain", "sync"),
        ("drain", "gthread"),
        ("context", "gthread"),
    ] {
        let setup = AgentSetup {
            mode,
            workers,
            branch: true,
            core: None,
            engine,
        };
        let run = replay_with_agent(&venv, &app, &setup, &expected, &summary);
        assert!(
            run.agents.iter().all(|a| a.engine == "ctrace"),
            "{:?}",
            run.agents
        );
        if workers == "sync" {
            check_exports_and_gate(&venv, &app, &run);
        }
    }
}

/// Lines only (`RECPLAY_COVERAGE_BRANCH=0`): below Python 3.12 the agent
/// keeps to the C tracer and drains it. Where the Python has sys.monitoring
/// (3.12 and later) the agent's own "monitor" engine is the default and
/// re-arms lines at each snapshot; `RECPLAY_COVERAGE_ENGINE=ctrace` brings
/// back the C tracer, and `COVERAGE_CORE=sysmon` coverage.py's own core,
/// cut by restarting. Every engine gives each test its own view, and the
/// union equals coverage.py's own lines-only measurement, with
/// single-threaded and threaded workers. Set `RECPLAY_TEST_PYTHON` to run
/// this under another interpreter (CI runs it under 3.13 too).
#[test]
fn lines_only_coverage_matches_coverage_run_with_each_engine() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let venv = test_venv();
    let app_dir = fixture_copy();
    let app = app_dir.path().canonicalize().expect("canonical app dir");
    let (expected, summary) = measure_with_coverage_run(&venv, &app, false);
    // (COVERAGE_CORE, RECPLAY_COVERAGE_ENGINE, engine, mode, worker classes)
    let mut engines = vec![];
    if python_has_sys_monitoring(&venv) {
        engines.push((None, None, "monitor", "rearm", &["sync", "gthread"][..]));
        engines.push((None, Some("ctrace"), "ctrace", "drain", &["sync"][..]));
        engines.push((Some("sysmon"), None, "sysmon", "restart", &["sync"][..]));
    } else {
        engines.push((None, None, "ctrace", "drain", &["sync", "gthread"][..]));
    }
    for (core, requested, engine, mode, worker_classes) in engines {
        for &workers in worker_classes {
            let setup = AgentSetup {
                mode: "drain",
                workers,
                branch: false,
                core,
                engine: requested,
            };
            let run = replay_with_agent(&venv, &app, &setup, &expected, &summary);
            for agent in &run.agents {
                assert_eq!(
                    (agent.engine.as_str(), agent.mode.as_deref()),
                    (engine, Some(mode)),
                    "{workers}: {agent:?}"
                );
                assert!(!agent.branch, "{agent:?}");
            }
        }
    }
}

/// Branch coverage on the "monitor" engine, the default on Python 3.12 and
/// 3.13 (also asked for by `RECPLAY_COVERAGE_ENGINE=monitor`): BRANCH events
/// on the measured code, and for `async for` the body's first line and the
/// loop's END_ASYNC_FOR handler, mapped to coverage.py's arcs at each
/// snapshot. The union of the per-test data gives coverage.py's own
/// `--branch` lines and branch counts, file by file, with single-threaded
/// and threaded workers. Skipped on other versions.
#[test]
fn branch_coverage_on_the_monitor_engine_matches_coverage_run() {
    let _ = tracing_subscriber::fmt().with_test_writer().try_init();
    let venv = test_venv();
    if !monitor_measures_branches(&venv) {
        return;
    }
    let app_dir = fixture_copy();
    let app = app_dir.path().canonicalize().expect("canonical app dir");
    let (expected, summary) = measure_with_coverage_run(&venv, &app, true);
    // The default, and the same engine asked for by name.
    for (workers, engine) in [("sync", None), ("gthread", Some("monitor"))] {
        let setup = AgentSetup {
            mode: "drain",
            workers,
            branch: true,
            core: None,
            engine,
        };
        let run = replay_with_agent(&venv, &app, &setup, &expected, &summary);
        for agent in &run.agents {
            assert_eq!(
                (agent.engine.as_str(), agent.mode.as_deref()),
                ("monitor", Some("rearm")),
                "{workers}: {agent:?}"
            );
            assert!(agent.branch, "{agent:?}");
        }
    }
}

/// Python 3.12 added sys.monitoring.
fn python_has_sys_monitoring(venv: &Path) -> bool {
    python_version_in(venv, "(3, 12)", "(99,)")
}

/// The monitor engine measures branches on Python 3.12 and 3.13; 3.14
/// replaced the BRANCH event.
fn monitor_measures_branches(venv: &Path) -> bool {
    python_version_in(venv, "(3, 12)", "(3, 14)")
}

/// Whether the venv's Python is at least `low` and below `high` (Python
/// tuples).
fn python_version_in(venv: &Path, low: &str, high: &str) -> bool {
    let check = format!("import sys; sys.exit(0 if {low} <= sys.version_info < {high} else 1)");
    let status = Command::new(venv.join("bin/python"))
        .args(["-c", check.as_str()])
        .status()
        .expect("run the venv's python");
    status.success()
}

/// How the app and its agent run for one replay.
struct AgentSetup<'a> {
    /// `RECPLAY_COVERAGE_MODE`: the snapshot mode asked for.
    mode: &'a str,
    /// gunicorn's worker class.
    workers: &'a str,
    branch: bool,
    /// `COVERAGE_CORE` for the app; `None` leaves the choice to the agent.
    core: Option<&'a str>,
    /// `RECPLAY_COVERAGE_ENGINE` for the app.
    engine: Option<&'a str>,
}

fn replay_with_agent(
    venv: &Path,
    app: &Path,
    setup: &AgentSetup<'_>,
    expected: &BTreeMap<String, BTreeSet<u32>>,
    summary: &serde_json::Value,
) -> RunCoverage {
    let AgentSetup {
        mode,
        workers,
        branch,
        core,
        engine,
    } = *setup;
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");

    let mut collector = rt
        .block_on(async {
            CoverageCollector::start(CollectorOptions {
                branch,
                ..CollectorOptions::default()
            })
        })
        .expect("start the collector");
    let port = free_port();
    let mut command = Command::new(venv.join("bin/gunicorn"));
    command
        .args(gunicorn_args(port, workers))
        .current_dir(app)
        .env("RECPLAY_COVERAGE_MODE", mode)
        .env_remove("COVERAGE_CORE")
        .env_remove("RECPLAY_COVERAGE_ENGINE");
    if let Some(core) = core {
        command.env("COVERAGE_CORE", core);
    }
    if let Some(engine) = engine {
        command.env("RECPLAY_COVERAGE_ENGINE", engine);
    }
    for (key, value) in collector.app_env().expect("app env") {
        command.env(key, value);
    }

    let server = ServerProcess::spawn(command, app.join(format!("gunicorn-{mode}-{workers}.log")));
    // The master and both workers connect (the workers re-connect after fork).
    let agents = rt.block_on(collector.wait_for_agents(3, Duration::from_secs(30)));
    assert_eq!(agents, 3, "master + 2 workers; log:\n{}", server.log_text());
    wait_http_ready(port, "/health", &server, Duration::from_secs(30));

    let mut per_test = Vec::new();
    replay(port, |test| match test {
        None => rt.block_on(collector.warm_up()).expect("warm-up snapshot"),
        Some(name) => per_test.push(rt.block_on(collector.snapshot_all(name)).expect("snapshot")),
    });
    let run = rt.block_on(collector.finish()).expect("finish");
    let log = server.log_text();
    server.stop(Duration::from_secs(15));

    assert!(
        // With coverage.py's sys.monitoring core the agent must restart
        // instead; its own sys.monitoring engine re-arms.
        run.agents.iter().all(|a| match a.engine.as_str() {
            "sysmon" => a.mode.as_deref() == Some("restart"),
            "monitor" => a.mode.as_deref() == Some("rearm"),
            _ => a.mode.as_deref() == Some(mode),
        }),
        "{:?}",
        run.agents
    );
    let views = app.join("views.py").display().to_string();
    let bodies = view_bodies(&std::fs::read_to_string(app.join("views.py")).expect("views.py"));
    assert!(bodies.len() >= 6, "{bodies:?}");

    // Every test has its own, non-empty delta with its view's lines in it,
    // and none of another view's.
    for ((name, _, path, _, view), test) in TESTS.iter().zip(&per_test) {
        assert_eq!(&test.test, name);
        assert!(
            test.lines_covered > 0 && test.agents_answered == 3,
            "{name}: {test:?}\nlog:\n{log}"
        );
        let ran = &test
            .files
            .get(&views)
            .unwrap_or_else(|| panic!("{name} ran no views.py: {test:?}"))
            .lines;
        for (other, body) in &bodies {
            let overlap = ran.intersection(body).count();
            if other == view {
                assert!(
                    overlap > 0,
                    "{name} ({path}) should run {view}: ran {ran:?}"
                );
            } else {
                assert_eq!(
                    overlap, 0,
                    "{name} ({path}) must not be charged with {other}: ran {ran:?}"
                );
            }
        }
    }
    // The lazily imported module belongs to the test that first used it.
    let reports = app.join("reports.py").display().to_string();
    assert!(
        per_test[4].files.contains_key(&reports),
        "the stats test imports reports.py"
    );
    assert!(per_test[4].new_lines > 0);
    assert!(
        per_test[5].new_lines > 0,
        "test-6 takes create_item's 400 branch, new"
    );
    assert_eq!(per_test[6].new_lines, 0, "test-7 repeats test-1");
    // The warm-up took the health view out of the tests.
    assert!(run.startup[&views].lines.is_superset(&bodies["health"]));

    // The union equals coverage.py's own measurement, line for line.
    assert_eq!(
        &union_lines(&run),
        expected,
        "{mode}/{workers}: union of snapshots vs coverage run + combine"
    );

    // And so do the per-file figures, from the static description.
    for (path, file) in &run.files {
        // coverage.py names files relative to its working directory when
        // they lie under it, absolute otherwise.
        let relative = path
            .strip_prefix(&format!("{}/", app.display()))
            .expect("under the app");
        let entry = summary["files"]
            .get(path.as_str())
            .or_else(|| summary["files"].get(relative));
        let theirs =
            &entry.unwrap_or_else(|| panic!("{path} not in coverage.py's report"))["summary"];
        assert!(file.described, "{path} was described by the agent");
        assert_eq!(
            file.summary.statements as u64,
            theirs["num_statements"].as_u64().expect("num_statements"),
            "{path}"
        );
        assert_eq!(
            file.summary.covered_lines as u64,
            theirs["covered_lines"].as_u64().expect("covered_lines"),
            "{path}"
        );
        if !branch {
            // coverage.py's lines-only report has no branch figures.
            assert_eq!(file.summary.branches, 0, "{path}");
            continue;
        }
        assert_eq!(
            file.summary.branches as u64,
            theirs["num_branches"].as_u64().expect("num_branches"),
            "{path}"
        );
        assert_eq!(
            file.summary.covered_branches as u64,
            theirs["covered_branches"]
                .as_u64()
                .expect("covered_branches"),
            "{path}"
        );
    }
    assert!(run.files[&views]
        .missing_lines
        .iter()
        .any(|l| bodies["delete_item"].contains(l)));

    run
}

fn recplay(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_recplay"))
        .args(args)
        .output()
        .expect("run recplay")
}

fn check_exports_and_gate(venv: &Path, app: &Path, run: &RunCoverage) {
    let project = tempfile::tempdir().expect("tempdir");
    let keploy = project.path().join("keploy");
    store::write_run(&store::reports_dir(&keploy).join("test-run-0"), run)
        .expect("write coverage.json");
    let keploy_arg = keploy.to_str().expect("utf-8");
    let export = |format: &str, file: &str| -> PathBuf {
        let out = project.path().join(file);
        let output = recplay(&[
            "coverage",
            "export",
            "--path",
            keploy_arg,
            "--format",
            format,
            "-o",
            out.to_str().expect("utf-8"),
        ]);
        assert!(
            output.status.success(),
            "export {format}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        out
    };

    // Cobertura, read by pycobertura: same totals.
    let xml = export("cobertura", "coverage.xml");
    let output = Command::new(venv.join("bin/pycobertura"))
        .args(["show", "--format", "json"])
        .arg(&xml)
        .current_dir(app)
        .output()
        .expect("run pycobertura");
    assert!(
        output.status.success(),
        "pycobertura rejected the file: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let shown: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("pycobertura JSON");
    // pycobertura counts a line whose branches were only partly taken as
    // missed; apart from that its totals are ours.
    let mut partial = 0;
    for path in run.files.keys() {
        let detail = run.file_detail(path);
        let arcs = detail.executed_arcs();
        let covered = detail.covered_lines();
        for (line, dests) in &detail.branches {
            let from = *line as i32;
            let taken = dests.iter().filter(|d| arcs.contains(&(from, **d))).count();
            if covered.contains(line) && taken < dests.len() {
                partial += 1;
            }
        }
    }
    assert_eq!(
        shown["total"]["Stmts"].as_u64(),
        Some(run.totals.statements as u64),
        "{shown}"
    );
    assert_eq!(
        shown["total"]["Miss"].as_u64(),
        Some((run.totals.statements - run.totals.covered_lines + partial) as u64),
        "{shown}"
    );
    let xml_text = std::fs::read_to_string(&xml).expect("xml");
    assert!(
        xml_text.contains("condition-coverage="),
        "branches are exported"
    );

    // LCOV, read by genhtml without errors: one TN section per test.
    let lcov = export("lcov", "coverage.info");
    let lcov_text = std::fs::read_to_string(&lcov).expect("lcov");
    for (name, ..) in TESTS {
        let tn = format!("TN:{}", name.replace(['-', '/'], "_"));
        assert!(lcov_text.contains(&tn), "{tn} missing");
    }
    let html = project.path().join("html");
    let genhtml = Command::new("genhtml")
        .arg(&lcov)
        .arg("--branch-coverage")
        .arg("-o")
        .arg(&html)
        .output();
    let genhtml = match genhtml {
        Ok(o) => o,
        Err(e) => panic!("genhtml is needed to check the LCOV export (apt-get install lcov): {e}"),
    };
    let genhtml_err = String::from_utf8_lossy(&genhtml.stderr);
    assert!(
        genhtml.status.success(),
        "genhtml rejected the file: {genhtml_err}"
    );
    assert!(
        !genhtml_err.to_lowercase().contains("error"),
        "{genhtml_err}"
    );
    assert!(html.join("index.html").is_file());

    // coverage.py JSON with tests as contexts.
    let json = export("json", "coverage.json");
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).expect("json")).expect("JSON");
    assert_eq!(report["meta"]["show_contexts"], true);
    let contexts = &report["files"]["reports.py"]["contexts"];
    let labels: BTreeSet<&str> = contexts
        .as_object()
        .expect("contexts")
        .values()
        .flat_map(|v| {
            v.as_array()
                .expect("labels")
                .iter()
                .filter_map(|l| l.as_str())
        })
        .collect();
    assert!(labels.contains("test-set-0/test-5"), "{labels:?}");

    // The gate, through the binary: bootstrap PASS, then a floor it misses.
    let baseline = project.path().join("baseline.json");
    let report_md = project.path().join("coverage-report.md");
    let gate = |floor: &str| {
        recplay(&[
            "coverage",
            "gate",
            "--path",
            keploy_arg,
            "--floor",
            floor,
            "--policy",
            "both",
            "--baseline",
            baseline.to_str().expect("utf-8"),
            "--report",
            report_md.to_str().expect("utf-8"),
        ])
    };
    let pass = gate("10");
    assert!(
        pass.status.success(),
        "{}",
        String::from_utf8_lossy(&pass.stdout)
    );
    assert!(std::fs::read_to_string(&report_md)
        .expect("report")
        .contains("coverage_status: PASS"));
    assert!(
        baseline.is_file(),
        "the first passing run bootstraps the baseline"
    );
    let fail = gate("99.9");
    assert_eq!(
        fail.status.code(),
        Some(1),
        "{}",
        String::from_utf8_lossy(&fail.stdout)
    );
    assert!(std::fs::read_to_string(&report_md)
        .expect("report")
        .contains("coverage_status: FAIL"));
}
