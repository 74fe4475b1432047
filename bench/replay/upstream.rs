//! Replay benchmark helper.
//!
//! `replay_bench serve PORT` runs a trivial upstream: `GET /items/N`
//! answers a small JSON document (with a fresh `created_at`, as real apps
//! have) on 127.0.0.1:PORT.
//!
//! `replay_bench generate DIR COUNT BASE_URL` writes one test set of COUNT
//! recorded exchanges with that upstream into DIR, through the same model
//! the recorder uses.

use std::convert::Infallible;
use std::path::PathBuf;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::Full;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use recplay_proxy::testset::{HttpRequest, HttpResponse, HttpSpec, HttpTestCase, TestSetDir};

fn item(n: u64, created_at: &str) -> String {
    serde_json::json!({
        "id": n,
        "name": format!("item-{n}"),
        "price": {"amount": n % 100, "currency": "EUR"},
        "tags": ["a", "b"],
        "created_at": created_at,
    })
    .to_string()
}

fn number_in(path: &str) -> u64 {
    path.rsplit('/')
        .next()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

async fn handle(req: Request<hyper::body::Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = item(
        number_in(req.uri().path()),
        &chrono::Utc::now().to_rfc3339(),
    );
    let resp = Response::builder()
        .header("Content-Type", "application/json")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_else(|_| Response::new(Full::new(Bytes::new())));
    Ok(resp)
}

async fn serve(port: u16) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .with_context(|| format!("could not listen on 127.0.0.1:{port}"))?;
    loop {
        let (stream, _) = listener.accept().await?;
        tokio::spawn(async move {
            let _ = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(stream), service_fn(handle))
                .await;
        });
    }
}

fn generate(dir: PathBuf, count: u64, base: &str) -> Result<()> {
    let set = TestSetDir::create_next(&dir)?;
    let host = base.trim_start_matches("http://").to_string();
    let recorded_at = chrono::Utc::now();
    for n in 1..=count {
        let mut req = HttpRequest {
            method: "GET".into(),
            proto_major: 1,
            proto_minor: 1,
            url: format!("{base}/items/{n}"),
            timestamp: recorded_at,
            ..Default::default()
        };
        req.header.insert("Host".into(), host.clone());
        req.header
            .insert("Accept".into(), "application/json".into());
        let mut resp = HttpResponse {
            status_code: 200,
            status_message: "OK".into(),
            proto_major: 1,
            proto_minor: 1,
            timestamp: recorded_at,
            ..Default::default()
        };
        resp.header
            .insert("Content-Type".into(), "application/json".into());
        resp.body.body = item(n, &recorded_at.to_rfc3339());
        let spec = HttpSpec {
            req,
            resp,
            created: recorded_at.timestamp(),
            ..Default::default()
        };
        set.write_test(&HttpTestCase::new(format!("test-{n}"), spec))?;
    }
    println!("{}", set.root().display());
    Ok(())
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["serve", port] => {
            let port: u16 = port.parse().context("PORT must be a number")?;
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(1)
                .enable_all()
                .build()?
                .block_on(serve(port))
        }
        ["generate", dir, count, base] => generate(
            dir.into(),
            count.parse().context("COUNT must be a number")?,
            base,
        ),
        _ => bail!("usage: replay_bench serve PORT | replay_bench generate DIR COUNT BASE_URL"),
    }
}
