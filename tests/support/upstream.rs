//! A real upstream for the HTTP proxy tests: a hyper server on 127.0.0.1,
//! running on its own thread and runtime so sync and async tests can use it.
//!
//! Routes:
//! - `/echo…` (any method, any query): JSON with method, path, query, the
//!   headers as received (repeats kept), the body, its size and the
//!   transfer framing; `Date` is added by hyper; `created_at` is a
//!   timestamp.
//! - `/json`: a fixed JSON body with timestamp fields, Content-Length.
//! - `/chunked`: text in several chunks without Content-Length.
//! - `/gzip`, `/deflate`, `/br`: JSON encoded with that Content-Encoding.
//! - `/binary`: bytes 0..=255.
//! - `/bytes?size=N`: N bytes of `abcd…` streamed in 64 KiB chunks.
//! - `/sink`: reads the request body as it streams; answers size and sha256.
//! - `/status/N`: an empty response with that status.
//! - `/cookies`: two `Set-Cookie` headers.
//! - `/slow?ms=N`: answers after N milliseconds.
//! - `/ws`: answers an Upgrade with 101, then echoes raw bytes.
//! - `/hang`: never answers.
//! - `/cut`: announces 1000 bytes, sends 100, and closes the connection.

use std::convert::Infallible;
use std::io::Write;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http::{header, Request, Response, StatusCode};
use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;
use tokio::sync::oneshot;

type Body = BoxBody<Bytes, Infallible>;

/// A running upstream; stopped on drop.
pub struct Upstream {
    pub addr: SocketAddr,
    stop: Option<oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Upstream {
    /// Plain HTTP on a free port.
    pub fn start() -> Self {
        Self::start_on("127.0.0.1:0".parse().expect("addr"), None)
    }

    /// HTTPS with the given server settings on a free port.
    pub fn start_tls(config: Arc<rustls::ServerConfig>) -> Self {
        Self::start_on("127.0.0.1:0".parse().expect("addr"), Some(config))
    }

    /// On a chosen address (to bring an upstream up where one was down).
    pub fn start_on(addr: SocketAddr, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        let thread = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let listener = TcpListener::bind(addr).await.expect("bind upstream");
                addr_tx
                    .send(listener.local_addr().expect("addr"))
                    .expect("send addr");
                let acceptor = tls.map(tokio_rustls::TlsAcceptor::from);
                let accept_loop = async {
                    loop {
                        let Ok((stream, _)) = listener.accept().await else {
                            continue;
                        };
                        let _ = stream.set_nodelay(true);
                        let acceptor = acceptor.clone();
                        tokio::spawn(async move {
                            match acceptor {
                                None => serve(stream).await,
                                Some(a) => {
                                    if let Ok(s) = a.accept(stream).await {
                                        serve(s).await
                                    }
                                }
                            }
                        });
                    }
                };
                tokio::select! {
                    _ = accept_loop => {}
                    _ = stop_rx => {}
                }
            });
            rt.shutdown_timeout(Duration::from_millis(100));
        });
        let addr = addr_rx.recv().expect("upstream started");
        Upstream {
            addr,
            stop: Some(stop_tx),
            thread: Some(thread),
        }
    }

    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

async fn serve<S>(stream: S)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(stream), service_fn(route))
        .with_upgrades()
        .await;
}

fn full(bytes: impl Into<Bytes>) -> Body {
    Full::new(bytes.into()).boxed()
}

fn query_param(query: &str, key: &str) -> Option<u64> {
    query
        .split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == key)
        .and_then(|(_, v)| v.parse().ok())
}

fn json_response(value: serde_json::Value) -> Response<Body> {
    let mut resp = Response::new(full(value.to_string()));
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        "application/json".parse().expect("hv"),
    );
    resp
}

fn encoded(encoding: &str, body: &[u8]) -> Vec<u8> {
    match encoding {
        "gzip" => {
            let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(body).expect("gzip");
            e.finish().expect("gzip")
        }
        "deflate" => {
            let mut e = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
            e.write_all(body).expect("deflate");
            e.finish().expect("deflate")
        }
        _ => {
            let mut out = Vec::new();
            {
                let mut w = brotli::CompressorWriter::new(&mut out, 4096, 5, 22);
                w.write_all(body).expect("br");
            }
            out
        }
    }
}

/// The JSON every compressed route sends.
pub const COMPRESSED_JSON: &str = r#"{"compressed":true,"items":[1,2,3]}"#;

async fn route(mut req: Request<Incoming>) -> Result<Response<Body>, Infallible> {
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    let resp = match path.as_str() {
        p if p.starts_with("/echo") => {
            let method = req.method().to_string();
            let framing = if req.headers().contains_key(header::TRANSFER_ENCODING) {
                "chunked"
            } else if req.headers().contains_key(header::CONTENT_LENGTH) {
                "content-length"
            } else {
                "none"
            };
            let mut headers = serde_json::Map::new();
            for name in req.headers().keys() {
                let values: Vec<String> = req
                    .headers()
                    .get_all(name)
                    .iter()
                    .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                    .collect();
                headers.insert(name.to_string(), values.into());
            }
            let body = req
                .into_body()
                .collect()
                .await
                .map(|b| b.to_bytes())
                .unwrap_or_default();
            json_response(serde_json::json!({
                "method": method,
                "path": p,
                "query": query,
                "headers": headers,
                "framing": framing,
                "body": String::from_utf8_lossy(&body),
                "size": body.len(),
                "created_at": chrono::Utc::now().to_rfc3339(),
            }))
        }
        "/json" => {
            let body = r#"{"id":7,"name":"widget","created_at":"2024-05-01T10:00:00Z","nested":{"updated_at":"2024-05-01 10:00:01"}}"#;
            let mut resp = Response::new(full(body));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                "application/json".parse().expect("hv"),
            );
            resp.headers_mut()
                .insert(header::CONTENT_LENGTH, body.len().into());
            resp
        }
        "/chunked" => {
            let chunks = ["first,", "second,", "third"].map(|c| Ok(Frame::data(Bytes::from(c))));
            Response::new(StreamBody::new(stream::iter(chunks)).boxed())
        }
        "/gzip" | "/deflate" | "/br" => {
            let encoding = &path[1..];
            let mut resp = Response::new(full(encoded(encoding, COMPRESSED_JSON.as_bytes())));
            resp.headers_mut()
                .insert(header::CONTENT_ENCODING, encoding.parse().expect("hv"));
            resp.headers_mut().insert(
                header::CONTENT_TYPE,
                "application/json".parse().expect("hv"),
            );
            resp
        }
        "/binary" => Response::new(full((0..=255u8).collect::<Vec<u8>>())),
        "/bytes" => {
            let size = query_param(&query, "size").unwrap_or(0);
            let chunk = Bytes::from(
                (0..65536)
                    .map(|i| b'a' + (i % 26) as u8)
                    .collect::<Vec<u8>>(),
            );
            let chunks = (0..size.div_ceil(65536)).map(move |i| {
                let len = (size - i * 65536).min(65536) as usize;
                Ok(Frame::data(chunk.slice(..len)))
            });
            let mut resp = Response::new(StreamBody::new(stream::iter(chunks)).boxed());
            resp.headers_mut()
                .insert(header::CONTENT_LENGTH, size.into());
            resp
        }
        "/sink" => {
            let mut body = req.into_body();
            let mut hasher = Sha256::new();
            let mut size = 0u64;
            while let Some(frame) = body.frame().await {
                let Ok(frame) = frame else { break };
                if let Some(data) = frame.data_ref() {
                    size += data.len() as u64;
                    hasher.update(data);
                }
            }
            json_response(serde_json::json!({
                "size": size,
                "sha256": hex::encode(hasher.finalize()),
            }))
        }
        p if p.starts_with("/status/") => {
            let code = p["/status/".len()..].parse().unwrap_or(500);
            let mut resp = Response::new(full(Bytes::new()));
            *resp.status_mut() =
                StatusCode::from_u16(code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            if code == 304 {
                resp.headers_mut()
                    .insert(header::ETAG, "\"v1\"".parse().expect("hv"));
            }
            resp
        }
        "/cookies" => {
            let mut resp = Response::new(full("ok"));
            resp.headers_mut()
                .append(header::SET_COOKIE, "a=1".parse().expect("hv"));
            resp.headers_mut()
                .append(header::SET_COOKIE, "b=2".parse().expect("hv"));
            resp
        }
        "/slow" => {
            let ms = query_param(&query, "ms").unwrap_or(500);
            tokio::time::sleep(Duration::from_millis(ms)).await;
            Response::new(full(format!("slept {ms}")))
        }
        "/hang" => std::future::pending().await,
        "/cut" => {
            // The pause lets the head and the first part go out before the
            // body ends short of its length, which closes the connection.
            let parts = stream::unfold(0u8, |n| async move {
                match n {
                    0 => Some((Ok(Frame::data(Bytes::from(vec![b'x'; 100]))), 1)),
                    _ => {
                        tokio::time::sleep(Duration::from_millis(300)).await;
                        None
                    }
                }
            });
            let mut resp = Response::new(StreamBody::new(parts).boxed());
            resp.headers_mut()
                .insert(header::CONTENT_LENGTH, 1000.into());
            resp
        }
        "/ws" => {
            let upgrade = hyper::upgrade::on(&mut req);
            tokio::spawn(async move {
                if let Ok(upgraded) = upgrade.await {
                    let mut io = TokioIo::new(upgraded);
                    let mut buf = [0u8; 1024];
                    while let Ok(n) = io.read(&mut buf).await {
                        if n == 0 || io.write_all(&buf[..n]).await.is_err() {
                            break;
                        }
                    }
                }
            });
            let mut resp = Response::new(full(Bytes::new()));
            *resp.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
            resp.headers_mut()
                .insert(header::CONNECTION, "upgrade".parse().expect("hv"));
            resp.headers_mut()
                .insert(header::UPGRADE, "websocket".parse().expect("hv"));
            resp
        }
        _ => {
            let mut resp = Response::new(full("not found"));
            *resp.status_mut() = StatusCode::NOT_FOUND;
            resp
        }
    };
    Ok(resp)
}

/// An upstream on raw TCP, for behaviour hyper's server would not show:
/// each connection accepted on a free port is handled on one thread, one
/// connection at a time, with the connection's number.
pub struct RawUpstream {
    pub addr: SocketAddr,
    _thread: std::thread::JoinHandle<()>,
}

impl RawUpstream {
    fn serve(handle: impl Fn(usize, std::net::TcpStream) + Send + 'static) -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        let thread = std::thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate() {
                if let Ok(stream) = stream {
                    handle(n, stream);
                }
            }
        });
        RawUpstream {
            addr,
            _thread: thread,
        }
    }

    /// Accepts connections and drops them at once (a reset).
    pub fn resetting() -> Self {
        RawUpstream::serve(|_, stream| drop(stream))
    }

    /// Answers one request per connection with a small JSON body and then
    /// closes the connection without saying so (no `Connection: close`), as
    /// an upstream does when its keep-alive timeout passes while a
    /// connection is idle.
    pub fn one_shot() -> Self {
        RawUpstream::serve(|n, mut stream| {
            read_head(&mut stream);
            let body = format!("{{\"connection\":{n}}}");
            let reply = format!(
                "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
                body.len()
            );
            let _ = stream.write_all(reply.as_bytes());
            let _ = stream.flush();
            // Let the proxy see the response and go idle before the close.
            std::thread::sleep(std::time::Duration::from_millis(50));
        })
    }

    /// Answers `413` with an empty body as soon as a request's head arrives,
    /// then reads the whole request body (Content-Length) before it closes
    /// the connection: the early answer a server gives to an upload it
    /// refuses, while it drains the upload politely.
    pub fn early_answer() -> Self {
        use std::io::Read;
        RawUpstream::serve(|_, mut stream| {
            let head = read_head(&mut stream);
            let length: u64 = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            let _ = stream.write_all(
                b"HTTP/1.1 413 Payload Too Large\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
            );
            let _ = stream.flush();
            let _ = std::io::copy(&mut (&mut stream).take(length), &mut std::io::sink());
        })
    }
}

impl RawUpstream {
    /// Answers each request with `103 Early Hints` (a `Link` header) and
    /// then `200` with a short body, on a connection it then closes.
    pub fn early_hints() -> Self {
        RawUpstream::serve(|_, mut stream| {
            let _ = read_head(&mut stream);
            let _ = stream.write_all(
                b"HTTP/1.1 103 Early Hints\r\nlink: </style.css>; rel=preload\r\n\r\n\
                  HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nfinal",
            );
            let _ = stream.flush();
        })
    }
}

/// Reads a request head up to its blank line, byte by byte so that nothing
/// of the body is consumed; lower-cased.
fn read_head(stream: &mut std::net::TcpStream) -> String {
    use std::io::Read;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => break,
        }
    }
    String::from_utf8_lossy(&head).to_ascii_lowercase()
}
