//! The replay listeners: each named route, and the forward proxy, answer
//! the app's outgoing calls from the set's Http mocks.
//!
//! A streamed answer (kept as events) goes back as a chunked stream, one
//! chunk per event, so a client reading events as they come sees the same
//! sequence it saw live. A call nothing fits answers 502 with
//! `X-Recplay-Miss` and a body naming the nearest recorded call. Given the
//! project's CA, the forward proxy opens `CONNECT` tunnels, and the calls
//! inside (HTTP/1.1 or HTTP/2, as the app's ALPN picks) are matched as
//! `https://host:port/...`.

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures_util::stream;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full, StreamBody};
use hyper::body::{Frame, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::testset::http_form::{is_transfer_header, stored_bytes};
use crate::testset::keploy::http::HttpMockSpec;
use crate::testset::stream_body::{
    are_lines, parse_lines, parse_sse, stream_framing, EventFields, StreamEvent, StreamFraming,
    RAW_FIELD,
};
use crate::window::TestWindows;

use super::ca::ProjectCa;
use super::forward::CONNECT_REFUSED;
use super::listener::{serve_until, Handler};
use super::matcher::{Call, EgressMatcher};
use super::record::header;
use super::tunnel::{connect_target, spawn_tunnel};
use super::EgressRoute;

/// The header a miss carries, so a client (and a person reading its log)
/// tells recplay's 502 from the real service's.
pub const MISS_HEADER: &str = "x-recplay-miss";

type ServeBody = BoxBody<Bytes, Infallible>;

/// How long an answer in flight may take to finish once replay stops the
/// listener; the app is being stopped too, so nothing waits longer.
const STOP_GRACE: Duration = Duration::from_secs(1);

/// What a listener stands in for.
#[derive(Debug, Clone)]
pub enum ServeAs {
    /// A named route: calls are `route.url` + the request's path.
    Route(EgressRoute),
    /// The forward proxy: calls arrive with absolute URLs, or inside a
    /// `CONNECT` tunnel when a CA is given (without one, `CONNECT` gets
    /// a 501).
    Proxy(Option<Arc<ProjectCa>>),
    /// Inside a `CONNECT` tunnel to `host:port`: calls arrive with a path.
    Tunnel(String),
}

/// One bound replay listener.
pub struct EgressServer {
    listener: TcpListener,
    serve_as: ServeAs,
    matcher: Arc<Mutex<EgressMatcher>>,
    windows: TestWindows,
}

impl EgressServer {
    /// Binds `addr` (port 0 for a free one).
    pub async fn bind(
        addr: SocketAddr,
        serve_as: ServeAs,
        matcher: Arc<Mutex<EgressMatcher>>,
        windows: TestWindows,
    ) -> std::io::Result<Self> {
        Ok(EgressServer {
            listener: TcpListener::bind(addr).await?,
            serve_as,
            matcher,
            windows,
        })
    }

    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown`; connections still open then get
    /// [`STOP_GRACE`] to finish the answer in flight.
    pub async fn run(self, shutdown: impl Future<Output = ()>) {
        let (stop_tx, stop) = watch::channel(false);
        let shared = Arc::new(Shared {
            serve_as: self.serve_as,
            matcher: self.matcher,
            windows: self.windows,
            stop,
        });
        serve_until(self.listener, shared, stop_tx, STOP_GRACE, shutdown).await;
    }
}

struct Shared {
    serve_as: ServeAs,
    matcher: Arc<Mutex<EgressMatcher>>,
    windows: TestWindows,
    /// Turns true when the listener stops: open tunnels close then.
    stop: watch::Receiver<bool>,
}

impl Handler for Shared {
    type Body = ServeBody;

    fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> impl Future<Output = Response<ServeBody>> {
        self.answer(req)
    }
}

impl Shared {
    async fn answer(self: Arc<Self>, req: Request<Incoming>) -> Response<ServeBody> {
        if req.method() == Method::CONNECT {
            return self.connect(req);
        }
        let (parts, body) = req.into_parts();
        let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
        let url = match &self.serve_as {
            ServeAs::Route(route) => format!("{}{path}", route.url),
            ServeAs::Tunnel(authority) => format!("https://{authority}{path}"),
            ServeAs::Proxy(_) if parts.uri.scheme().is_some() => parts.uri.to_string(),
            ServeAs::Proxy(_) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!(
                        "recplay forward proxy: expected an absolute http:// URL, got {}\n",
                        parts.uri
                    ),
                )
            }
        };
        let body = match body.collect().await {
            Ok(b) => b.to_bytes().to_vec(),
            Err(e) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    format!("recplay: could not read the request body: {e}\n"),
                )
            }
        };
        let call = Call {
            method: parts.method.to_string(),
            url,
            content_type: parts
                .headers
                .get(hyper::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string),
            body,
        };
        let test = self.windows.current();
        let answer = self
            .matcher
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .answer(&call, test.as_deref());
        match answer {
            Ok((name, spec)) => {
                tracing::debug!("{}: answered from {name}", call.describe());
                recorded_response(&spec)
            }
            Err(miss) => {
                tracing::warn!(
                    "outgoing call with no recorded answer: {} (nearest: {})",
                    miss.call,
                    miss.nearest
                );
                let mut resp = text(
                    StatusCode::BAD_GATEWAY,
                    format!(
                        "recplay: no recorded outgoing call matches {}\nnearest recorded: {}\n",
                        miss.call, miss.nearest
                    ),
                );
                if let Ok(v) = hyper::header::HeaderValue::from_str(&miss.call) {
                    resp.headers_mut().insert(MISS_HEADER, v);
                }
                resp
            }
        }
    }
}

impl Shared {
    /// A `CONNECT` to the forward proxy: 200, then the tunnel's calls
    /// answered from the same matcher as `https://host:port/...`.
    fn connect(&self, req: Request<Incoming>) -> Response<ServeBody> {
        let ServeAs::Proxy(Some(ca)) = &self.serve_as else {
            return text(StatusCode::NOT_IMPLEMENTED, CONNECT_REFUSED.to_string());
        };
        let target = match connect_target(&req) {
            Ok(target) => target,
            Err(problem) => return text(StatusCode::BAD_REQUEST, problem),
        };
        let inner = Arc::new(Shared {
            serve_as: ServeAs::Tunnel(target.authority.clone()),
            matcher: self.matcher.clone(),
            windows: self.windows.clone(),
            stop: self.stop.clone(),
        });
        let service = hyper::service::service_fn(move |req| {
            let inner = inner.clone();
            async move { Ok::<_, Infallible>(inner.handle(req).await) }
        });
        match spawn_tunnel(req, &target, ca, service, self.stop.clone()) {
            Ok(()) => text(StatusCode::OK, String::new()),
            Err(e) => text(StatusCode::BAD_GATEWAY, format!("{e}\n")),
        }
    }
}

/// The recorded answer on the wire: its status and headers (framing and
/// `Content-Encoding` left out: the body goes out decoded, and its length
/// or chunking is this transfer's), its body whole or as a stream.
fn recorded_response(spec: &HttpMockSpec) -> Response<ServeBody> {
    let resp = &spec.resp;
    let status = StatusCode::from_u16(resp.status_code).unwrap_or(StatusCode::OK);
    let mut builder = Response::builder().status(status);
    for (name, value) in &resp.header {
        if is_transfer_header(name) || name.eq_ignore_ascii_case("content-encoding") {
            continue;
        }
        match resp.body.header_repeated.get(name) {
            Some(values) => {
                for v in values {
                    builder = builder.header(name.as_str(), v.as_str());
                }
            }
            None => builder = builder.header(name.as_str(), value.as_str()),
        }
    }
    let content_type = header(&resp.header, "content-type").unwrap_or_default();
    let framing = stream_framing(content_type);
    let events: Option<Vec<EventFields>> = match (&resp.body.events, framing) {
        (Some(events), _) => Some(events.iter().map(|e| e.data.clone()).collect()),
        (None, Some(StreamFraming::Sse)) => Some(parse_sse(&resp.body.body)),
        (None, Some(StreamFraming::Lines)) => Some(parse_lines(&resp.body.body)),
        (None, None) => None,
    };
    let body = match events {
        Some(events) => {
            let wrapped: Vec<StreamEvent> = events
                .into_iter()
                .map(|data| StreamEvent { ts: None, data })
                .collect();
            let lines = are_lines(&wrapped);
            let frames: Vec<Result<Frame<Bytes>, Infallible>> = wrapped
                .iter()
                .map(|e| Ok(Frame::data(Bytes::from(event_wire(&e.data, lines)))))
                .collect();
            StreamBody::new(stream::iter(frames)).boxed()
        }
        None => {
            let bytes = stored_bytes(&resp.body).unwrap_or_default();
            Full::new(Bytes::from(bytes)).boxed()
        }
    };
    builder.body(body).unwrap_or_else(|e| {
        text(
            StatusCode::BAD_GATEWAY,
            format!("recplay: the recorded answer cannot be sent: {e}\n"),
        )
    })
}

/// One event as it goes on the wire: a line of a line stream, or an SSE
/// event (`field: value` lines, a `:` comment, a blank line to end it).
fn event_wire(fields: &EventFields, lines: bool) -> String {
    if lines {
        let raw = fields.get(RAW_FIELD).unwrap_or_default();
        return format!("{raw}\n");
    }
    let mut out = String::new();
    for (key, value) in &fields.0 {
        if key.eq_ignore_ascii_case("comment") {
            out.push_str(&format!(":{value}\n"));
        } else {
            for line in value.split('\n') {
                out.push_str(&format!("{}: {line}\n", key.to_lowercase()));
            }
        }
    }
    out.push('\n');
    out
}

fn text(status: StatusCode, body: String) -> Response<ServeBody> {
    let mut resp = Response::new(Full::new(Bytes::from(body)).boxed());
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_events_go_out_as_events() {
        let fields = EventFields(vec![
            ("event".into(), "delta".into()),
            ("data".into(), "a\nb".into()),
        ]);
        assert_eq!(
            event_wire(&fields, false),
            "event: delta\ndata: a\ndata: b\n\n"
        );
        let line = EventFields(vec![(RAW_FIELD.into(), "{\"x\":1}".into())]);
        assert_eq!(event_wire(&line, true), "{\"x\":1}\n");
    }
}
