//! The real `recplay record` binary: end to end, signals, crash safety and
//! memory while a large body streams through.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use recplay_proxy::testset::TestSetDir;
use sha2::{Digest, Sha256};

use crate::support::recplay::RecplayRecord;
use crate::support::upstream::Upstream;

/// A blocking HTTP/1.1 exchange on a fresh connection; returns the raw reply.
fn http(addr: std::net::SocketAddr, request: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream.write_all(request.as_bytes()).expect("write");
    let mut out = String::new();
    stream.read_to_string(&mut out).expect("read");
    out
}

fn get(addr: std::net::SocketAddr, path: &str) -> String {
    http(
        addr,
        &format!("GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
    )
}

/// An Upgrade through the proxy: 101, then raw bytes echoed.
fn websocket_round_trip(addr: std::net::SocketAddr) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        )
        .expect("write");
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).expect("read head");
        head.push(byte[0]);
    }
    assert!(
        head.starts_with(b"HTTP/1.1 101"),
        "{}",
        String::from_utf8_lossy(&head)
    );
    stream.write_all(b"frame").expect("write frame");
    let mut echo = [0u8; 5];
    stream.read_exact(&mut echo).expect("echo");
    assert_eq!(&echo, b"frame");
}

#[test]
fn sigterm_lets_in_flight_exchanges_finish_flushes_stops_the_app_and_exits_0() {
    let upstream = Upstream::start();
    let keploy = tempfile::tempdir().expect("tempdir");
    let pid_file = keploy.path().join("app.pid");
    let app = format!("echo $$ > {}; exec sleep 300", pid_file.display());
    let recplay = RecplayRecord::start(
        keploy.path(),
        &upstream.url(),
        &["-c", &app, "--grace", "5"],
    );
    let addr = recplay.http_addr;
    for n in 0..3 {
        assert!(get(addr, &format!("/echo/{n}")).starts_with("HTTP/1.1 200"));
    }
    websocket_round_trip(addr);
    let slow = std::thread::spawn(move || get(addr, "/slow?ms=1500"));
    std::thread::sleep(Duration::from_millis(400));
    recplay.signal(nix::sys::signal::Signal::SIGTERM);
    let reply = slow.join().expect("slow client");
    assert!(
        reply.starts_with("HTTP/1.1 200"),
        "the in-flight exchange finished: {reply}"
    );
    assert!(reply.ends_with("slept 1500"), "{reply}");
    let (status, stdout, stderr) = recplay.wait(Duration::from_secs(20));
    assert!(status.success(), "exit {status}; stderr:\n{stderr}");
    assert!(
        stdout.contains("recorded 4 tests"),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("test-set-0"), "{stdout}");
    assert!(
        stderr.contains("passing an upgraded connection through untouched; it is not recorded"),
        "the log says the upgrade was not recorded:\n{stderr}"
    );

    let set = TestSetDir::open(keploy.path().join("test-set-0"))
        .load()
        .expect("load");
    assert!(set.problems.is_empty(), "{:?}", set.problems);
    assert_eq!(set.tests.len(), 4);
    assert!(set
        .tests
        .iter()
        .any(|t| t.spec.req.url.ends_with("/slow?ms=1500")));
    let app_pid: i32 = std::fs::read_to_string(&pid_file)
        .expect("pid file")
        .trim()
        .parse()
        .expect("pid");
    let alive = std::path::Path::new(&format!("/proc/{app_pid}")).exists();
    assert!(!alive, "the app (pid {app_pid}) was stopped");
}

#[test]
fn kill_9_leaves_only_whole_test_files() {
    let upstream = Upstream::start();
    let keploy = tempfile::tempdir().expect("tempdir");
    let recplay = RecplayRecord::start(keploy.path(), &upstream.url(), &[]);
    let addr = recplay.http_addr;
    let stop = Arc::new(AtomicBool::new(false));
    let done = Arc::new(AtomicU64::new(0));
    let workers: Vec<_> = (0..8)
        .map(|w| {
            let (stop, done) = (stop.clone(), done.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let body = "x".repeat(2000 + n);
                    let request = format!(
                        "POST /echo/w{w}-{n} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let Ok(mut stream) = TcpStream::connect(addr) else { break };
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
                    if stream.write_all(request.as_bytes()).is_err() {
                        break;
                    }
                    let mut out = String::new();
                    if stream.read_to_string(&mut out).is_err() || out.is_empty() {
                        break;
                    }
                    done.fetch_add(1, Ordering::Relaxed);
                    n += 1;
                }
            })
        })
        .collect();
    // Kill while clients are busy and files are being written.
    let tests_dir = keploy.path().join("test-set-0").join("tests");
    let written = || {
        std::fs::read_dir(&tests_dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().ends_with(".yaml"))
                    .count()
            })
            .unwrap_or(0)
    };
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while (done.load(Ordering::Relaxed) < 100 || written() < 20)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(10));
    }
    recplay.signal(nix::sys::signal::Signal::SIGKILL);
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("worker");
    }
    let (status, _, _) = recplay.wait(Duration::from_secs(10));
    assert!(!status.success());

    let dir = TestSetDir::open(keploy.path().join("test-set-0"));
    let set = dir.load().expect("load");
    assert!(
        set.problems.is_empty(),
        "a test file was half written: {:?}",
        set.problems
    );
    assert!(
        set.tests.len() >= 20,
        "only {} tests survived",
        set.tests.len()
    );
    for case in &set.tests {
        let len = case.spec.req.body.body.len();
        assert!(len >= 2000 && case.spec.req.body.body.bytes().all(|b| b == b'x'));
    }
}

#[test]
fn a_50_mib_body_streams_both_ways_with_bounded_proxy_memory() {
    const SIZE: u64 = 50 * 1024 * 1024;
    let upstream = Upstream::start();
    let keploy = tempfile::tempdir().expect("tempdir");
    let recplay = RecplayRecord::start(keploy.path(), &upstream.url(), &["--body-cap", "1048576"]);
    let addr = recplay.http_addr;
    // What the process needs before any body flows (runtime, binary, TLS
    // roots): the bound below is on what streaming adds to it.
    let idle_kib = recplay.peak_rss_kib();

    // Upload, chunked, generated on the fly.
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .write_all(b"POST /sink HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n")
        .expect("head");
    let chunk = vec![b'z'; 64 * 1024];
    let mut hasher = Sha256::new();
    for _ in 0..SIZE / chunk.len() as u64 {
        stream
            .write_all(format!("{:x}\r\n", chunk.len()).as_bytes())
            .expect("chunk size");
        stream.write_all(&chunk).expect("chunk");
        stream.write_all(b"\r\n").expect("chunk end");
        hasher.update(&chunk);
    }
    stream.write_all(b"0\r\n\r\n").expect("last chunk");
    let mut reply = String::new();
    stream.read_to_string(&mut reply).expect("reply");
    let sent_sha = hex::encode(hasher.finalize());
    assert!(reply.contains(&format!("\"size\":{SIZE}")), "{reply}");
    assert!(reply.contains(&sent_sha), "the upstream got every byte");

    // Download, read as it streams.
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .write_all(
            format!("GET /bytes?size={SIZE} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .expect("request");
    let mut buf = vec![0u8; 256 * 1024];
    let mut total = 0u64;
    loop {
        let n = stream.read(&mut buf).expect("read");
        if n == 0 {
            break;
        }
        total += n as u64;
    }
    assert!(
        total > SIZE,
        "head plus the whole body arrived ({total} bytes)"
    );

    let peak_kib = recplay.peak_rss_kib();
    recplay.signal(nix::sys::signal::Signal::SIGTERM);
    let (status, stdout, stderr) = recplay.wait(Duration::from_secs(20));
    assert!(status.success(), "{stderr}");
    assert!(stdout.contains("recorded 2 tests"), "{stdout}");
    // Streaming two 50 MiB bodies may add buffers, the 1 MiB recorded
    // copies, their journal record and the materializer's decoded copy
    // (10-16 MiB measured), a third of one body at most: nothing buffers
    // whole bodies.
    let grown_kib = peak_kib.saturating_sub(idle_kib);
    assert!(
        grown_kib < SIZE / 1024 / 3,
        "recplay grew by {grown_kib} KiB (idle {idle_kib} KiB, peak {peak_kib} KiB) while 50 MiB bodies streamed through"
    );
    let set = TestSetDir::open(keploy.path().join("test-set-0"))
        .load()
        .expect("load");
    let up = set
        .tests
        .iter()
        .find(|t| t.spec.req.url.ends_with("/sink"))
        .expect("upload");
    let cut = up.spec.req.body.body_truncated.as_ref().expect("truncated");
    assert_eq!((cut.size, cut.sha256.as_str()), (SIZE, sent_sha.as_str()));
    let down = set
        .tests
        .iter()
        .find(|t| t.spec.req.url.contains("/bytes"))
        .expect("download");
    assert_eq!(
        down.spec.resp.body.body_truncated.as_ref().map(|t| t.size),
        Some(SIZE)
    );
    assert_eq!(down.spec.resp.body.body.len(), 1024 * 1024);
}
