//! The app process and the exit codes: `-c` starts and stops the app, an
//! interrupted run takes the app down with it, and usage or infrastructure
//! problems exit 2 with a message saying what to do.

use std::process::Command;

use super::record;
use super::{config_with, recplay, replay, setup, RANDOM_ID_NOISE};
use crate::support::demo_app::DemoApp;

#[test]
fn usage_and_infrastructure_problems_exit_2_with_what_to_do() {
    let app = DemoApp::start();
    let empty = tempfile::tempdir().expect("tempdir");
    let run = replay(empty.path(), &app, &[]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("recplay record"), "{}", run.stderr);

    let dir = setup(&app, 1, RANDOM_ID_NOISE);
    let run = replay(dir.path(), &app, &["--test-sets", "test-set-9"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("test-set-9"), "{}", run.stderr);

    std::fs::write(
        dir.path().join("bad.yml"),
        "test:\n  globalNoise:\n    global:\n      header:\n        X-Trace: [\"(unclosed\"]\n",
    )
    .expect("config");
    let run = replay(dir.path(), &app, &["--config", "bad.yml"]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("bad.yml"), "{}", run.stderr);
    assert!(run.stderr.contains("header.X-Trace"), "{}", run.stderr);

    // Nothing listens and nothing was asked to start.
    let closed = free_port();
    let target = format!("http://127.0.0.1:{closed}");
    let run = recplay(
        dir.path(),
        &["test", "--http-target", &target, "--delay", "1"],
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("pass -c"), "{}", run.stderr);

    // The app given with -c dies before it is ready.
    let run = recplay(
        dir.path(),
        &[
            "test",
            "--http-target",
            &target,
            "--delay",
            "10",
            "-c",
            "exit 3",
        ],
    );
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("exited"), "{}", run.stderr);
}

/// Processes whose command line starts with `needle` (so recplay, which
/// carries the app's command among its arguments, is not counted).
fn processes_running(needle: &str) -> usize {
    std::fs::read_dir("/proc")
        .expect("proc")
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|cmd| {
            String::from_utf8_lossy(cmd)
                .replace('\0', " ")
                .starts_with(needle)
        })
        .count()
}

#[test]
fn an_interrupted_run_stops_the_app_and_exits_2() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir_all(dir.path().join("keploy/test-set-0/tests")).expect("mkdir");
    let target = format!("http://127.0.0.1:{}", free_port());
    // An app that never gets ready: recplay is still waiting when signalled.
    let child = Command::new(env!("CARGO_BIN_EXE_recplay"))
        .args(["test", "--http-target", &target, "--delay", "120"])
        .args(["-c", "sleep 4242; true"])
        .current_dir(dir.path())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("recplay");
    let start = std::time::Instant::now();
    while processes_running("sleep 4242") == 0 {
        assert!(start.elapsed().as_secs() < 20, "the app never started");
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let pid = child.id().to_string();
    assert!(Command::new("kill")
        .args(["-INT", &pid])
        .status()
        .expect("kill")
        .success());
    let out = child.wait_with_output().expect("wait");
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("interrupted by SIGINT"));
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(
        processes_running("sleep 4242"),
        0,
        "the app's group was killed"
    );
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

#[test]
fn the_app_given_with_c_is_started_replayed_and_stopped() {
    let site = tempfile::tempdir().expect("tempdir");
    std::fs::write(site.path().join("hello.txt"), "hello from a file\n").expect("write");
    let port = free_port();
    let serve = format!(
        "exec python3 -m http.server {port} --bind 127.0.0.1 --directory {}",
        site.path().display()
    );
    let dir = tempfile::tempdir().expect("tempdir");
    // Record against a first run of the same app.
    {
        let mut child = Command::new("sh")
            .args(["-c", &serve])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("python3");
        record::wait_for_port(port);
        record::record_routes(
            &format!("http://127.0.0.1:{port}"),
            &dir.path().join("keploy"),
            &["/hello.txt"],
        );
        let _ = child.kill();
        let _ = child.wait();
    }
    std::fs::write(dir.path().join("keploy.yml"), config_with("test-sets: {}")).expect("config");
    let target = format!("http://127.0.0.1:{port}");
    let run = recplay(
        dir.path(),
        &[
            "test",
            "--http-target",
            &target,
            "--delay",
            "20",
            "-c",
            &serve,
        ],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains("test-set-0: 1 passed, 0 failed"));
    assert!(
        std::net::TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the app was stopped at the end"
    );
}
