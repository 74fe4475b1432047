//! `recplay test -c` and the app's lifecycle: one set's app is gone (its
//! whole process group, its port free) before the next set's starts, and a
//! signal while replaying or while the app stops ends the run with the app
//! stopped.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use nix::sys::signal::Signal;

use super::{config_with, recplay};
use crate::support::lifecycle_app::{free_port, LifecycleApp};
use crate::support::python::{http, test_venv};
use crate::support::recplay::RecplayRecord;

/// Records one test set through `recplay record -c app`, one test per path.
pub(crate) fn record_set(keploy: &Path, upstream: &str, app: &str, paths: &[&str]) {
    let recplay = RecplayRecord::start(keploy, upstream, &["-c", app]);
    for path in paths {
        let (status, body) = http(recplay.http_addr.port(), "GET", path, None)
            .unwrap_or_else(|e| panic!("GET {path}: {e}\n{}", recplay.stderr_text()));
        assert_eq!(status, 200, "GET {path}: {body}");
    }
    recplay.signal(Signal::SIGINT);
    let (status, stdout, stderr) = recplay.wait(Duration::from_secs(60));
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");
    assert!(
        stdout.contains(&format!("recorded {} tests", paths.len())),
        "{stdout}\n{stderr}"
    );
}

/// The WSGI fixture app under gunicorn with two workers, behind a shell so
/// that the group outlives any one of its processes: its directory, the
/// `-c` command and its URL.
pub(crate) fn gunicorn_app() -> (tempfile::TempDir, String, String) {
    let venv = test_venv();
    let app_dir = tempfile::tempdir().expect("tempdir");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/wsgi_app");
    for name in ["app.py", "views.py"] {
        std::fs::copy(fixture.join(name), app_dir.path().join(name)).expect("copy the app");
    }
    let port = free_port();
    // Run from the app's directory: coverage measures the working tree.
    let command = format!(
        "cd {} && {} -w 2 -b 127.0.0.1:{port} app:application; true",
        app_dir.path().display(),
        venv.join("bin/gunicorn").display()
    );
    (app_dir, command, format!("http://127.0.0.1:{port}"))
}

#[test]
fn sets_around_an_empty_one_replay_clean_under_gunicorn_every_time() {
    let (_app_dir, gunicorn, upstream) = gunicorn_app();
    let dir = tempfile::tempdir().expect("tempdir");
    let keploy = dir.path().join("keploy");
    record_set(&keploy, &upstream, &gunicorn, &["/health", "/items"]);
    std::fs::create_dir_all(keploy.join("test-set-1/tests")).expect("an empty set");
    record_set(&keploy, &upstream, &gunicorn, &["/items", "/items/2"]);
    assert!(keploy.join("test-set-2/tests").is_dir());
    std::fs::write(dir.path().join("keploy.yml"), config_with("test-sets: {}")).expect("config");
    let authority = upstream.trim_start_matches("http://").to_string();

    for round in 0..20 {
        let run = recplay(
            dir.path(),
            &[
                "test",
                "--http-target",
                &upstream,
                "--delay",
                "30",
                "-c",
                &gunicorn,
            ],
        );
        assert_eq!(
            run.code, 0,
            "round {round}\nstdout:\n{}\nstderr:\n{}",
            run.stdout, run.stderr
        );
        for set in ["test-set-0", "test-set-2"] {
            assert!(
                run.stdout.contains(&format!("{set}: 2 passed, 0 failed")),
                "round {round}: {}",
                run.stdout
            );
        }
        assert!(
            std::net::TcpStream::connect(authority.as_str()).is_err(),
            "round {round}: the last app was stopped"
        );
    }
}

#[test]
fn coverage_of_a_gunicorn_app_ends_without_warnings_about_exited_workers() {
    let (_app_dir, gunicorn, upstream) = gunicorn_app();
    let dir = tempfile::tempdir().expect("tempdir");
    record_set(
        &dir.path().join("keploy"),
        &upstream,
        &gunicorn,
        &["/health", "/items", "/items/1"],
    );
    std::fs::write(dir.path().join("keploy.yml"), config_with("test-sets: {}")).expect("config");
    let run = recplay(
        dir.path(),
        &[
            "test",
            "--http-target",
            &upstream,
            "--delay",
            "30",
            "--coverage",
            "-c",
            &gunicorn,
        ],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    // (A slow machine may still warn that the app outlived SIGTERM: that
    // is about the stop, not about coverage.)
    assert!(
        !run.stderr.contains("no coverage snapshot"),
        "the workers' exit at the end is normal:\n{}",
        run.stderr
    );
    // And coverage is complete: every test ran a view, and was measured.
    let report = super::set_report(dir.path(), "test-set-0");
    let tests = report["tests"].as_sequence().expect("tests");
    assert_eq!(tests.len(), 3);
    let covered: Vec<u64> = tests
        .iter()
        .map(|t| t["coverage"]["lines_covered"].as_u64().unwrap_or(0))
        .collect();
    assert!(
        covered.iter().all(|n| *n > 0),
        "{covered:?}\n{}",
        run.stderr
    );
}

/// `recplay test -c app` in the background, its log collected.
fn start_replay(dir: &Path, app: &LifecycleApp) -> Child {
    Command::new(env!("CARGO_BIN_EXE_recplay"))
        .args(["test", "--http-target", &app.url(), "--delay", "30"])
        .args(["-c", &app.command()])
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start recplay")
}

/// Signals `child`, and returns its exit code and log.
fn interrupt(mut child: Child, signal: Signal) -> (Option<i32>, String) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).expect("pid"));
    nix::sys::signal::kill(pid, signal).expect("signal recplay");
    let mut stderr = String::new();
    if let Some(mut pipe) = child.stderr.take() {
        pipe.read_to_string(&mut stderr).expect("read the log");
    }
    let status = child.wait().expect("wait");
    (status.code(), stderr)
}

/// A set recorded from the fixture app, and markers cleared for the replay.
fn recorded_lifecycle_app() -> (tempfile::TempDir, LifecycleApp) {
    let app = LifecycleApp::new();
    let dir = tempfile::tempdir().expect("tempdir");
    record_set(
        &dir.path().join("keploy"),
        &app.url(),
        &app.command(),
        &["/ok", "/slow"],
    );
    std::fs::write(dir.path().join("keploy.yml"), config_with("test-sets: {}")).expect("config");
    for marker in ["app.pid", "in-slow", "got-term"] {
        app.clear(marker);
    }
    (dir, app)
}

#[test]
fn a_signal_while_replaying_stops_the_app_and_ends_the_run() {
    let (dir, app) = recorded_lifecycle_app();
    app.set("hang");
    let child = start_replay(dir.path(), &app);
    app.wait_for("in-slow");
    let (code, stderr) = interrupt(child, Signal::SIGTERM);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("interrupted by SIGTERM"), "{stderr}");
    assert!(app.is_gone(), "the app was stopped");
}

#[test]
fn a_signal_while_the_app_stops_ends_the_run_with_the_app_gone() {
    let (dir, app) = recorded_lifecycle_app();
    app.set("stubborn");
    let child = start_replay(dir.path(), &app);
    // Both tests replayed; the app ignores recplay's SIGTERM.
    app.wait_for("got-term");
    let (code, stderr) = interrupt(child, Signal::SIGINT);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("interrupted by SIGINT"), "{stderr}");
    assert!(app.is_gone(), "the app was killed");
}
