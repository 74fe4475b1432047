//! Turning a recorded request back into bytes on the wire, and reading the
//! app's answer.

use std::time::Duration;

use anyhow::{bail, Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use recplay_proxy::testset::http_form::{canonical_header_name, decode_content, replay_request};
use recplay_proxy::testset::HttpRequest;

use super::secrets::Secrets;
use crate::compare::ActualResponse;
use crate::http_client::{new_client, AppClient};

/// How far a compressed answer is expanded for comparison; one that
/// expands further is compared as it was sent.
const DECODE_LIMIT: u64 = 256 << 20;

/// Where the app listens: `http://host:port[/prefix]`.
#[derive(Debug, Clone)]
pub struct Target {
    pub authority: String,
    prefix: String,
}

impl Target {
    pub fn parse(url: &str) -> Result<Self> {
        let uri: http::Uri = url
            .parse()
            .with_context(|| format!("--http-target {url:?} is not a URL; use http://HOST:PORT"))?;
        match uri.scheme_str() {
            Some("http") => {}
            Some(other) => bail!(
                "--http-target {url:?}: only http:// targets can be replayed to (got {other}://)"
            ),
            None => bail!("--http-target {url:?} needs a scheme: http://HOST:PORT"),
        }
        let Some(authority) = uri.authority() else {
            bail!("--http-target {url:?} has no host; use http://HOST:PORT");
        };
        let authority = if authority.port().is_some() {
            authority.to_string()
        } else {
            format!("{}:80", authority.host())
        };
        Ok(Target {
            authority,
            prefix: uri.path().trim_end_matches('/').to_string(),
        })
    }

    pub fn base_url(&self) -> String {
        format!("http://{}{}", self.authority, self.prefix)
    }
}

/// Sends recorded requests to the app over one pooled keep-alive client.
pub struct Replayer {
    client: AppClient,
    target: Target,
    timeout: Duration,
    secrets: Secrets,
}

impl Replayer {
    pub fn new(target: Target, timeout: Duration, secrets: Secrets) -> Self {
        Replayer {
            client: new_client(),
            target,
            timeout,
            secrets,
        }
    }

    /// Sends `req`, its secret placeholders filled, and reads the whole
    /// response within the API timeout.
    pub async fn send(&self, recorded: &HttpRequest) -> Result<ActualResponse> {
        let recorded = self.secrets.fill_request(recorded)?;
        let request = build_request(&self.target, &recorded)?;
        let exchange = async {
            let response =
                self.client.request(request).await.with_context(|| {
                    format!("the app at {} did not answer", self.target.authority)
                })?;
            let (parts, body) = response.into_parts();
            let wire = body
                .collect()
                .await
                .context("the app's response body broke off")?
                .to_bytes();
            anyhow::Ok((parts, wire))
        };
        let (parts, wire) = tokio::time::timeout(self.timeout, exchange)
            .await
            .with_context(|| {
                format!(
                    "no complete response within {}s (raise --api-timeout if the app is slow)",
                    self.timeout.as_secs()
                )
            })??;
        let headers: Vec<(String, String)> = parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    canonical_header_name(n.as_str()),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect();
        let mut actual = ActualResponse {
            status: parts.status.as_u16(),
            status_message: parts
                .status
                .canonical_reason()
                .unwrap_or_default()
                .to_string(),
            headers,
            wire_body: wire.to_vec(),
            body: Vec::new(),
        };
        actual.body = match actual.header("content-encoding") {
            Some(enc) => {
                decode_content(&enc, &actual.wire_body, DECODE_LIMIT).unwrap_or_else(|e| {
                    tracing::debug!("keeping the body as sent: {e}");
                    actual.wire_body.clone()
                })
            }
            None => actual.wire_body.clone(),
        };
        Ok(actual)
    }
}

/// The recorded request aimed at `target`: same method, path, query,
/// headers in their recorded order (Host the target's), framing and body
/// bytes, as [`replay_request`] lays them out.
pub fn build_request(
    target: &Target,
    recorded: &HttpRequest,
) -> Result<http::Request<Full<Bytes>>> {
    let method = http::Method::from_bytes(recorded.method.trim().as_bytes())
        .with_context(|| format!("the recorded method {:?} is not valid", recorded.method))?;
    let path = path_and_query(recorded);
    let uri = format!("http://{}{}{}", target.authority, target.prefix, path);
    let wire = replay_request(recorded, &target.authority)
        .with_context(|| format!("the recorded request for {uri} cannot be sent"))?;
    let mut builder = http::Request::builder().method(method).uri(&uri);
    for (name, value) in &wire.headers {
        builder = builder.header(name.as_str(), value.as_str());
    }
    builder
        .body(Full::new(Bytes::from(wire.body)))
        .with_context(|| format!("the recorded request for {uri} has an invalid header"))
}

/// Path and query of the recorded URL, which may be absolute or a bare
/// path; Keploy sometimes keeps the query only in `url_params`.
pub fn path_and_query(recorded: &HttpRequest) -> String {
    let url = recorded.url.trim();
    let mut path = match url.find("://") {
        Some(i) => {
            let rest = &url[i + 3..];
            match rest.find(['/', '?']) {
                Some(j) => rest[j..].to_string(),
                None => "/".to_string(),
            }
        }
        None => url.to_string(),
    };
    if path.starts_with('?') {
        path.insert(0, '/');
    }
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    if let Some(hash) = path.find('#') {
        path.truncate(hash);
    }
    if !path.contains('?') && !recorded.url_params.is_empty() {
        let query: Vec<String> = recorded
            .url_params
            .iter()
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect();
        path.push('?');
        path.push_str(&query.join("&"));
    }
    path
}

fn percent_encode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn req(url: &str) -> HttpRequest {
        HttpRequest {
            method: "GET".into(),
            url: url.into(),
            ..Default::default()
        }
    }

    #[test]
    fn the_path_and_query_come_from_absolute_and_bare_urls() {
        assert_eq!(path_and_query(&req("http://h:1/a/b?x=1")), "/a/b?x=1");
        assert_eq!(path_and_query(&req("http://h:1")), "/");
        assert_eq!(path_and_query(&req("http://h:1?q=2")), "/?q=2");
        assert_eq!(path_and_query(&req("/only/path")), "/only/path");
        let mut r = req("http://h/search");
        r.url_params.insert("q".into(), "a b".into());
        assert_eq!(path_and_query(&r), "/search?q=a%20b");
    }

    #[test]
    fn host_is_the_targets_and_hop_by_hop_headers_are_not_replayed() {
        let mut r = req("http://recorded:9/x");
        r.header.insert("Host".into(), "recorded:9".into());
        r.header.insert("Connection".into(), "keep-alive".into());
        r.header.insert("Accept".into(), "a, b".into());
        r.body
            .header_repeated
            .insert("Accept".into(), vec!["a".into(), "b".into()]);
        let target = Target::parse("http://127.0.0.1:8080").expect("target");
        let built = build_request(&target, &r).expect("request");
        assert_eq!(built.uri(), "http://127.0.0.1:8080/x");
        let names: Vec<_> = built.headers().keys().map(|n| n.as_str()).collect();
        assert_eq!(names, ["host", "accept"]);
        assert_eq!(built.headers()["host"], "127.0.0.1:8080");
        assert!(built.headers().get("connection").is_none());
        let accepts: Vec<_> = built.headers().get_all("accept").iter().collect();
        assert_eq!(accepts, ["a", "b"]);
    }

    #[test]
    fn a_compressed_request_body_is_compressed_again() {
        let mut r = req("http://h/upload");
        r.method = "POST".into();
        r.header.insert("Content-Encoding".into(), "gzip".into());
        r.body.body = "{\"a\":1}".into();
        r.body.content_encoding = Some("gzip".into());
        let target = Target::parse("http://127.0.0.1:1").expect("target");
        let built = build_request(&target, &r).expect("request");
        let sent = futures_util::FutureExt::now_or_never(built.into_body().collect())
            .expect("ready")
            .expect("body")
            .to_bytes();
        let plain = decode_content("gzip", &sent, 1024).expect("gzip");
        assert_eq!(plain, b"{\"a\":1}");
    }

    #[test]
    fn targets_must_be_http_urls() {
        assert!(Target::parse("https://x:1").is_err());
        assert!(Target::parse("nonsense").is_err());
        assert_eq!(
            Target::parse("http://localhost").expect("ok").authority,
            "localhost:80"
        );
    }
}
