//! Test sets for the replay tests, recorded by the real `recplay record`
//! proxy in front of the real app.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::demo_app::DemoApp;
use crate::support::http::call;
use crate::support::recplay::RecplayRecord;

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

/// Records [`FLOW`] against the demo app into the next test set, through
/// the real `recplay record` proxy.
pub fn record_flow(app: &DemoApp, keploy_dir: &Path) {
    record_through_recplay(&app.url(), keploy_dir, &FLOW);
}

/// Records plain GETs of `routes` against `base` into the next test set.
pub fn record_routes(base: &str, keploy_dir: &Path, routes: &[&'static str]) {
    let steps: Vec<Step> = routes
        .iter()
        .map(|path| Step {
            method: "GET",
            path,
            headers: &[],
            body: "",
        })
        .collect();
    record_through_recplay(base, keploy_dir, &steps);
}

fn record_through_recplay(upstream: &str, keploy_dir: &Path, steps: &[Step]) {
    let recorder = RecplayRecord::start(keploy_dir, upstream, &[]);
    for step in steps {
        let answer = call(
            step.method,
            &recorder.url(step.path),
            step.headers,
            step.body.as_bytes(),
        );
        assert!(answer.status < 500 || step.path == "/status", "{answer:?}");
    }
    recorder.signal(nix::sys::signal::Signal::SIGINT);
    let (status, stdout, stderr) = recorder.wait(Duration::from_secs(30));
    assert!(
        status.success(),
        "recplay record failed:\n{stdout}\n{stderr}"
    );
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
