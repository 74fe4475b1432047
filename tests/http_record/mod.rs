//! Recording HTTP through the proxy: a real hyper upstream, real clients,
//! the proxy in-process for feature tests and the real `recplay` binary for
//! end-to-end, memory and signal tests.

mod app_lifecycle;
mod bad_input;
mod concurrency;
mod crash;
mod features;
mod fixture;
mod lifecycle;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{HeaderMap, Method, Request, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;
use recplay_proxy::http::{HttpProxy, HttpProxyConfig, TestSetRecorder, Upstream};
use recplay_proxy::testset::redact::Redactor;
use recplay_proxy::testset::{HttpTestCase, LoadedTestSet, TestSetDir};
use recplay_proxy::window::TestWindows;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::oneshot;

/// The proxy running in this process, recording into a temp test set.
pub struct Proxied {
    pub addr: SocketAddr,
    pub windows: TestWindows,
    _keploy: tempfile::TempDir,
    set: Arc<TestSetDir>,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<recplay_proxy::http::DrainReport>,
}

impl Proxied {
    pub async fn start(upstream_url: &str) -> Self {
        let upstream = Upstream::parse(upstream_url).expect("upstream URL");
        Self::start_with(HttpProxyConfig::new(upstream)).await
    }

    pub async fn start_with(config: HttpProxyConfig) -> Self {
        let keploy = tempfile::tempdir().expect("tempdir");
        let set = Arc::new(TestSetDir::create_next(keploy.path()).expect("test set"));
        let windows = TestWindows::new();
        let recorder = Arc::new(
            TestSetRecorder::new(
                set.clone(),
                windows.clone(),
                config.body_cap,
                Arc::new(Redactor::default()),
            )
            .expect("start the recorder's journal"),
        );
        let proxy = HttpProxy::bind("127.0.0.1:0".parse().expect("addr"), config, recorder)
            .await
            .expect("bind proxy");
        let addr = proxy.local_addr().expect("local addr");
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(proxy.run(
            async move {
                let _ = stopped.await;
            },
            Duration::from_secs(5),
        ));
        Proxied {
            addr,
            windows,
            _keploy: keploy,
            set,
            stop: Some(stop),
            task,
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// Stops the proxy, waits for every recording, loads the test set.
    pub async fn finish(mut self) -> LoadedTestSet {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        (&mut self.task).await.expect("proxy task");
        let loaded = self.set.load().expect("load test set");
        assert!(
            loaded.problems.is_empty(),
            "problems: {:?}",
            loaded.problems
        );
        loaded
    }
}

/// What a client got back.
pub struct Got {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Got {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).expect("JSON response")
    }
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

pub type TestClient = Client<HttpConnector, Full<Bytes>>;

pub fn client() -> TestClient {
    Client::builder(TokioExecutor::new()).build(HttpConnector::new())
}

pub async fn send(
    client: &TestClient,
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Got {
    let mut req = Request::builder().method(method).uri(url);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    let req = req
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("request");
    let resp = client.request(req).await.expect("response");
    let (parts, body) = resp.into_parts();
    let body = body.collect().await.expect("body").to_bytes();
    Got {
        status: parts.status,
        headers: parts.headers,
        body,
    }
}

pub async fn get(client: &TestClient, url: &str) -> Got {
    send(client, Method::GET, url, &[], "").await
}

/// Writes raw bytes and reads until the server closes the connection.
pub async fn raw(addr: SocketAddr, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    stream.write_all(request).await.expect("write");
    let mut out = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut out))
        .await
        .expect("server closed in time")
        .expect("read");
    String::from_utf8_lossy(&out).into_owned()
}

/// The one test whose URL ends with `suffix`.
pub fn by_url<'a>(set: &'a LoadedTestSet, suffix: &str) -> &'a HttpTestCase {
    let found: Vec<_> = set
        .tests
        .iter()
        .filter(|t| t.spec.req.url.ends_with(suffix))
        .collect();
    assert_eq!(
        found.len(),
        1,
        "expected one test for {suffix}, got {}",
        found.len()
    );
    found[0]
}
