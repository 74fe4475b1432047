//! One recorded HTTP exchange in Keploy's `Http` schema.
//!
//! The field names and nesting follow what Keploy writes
//! (`version/kind/name/spec{metadata,req,resp,objects,assertions,created}/curl`)
//! so a test set recorded by either tool loads in the other. What Keploy's
//! schema cannot say — repeated headers, binary or compressed bodies, bodies
//! cut at the recording cap — lives in extra optional fields that Keploy's
//! reader ignores.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::stream_body::StreamEvent;

/// A message's headers in the order they crossed the wire: apps that echo,
/// sign or hash headers answer by that order, so replay keeps it. Files
/// written by Keploy list them sorted, and replay in that order.
pub type Headers = indexmap::IndexMap<String, String>;

/// The `version:` string Keploy writes on every test case.
pub const KEPLOY_API_VERSION: &str = "api.keploy.io/v1beta1";

/// The `kind:` of the test cases recplay replays. Keploy also writes test
/// cases of other kinds (`gRPC`, `Http2`) in the same folder.
pub const HTTP_KIND: &str = "Http";

/// A whole test-case document (`tests/test-N.yaml`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpTestCase {
    pub version: String,
    pub kind: String,
    pub name: String,
    /// recplay's format version; absent (0) in files written by Keploy.
    /// Written before `spec`, so a file cut short still says which format
    /// it is (and so whether it must close with `...`).
    #[serde(default, skip_serializing_if = "is_zero")]
    pub recplay_format: u32,
    pub spec: HttpSpec,
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub curl: String,
}

/// `spec:` of a test case.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HttpSpec {
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    pub req: HttpRequest,
    pub resp: HttpResponse,
    #[serde(default)]
    pub objects: Vec<serde_yaml::Value>,
    #[serde(default)]
    pub assertions: Assertions,
    /// Unix seconds when the exchange was recorded.
    #[serde(default)]
    pub created: i64,
}

/// `spec.assertions`: Keploy keeps per-test noise here, keyed
/// `header.<Name>` or `body.<path>`, each with a (possibly empty) list of
/// regexes.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct Assertions {
    #[serde(default)]
    pub noise: BTreeMap<String, Vec<String>>,
    /// Any other assertion kinds Keploy may write are kept verbatim.
    #[serde(flatten)]
    pub other: BTreeMap<String, serde_yaml::Value>,
}

/// `spec.req`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HttpRequest {
    pub method: String,
    #[serde(default)]
    pub proto_major: u8,
    #[serde(default)]
    pub proto_minor: u8,
    /// Absolute URL as the client asked for it (scheme and host of the
    /// recording proxy's upstream), query string included.
    pub url: String,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub url_params: BTreeMap<String, String>,
    #[serde(default)]
    pub header: Headers,
    #[serde(default, flatten)]
    pub body: StoredBody,
    #[serde(default = "epoch")]
    pub timestamp: DateTime<Utc>,
}

/// `spec.resp`.
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct HttpResponse {
    pub status_code: u16,
    #[serde(default)]
    pub header: Headers,
    #[serde(default, flatten)]
    pub body: StoredBody,
    #[serde(default)]
    pub status_message: String,
    #[serde(default)]
    pub proto_major: u8,
    #[serde(default)]
    pub proto_minor: u8,
    #[serde(default = "epoch")]
    pub timestamp: DateTime<Utc>,
}

/// A body as stored, plus the facts needed to rebuild the bytes on the wire.
///
/// Flattened into `req`/`resp` so `body:` sits where Keploy expects it.
/// `body:` is text, or (for a streamed answer Keploy recorded) a list of
/// events, kept in `events` with their flat text in `body`.
#[derive(Debug, Clone, PartialEq, Default, Deserialize)]
#[serde(from = "StoredBodyFields")]
pub struct StoredBody {
    pub body: String,
    /// The events of a streamed body stored as a list (see
    /// [`super::stream_body`]); replay compares them one by one. `None`
    /// for a body stored as text.
    pub events: Option<Vec<StreamEvent>>,
    /// `base64` when the bytes were not UTF-8; absent for text.
    pub body_encoding: Option<BodyEncoding>,
    /// The `Content-Encoding` the body had on the wire (`gzip`, `deflate`,
    /// `br`). The stored body is the decoded form.
    pub content_encoding: Option<String>,
    /// Present when the body exceeded the recording cap: `body` then holds
    /// only the first part.
    pub body_truncated: Option<Truncation>,
    /// Exact values of headers that appeared more than once, in order.
    /// `header` holds them joined with `, ` for Keploy's readers.
    pub header_repeated: BTreeMap<String, Vec<String>>,
}

/// [`StoredBody`] as the file spells it.
#[derive(Deserialize)]
struct StoredBodyFields {
    #[serde(default)]
    body: BodyField,
    #[serde(default)]
    body_encoding: Option<BodyEncoding>,
    #[serde(default)]
    content_encoding: Option<String>,
    #[serde(default)]
    body_truncated: Option<Truncation>,
    #[serde(default)]
    header_repeated: BTreeMap<String, Vec<String>>,
}

/// `body:` as text or as a list of events.
#[derive(Deserialize)]
#[serde(untagged)]
enum BodyField {
    Text(String),
    Events(Vec<StreamEvent>),
}

impl Default for BodyField {
    fn default() -> Self {
        BodyField::Text(String::new())
    }
}

impl From<StoredBodyFields> for StoredBody {
    fn from(f: StoredBodyFields) -> Self {
        let (body, events) = match f.body {
            BodyField::Text(text) => (text, None),
            BodyField::Events(events) => (super::stream_body::flat_text(&events), Some(events)),
        };
        StoredBody {
            body,
            events,
            body_encoding: f.body_encoding,
            content_encoding: f.content_encoding,
            body_truncated: f.body_truncated,
            header_repeated: f.header_repeated,
        }
    }
}

/// Written field by field so a body of events goes back as its list, and
/// absent facts are left out.
impl Serialize for StoredBody {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeStruct as _;
        let mut st = serializer.serialize_struct("StoredBody", 5)?;
        match &self.events {
            Some(events) => st.serialize_field("body", events)?,
            None => st.serialize_field("body", &self.body)?,
        }
        match &self.body_encoding {
            Some(e) => st.serialize_field("body_encoding", e)?,
            None => st.skip_field("body_encoding")?,
        }
        match &self.content_encoding {
            Some(e) => st.serialize_field("content_encoding", e)?,
            None => st.skip_field("content_encoding")?,
        }
        match &self.body_truncated {
            Some(t) => st.serialize_field("body_truncated", t)?,
            None => st.skip_field("body_truncated")?,
        }
        if self.header_repeated.is_empty() {
            st.skip_field("header_repeated")?;
        } else {
            st.serialize_field("header_repeated", &self.header_repeated)?;
        }
        st.end()
    }
}

/// How `body` is written in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BodyEncoding {
    Base64,
}

/// What is known of a body that was too large to keep whole.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Truncation {
    /// Full size in bytes, as it crossed the proxy (decoded size when the
    /// body was compressed and decoding succeeded).
    pub size: u64,
    /// Hex sha256 of the full body bytes as they crossed the wire.
    pub sha256: String,
}

fn epoch() -> DateTime<Utc> {
    DateTime::<Utc>::UNIX_EPOCH
}

fn is_zero(v: &u32) -> bool {
    *v == 0
}

impl HttpTestCase {
    /// A new test case in recplay's current format.
    pub fn new(name: impl Into<String>, spec: HttpSpec) -> Self {
        HttpTestCase {
            version: KEPLOY_API_VERSION.to_string(),
            kind: HTTP_KIND.to_string(),
            name: name.into(),
            spec,
            curl: String::new(),
            recplay_format: super::FORMAT_VERSION,
        }
    }
}

/// The `kind:` of a test-case document when it names one other than
/// [`HTTP_KIND`]: such a file is Keploy's test of another protocol, to be
/// skipped, not a damaged Http test. `None` for an Http test, or for text
/// that is not a YAML map with a string `kind`.
pub fn other_kind(text: &str) -> Option<String> {
    #[derive(Deserialize)]
    struct Envelope {
        kind: String,
    }
    let envelope: Envelope = serde_yaml::from_str(text).ok()?;
    (envelope.kind != HTTP_KIND).then_some(envelope.kind)
}
