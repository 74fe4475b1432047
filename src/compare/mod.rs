//! Deciding whether an actual response still matches the recording.
//!
//! - `noise`: what may vary (keploy.yml and each test's assertions).
//! - `json`: structural JSON diff with paths.
//! - `events`: a streamed body (recorded as events, or as text of a
//!   streaming media type), event by event.
//!
//! Compared: the status code; every header present in the recording
//! (hop-by-hop headers are forgiven when the bodies match, since they
//! describe the transfer, not the content, and Content-Length and
//! Transfer-Encoding always: they follow the body, whose own difference
//! is what a reader needs to see); the body as
//! JSON when both sides parse, otherwise as text or bytes, always after
//! undoing any Content-Encoding.

pub mod events;
pub mod json;
pub mod noise;
mod secret;

use recplay_proxy::testset::http_form::{is_framing_header, is_transfer_header, stored_bytes};
use recplay_proxy::testset::stream_body::{stream_framing, StreamFraming};
use recplay_proxy::testset::HttpResponse;
use sha2::{Digest, Sha256};

use noise::NoiseRules;
use secret::secret_shape_matches;

/// A response as the app sent it during replay.
#[derive(Debug, Clone, Default)]
pub struct ActualResponse {
    pub status: u16,
    pub status_message: String,
    /// In arrival order, names as received.
    pub headers: Vec<(String, String)>,
    /// Bytes as they came over the wire (possibly compressed).
    pub wire_body: Vec<u8>,
    /// `wire_body` with Content-Encoding undone (same bytes when there was
    /// none or it could not be undone).
    pub body: Vec<u8>,
}

impl ActualResponse {
    /// All values of a header (case-insensitive), joined with `, ` as the
    /// recording joins repeated headers.
    pub fn header(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        (!values.is_empty()).then(|| values.join(", "))
    }
}

/// How a body was compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    Text,
    Binary,
}

impl BodyKind {
    /// The names Keploy's reports use.
    pub fn keploy_name(self) -> &'static str {
        match self {
            BodyKind::Json => "JSON",
            BodyKind::Text => "PLAIN",
            BodyKind::Binary => "BINARY",
        }
    }
}

/// One thing that differs and is not noise.
#[derive(Debug, Clone, PartialEq)]
pub enum Difference {
    Status {
        expected: u16,
        actual: u16,
    },
    Header {
        name: String,
        expected: Option<String>,
        actual: Option<String>,
    },
    /// `path` is `items[2].id` for JSON, `(body)` for a whole text or
    /// binary body. Values are JSON text for JSON bodies.
    Body {
        path: String,
        expected: Option<String>,
        actual: Option<String>,
    },
}

/// The verdict for one test.
#[derive(Debug, Clone)]
pub struct Comparison {
    pub body_kind: BodyKind,
    pub differences: Vec<Difference>,
}

impl Comparison {
    pub fn passed(&self) -> bool {
        self.differences.is_empty()
    }
}

/// Compares `actual` against the recorded `expected` under `noise`.
pub fn compare(expected: &HttpResponse, actual: &ActualResponse, noise: &NoiseRules) -> Comparison {
    let mut differences = Vec::new();
    if expected.status_code != actual.status {
        differences.push(Difference::Status {
            expected: expected.status_code,
            actual: actual.status,
        });
    }
    let (body_kind, body_diffs) = compare_bodies(expected, actual, noise);
    let bodies_match = body_diffs.is_empty();
    for (name, recorded) in &expected.header {
        if is_framing_header(name) || (bodies_match && is_transfer_header(name)) {
            continue;
        }
        let expected_value = expected
            .body
            .header_repeated
            .get(name)
            .map(|vs| vs.join(", "))
            .unwrap_or_else(|| recorded.clone());
        let actual_value = actual.header(name);
        if actual_value.as_deref() == Some(expected_value.as_str())
            || actual_value
                .as_deref()
                .is_some_and(|a| secret_shape_matches(&expected_value, a))
        {
            continue;
        }
        if noise
            .header(name)
            .is_some_and(|rule| rule.ignores(actual_value.as_deref()))
        {
            continue;
        }
        differences.push(Difference::Header {
            name: name.clone(),
            expected: Some(expected_value),
            actual: actual_value,
        });
    }
    differences.extend(body_diffs);
    Comparison {
        body_kind,
        differences,
    }
}

fn compare_bodies(
    expected: &HttpResponse,
    actual: &ActualResponse,
    noise: &NoiseRules,
) -> (BodyKind, Vec<Difference>) {
    let whole =
        |actual_text: Option<&str>| noise.body_rules(&[]).any(|rule| rule.ignores(actual_text));
    if let Some(cut) = &expected.body.body_truncated {
        // Only the size and digest of a body past the recording cap are known.
        let digest = hex_sha256(&actual.wire_body);
        if digest == cut.sha256 || whole(None) {
            return (BodyKind::Binary, Vec::new());
        }
        return (
            BodyKind::Binary,
            vec![Difference::Body {
                path: "(body)".to_string(),
                expected: Some(format!("{} bytes, sha256 {}", cut.size, cut.sha256)),
                actual: Some(format!("{} bytes, sha256 {digest}", actual.body.len())),
            }],
        );
    }
    if let Some(recorded) = &expected.body.events {
        if whole(std::str::from_utf8(&actual.body).ok()) {
            return (BodyKind::Text, Vec::new());
        }
        return events::compare(recorded, &actual.body, noise);
    }
    if let Some(framing) = recorded_stream(expected) {
        if whole(std::str::from_utf8(&actual.body).ok()) {
            return (BodyKind::Text, Vec::new());
        }
        return events::compare_text(&expected.body.body, framing, &actual.body, noise);
    }
    let expected_bytes = match stored_bytes(&expected.body) {
        Ok(b) => b,
        Err(e) => {
            return (
                BodyKind::Binary,
                vec![Difference::Body {
                    path: "(body)".to_string(),
                    expected: Some(format!("unreadable recorded body: {e:#}")),
                    actual: Some(format!("{} bytes", actual.body.len())),
                }],
            )
        }
    };
    if let (Ok(e), Ok(a)) = (
        serde_json::from_slice::<serde_json::Value>(&expected_bytes),
        serde_json::from_slice::<serde_json::Value>(&actual.body),
    ) {
        let diffs = json::diff(&e, &a, noise)
            .into_iter()
            .map(|d| Difference::Body {
                path: json::display_path(&d.path),
                expected: d.expected.map(|v| v.to_string()),
                actual: d.actual.map(|v| v.to_string()),
            })
            .collect();
        return (BodyKind::Json, diffs);
    }
    match (
        std::str::from_utf8(&expected_bytes),
        std::str::from_utf8(&actual.body),
    ) {
        (Ok(e), Ok(a)) => {
            if e == a || secret_shape_matches(e, a) || whole(Some(a)) {
                (BodyKind::Text, Vec::new())
            } else {
                (
                    BodyKind::Text,
                    vec![Difference::Body {
                        path: "(body)".to_string(),
                        expected: Some(e.to_string()),
                        actual: Some(a.to_string()),
                    }],
                )
            }
        }
        _ => {
            if expected_bytes == actual.body || whole(None) {
                (BodyKind::Binary, Vec::new())
            } else {
                (
                    BodyKind::Binary,
                    vec![Difference::Body {
                        path: "(body)".to_string(),
                        expected: Some(describe_bytes(&expected_bytes)),
                        actual: Some(describe_bytes(&actual.body)),
                    }],
                )
            }
        }
    }
}

/// The framing of a recorded text body whose media type streams records
/// (NDJSON, JSON lines, SSE): such a body is compared record by record.
fn recorded_stream(expected: &HttpResponse) -> Option<StreamFraming> {
    if expected.body.body_encoding.is_some() {
        return None;
    }
    let (_, content_type) = expected
        .header
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("content-type"))?;
    stream_framing(content_type)
}

fn describe_bytes(b: &[u8]) -> String {
    format!("{} bytes, sha256 {}", b.len(), hex_sha256(b))
}

fn hex_sha256(b: &[u8]) -> String {
    Sha256::digest(b)
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::noise::{BodySelector, ValueRule};
    use super::*;

    fn recorded(status: u16, headers: &[(&str, &str)], body: &str) -> HttpResponse {
        let mut r = HttpResponse {
            status_code: status,
            ..Default::default()
        };
        for (k, v) in headers {
            r.header.insert(k.to_string(), v.to_string());
        }
        r.body.body = body.to_string();
        r
    }

    fn actual(status: u16, headers: &[(&str, &str)], body: &str) -> ActualResponse {
        ActualResponse {
            status,
            headers: headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            wire_body: body.as_bytes().to_vec(),
            body: body.as_bytes().to_vec(),
            ..Default::default()
        }
    }

    #[test]
    fn transfer_headers_are_forgiven_when_bodies_match_framing_ones_always() {
        let e = recorded(
            200,
            &[
                ("Content-Length", "7"),
                ("Transfer-Encoding", "chunked"),
                ("Connection", "keep-alive"),
            ],
            "{\"a\":1}",
        );
        let same = actual(200, &[("content-length", "8")], "{\"a\": 1}");
        assert!(compare(&e, &same, &NoiseRules::default()).passed());
        // The body differs: its length and framing follow from that and are
        // not reported again; a hop-by-hop header that changed is.
        let other = actual(200, &[("content-length", "9")], "{\"a\":22}");
        let c = compare(&e, &other, &NoiseRules::default());
        let names: Vec<_> = c
            .differences
            .iter()
            .filter_map(|d| match d {
                Difference::Header { name, .. } => Some(name.as_str()),
                _ => None,
            })
            .collect();
        assert_eq!(names, ["Connection"]);
        assert!(c
            .differences
            .iter()
            .any(|d| matches!(d, Difference::Body { path, .. } if path == "a")));
    }

    #[test]
    fn header_noise_with_a_regex_excuses_only_matching_values() {
        let e = recorded(200, &[("X-Version", "1.0")], "");
        let mut noise = NoiseRules::default();
        noise.headers.insert(
            "x-version".into(),
            ValueRule::Matching(vec![regex::Regex::new(r"^1\.\d+$").expect("re")]),
        );
        assert!(compare(&e, &actual(200, &[("x-version", "1.7")], ""), &noise).passed());
        assert!(!compare(&e, &actual(200, &[("x-version", "2.0")], ""), &noise).passed());
        assert!(!compare(&e, &actual(200, &[], ""), &noise).passed());
    }

    #[test]
    fn text_bodies_compare_whole_and_whole_body_noise_excuses_them() {
        let e = recorded(200, &[], "hello\nworld\n");
        let a = actual(200, &[], "hello\nthere\n");
        let c = compare(&e, &a, &NoiseRules::default());
        assert_eq!(c.body_kind, BodyKind::Text);
        assert!(!c.passed());
        let mut noise = NoiseRules::default();
        noise.body.push((BodySelector::Whole, ValueRule::Any));
        assert!(compare(&e, &a, &noise).passed());
    }

    #[test]
    fn status_changes_fail() {
        let c = compare(
            &recorded(200, &[], ""),
            &actual(500, &[], ""),
            &NoiseRules::default(),
        );
        assert_eq!(
            c.differences,
            [Difference::Status {
                expected: 200,
                actual: 500
            }]
        );
    }

    #[test]
    fn a_streamed_json_body_recorded_as_text_is_compared_record_by_record() {
        let e = recorded(
            200,
            &[("Content-Type", "application/x-ndjson")],
            "{\"a\":1,\"b\":2}\n{\"a\":3}\n",
        );
        let ndjson = [("content-type", "application/x-ndjson")];
        let same = actual(200, &ndjson, "{\"b\":2,\"a\":1}\n{\"a\":3}\n");
        let c = compare(&e, &same, &NoiseRules::default());
        assert!(c.passed(), "{:?}", c.differences);
        assert_eq!(c.body_kind, BodyKind::Json);
        let other = actual(200, &ndjson, "{\"b\":2,\"a\":1}\n{\"a\":4}\n");
        let c = compare(&e, &other, &NoiseRules::default());
        assert!(
            matches!(&c.differences[..], [Difference::Body { path, .. }] if path == "events[1].raw.a"),
            "{:?}",
            c.differences
        );
    }
}
