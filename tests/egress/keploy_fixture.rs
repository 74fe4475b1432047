//! A Keploy-layout test set whose mocks.yaml holds `kind: Http` mocks (a
//! JSON answer and an SSE stream, as Keploy stores one) is served to a real
//! Python client through the forward proxy; a call the recording lacks gets
//! recplay's 502 and the test's summary names it.

use std::process::Command;

use crate::support::pg::free_port;

const CLIENT_APP: &str = r#"
import json, os, sys, urllib.request
from http.server import BaseHTTPRequestHandler, HTTPServer

class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        target = {"/rate": "http://rates.example/v1/eur",
                  "/missing": "http://rates.example/v1/gbp"}.get(self.path)
        if target:
            try:
                with urllib.request.urlopen(target, timeout=10) as r:
                    out = json.loads(r.read())
            except urllib.error.HTTPError as e:
                out = {"status": e.code, "miss": e.headers.get("X-Recplay-Miss")}
        else:
            req = urllib.request.Request("http://llm.example/v1/chat/completions",
                data=json.dumps({"stream": True, "model": "m"}).encode(),
                headers={"Content-Type": "application/json"})
            words = []
            with urllib.request.urlopen(req, timeout=10) as r:
                for line in r:
                    line = line.decode().strip()
                    if line.startswith("data: ") and line != "data: [DONE]":
                        words.append(json.loads(line[6:])["delta"])
            out = {"text": "".join(words)}
        data = json.dumps(out).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass

HTTPServer(("127.0.0.1", int(sys.argv[1])), Handler).serve_forever()
"#;

fn copy_dir(from: &std::path::Path, to: &std::path::Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read fixture") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

#[test]
fn keploys_http_mocks_are_served_to_a_real_client() {
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/egress_keploy");
    copy_dir(&fixture, dir.path());
    std::fs::write(dir.path().join("client.py"), CLIENT_APP).expect("app");
    let port = free_port();
    let serve = format!(
        "exec python3 {} {port}",
        dir.path().join("client.py").display()
    );
    let out = Command::new(env!("CARGO_BIN_EXE_recplay"))
        .args(["test", "--path", "keploy", "--delay", "20", "-c", &serve])
        .args(["--http-target", &format!("http://127.0.0.1:{port}")])
        .arg("--egress-proxy")
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .current_dir(dir.path())
        .output()
        .expect("run recplay test");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("test-set-0: 2 passed, 1 failed"),
        "{stdout}\n{stderr}"
    );
    assert!(stdout.contains("FAIL test-set-0/test-3"), "{stdout}");
    assert!(
        stdout.contains("no recorded answer for: GET http://rates.example/v1/gbp"),
        "{stdout}"
    );
    assert!(
        stdout.contains("nearest recorded: none recorded for GET /v1/gbp"),
        "{stdout}"
    );
}
