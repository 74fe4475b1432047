//! The recording forward proxy: the app's `HTTP_PROXY`.
//!
//! A client sends it absolute-form requests (`GET http://host/path`). Each
//! distinct `host:port` gets a recording reverse proxy of its own
//! ([`crate::http::HttpProxy`], bound on a free local port, lazily), and the
//! request is passed to it: the call is recorded by the same code as a
//! named route's, streamed answers stream through, and the mock's URL is
//! the one the app asked for. `CONNECT` (HTTPS through the proxy) is
//! opened when a CA is given ([`ForwardRecorder::with_connect_tls`]): the
//! requests inside the tunnel go the same way, to a recording proxy whose
//! upstream is `https://host:port`; without one it answers 501. An app
//! that speaks HTTP/2 in the tunnel is recorded the same way: its calls
//! go on to the recording proxy, and the service, as HTTP/1.1.

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::atomic::AtomicU64;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{HeaderValue, HOST};
use hyper::{Method, Request, Response, StatusCode, Version};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::net::TcpListener;
use tokio::sync::{watch, Mutex};
use tokio::task::JoinSet;

use rustls::ClientConfig;

use crate::http::{HttpProxy, HttpProxyConfig, HttpProxyError, RecorderCounts, Upstream};
use crate::testset::redact::Redactor;
use crate::testset::TestSetDir;
use crate::window::TestWindows;

use super::ca::ProjectCa;
use super::listener::{serve_until, Handler};
use super::record::EgressRecorder;
use super::tunnel::{connect_target, spawn_tunnel};
use super::PROXY_ROUTE;

type ProxyResponse = Response<BoxBody<Bytes, hyper::Error>>;

/// What 501 says to a `CONNECT`.
pub const CONNECT_REFUSED: &str = "recplay: HTTPS through this forward proxy (CONNECT) is not set up; give the service a named route instead (--egress NAME=https://host) and point the app at RECPLAY_EGRESS_<NAME>_URL\n";

/// What `CONNECT` needs: the CA that signs the app-facing certificates,
/// and the trust towards the real services.
#[derive(Clone)]
pub struct ConnectTls {
    pub ca: Arc<ProjectCa>,
    pub upstream: Arc<ClientConfig>,
}

/// A bound, not yet running forward proxy.
pub struct ForwardRecorder {
    listener: TcpListener,
    shared: Shared,
    /// Given when the listener stops: open tunnels close then.
    stop_tx: watch::Sender<bool>,
}

struct Shared {
    dir: Arc<TestSetDir>,
    windows: TestWindows,
    next: Arc<AtomicU64>,
    body_cap: u64,
    redactor: Arc<Redactor>,
    grace: Duration,
    stop: watch::Receiver<bool>,
    /// `host:port` → the local address of its recording proxy.
    targets: Mutex<HashMap<String, SocketAddr>>,
    recorders: std::sync::Mutex<Vec<Arc<EgressRecorder>>>,
    proxies: Mutex<JoinSet<()>>,
    client: Client<HttpConnector, Incoming>,
    connect: Option<ConnectTls>,
}

impl ForwardRecorder {
    /// Binds `addr` (port 0 for a free one).
    pub async fn bind(
        addr: SocketAddr,
        dir: Arc<TestSetDir>,
        windows: TestWindows,
        next: Arc<AtomicU64>,
        body_cap: u64,
        redactor: Arc<Redactor>,
        grace: Duration,
    ) -> Result<Self, HttpProxyError> {
        let listener = TcpListener::bind(addr)
            .await
            .map_err(|source| HttpProxyError::Bind { addr, source })?;
        let (stop_tx, stop) = watch::channel(false);
        Ok(ForwardRecorder {
            listener,
            shared: Shared {
                dir,
                windows,
                next,
                body_cap,
                redactor,
                grace,
                stop,
                targets: Mutex::new(HashMap::new()),
                recorders: std::sync::Mutex::new(Vec::new()),
                proxies: Mutex::new(JoinSet::new()),
                client: Client::builder(TokioExecutor::new()).build_http(),
                connect: None,
            },
            stop_tx,
        })
    }

    /// Opens `CONNECT` tunnels, ending their TLS with `tls.ca`'s
    /// certificates and reaching the services with `tls.upstream`.
    pub fn with_connect_tls(mut self, tls: ConnectTls) -> Self {
        self.shared.connect = Some(tls);
        self
    }

    /// The address actually bound.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown`, then lets the per-target proxies drain
    /// (each for the grace period) and returns what was recorded.
    pub async fn run(self, shutdown: impl Future<Output = ()>) -> RecorderCounts {
        let ForwardRecorder {
            listener,
            shared,
            stop_tx,
        } = self;
        let shared = Arc::new(shared);
        serve_until(listener, shared.clone(), stop_tx, shared.grace, shutdown).await;
        let mut proxies = std::mem::take(&mut *shared.proxies.lock().await);
        while proxies.join_next().await.is_some() {}
        let recorders = shared.recorders.lock().unwrap_or_else(|p| p.into_inner());
        recorders.iter().fold(RecorderCounts::default(), |sum, r| {
            let c = r.counts();
            RecorderCounts {
                recorded: sum.recorded + c.recorded,
                failed: sum.failed + c.failed,
            }
        })
    }
}

impl Handler for Shared {
    type Body = BoxBody<Bytes, hyper::Error>;

    fn handle(self: Arc<Self>, req: Request<Incoming>) -> impl Future<Output = ProxyResponse> {
        self.answer(req)
    }
}

impl Shared {
    async fn answer(self: Arc<Self>, req: Request<Incoming>) -> ProxyResponse {
        if req.method() == Method::CONNECT {
            return self.connect(req);
        }
        let uri = req.uri().clone();
        let (Some("http"), Some(authority)) = (uri.scheme_str(), uri.authority()) else {
            return text(
                StatusCode::BAD_REQUEST,
                format!("recplay forward proxy: expected an absolute http:// URL, got {uri}\n"),
            );
        };
        let authority = authority.as_str().to_string();
        self.forward("http", &authority, req).await
    }

    /// A `CONNECT`: 200, then the tunnel's requests recorded as calls to
    /// `https://host:port`.
    fn connect(self: Arc<Self>, req: Request<Incoming>) -> ProxyResponse {
        let Some(tls) = &self.connect else {
            return text(StatusCode::NOT_IMPLEMENTED, CONNECT_REFUSED.to_string());
        };
        let target = match connect_target(&req) {
            Ok(target) => target,
            Err(problem) => return text(StatusCode::BAD_REQUEST, problem),
        };
        let authority = target.authority.clone();
        let shared = self.clone();
        let service = hyper::service::service_fn(move |inner| {
            let shared = shared.clone();
            let authority = authority.clone();
            async move { Ok::<_, Infallible>(shared.forward("https", &authority, inner).await) }
        });
        match spawn_tunnel(req, &target, &tls.ca, service, self.stop.clone()) {
            Ok(()) => text(StatusCode::OK, String::new()),
            Err(e) => text(StatusCode::BAD_GATEWAY, format!("{e}\n")),
        }
    }

    /// Passes `req` (its path and query) to the recording proxy of
    /// `scheme://authority`.
    async fn forward(
        &self,
        scheme: &str,
        authority: &str,
        mut req: Request<Incoming>,
    ) -> ProxyResponse {
        let uri = req.uri().clone();
        let local = match self.proxy_for(scheme, authority).await {
            Ok(local) => local,
            Err(e) => return text(StatusCode::BAD_GATEWAY, format!("recplay: {e}\n")),
        };
        let path = uri.path_and_query().map_or("/", |p| p.as_str());
        let Ok(local_uri) = format!("http://{local}{path}").parse() else {
            return text(
                StatusCode::BAD_REQUEST,
                format!("recplay: bad request target {uri}\n"),
            );
        };
        *req.uri_mut() = local_uri;
        // An HTTP/2 call (inside a tunnel) goes on as HTTP/1.1, naming its
        // host in `Host` as HTTP/2 does in `:authority`: the recording
        // proxy and the service see what an HTTP/1.1 client would send.
        if req.version() == Version::HTTP_2 {
            *req.version_mut() = Version::HTTP_11;
        }
        if !req.headers().contains_key(HOST) {
            let host = uri.authority().map_or(authority, |a| a.as_str());
            if let Ok(host) = HeaderValue::from_str(host) {
                req.headers_mut().insert(HOST, host);
            }
        }
        req.headers_mut().remove("proxy-connection");
        req.headers_mut().remove(hyper::header::PROXY_AUTHORIZATION);
        match self.client.request(req).await {
            Ok(resp) => resp.map(|b| b.boxed()),
            Err(e) => text(
                StatusCode::BAD_GATEWAY,
                format!("recplay: could not reach {authority}: {e}\n"),
            ),
        }
    }

    /// The local recording proxy for `scheme://authority`, started on
    /// first use.
    async fn proxy_for(&self, scheme: &str, authority: &str) -> Result<SocketAddr, HttpProxyError> {
        let base = format!("{scheme}://{authority}");
        let mut targets = self.targets.lock().await;
        if let Some(addr) = targets.get(&base) {
            return Ok(*addr);
        }
        let upstream = Upstream::parse(&base)?;
        let mut config = HttpProxyConfig::new(upstream);
        config.body_cap = self.body_cap;
        if scheme == "https" {
            config.upstream_tls = self.connect.as_ref().map(|tls| tls.upstream.clone());
        }
        let recorder = Arc::new(EgressRecorder::new(
            self.dir.clone(),
            self.windows.clone(),
            PROXY_ROUTE,
            self.next.clone(),
            self.body_cap,
            self.redactor.clone(),
        ));
        let proxy = HttpProxy::bind(
            SocketAddr::from(([127, 0, 0, 1], 0)),
            config,
            recorder.clone(),
        )
        .await?;
        let addr = proxy.local_addr()?;
        let mut stop = self.stop.clone();
        let grace = self.grace;
        self.proxies.lock().await.spawn(async move {
            proxy
                .run(
                    async move {
                        let _ = stop.wait_for(|s| *s).await;
                    },
                    grace,
                )
                .await;
        });
        self.recorders
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(recorder);
        targets.insert(base, addr);
        Ok(addr)
    }
}

fn text(status: StatusCode, body: String) -> ProxyResponse {
    let mut resp = Response::new(
        Full::new(Bytes::from(body))
            .map_err(|never| match never {})
            .boxed(),
    );
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}
