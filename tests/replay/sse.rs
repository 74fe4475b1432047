//! A Keploy test whose answer was a Server-Sent Events stream, stored as a
//! list of events, replayed against a real server that streams
//! `text/event-stream`: compared event by event, each event's JSON `data`
//! as JSON (its key order and the noise fields free to differ).

use std::convert::Infallible;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::StreamBody;
use hyper::body::Frame;
use hyper::Response;

use super::{copy_dir, recplay, set_report};
use crate::support::serve::{serve, Served};

/// A server whose `/events` streams four SSE events, one frame at a time;
/// `changed` makes the second event say `LO` instead of `lo`.
struct StreamingApp {
    server: Served,
    changed: Arc<AtomicBool>,
}

impl StreamingApp {
    fn start() -> Self {
        let changed = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let server = serve({
            let changed = changed.clone();
            move |_req| {
                let n = served.fetch_add(1, Ordering::Relaxed);
                let events = events(n, changed.load(Ordering::Relaxed));
                async move { streamed(events) }
            }
        });
        StreamingApp { server, changed }
    }
}

/// The stream's frames for the `n`-th request: a fresh completion id and
/// creation time each time, keys in another order than the recording's.
fn events(n: u64, changed: bool) -> Vec<String> {
    let id = format!("chatcmpl-{:04x}", 0x9000 + n);
    let created = 1_800_000_000 + n;
    let second = if changed { "LO" } else { "lo" };
    vec![
        ": stream open\n\n".to_string(),
        format!(
            "event: delta\nid: 1\ndata: {{\"choices\":[{{\"delta\":{{\"content\":\"Hel\",\"role\":\"assistant\"}},\"index\":0}}],\"created\":{created},\"id\":\"{id}\"}}\n\n"
        ),
        format!(
            "event: delta\nid: 2\ndata: {{\"created\":{created},\"id\":\"{id}\",\"choices\":[{{\"index\":0,\"delta\":{{\"content\":\"{second}\"}}}}]}}\n\n"
        ),
        "event: done\nid: 3\ndata: [DONE]\n\n".to_string(),
    ]
}

type Streamed =
    StreamBody<futures_util::stream::Iter<std::vec::IntoIter<Result<Frame<Bytes>, Infallible>>>>;

/// Each event its own chunk of a chunked `text/event-stream` answer.
fn streamed(events: Vec<String>) -> Response<Streamed> {
    let frames: Vec<Result<Frame<Bytes>, Infallible>> = events
        .into_iter()
        .map(|e| Ok(Frame::data(Bytes::from(e))))
        .collect();
    Response::builder()
        .header("Content-Type", "text/event-stream")
        .header("Cache-Control", "no-cache")
        .body(StreamBody::new(futures_util::stream::iter(frames)))
        .expect("response")
}

#[test]
fn a_recorded_event_stream_is_compared_event_by_event() {
    let app = StreamingApp::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keploy-sse");
    copy_dir(&fixture, &dir.path().join("keploy"));
    let target = app.server.url();
    let args = ["test", "--http-target", target.as_str(), "--delay", "5"];

    let run = recplay(dir.path(), &args);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("test-set-0: 1 passed, 0 failed"),
        "{}",
        run.stdout
    );
    let report = set_report(dir.path(), "test-set-0");
    assert_eq!(report["tests"][0]["status"].as_str(), Some("PASSED"));

    app.changed.store(true, Ordering::Relaxed);
    let run = recplay(dir.path(), &args);
    assert_eq!(run.code, 1, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout
            .contains("body events[2].data.choices[0].delta.content: expected \"lo\", got \"LO\""),
        "{}",
        run.stdout
    );
    let report = set_report(dir.path(), "test-set-0");
    let body = &report["tests"][0]["result"]["body_result"];
    let paths: Vec<&str> = body
        .as_sequence()
        .expect("body_result")
        .iter()
        .filter_map(|b| b["path"].as_str())
        .collect();
    assert_eq!(paths, ["events[2].data.choices[0].delta.content"]);
}
