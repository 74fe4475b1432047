//! Each outgoing call written to mocks.yaml as a Keploy `kind: Http` mock.
//!
//! The exchange is built exactly as a test case is ([`build_test_case`]),
//! so bodies are stored the same way (decoded, base64 when binary, capped);
//! a streamed answer (SSE, NDJSON) is then split into its events. The
//! document goes to the set's mocks.yaml through the same locked append as
//! the PostgreSQL writer's batches, one write per document, so the two
//! never interleave inside a document.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use serde::Serialize;

use crate::http::case::build_test_case;
use crate::http::exchange::{Exchange, ExchangeSink, Hold, RequestHead, SinkFuture};
use crate::http::RecorderCounts;
use crate::testset::http_case::KEPLOY_API_VERSION;
use crate::testset::keploy::http::HttpMockSpec;
use crate::testset::redact::Redactor;
use crate::testset::stream_body::{
    parse_lines, parse_sse, stream_framing, StreamEvent, StreamFraming,
};
use crate::testset::{HttpResponse, TestSetDir};
use crate::window::TestWindows;

/// Metadata key naming the test whose window held the call.
pub const TEST_KEY: &str = "recplay_test";
/// Metadata key naming the route (`--egress` name, or `proxy`).
pub const ROUTE_KEY: &str = "recplay_route";

/// Records the calls of one route. Every route of a recording shares one
/// counter, so mock names (`http-N`) are unique in the set.
pub struct EgressRecorder {
    dir: Arc<TestSetDir>,
    windows: TestWindows,
    route: String,
    next: Arc<AtomicU64>,
    body_cap: u64,
    redactor: Arc<Redactor>,
    recorded: AtomicU64,
    failed: AtomicU64,
}

impl EgressRecorder {
    /// `next` numbers the mocks; give every route of a recording the same.
    /// `redactor` is the test set's, shared with its HTTP recorder, so a
    /// credential the app forwards gets the placeholder it has in tests.
    pub fn new(
        dir: Arc<TestSetDir>,
        windows: TestWindows,
        route: impl Into<String>,
        next: Arc<AtomicU64>,
        body_cap: u64,
        redactor: Arc<Redactor>,
    ) -> Self {
        EgressRecorder {
            dir,
            windows,
            route: route.into(),
            next,
            body_cap,
            redactor,
            recorded: AtomicU64::new(0),
            failed: AtomicU64::new(0),
        }
    }

    /// Mocks written, and calls that were not.
    pub fn counts(&self) -> RecorderCounts {
        RecorderCounts {
            recorded: self.recorded.load(Ordering::Relaxed),
            failed: self.failed.load(Ordering::Relaxed),
        }
    }
}

impl ExchangeSink for EgressRecorder {
    fn request_arrived(&self, _head: &RequestHead) -> String {
        format!("http-{}", self.next.fetch_add(1, Ordering::Relaxed) + 1)
    }

    /// Outgoing calls are few next to database exchanges; one small
    /// append each, on the proxy's task, keeps the order they completed in.
    fn exchange_complete(&self, exchange: Exchange) -> Option<Hold> {
        let test = self.windows.test_at(exchange.request.received_at);
        let name = exchange.name.clone();
        let spec = mock_spec(exchange, test, &self.route, self.body_cap, &self.redactor);
        let written = render_mock(&name, &spec)
            .map_err(|e| e.to_string())
            .and_then(|text| {
                self.dir
                    .append_rendered_mocks(&text)
                    .map_err(|e| e.to_string())
            });
        match written {
            Ok(()) => {
                self.recorded.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                self.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!("outgoing call {name} could not be recorded: {e}");
            }
        }
        // Written before returning: the client's last bytes need not wait.
        None
    }

    fn exchange_failed(&self, name: &str, reason: &str) {
        self.failed.fetch_add(1, Ordering::Relaxed);
        tracing::warn!("outgoing call {name} not recorded: {reason}");
    }

    fn flush(&self) -> SinkFuture<'_> {
        Box::pin(std::future::ready(()))
    }
}

/// The mock of one call: the stored exchange, secrets redacted as in test
/// cases,
/// a streamed answer as its events, labelled with its test and route.
pub fn mock_spec(
    exchange: Exchange,
    test: Option<String>,
    route: &str,
    body_cap: u64,
    redactor: &Redactor,
) -> HttpMockSpec {
    let received = exchange.request.received_at;
    let answered = exchange.completed_at;
    let method = exchange.request.method.to_string();
    let case = build_test_case(exchange, body_cap, redactor);
    let req = case.spec.req;
    let mut resp = case.spec.resp;
    keep_events(&mut resp);
    let mut metadata = BTreeMap::from([
        ("name".to_string(), "Http".to_string()),
        ("operation".to_string(), method),
        ("type".to_string(), "HTTP_CLIENT".to_string()),
        (ROUTE_KEY.to_string(), route.to_string()),
    ]);
    if let Some(test) = test {
        metadata.insert(TEST_KEY.to_string(), test);
    }
    HttpMockSpec {
        metadata,
        req,
        resp,
        created: answered.timestamp(),
        req_timestamp: Some(received),
        res_timestamp: Some(answered),
    }
}

/// A streamed answer kept whole as text becomes its list of events, as
/// Keploy stores one.
fn keep_events(resp: &mut HttpResponse) {
    if resp.body.events.is_some()
        || resp.body.body_encoding.is_some()
        || resp.body.body_truncated.is_some()
        || resp.body.body.is_empty()
    {
        return;
    }
    let content_type = header(&resp.header, "content-type").unwrap_or_default();
    let fields = match stream_framing(content_type) {
        Some(StreamFraming::Sse) => parse_sse(&resp.body.body),
        Some(StreamFraming::Lines) => parse_lines(&resp.body.body),
        None => return,
    };
    resp.body.events = Some(
        fields
            .into_iter()
            .map(|data| StreamEvent { ts: None, data })
            .collect(),
    );
}

/// A header's value by case-insensitive name.
pub fn header<'a>(headers: &'a crate::testset::Headers, name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

/// One mocks.yaml document: `---`, the mock, and the `...` end marker.
pub fn render_mock(name: &str, spec: &HttpMockSpec) -> Result<String, serde_yaml::Error> {
    #[derive(Serialize)]
    struct Document<'a> {
        version: &'a str,
        kind: &'a str,
        name: &'a str,
        spec: &'a HttpMockSpec,
    }
    let body = serde_yaml::to_string(&Document {
        version: KEPLOY_API_VERSION,
        kind: super::HTTP_MOCK_KIND,
        name,
        spec,
    })?;
    Ok(format!("---\n{body}...\n"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::capture::CapturedBody;
    use crate::http::{RequestHead, ResponseHead};
    use crate::testset::keploy::HttpMock;

    fn body(bytes: &[u8]) -> CapturedBody {
        CapturedBody {
            bytes: bytes.to_vec(),
            size: bytes.len() as u64,
            sha256: None,
            complete: true,
        }
    }

    #[test]
    fn a_streamed_call_is_written_as_keploys_http_mock_with_its_events_and_no_secret() {
        let now = chrono::Utc::now();
        let mut req_headers = http::HeaderMap::new();
        req_headers.insert("authorization", "Bearer sk-live".parse().expect("value"));
        req_headers.insert("content-type", "application/json".parse().expect("value"));
        let mut resp_headers = http::HeaderMap::new();
        resp_headers.insert("content-type", "text/event-stream".parse().expect("value"));
        let exchange = Exchange {
            name: "http-1".into(),
            request: RequestHead {
                method: http::Method::POST,
                version: http::Version::HTTP_11,
                url: "https://llm.example/v1/chat".into(),
                path_and_query: "/v1/chat".into(),
                headers: req_headers,
                received_at: now,
                client: "127.0.0.1:1".parse().expect("addr"),
                connection: 1,
            },
            request_body: body(br#"{"stream":true}"#),
            response: ResponseHead {
                status: http::StatusCode::OK,
                version: http::Version::HTTP_11,
                headers: resp_headers,
                received_at: now,
            },
            response_body: body(b"data: {\"d\":\"a\"}\n\ndata: [DONE]\n\n"),
            completed_at: now,
        };
        let spec = mock_spec(
            exchange,
            Some("test-4".into()),
            "llm",
            1 << 20,
            &Redactor::default(),
        );
        let text = render_mock("http-1", &spec).expect("render");
        assert!(!text.contains("sk-live"), "{text}");
        assert!(text.starts_with("---\nversion: api.keploy.io/v1beta1\nkind: Http\nname: http-1\n"));
        assert!(text.ends_with("...\n"));
        let doc: serde_yaml::Value =
            serde_yaml::from_str(text.trim_start_matches("---\n")).expect("yaml");
        let mock = HttpMock::from_document("http-1", doc["spec"].clone()).expect("reads back");
        let events = mock.spec.resp.body.events.expect("events");
        assert_eq!(events.len(), 2);
        assert_eq!(events[1].data.get("data"), Some("[DONE]"));
        assert_eq!(mock.spec.metadata[TEST_KEY], "test-4");
        assert_eq!(mock.spec.metadata[ROUTE_KEY], "llm");
        assert_eq!(
            mock.spec.req.header["Authorization"],
            "Bearer {{recplay.secret.authorization_1}}"
        );
    }
}
