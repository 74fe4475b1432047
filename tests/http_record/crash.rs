//! kill -9 of a real `recplay record` under concurrent load, then the next
//! `recplay record` on the same directory recovers the journal: every
//! response a client received in full has exactly one whole test file.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use recplay_proxy::testset::TestSetDir;

use crate::support::recplay::RecplayRecord;
use crate::support::upstream::Upstream;

/// Sends one request on a fresh connection; true only when the whole
/// response (status 200, its Content-Length of body) arrived.
fn received_in_full(addr: SocketAddr, path: &str, body: &str) -> bool {
    let Ok(mut stream) = TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    if stream.write_all(request.as_bytes()).is_err() {
        return false;
    }
    let mut reply = Vec::new();
    if stream.read_to_end(&mut reply).is_err() {
        return false;
    }
    let Some(split) = reply.windows(4).position(|w| w == b"\r\n\r\n") else {
        return false;
    };
    let head = String::from_utf8_lossy(&reply[..split]).to_ascii_lowercase();
    let length = head
        .lines()
        .find_map(|l| l.strip_prefix("content-length:"))
        .and_then(|v| v.trim().parse::<usize>().ok());
    head.starts_with("http/1.1 200") && length == Some(reply.len() - split - 4)
}

/// Names in `dir` that are hidden (the journal, temp files).
fn hidden_files(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n.starts_with('.'))
                .collect()
        })
        .unwrap_or_default()
}

#[test]
fn kill_9_under_load_loses_no_response_a_client_received_in_full() {
    let upstream = Upstream::start();
    let keploy = tempfile::tempdir().expect("tempdir");
    let recplay = RecplayRecord::start(keploy.path(), &upstream.url(), &[]);
    let addr = recplay.http_addr;
    let stop = Arc::new(AtomicBool::new(false));
    let received: Arc<Mutex<Vec<String>>> = Arc::default();
    let workers: Vec<_> = (0..6)
        .map(|w| {
            let (stop, received) = (stop.clone(), received.clone());
            std::thread::spawn(move || {
                let mut n = 0;
                while !stop.load(Ordering::Relaxed) {
                    let path = format!("/echo/w{w}-{n}");
                    if received_in_full(addr, &path, &"x".repeat(100 + n % 500)) {
                        received.lock().expect("lock").push(path);
                    }
                    n += 1;
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(30);
    while received.lock().expect("lock").len() < 400 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    // Killed while every client is mid-exchange.
    recplay.signal(nix::sys::signal::Signal::SIGKILL);
    std::thread::sleep(Duration::from_millis(200));
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.join().expect("worker");
    }
    let (status, _, _) = recplay.wait(Duration::from_secs(10));
    assert!(!status.success());
    let received = received.lock().expect("lock").clone();
    assert!(received.len() >= 400, "only {} responses", received.len());

    // The next recording on the directory recovers the crashed one first.
    let next = RecplayRecord::start(keploy.path(), &upstream.url(), &[]);
    next.wait_for_line("recording into", Duration::from_secs(30));
    next.signal(nix::sys::signal::Signal::SIGINT);
    let (status, _, stderr) = next.wait(Duration::from_secs(30));
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("recovered test-set-0 from an unfinished recording"),
        "{stderr}"
    );

    let root = keploy.path().join("test-set-0");
    let set = TestSetDir::open(root.clone()).load().expect("load");
    assert!(set.problems.is_empty(), "half-written: {:?}", set.problems);
    let mut files_per_path: BTreeMap<String, usize> = BTreeMap::new();
    for case in &set.tests {
        let path = case.spec.req.url.split_once("/echo/").map(|(_, p)| p);
        let path = format!("/echo/{}", path.expect("an /echo/ URL"));
        *files_per_path.entry(path).or_default() += 1;
    }
    let duplicated: Vec<_> = files_per_path.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicated.is_empty(), "recorded twice: {duplicated:?}");
    let missing: Vec<_> = received
        .iter()
        .filter(|p| !files_per_path.contains_key(*p))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} responses received in full have no test: {:?}",
        missing.len(),
        received.len(),
        &missing[..missing.len().min(10)]
    );
    assert_eq!(hidden_files(&root), Vec::<String>::new(), "journal left");
    assert_eq!(
        hidden_files(&root.join("tests")),
        Vec::<String>::new(),
        "temp files left"
    );
}
