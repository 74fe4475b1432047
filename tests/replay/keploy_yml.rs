//! keploy.yml through the real binary: flags over keploy.yml over
//! defaults, `path` in Keploy's meaning, test sets in any folder Keploy
//! accepts, and keys nobody knows named in a warning.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use super::record::record_routes;
use super::{copy_dir, recplay, replay, Run};
use crate::support::demo_app::DemoApp;

/// Copies Keploy's recorded test set (three tests the demo app passes)
/// to `to`.
fn keploy_set(to: &Path) {
    let fixture =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keploy-test-set/test-set-0");
    copy_dir(&fixture, to);
}

/// The per-set summary lines of a run, in the order printed.
fn summaries(run: &Run) -> Vec<String> {
    run.stdout
        .lines()
        .filter(|l| l.contains(" passed, "))
        .map(|l| l.trim().to_string())
        .collect()
}

fn write(dir: &Path, name: &str, text: &str) {
    std::fs::write(dir.join(name), text).expect("write");
}

#[test]
fn path_in_keploy_yml_is_the_folder_that_holds_keploy() {
    let app = DemoApp::start();
    let dir = tempfile::tempdir().expect("tempdir");
    keploy_set(&dir.path().join("keploy/here"));
    keploy_set(&dir.path().join("app/keploy/in-app"));
    keploy_set(&dir.path().join("elsewhere/flagged"));

    // Keploy's default, "", is the working directory.
    write(dir.path(), "keploy.yml", "path: \"\"\n");
    let run = replay(dir.path(), &app, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(summaries(&run), ["here: 3 passed, 0 failed"]);
    assert!(dir.path().join("keploy/reports/test-run-0").is_dir());

    write(dir.path(), "keploy.yml", "path: app\n");
    let run = replay(dir.path(), &app, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(summaries(&run), ["in-app: 3 passed, 0 failed"]);
    assert!(dir.path().join("app/keploy/reports/test-run-0").is_dir());

    // --path names the keploy directory itself and wins, also when given
    // at its default value.
    let run = replay(dir.path(), &app, &["--path", "elsewhere"]);
    assert_eq!(summaries(&run), ["flagged: 3 passed, 0 failed"]);
    let run = replay(dir.path(), &app, &["--path", "keploy"]);
    assert_eq!(summaries(&run), ["here: 3 passed, 0 failed"]);

    // What recplay's template used to write still finds the same sets.
    write(dir.path(), "keploy.yml", "path: \"./keploy\"\n");
    let run = replay(dir.path(), &app, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(summaries(&run), ["here: 3 passed, 0 failed"]);
    assert!(
        run.stderr.contains("path: \\\".\\\"") || run.stderr.contains("path: \".\""),
        "the warning says what to write instead:\n{}",
        run.stderr
    );
}

#[test]
fn any_folder_keploy_accepts_is_a_test_set_numbered_ones_first() {
    let app = DemoApp::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let keploy = dir.path().join("keploy");
    for name in [
        "test-set-10",
        "checkout-flow",
        "test-set-2",
        "schema",
        "api-tests",
        "testReports",
        ".hidden",
    ] {
        keploy_set(&keploy.join(name));
    }
    let run = replay(dir.path(), &app, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(
        summaries(&run),
        [
            "test-set-2: 3 passed, 0 failed",
            "test-set-10: 3 passed, 0 failed",
            "checkout-flow: 3 passed, 0 failed",
        ]
    );
    let run = replay(dir.path(), &app, &["--test-sets", "checkout-flow"]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(summaries(&run), ["checkout-flow: 3 passed, 0 failed"]);
    let run = replay(dir.path(), &app, &["--test-sets", "schema"]);
    assert_eq!(run.code, 2, "schema is not a test set:\n{}", run.stdout);

    // Recording still takes the next number.
    record_routes(&app.url(), &keploy, &["/status"]);
    assert!(keploy.join("test-set-11/tests/test-1.yaml").is_file());
}

#[test]
fn misspelled_keys_are_named_and_keploys_own_keys_pass_quietly() {
    let dir = tempfile::tempdir().expect("tempdir");
    write(
        dir.path(),
        "keploy.yml",
        "path: \"\"\nappName: \"\"\nbuildDelay: 30\nproxyPort: 16789\nrecord:\n  recordTimer: 0s\n  upstreamTls:\n    verify: false\ntest:\n  globalnoise:\n    global:\n      header: {Date: []}\n  globalNoise:\n    global:\n      headers: {Date: []}\n    test-sets: {}\n  replaceWith:\n    global: {}\n  delay: 5\n  strictMockWindow: true\n",
    );
    for run in [
        recplay(dir.path(), &["test"]),
        recplay(dir.path(), &["record"]),
    ] {
        // Neither gets further (no test sets, nothing to record); the file
        // was read first.
        assert_eq!(run.code, 2, "{}", run.stderr);
        assert!(
            run.stderr.contains(
                "keploy.yml: unknown key `test.globalnoise` (did you mean `test.globalNoise`?)"
            ),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains(
                "unknown key `test.globalNoise.global.headers` (did you mean `test.globalNoise.global.header`?)"
            ),
            "{}",
            run.stderr
        );
        assert_eq!(
            run.stderr.matches("unknown key").count(),
            2,
            "{}",
            run.stderr
        );
    }
}

/// A tiny HTTP server whose answers `respond` decides (status, and how
/// long to wait before sending it); counts the requests it got.
struct Stub {
    addr: SocketAddr,
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
}

impl Stub {
    fn start(respond: impl Fn() -> (u16, Duration) + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.set_nonblocking(true).expect("nonblocking");
        let addr = listener.local_addr().expect("addr");
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let respond = Arc::new(respond);
        let (counter, stopped) = (hits.clone(), stop.clone());
        std::thread::spawn(move || {
            while !stopped.load(Ordering::SeqCst) {
                match listener.accept() {
                    Ok((stream, _)) => {
                        let respond = respond.clone();
                        let counter = counter.clone();
                        std::thread::spawn(move || {
                            counter.fetch_add(1, Ordering::SeqCst);
                            answer(stream, &*respond);
                        });
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        Stub { addr, hits, stop }
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }
}

impl Drop for Stub {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
    }
}

fn answer(mut stream: TcpStream, respond: &dyn Fn() -> (u16, Duration)) {
    let _ = stream.set_nonblocking(false);
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => head.extend_from_slice(&buf[..n]),
        }
    }
    let (status, wait) = respond();
    std::thread::sleep(wait);
    let _ = write!(
        stream,
        "HTTP/1.1 {status} Stub\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"
    );
}

/// `--api-timeout 30` (its default) wins over keploy.yml's `apiTimeout: 1`.
#[test]
fn api_timeout_flag_at_its_default_wins_over_keploy_yml() {
    let slow = Stub::start(|| (201, Duration::from_secs(3)));
    let dir = tempfile::tempdir().expect("tempdir");
    let set = dir.path().join("keploy/test-set-0");
    keploy_set(&set);
    for extra in ["test-2.yaml", "test-3.yaml"] {
        std::fs::remove_file(set.join("tests").join(extra)).expect("remove");
    }
    write(dir.path(), "keploy.yml", "test:\n  apiTimeout: 1\n");
    let target = slow.url("");
    let timed_out = "no complete response within 1s";
    let run = recplay(dir.path(), &["test", "--http-target", &target]);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(run.stdout.contains(timed_out), "{}", run.stdout);
    let run = recplay(
        dir.path(),
        &["test", "--http-target", &target, "--api-timeout", "30"],
    );
    // The stub's answer arrives and is compared (and differs).
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        !run.stdout.contains("no complete response"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains("status: expected 200, got 201"),
        "{}",
        run.stdout
    );
}

/// `--delay 60` (its default) wins over keploy.yml's `delay: 1`, and
/// keploy.yml's `healthUrl` over waiting for the port; `--health-url`
/// over keploy.yml's.
#[test]
fn delay_and_health_url_flags_win_over_keploy_yml() {
    let app = DemoApp::start();
    let ready = Arc::new(AtomicBool::new(false));
    let flag = ready.clone();
    let health = Stub::start(move || {
        (
            if flag.load(Ordering::SeqCst) {
                200
            } else {
                503
            },
            Duration::ZERO,
        )
    });
    let dir = tempfile::tempdir().expect("tempdir");
    keploy_set(&dir.path().join("keploy/test-set-0"));
    write(
        dir.path(),
        "keploy.yml",
        &format!(
            "test:\n  delay: 1\n  healthUrl: {}\n",
            health.url("/health")
        ),
    );
    let target = app.url();

    // keploy.yml alone: its health URL, for its 1 s.
    let run = recplay(dir.path(), &["test", "--http-target", &target]);
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(run.stderr.contains("not ready after 1s"), "{}", run.stderr);
    assert!(
        run.stderr.contains(&health.url("/health")),
        "{}",
        run.stderr
    );

    // --health-url wins over keploy.yml's.
    let demo_health = app.url() + "/health";
    let run = recplay(
        dir.path(),
        &[
            "test",
            "--http-target",
            &target,
            "--health-url",
            &demo_health,
        ],
    );
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);

    // --delay 60: still waiting well after keploy.yml's second is over.
    let child = Command::new(env!("CARGO_BIN_EXE_recplay"))
        .args(["test", "--http-target", &target, "--delay", "60"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start recplay");
    // Once recplay polls, its wait has begun; bounded so a recplay that
    // never polls fails below with its output rather than hanging here.
    let polled_before = health.hits.load(Ordering::SeqCst);
    for _ in 0..1500 {
        if health.hits.load(Ordering::SeqCst) > polled_before {
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    std::thread::sleep(Duration::from_millis(1500));
    ready.store(true, Ordering::SeqCst);
    let out = child.wait_with_output().expect("wait");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `-c` wins over keploy.yml's `command`, which wins over none.
#[test]
fn command_flag_wins_over_keploy_yml() {
    let dir = tempfile::tempdir().expect("tempdir");
    // Each command leaves a mark and serves the target itself, as an app
    // started by recplay must: so each run proves which command ran.
    let port = crate::support::pg::free_port();
    let serve =
        |mark: &str| format!("touch {mark} && exec python3 -m http.server {port} --bind 127.0.0.1");
    std::fs::create_dir_all(dir.path().join("keploy/test-set-0/tests")).expect("mkdir");
    write(
        dir.path(),
        "keploy.yml",
        &format!("command: \"{}\"\n", serve("from-yml")),
    );
    let target = format!("http://127.0.0.1:{port}");
    let base = ["test", "--http-target", target.as_str(), "--delay", "20"];

    let run = recplay(dir.path(), &base);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(dir.path().join("from-yml").exists());
    assert!(!dir.path().join("from-flag").exists());

    std::fs::remove_file(dir.path().join("from-yml")).expect("remove");
    let flag = serve("from-flag");
    let mut with_flag = base.to_vec();
    with_flag.extend(["-c", flag.as_str()]);
    let run = recplay(dir.path(), &with_flag);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(dir.path().join("from-flag").exists());
    assert!(!dir.path().join("from-yml").exists());
}
