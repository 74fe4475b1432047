//! What the wire carried is what replay sends and compares: requests
//! recorded through the real `recplay record` proxy from a raw client
//! (so header order and framing are exactly what the test wrote), replayed
//! by `recplay test` against a real server that reports what it received.

use std::convert::Infallible;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Request, Response};

use super::{recplay, set_report, statuses};
use crate::support::recplay::RecplayRecord;
use crate::support::serve::{serve, Served};

/// What the server saw of one request.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    path: String,
    /// Header names in the order they arrived, lower-cased.
    names: Vec<String>,
    content_length: Option<String>,
    transfer_encoding: Option<String>,
    body: String,
}

/// A server that answers by what it received:
/// - `/order`: the request's header names, in order, as a JSON array;
/// - `/framing`: the body's framing headers and the body, as JSON;
/// - `/stream`: two NDJSON records, chunked, keys in another order on
///   every request, `created_at` a fresh value each time, and with
///   `changed` the second record's name in capitals.
struct WireApp {
    server: Served,
    seen: Arc<Mutex<Vec<Seen>>>,
    changed: Arc<AtomicBool>,
}

type Answer = Either<Full<Bytes>, Streamed>;
type Streamed =
    StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

impl WireApp {
    fn start() -> Self {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let changed = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let server = serve({
            let (seen, changed) = (seen.clone(), changed.clone());
            move |req| {
                let n = served.fetch_add(1, Ordering::Relaxed);
                let changed = changed.load(Ordering::Relaxed);
                let seen = seen.clone();
                async move { answer(req, n, changed, &seen).await }
            }
        });
        WireApp {
            server,
            seen,
            changed,
        }
    }

    fn url(&self) -> String {
        self.server.url()
    }

    /// Everything seen so far, emptying the log.
    fn take_seen(&self) -> Vec<Seen> {
        std::mem::take(&mut *self.seen.lock().expect("log"))
    }
}

async fn answer(
    req: Request<Incoming>,
    n: u64,
    changed: bool,
    seen: &Mutex<Vec<Seen>>,
) -> Response<Answer> {
    let (parts, body) = req.into_parts();
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let body = body
        .collect()
        .await
        .map(|b| b.to_bytes())
        .unwrap_or_default();
    let record = Seen {
        path: parts.uri.path().to_string(),
        names: parts.headers.keys().map(|n| n.to_string()).collect(),
        content_length: header("content-length"),
        transfer_encoding: header("transfer-encoding"),
        body: String::from_utf8_lossy(&body).into_owned(),
    };
    seen.lock().expect("log").push(record.clone());
    let json = |value: serde_json::Value| {
        Response::builder()
            .header("Content-Type", "application/json")
            .body(Either::Left(Full::new(Bytes::from(value.to_string()))))
            .expect("response")
    };
    match record.path.as_str() {
        "/order" => json(serde_json::json!(record.names)),
        "/framing" => json(serde_json::json!({
            "content_length": record.content_length,
            "transfer_encoding": record.transfer_encoding,
            "body": record.body,
        })),
        "/stream" => ndjson(n, changed),
        _ => json(serde_json::json!({"hello": "world"})),
    }
}

/// Two records, each its own chunk, their keys rotated by `n`.
fn ndjson(n: u64, changed: bool) -> Response<Answer> {
    let name = if changed { "BETA" } else { "beta" };
    let records = [(1, "alpha"), (2, name)].map(|(id, name)| {
        let created = format!("\"created_at\":{}", 1_800_000_000 + n * 10 + id);
        let mut fields = [
            format!("\"id\":{id}"),
            format!("\"name\":\"{name}\""),
            created,
        ];
        fields.rotate_left((n % 3) as usize);
        Ok::<_, Infallible>(Frame::data(Bytes::from(format!(
            "{{{}}}\n",
            fields.join(",")
        ))))
    });
    Response::builder()
        .header("Content-Type", "application/x-ndjson")
        .body(Either::Right(StreamBody::new(futures_util::stream::iter(
            records.into_iter().collect::<Vec<_>>(),
        ))))
        .expect("response")
}

/// Sends `head` (request line and headers, without the closing blank
/// line) and `body` as written, and reads the answer to the end.
fn raw_call(addr: SocketAddr, head: &str, body: &str) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let request = format!(
        "{}\r\nConnection: close\r\n\r\n{body}",
        head.replace('\n', "\r\n")
    );
    stream.write_all(request.as_bytes()).expect("send");
    let mut answer = String::new();
    stream.read_to_string(&mut answer).expect("answer");
    assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    answer
}

/// Records `calls` (head, body) through `recplay record` into
/// `dir/keploy`, one test each.
fn record(app: &WireApp, dir: &Path, calls: &[(&str, &str)]) {
    let recorder = RecplayRecord::start(&dir.join("keploy"), &app.url(), &[]);
    for (head, body) in calls {
        raw_call(recorder.http_addr, head, body);
    }
    recorder.signal(nix::sys::signal::Signal::SIGINT);
    let (status, stdout, stderr) = recorder.wait(Duration::from_secs(30));
    assert!(
        status.success(),
        "recplay record failed:\n{stdout}\n{stderr}"
    );
}

fn replay(app: &WireApp, dir: &Path) -> super::Run {
    let target = app.url();
    recplay(
        dir,
        &["test", "--http-target", target.as_str(), "--delay", "5"],
    )
}

#[test]
fn request_headers_are_replayed_in_the_order_they_were_recorded() {
    let app = WireApp::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let head = "GET /order HTTP/1.1\nHost: example.test\nUser-Agent: wire/1\nAccept: */*\nX-Signature: abc\nA-Last: z";
    record(&app, dir.path(), &[(head, "")]);
    let recorded = app.take_seen();
    let order = ["host", "user-agent", "accept", "x-signature", "a-last"];
    assert_eq!(recorded[0].names, order);

    let run = replay(&app, dir.path());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let replayed = app.take_seen();
    assert_eq!(replayed.len(), 1, "{replayed:?}");
    assert_eq!(replayed[0].names, order, "the echoed order");
}

/// A test case as Keploy writes it: no recplay format, headers sorted.
const KEPLOY_CASE: &str = r#"version: api.keploy.io/v1beta1
kind: Http
name: test-1
spec:
    metadata: {}
    req:
        method: GET
        proto_major: 1
        proto_minor: 1
        url: http://localhost:8080/hello
        header:
            Accept: '*/*'
            Host: localhost:8080
            User-Agent: curl/8.5.0
            X-Trace: t-1
        body: ""
        timestamp: 2024-05-01T10:00:00.000000000Z
    resp:
        status_code: 200
        header:
            Content-Type: application/json
        body: '{"hello":"world"}'
        status_message: OK
        proto_major: 0
        proto_minor: 0
        timestamp: 2024-05-01T10:00:00.100000000Z
    objects: []
    assertions:
        noise: {}
    created: 1714557600
curl: curl --request GET --url http://localhost:8080/hello
"#;

#[test]
fn a_keploy_test_with_sorted_headers_replays_in_that_order() {
    let app = WireApp::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let tests = dir.path().join("keploy/test-set-0/tests");
    std::fs::create_dir_all(&tests).expect("mkdir");
    std::fs::write(tests.join("test-1.yaml"), KEPLOY_CASE).expect("write");

    let run = replay(&app, dir.path());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let seen = app.take_seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].names, ["accept", "host", "user-agent", "x-trace"]);
}

#[test]
fn an_empty_put_and_a_chunked_post_keep_their_framing() {
    let app = WireApp::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let put = "PUT /framing HTTP/1.1\nHost: example.test\nContent-Length: 0";
    let post = "POST /framing HTTP/1.1\nHost: example.test\nContent-Type: text/plain\nTransfer-Encoding: chunked";
    let chunks = "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n";
    record(&app, dir.path(), &[(put, ""), (post, chunks)]);
    let framing = |seen: &[Seen]| -> Vec<(Option<String>, Option<String>, String)> {
        seen.iter()
            .map(|s| {
                (
                    s.content_length.clone(),
                    s.transfer_encoding.clone(),
                    s.body.clone(),
                )
            })
            .collect()
    };
    let recorded = framing(&app.take_seen());
    assert_eq!(
        recorded,
        [
            (Some("0".into()), None, String::new()),
            (None, Some("chunked".into()), "hello world".into()),
        ]
    );

    let run = replay(&app, dir.path());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert_eq!(framing(&app.take_seen()), recorded);
}

#[test]
fn streamed_ndjson_is_compared_record_by_record() {
    let app = WireApp::start();
    let dir = tempfile::tempdir().expect("tempdir");
    record(
        &app,
        dir.path(),
        &[("GET /stream HTTP/1.1\nHost: example.test", "")],
    );

    // Keys come in another order and created_at is fresh: only the latter
    // is a difference, named by its record.
    let run = replay(&app, dir.path());
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    let report = set_report(dir.path(), "test-set-0");
    let paths: Vec<&str> = report["tests"][0]["result"]["body_result"]
        .as_sequence()
        .expect("body_result")
        .iter()
        .filter_map(|b| b["path"].as_str())
        .collect();
    assert_eq!(
        paths,
        ["events[0].raw.created_at", "events[1].raw.created_at"]
    );

    // Noise by the path a difference is named with covers every record.
    let config = "test:\n  globalNoise:\n    global:\n      body:\n        \"events[].raw.created_at\": []\n";
    std::fs::write(dir.path().join("keploy.yml"), config).expect("config");
    let run = replay(&app, dir.path());
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = set_report(dir.path(), "test-set-0");
    assert_eq!(statuses(&report)["test-1"], "PASSED");

    app.changed.store(true, Ordering::Relaxed);
    let run = replay(&app, dir.path());
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("body events[1].raw.name: expected \"beta\", got \"BETA\""),
        "{}",
        run.stdout
    );
    assert!(!run.stdout.contains("created_at"), "{}", run.stdout);
}
