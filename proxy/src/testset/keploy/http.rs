//! Keploy's `Http` mocks: outgoing HTTP calls the app made while a test ran
//! (its `HTTPSchema`). recplay reads the ones Keploy wrote and writes its
//! own in the same layout (see [`crate::egress`]), so either tool serves
//! the other's.
//!
//! `spec.req` and `spec.resp` are the very shapes of a test case's request
//! and response (Keploy uses one `HTTPReq`/`HTTPResp` for both), so bodies
//! are stored, and streamed answers kept as events, as test cases keep them.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::testset::http_case::{HttpRequest, HttpResponse};

/// One `kind: Http` document of mocks.yaml.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct HttpMock {
    /// The document's `name` (`mock-N` from Keploy, `http-N` from recplay).
    #[serde(default)]
    pub name: String,
    pub spec: HttpMockSpec,
}

/// `spec:` of an Http mock.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HttpMockSpec {
    /// Keploy's free-form labels (`name`, `operation`, `type`); recplay
    /// adds `recplay_test` (the test whose window held the call) and
    /// `recplay_route` (the `--egress` route, or `proxy`).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// The call the app made.
    pub req: HttpRequest,
    /// The answer it got.
    pub resp: HttpResponse,
    /// Unix seconds.
    #[serde(default)]
    pub created: i64,
    /// When the call was made and answered: the window that ties the
    /// mock to a test.
    #[serde(
        default,
        rename = "reqTimestampMock",
        skip_serializing_if = "Option::is_none"
    )]
    pub req_timestamp: Option<DateTime<Utc>>,
    #[serde(
        default,
        rename = "resTimestampMock",
        skip_serializing_if = "Option::is_none"
    )]
    pub res_timestamp: Option<DateTime<Utc>>,
}

impl HttpMock {
    /// The document's `spec` and `name` as an Http mock.
    pub fn from_document(name: &str, spec: serde_yaml::Value) -> Result<Self, String> {
        let spec: HttpMockSpec =
            serde_yaml::from_value(spec).map_err(|e| format!("Keploy Http mock {name}: {e}"))?;
        Ok(HttpMock {
            name: name.to_string(),
            spec,
        })
    }
}
