//! A small real HTTP app for replay tests: a hyper server on 127.0.0.1:0
//! whose answers carry what real services vary on (a Date header,
//! `created_at`/`updated_at` timestamps, nested arrays of objects with
//! timestamps, a random `request_id`), and whose behaviour a test can
//! switch to simulate a regression.
//!
//! Routes:
//! - `GET /health` → 200 `ok`
//! - `GET /items` → `{request_id, created_at, count, items: [{id, name,
//!   created_at, tags: [{label, created_at}]}]}`, header `X-Api-Version`
//! - `GET /users/7` → `{request_id, updated_at, user: {id, profile: {name, city}}}`
//! - `GET /status` → `{ok: true}`
//! - `POST /echo` → 201 `{received: <request JSON>, created_at}`
//! - `GET /text` → three lines of text/plain
//! - `GET /gzip` → gzip-compressed JSON `{compressed, created_at}`

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use serde_json::{json, Value};

/// Regressions a test can switch on.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Behaviour {
    /// `/status` answers 503.
    pub status_changed: bool,
    /// `/items` sends `X-Api-Version: 2.0` instead of `1.4`.
    pub header_changed: bool,
    /// `/users/7` moves the user to Paris (`user.profile.city`).
    pub nested_value_changed: bool,
    /// `/items` renames its second item (`items[1].name`).
    pub array_element_changed: bool,
    /// `/users/7` loses `user.profile.name`.
    pub key_dropped: bool,
    /// `request_id` becomes the word `unknown` instead of 16 hex digits.
    pub request_id_not_hex: bool,
}

/// A running demo app; stopped on drop.
pub struct DemoApp {
    pub addr: SocketAddr,
    behaviour: Arc<Mutex<Behaviour>>,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl DemoApp {
    pub fn start() -> Self {
        let behaviour = Arc::new(Mutex::new(Behaviour::default()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let shared = behaviour.clone();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(serve(shared, addr_tx, stop_rx));
        });
        let addr = addr_rx.recv().expect("the demo app reports its address");
        DemoApp {
            addr,
            behaviour,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn set(&self, b: Behaviour) {
        *self.behaviour.lock().expect("lock") = b;
    }
}

impl Drop for DemoApp {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve(
    behaviour: Arc<Mutex<Behaviour>>,
    addr_tx: std::sync::mpsc::Sender<SocketAddr>,
    mut stop: tokio::sync::oneshot::Receiver<()>,
) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    addr_tx
        .send(listener.local_addr().expect("addr"))
        .expect("send addr");
    loop {
        tokio::select! {
            _ = &mut stop => return,
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let behaviour = behaviour.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let b = *behaviour.lock().expect("lock");
                        handle(req, b)
                    });
                    let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}

fn now() -> String {
    let d = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
    format!("{}.{:09}", d.as_secs(), d.subsec_nanos())
}

fn request_id(b: Behaviour) -> String {
    if b.request_id_not_hex {
        return "unknown".to_string();
    }
    static CALLS: AtomicU64 = AtomicU64::new(1);
    let d = SystemTime::now().duration_since(UNIX_EPOCH).expect("clock");
    // Mixed from the clock and a call counter: different on every call.
    let seed = (d.as_nanos() as u64) ^ CALLS.fetch_add(1, Ordering::Relaxed).rotate_left(29);
    format!(
        "{:016x}",
        seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | (1 << 63)
    )
}

fn json_response(status: u16, body: &Value) -> Response<Full<Bytes>> {
    Response::builder()
        .status(status)
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("response")
}

async fn handle(req: Request<Incoming>, b: Behaviour) -> Result<Response<Full<Bytes>>, Infallible> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let body = req
        .into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default();
    let resp = match (method.as_str(), path.as_str()) {
        ("GET", "/health") => Response::new(Full::new(Bytes::from_static(b"ok"))),
        ("GET", "/items") => {
            let second = if b.array_element_changed {
                "plum"
            } else {
                "pear"
            };
            let v = json!({
                "request_id": request_id(b),
                "created_at": now(),
                "count": 2,
                "items": [
                    {"id": 1, "name": "apple", "created_at": now(),
                     "tags": [{"label": "fresh", "created_at": now()}]},
                    {"id": 2, "name": second, "created_at": now(),
                     "tags": [{"label": "ripe", "created_at": now()},
                              {"label": "sale", "created_at": now()}]}
                ]
            });
            let mut r = json_response(200, &v);
            let version = if b.header_changed { "2.0" } else { "1.4" };
            r.headers_mut()
                .insert("X-Api-Version", version.parse().expect("header"));
            r
        }
        ("GET", "/users/7") => {
            let mut profile = json!({"name": "Ada", "city": "London"});
            if b.nested_value_changed {
                profile["city"] = json!("Paris");
            }
            if b.key_dropped {
                if let Some(obj) = profile.as_object_mut() {
                    obj.remove("name");
                }
            }
            json_response(
                200,
                &json!({"request_id": request_id(b), "updated_at": now(),
                        "user": {"id": 7, "profile": profile}}),
            )
        }
        ("GET", "/status") => {
            let status = if b.status_changed { 503 } else { 200 };
            json_response(status, &json!({"ok": true}))
        }
        ("POST", "/echo") => {
            let received: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
            json_response(201, &json!({"received": received, "created_at": now()}))
        }
        ("GET", "/text") => Response::builder()
            .header("Content-Type", "text/plain")
            .body(Full::new(Bytes::from_static(
                b"line one\nline two\nline three\n",
            )))
            .expect("response"),
        ("GET", "/gzip") => {
            let v = json!({"compressed": true, "created_at": now()});
            let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            enc.write_all(v.to_string().as_bytes()).expect("gzip");
            Response::builder()
                .header("Content-Type", "application/json")
                .header("Content-Encoding", "gzip")
                .body(Full::new(Bytes::from(enc.finish().expect("gzip"))))
                .expect("response")
        }
        _ => json_response(404, &json!({"error": "not found"})),
    };
    Ok(resp)
}
