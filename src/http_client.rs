//! A plain HTTP/1.1 client for talking to the app (readiness checks, replay).

use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::TokioExecutor;

/// A pooled keep-alive client.
pub type AppClient = Client<HttpConnector, Full<Bytes>>;

pub fn new_client() -> AppClient {
    let mut connector = HttpConnector::new();
    connector.set_nodelay(true);
    Client::builder(TokioExecutor::new()).build(connector)
}

/// GET `url` and return the status code, within `timeout`.
pub async fn get_status(url: &str, timeout: Duration) -> Result<u16> {
    let client = new_client();
    let req = http::Request::get(url)
        .body(Full::new(Bytes::new()))
        .with_context(|| format!("invalid URL {url}"))?;
    let resp = tokio::time::timeout(timeout, client.request(req))
        .await
        .with_context(|| format!("{url} did not answer within {timeout:?}"))??;
    let status = resp.status().as_u16();
    let _ = resp.into_body().collect().await;
    Ok(status)
}
