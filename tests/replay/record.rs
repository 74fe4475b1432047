//! Test sets for the replay tests: the app is called for real and every
//! exchange is written through the shared model, the way the recording
//! proxy stores it (bodies decoded from gzip with the encoding remembered).

use std::io::Read;
use std::path::Path;
use std::time::{Duration, Instant};

use chrono::Utc;
use recplay_proxy::testset::{HttpRequest, HttpResponse, HttpSpec, HttpTestCase, TestSetDir};

use crate::support::demo_app::DemoApp;
use crate::support::http::call;

pub struct Step {
    pub method: &'static str,
    pub path: &'static str,
    pub headers: &'static [(&'static str, &'static str)],
    pub body: &'static str,
}

/// The flow every replay test records, in order (test-1 is the first).
pub const FLOW: [Step; 6] = [
    Step {
        method: "GET",
        path: "/items",
        headers: &[("Accept", "application/json")],
        body: "",
    },
    Step {
        method: "GET",
        path: "/users/7",
        headers: &[("Accept", "application/json")],
        body: "",
    },
    Step {
        method: "GET",
        path: "/status",
        headers: &[],
        body: "",
    },
    Step {
        method: "POST",
        path: "/echo",
        headers: &[("Content-Type", "application/json")],
        body: "{\"name\": \"widget\", \"sizes\": [1, 2, 3]}",
    },
    Step {
        method: "GET",
        path: "/text",
        headers: &[],
        body: "",
    },
    Step {
        method: "GET",
        path: "/gzip",
        headers: &[("Accept-Encoding", "gzip")],
        body: "",
    },
];

/// Records [`FLOW`] against the demo app into the next test set.
pub fn record_flow(app: &DemoApp, keploy_dir: &Path) -> String {
    let set = TestSetDir::create_next(keploy_dir).expect("test set");
    for (i, step) in FLOW.iter().enumerate() {
        record_one(&set, i + 1, &app.url(), step);
    }
    set.name()
}

/// Records plain GETs of `routes` against `base` into the next test set.
pub fn record_routes(base: &str, keploy_dir: &Path, routes: &[&'static str]) -> String {
    let set = TestSetDir::create_next(keploy_dir).expect("test set");
    for (i, path) in routes.iter().enumerate() {
        let step = Step {
            method: "GET",
            path,
            headers: &[],
            body: "",
        };
        record_one(&set, i + 1, base, &step);
    }
    set.name()
}

fn record_one(set: &TestSetDir, n: usize, base: &str, step: &Step) {
    let url = format!("{base}{}", step.path);
    let host = base.trim_start_matches("http://").to_string();
    let req_time = Utc::now();
    let answer = call(step.method, &url, step.headers, step.body.as_bytes());
    let mut req = HttpRequest {
        method: step.method.to_string(),
        proto_major: 1,
        proto_minor: 1,
        url: url.clone(),
        timestamp: req_time,
        ..Default::default()
    };
    req.header.insert("Host".to_string(), host);
    for (k, v) in step.headers {
        req.header.insert(k.to_string(), v.to_string());
    }
    req.body.body = step.body.to_string();
    let mut resp = HttpResponse {
        status_code: answer.status,
        status_message: answer.reason.clone(),
        proto_major: 1,
        proto_minor: 1,
        timestamp: Utc::now(),
        ..Default::default()
    };
    for (k, v) in &answer.headers {
        resp.header.insert(canonical(k), v.clone());
    }
    let body = if answer.header("content-encoding") == Some("gzip") {
        let mut out = Vec::new();
        flate2::read::GzDecoder::new(&answer.body[..])
            .read_to_end(&mut out)
            .expect("gzip");
        resp.body.content_encoding = Some("gzip".to_string());
        out
    } else {
        answer.body.clone()
    };
    resp.body.body = String::from_utf8(body).expect("the demo app answers text");
    let spec = HttpSpec {
        req,
        resp,
        created: req_time.timestamp(),
        ..Default::default()
    };
    set.write_test(&HttpTestCase::new(format!("test-{n}"), spec))
        .expect("write test");
}

fn canonical(name: &str) -> String {
    name.split('-')
        .map(|p| {
            let mut c = p.chars();
            c.next()
                .map(|f| f.to_ascii_uppercase().to_string() + c.as_str())
                .unwrap_or_default()
        })
        .collect::<Vec<_>>()
        .join("-")
}

pub fn wait_for_port(port: u16) {
    let start = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "nothing listened on {port}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}
