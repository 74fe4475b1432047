//! `recplay record -c` and the app's lifecycle: nothing is proxied before
//! the app is ready, a signal in any phase stops the app's process group
//! and says so, and a recording that captured nothing leaves no test set.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::time::Duration;

use nix::sys::signal::Signal;
use recplay_proxy::testset::TestSetDir;

use crate::support::lifecycle_app::LifecycleApp;
use crate::support::recplay::RecplayRecord;

fn start(keploy: &Path, app: &LifecycleApp, extra: &[&str]) -> RecplayRecord {
    let command = app.command();
    let mut args = vec!["-c", command.as_str()];
    args.extend_from_slice(extra);
    RecplayRecord::start(keploy, &app.url(), &args)
}

fn send_get_ok(stream: &mut TcpStream) {
    stream
        .write_all(b"GET /ok HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .expect("write");
}

fn read_reply(stream: &mut TcpStream) -> String {
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("read");
    reply
}

fn get_ok(stream: &mut TcpStream) -> String {
    send_get_ok(stream);
    read_reply(stream)
}

#[test]
fn a_request_sent_before_the_app_is_ready_is_answered_by_the_ready_app() {
    let app = LifecycleApp::new();
    app.set("gate");
    let keploy = tempfile::tempdir().expect("tempdir");
    let recplay = start(keploy.path(), &app, &[]);
    app.wait_for("app.pid");
    // The app does not listen yet; the request waits for it.
    let mut client = TcpStream::connect(recplay.http_addr).expect("connect");
    client
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    send_get_ok(&mut client);
    app.set("go");
    let reply = read_reply(&mut client);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.ends_with("ok"), "{reply}");
    recplay.wait_for_line("recording into", Duration::from_secs(30));
    recplay.signal(Signal::SIGINT);
    let (status, stdout, stderr) = recplay.wait(Duration::from_secs(30));
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");
    assert!(stdout.contains("recorded 1 test "), "{stdout}");
    let set = TestSetDir::open(keploy.path().join("test-set-0"))
        .load()
        .expect("load");
    let statuses: Vec<u16> = set.tests.iter().map(|t| t.spec.resp.status_code).collect();
    assert_eq!(statuses, [200]);
    assert!(app.is_gone(), "the app was stopped");
}

#[test]
fn a_recording_that_captured_nothing_leaves_no_test_set() {
    let app = LifecycleApp::new();
    let keploy = tempfile::tempdir().expect("tempdir");
    let recplay = start(keploy.path(), &app, &[]);
    recplay.wait_for_line("recording into", Duration::from_secs(30));
    recplay.signal(Signal::SIGINT);
    let (status, stdout, stderr) = recplay.wait(Duration::from_secs(30));
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");
    assert!(stdout.contains("nothing was recorded"), "{stdout}");
    assert!(!keploy.path().join("test-set-0").exists());
    assert!(app.is_gone(), "the app was stopped");
}

#[test]
fn a_signal_before_the_app_is_ready_stops_it_and_says_so() {
    for signal in [Signal::SIGINT, Signal::SIGTERM] {
        // Waiting for readiness: the app runs but does not listen.
        let app = LifecycleApp::new();
        app.set("gate");
        let keploy = tempfile::tempdir().expect("tempdir");
        let recplay = start(keploy.path(), &app, &[]);
        app.wait_for("app.pid");
        recplay.signal(signal);
        let (status, _, stderr) = recplay.wait(Duration::from_secs(30));
        assert_eq!(status.code(), Some(2), "{signal}: {stderr}");
        assert!(
            stderr.contains(&format!("interrupted by {signal} before the app was ready")),
            "{stderr}"
        );
        assert!(app.is_gone(), "{signal}: the app was stopped");
        assert!(!keploy.path().join("test-set-0").exists(), "{signal}");

        // Starting: the signal comes as soon as the proxy is bound, maybe
        // before the app is spawned.
        let app = LifecycleApp::new();
        let keploy = tempfile::tempdir().expect("tempdir");
        let recplay = start(keploy.path(), &app, &[]);
        recplay.signal(signal);
        let (status, _, stderr) = recplay.wait(Duration::from_secs(30));
        assert_eq!(status.code(), Some(2), "{signal}: {stderr}");
        assert!(
            stderr.contains(&format!("interrupted by {signal}")),
            "{stderr}"
        );
        if app.marker("app.pid").exists() {
            assert!(app.is_gone(), "{signal}: the app was stopped");
        }
        assert!(!keploy.path().join("test-set-0").exists(), "{signal}");
    }
}

#[test]
fn a_second_signal_while_finishing_kills_the_app_and_keeps_what_was_recorded() {
    let app = LifecycleApp::new();
    app.set("stubborn");
    let keploy = tempfile::tempdir().expect("tempdir");
    let recplay = start(keploy.path(), &app, &["--grace", "60"]);
    recplay.wait_for_line("recording into", Duration::from_secs(30));
    let mut client = TcpStream::connect(recplay.http_addr).expect("connect");
    assert!(get_ok(&mut client).starts_with("HTTP/1.1 200"));
    recplay.signal(Signal::SIGTERM);
    // The app ignores SIGTERM: recplay waits out the grace period for it.
    app.wait_for("got-term");
    recplay.signal(Signal::SIGINT);
    let (status, _, stderr) = recplay.wait(Duration::from_secs(30));
    assert_eq!(status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("SIGINT while finishing the recording: the app was killed"),
        "{stderr}"
    );
    assert!(app.is_gone(), "the app was killed");
    let set = TestSetDir::open(keploy.path().join("test-set-0"))
        .load()
        .expect("load");
    assert_eq!(set.tests.len(), 1);
}
