//! The HTTP bad-input catalogue against the real `recplay record` and a
//! real upstream: each misbehaving client or upstream gets a clear outcome,
//! while a well-behaved client on another connection is answered and its
//! exchange recorded, and nothing of the bad exchange is recorded.

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::recplay::RecplayRecord;
use crate::support::upstream::Upstream;

/// `recplay record` in front of a real upstream, in a temp keploy dir.
struct Rig {
    recplay: RecplayRecord,
    keploy: tempfile::TempDir,
    _upstream: Upstream,
}

impl Rig {
    fn start(flags: &[&str]) -> Rig {
        let upstream = Upstream::start();
        let keploy = tempfile::tempdir().expect("tempdir");
        let recplay = RecplayRecord::start(keploy.path(), &upstream.url(), flags);
        Rig {
            recplay,
            keploy,
            _upstream: upstream,
        }
    }

    fn addr(&self) -> SocketAddr {
        self.recplay.http_addr
    }

    /// A well-behaved client on its own connection gets its answer.
    fn good_client(&self, name: &str) {
        let reply = exchange(
            self.addr(),
            &format!("GET /echo/{name} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"),
        );
        assert!(reply.starts_with("HTTP/1.1 200"), "{name}: {reply}");
        assert!(reply.contains(&format!("/echo/{name}")), "{reply}");
    }

    /// Stops recplay; returns every test file's text, and recplay's log.
    fn finish(self) -> (Vec<String>, String) {
        self.recplay.signal(nix::sys::signal::Signal::SIGINT);
        let (status, _stdout, stderr) = self.recplay.wait(Duration::from_secs(30));
        assert!(status.success(), "exit {status}; stderr:\n{stderr}");
        (test_files(self.keploy.path()), stderr)
    }
}

fn test_files(keploy: &Path) -> Vec<String> {
    let dir = keploy.join("test-set-0").join("tests");
    let mut texts = Vec::new();
    for entry in std::fs::read_dir(&dir).expect("tests dir") {
        let path = entry.expect("entry").path();
        texts.push(std::fs::read_to_string(&path).expect("test file"));
    }
    texts
}

/// Exactly one recorded test mentions `good`, and none mentions `bad`.
fn assert_recorded(tests: &[String], good: &str, bad: &str) {
    let good_hits = tests.iter().filter(|t| t.contains(good)).count();
    assert_eq!(good_hits, 1, "{good} recorded once: {tests:#?}");
    assert!(
        !tests.iter().any(|t| t.contains(bad)),
        "{bad} is not recorded: {tests:#?}"
    );
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    stream
}

/// Everything the proxy sends until it closes the connection.
fn read_to_close(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => break,
            Err(e) => panic!("the proxy neither answered nor closed: {e}"),
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn exchange(addr: SocketAddr, request: &str) -> String {
    let mut stream = connect(addr);
    stream.write_all(request.as_bytes()).expect("write");
    read_to_close(&mut stream)
}

/// Reads one response with a Content-Length body, leaving the connection
/// open.
fn read_one_response(stream: &mut TcpStream) -> String {
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf).expect("read");
        assert!(n > 0, "closed before a whole response");
        out.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&out).into_owned();
        if let Some(end) = text.find("\r\n\r\n") {
            let length: usize = text[..end]
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().ok())?
                })
                .expect("content-length");
            if out.len() >= end + 4 + length {
                return text;
            }
        }
    }
}

#[test]
fn a_client_trickling_its_headers_is_closed_at_the_header_timeout() {
    let rig = Rig::start(&["--http-header-timeout", "2s"]);
    let mut slow = connect(rig.addr());
    slow.write_all(b"GET /echo/trickled HTTP/1.1\r\n")
        .expect("write");
    let mut writer = slow.try_clone().expect("clone");
    let started = Instant::now();
    let trickle = std::thread::spawn(move || {
        for byte in b"X-Slow: one byte at a time, never finished"
            .iter()
            .cycle()
            .take(60)
        {
            if writer.write_all(&[*byte]).is_err() {
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    });
    rig.good_client("while-trickling");
    let reply = read_to_close(&mut slow);
    let waited = started.elapsed();
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(8),
        "closed after {waited:?}, the timeout being 2 s"
    );
    assert!(!reply.contains(" 200 "), "{reply}");
    let _ = trickle.join();
    let (tests, _) = rig.finish();
    assert_recorded(&tests, "/echo/while-trickling", "/echo/trickled");
}

#[test]
fn an_idle_keep_alive_connection_is_closed_at_the_idle_timeout() {
    let rig = Rig::start(&["--http-idle-timeout", "2s"]);
    let mut idle = connect(rig.addr());
    idle.write_all(b"GET /echo/before-idle HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    let first = read_one_response(&mut idle);
    assert!(first.starts_with("HTTP/1.1 200"), "{first}");
    let started = Instant::now();
    rig.good_client("beside-idle");
    let rest = read_to_close(&mut idle);
    let waited = started.elapsed();
    assert!(rest.is_empty(), "nothing more was sent: {rest}");
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(8),
        "closed after {waited:?}, the idle timeout being 2 s"
    );
    let (tests, _) = rig.finish();
    assert_recorded(&tests, "/echo/beside-idle", "/echo/never-sent");
    assert_recorded(&tests, "/echo/before-idle", "/echo/never-sent");
}

#[test]
fn oversized_headers_get_431() {
    let rig = Rig::start(&[]);
    let big = "a".repeat(100 * 1024);
    let reply = exchange(
        rig.addr(),
        &format!("GET /echo/oversized HTTP/1.1\r\nHost: x\r\nX-Big: {big}\r\n\r\n"),
    );
    assert!(reply.starts_with("HTTP/1.1 431"), "{reply}");
    rig.good_client("after-oversized");
    let (tests, _) = rig.finish();
    assert_recorded(&tests, "/echo/after-oversized", "/echo/oversized");
}

#[test]
fn an_invalid_chunk_encoding_gets_400_not_502() {
    let rig = Rig::start(&[]);
    let reply = exchange(
        rig.addr(),
        "POST /echo/bad-chunks HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n\
         5\r\nhello\r\nzz\r\nnot a chunk\r\n0\r\n\r\n",
    );
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(reply.contains("request body could not be read"), "{reply}");
    rig.good_client("after-bad-chunks");
    let (tests, log) = rig.finish();
    assert_recorded(&tests, "/echo/after-bad-chunks", "/echo/bad-chunks");
    assert!(log.contains("request body could not be read"), "{log}");
}

#[test]
fn a_body_shorter_than_its_content_length_gets_400() {
    let rig = Rig::start(&[]);
    let mut short = connect(rig.addr());
    short
        .write_all(
            b"POST /echo/short-body HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nonly this",
        )
        .expect("write");
    short
        .shutdown(std::net::Shutdown::Write)
        .expect("half close");
    let reply = read_to_close(&mut short);
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    rig.good_client("after-short-body");
    let (tests, _) = rig.finish();
    assert_recorded(&tests, "/echo/after-short-body", "/echo/short-body");
}

#[test]
fn bytes_past_the_content_length_are_a_bad_request_of_their_own() {
    let rig = Rig::start(&[]);
    // The first three body bytes are the body; what follows is read as the
    // next request, and is no request.
    let reply = exchange(
        rig.addr(),
        "POST /echo/long-body HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabcdefgh\r\n\r\n",
    );
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("HTTP/1.1 400"), "{reply}");
    rig.good_client("after-long-body");
    let (tests, _) = rig.finish();
    assert_recorded(&tests, "/echo/after-long-body", "defgh");
    let long = tests
        .iter()
        .find(|t| t.contains("/echo/long-body"))
        .expect("the first request, complete by its Content-Length, is recorded");
    assert!(long.contains("abc"), "{long}");
}

#[test]
fn a_client_leaving_mid_body_is_not_recorded() {
    let rig = Rig::start(&[]);
    let mut gone = connect(rig.addr());
    gone.write_all(
        b"POST /echo/left-mid-body HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n",
    )
    .expect("write");
    gone.write_all(&[b'x'; 1000]).expect("write");
    std::thread::sleep(Duration::from_millis(200));
    drop(gone);
    rig.good_client("after-left-mid-body");
    std::thread::sleep(Duration::from_millis(300));
    let (tests, log) = rig.finish();
    assert_recorded(&tests, "/echo/after-left-mid-body", "/echo/left-mid-body");
    assert!(log.contains("request body could not be read"), "{log}");
}

#[test]
fn an_upstream_closing_mid_response_cuts_the_client_and_is_not_recorded() {
    let rig = Rig::start(&[]);
    let reply = exchange(
        rig.addr(),
        "GET /cut HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let body = reply.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    assert!(
        body.len() < 1000,
        "the body stops where the upstream stopped: {} bytes",
        body.len()
    );
    rig.good_client("after-cut");
    let (tests, log) = rig.finish();
    assert_recorded(&tests, "/echo/after-cut", "/cut");
    assert!(
        log.contains("not recorded: the response body did not complete"),
        "{log}"
    );
}

#[test]
fn an_upstream_that_never_answers_gives_504_at_the_response_timeout() {
    let rig = Rig::start(&["--http-response-timeout", "2s"]);
    let started = Instant::now();
    let hang = std::thread::spawn({
        let addr = rig.addr();
        move || {
            exchange(
                addr,
                "GET /hang HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
            )
        }
    });
    rig.good_client("beside-hang");
    let reply = hang.join().expect("hanging client");
    let waited = started.elapsed();
    assert!(reply.starts_with("HTTP/1.1 504"), "{reply}");
    assert!(reply.contains("did not answer"), "{reply}");
    assert!(
        waited >= Duration::from_millis(1500) && waited < Duration::from_secs(8),
        "answered after {waited:?}"
    );
    let (tests, _) = rig.finish();
    assert_recorded(&tests, "/echo/beside-hang", "/hang");
}

/// Sends `GET /echo/{name}` on a kept-alive connection until the proxy
/// serves it rather than refusing it: a slot frees only once the proxy
/// has seen its previous holder close. Returns the served connection and
/// how many refusals came first.
#[test]
fn a_request_framed_both_by_length_and_by_chunks_gets_400() {
    let rig = Rig::start(&[]);
    // Which framing wins decides where the next request starts; a proxy and
    // an upstream that disagree let a request be smuggled past the first.
    let reply = exchange(
        rig.addr(),
        "POST /echo/smuggled HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\
         Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    );
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert!(
        reply.contains("both Transfer-Encoding and Content-Length"),
        "{reply}"
    );
    rig.good_client("after-smuggled");
    let (tests, _) = rig.finish();
    assert_recorded(&tests, "/echo/after-smuggled", "/echo/smuggled");
}

#[test]
fn an_http_1_0_client_gets_a_chunked_answer_as_plain_bytes_ended_by_the_close() {
    let rig = Rig::start(&[]);
    let reply = exchange(rig.addr(), "GET /chunked HTTP/1.0\r\nHost: x\r\n\r\n");
    let (head, body) = reply.split_once("\r\n\r\n").expect("a head");
    assert!(head.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(
        !head.to_ascii_lowercase().contains("transfer-encoding"),
        "an HTTP/1.0 client cannot read chunks: {head}"
    );
    assert!(
        head.to_ascii_lowercase().contains("connection: close"),
        "{head}"
    );
    assert_eq!(body, "first,second,third");
    let (tests, _) = rig.finish();
    let recorded: Vec<_> = tests.iter().filter(|t| t.contains("/chunked")).collect();
    assert_eq!(recorded.len(), 1, "{tests:#?}");
    assert!(
        recorded[0].contains("first,second,third"),
        "{}",
        recorded[0]
    );
}

#[test]
fn a_target_in_absolute_form_reaches_the_upstream_as_its_path() {
    let rig = Rig::start(&[]);
    let reply = exchange(
        rig.addr(),
        "GET http://elsewhere.example/echo/absolute?x=1 HTTP/1.1\r\nHost: elsewhere.example\r\n\
         Connection: close\r\n\r\n",
    );
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains(r#""path":"/echo/absolute""#), "{reply}");
    let (tests, _) = rig.finish();
    assert_recorded(&tests, "/echo/absolute", "elsewhere.example/echo");
}

#[test]
fn a_declined_upgrade_is_answered_to_its_end_and_closed() {
    let rig = Rig::start(&[]);
    // The upstream answers an ordinary 200 and keeps its connection open;
    // the client must still get the whole answer and a close.
    let started = Instant::now();
    let reply = exchange(
        rig.addr(),
        "GET /echo/declined HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
    );
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    assert!(reply.contains("/echo/declined"), "{reply}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "closed once the answer was over, not at the upstream's idle timeout: {:?}",
        started.elapsed()
    );
    rig.good_client("after-declined");
    let (tests, _) = rig.finish();
    assert_recorded(&tests, "/echo/after-declined", "/echo/declined");
}

fn served_once_a_slot_frees(addr: SocketAddr, name: &str) -> (TcpStream, usize) {
    let mut refusals = 0;
    loop {
        let mut stream = connect(addr);
        stream
            .write_all(format!("GET /echo/{name} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes())
            .expect("write");
        let reply = read_one_response(&mut stream);
        if reply.starts_with("HTTP/1.1 200") {
            return (stream, refusals);
        }
        assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
        refusals += 1;
        assert!(refusals < 100, "{name}: no slot freed");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn connections_past_the_limit_get_503_with_retry_after() {
    let rig = Rig::start(&["--http-max-connections", "4"]);
    let held: Vec<TcpStream> = (0..3).map(|_| connect(rig.addr())).collect();
    // The fourth slot serves a well-behaved client.
    std::thread::sleep(Duration::from_millis(200));
    rig.good_client("within-limit");
    // Its slot frees once the proxy has seen it close; until then a new
    // connection is refused as well. A kept-alive exchange proves the
    // fourth connection holds the slot before the fifth is tried.
    let (fourth, mut refusals) = served_once_a_slot_frees(rig.addr(), "fourth");
    let reply = exchange(
        rig.addr(),
        "GET /echo/over-limit HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(reply.starts_with("HTTP/1.1 503"), "{reply}");
    assert!(reply.contains("Retry-After: 1"), "{reply}");
    refusals += 1;
    drop(fourth);
    drop(held);
    let (after, refused_after) = served_once_a_slot_frees(rig.addr(), "after-limit");
    refusals += refused_after;
    drop(after);
    let (tests, log) = rig.finish();
    assert_recorded(&tests, "/echo/within-limit", "/echo/over-limit");
    assert_recorded(&tests, "/echo/after-limit", "/echo/over-limit");
    assert!(
        log.contains(&format!("{refusals} connections refused")),
        "{log}"
    );
}

#[test]
fn a_listener_off_loopback_needs_allow_remote_and_is_warned_about() {
    let upstream = Upstream::start();
    let keploy = tempfile::tempdir().expect("tempdir");
    let refused = std::process::Command::new(env!("CARGO_BIN_EXE_recplay"))
        .arg("record")
        .arg("--path")
        .arg(keploy.path())
        .args([
            "--http-listen",
            "0.0.0.0:0",
            "--http-upstream",
            &upstream.url(),
        ])
        .output()
        .expect("run recplay");
    assert!(!refused.status.success());
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("--http-listen 0.0.0.0:0 is not a loopback address")
            && stderr.contains("--allow-remote"),
        "{stderr}"
    );

    let allowed = RecplayRecord::start_args(&[
        "record",
        "--path",
        &keploy.path().to_string_lossy(),
        "--http-listen",
        "0.0.0.0:0",
        "--http-upstream",
        &upstream.url(),
        "--allow-remote",
    ]);
    let reply = exchange(
        SocketAddr::from(([127, 0, 0, 1], allowed.http_addr.port())),
        "GET /echo/remote HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    );
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    allowed.signal(nix::sys::signal::Signal::SIGINT);
    let (status, _, stderr) = allowed.wait(Duration::from_secs(30));
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("recorded traffic may include secrets"),
        "{stderr}"
    );
}
