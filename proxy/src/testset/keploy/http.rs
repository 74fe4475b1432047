//! Keploy's `Http` mocks: outgoing HTTP calls the app made while a test ran
//! (its `HTTPSchema`). recplay does not mock outgoing HTTP yet; they are
//! read and kept so a set that has them loads, and so they can be served
//! once it does.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::Deserialize;

/// One `kind: Http` document of mocks.yaml.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct HttpMock {
    /// The document's `name` (`mock-N`).
    #[serde(default)]
    pub name: String,
    pub spec: HttpMockSpec,
}

/// `spec:` of an Http mock.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct HttpMockSpec {
    /// Keploy's free-form labels (`name`, `operation`, `type`).
    #[serde(default)]
    pub metadata: BTreeMap<String, String>,
    /// The call the app made.
    pub req: HttpMockRequest,
    /// The answer it got.
    pub resp: HttpMockResponse,
    /// Unix seconds.
    #[serde(default)]
    pub created: i64,
    /// When the call was made and answered: the window that ties the
    /// mock to a test.
    #[serde(default, rename = "reqTimestampMock")]
    pub req_timestamp: Option<DateTime<Utc>>,
    #[serde(default, rename = "resTimestampMock")]
    pub res_timestamp: Option<DateTime<Utc>>,
}

/// The call the app made.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct HttpMockRequest {
    pub method: String,
    pub url: String,
    #[serde(default)]
    pub header: BTreeMap<String, String>,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub timestamp: Option<DateTime<Utc>>,
}

/// The answer it got.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct HttpMockResponse {
    pub status_code: u16,
    #[serde(default)]
    pub header: BTreeMap<String, String>,
    #[serde(default)]
    pub body: String,
    #[serde(default)]
    pub timestamp: Option<DateTime<Utc>>,
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
