//! What Keploy writes, read into recplay's model: its mock documents
//! (`version: api.keploy.io/v1beta1`) of every kind.
//!
//! mocks.yaml may hold Keploy's documents beside recplay's own; they are
//! told apart by `version`, a number in recplay's and a string in Keploy's
//! ([`is_keploy_document`]). The loader hands each Keploy document to a
//! [`KeployMocks`] as it reads the file, and asks it at the end for what
//! they became ([`KeployMocks::finish`]): Postgres documents are only
//! converted then, because an exchange may span several documents of one
//! connection and its lifetime depends on the test cases' windows.
//!
//! - [`http`]: `Http` mocks, kept for when outgoing HTTP is mocked.
//! - [`postgres_v1`]: `Postgres` (Keploy's v1 packets) into recplay mocks.
//! - [`postgres_v3`]: `PostgresV2`/`PostgresV3` into recplay mocks, by
//!   sub-type, with `query` (a PostgresV3 query block, read and checked),
//!   `exchanges` (that invocation as the exchanges that ask it), `cell`
//!   (Keploy's logical cell values back to wire bytes), `fields` (YAML
//!   fields read with errors that name them) and `sql_text` (placeholders
//!   and transaction status of a statement).
//! - [`windows`]: which test a converted mock belongs to.

mod cell;
mod exchanges;
mod fields;
pub mod http;
pub mod postgres_v1;
pub mod postgres_v3;
mod query;
mod sql_text;
pub mod windows;

use std::collections::BTreeMap;

use super::{HttpTestCase, PgMock};
pub use http::HttpMock;

/// Whether a mocks.yaml document is Keploy's: its top-level `version` is
/// a string (`api.keploy.io/v1beta1`), where recplay writes a number.
/// Read from the text, without parsing the document: it runs for every
/// document of large recordings.
pub fn is_keploy_document(text: &str) -> bool {
    text.lines()
        .find_map(|line| line.strip_prefix("version:"))
        .map(|value| {
            let value = value.split(" #").next().unwrap_or_default().trim();
            !value.is_empty() && value.parse::<u64>().is_err()
        })
        .unwrap_or(false)
}

/// Keploy's documents of one mocks.yaml, gathered while it is read.
#[derive(Debug, Default)]
pub struct KeployMocks {
    http: Vec<HttpMock>,
    unserved: BTreeMap<String, u64>,
    /// PostgresV2/V3 mocks, already converted.
    converted: Vec<PgMock>,
    /// Postgres (v1) documents, converted at the end.
    postgres_v1: postgres_v1::Documents,
}

/// What Keploy's documents became.
#[derive(Debug, Default)]
pub struct Finished {
    /// Served by the mock server like recplay's own.
    pub pg_mocks: Vec<PgMock>,
    pub http: Vec<HttpMock>,
    /// Kind → how many mocks of it recplay does not serve.
    pub unserved: BTreeMap<String, u64>,
    /// `(location, message)` of documents that could not be converted.
    pub problems: Vec<(String, String)>,
}

impl KeployMocks {
    /// Reads one Keploy document; `location` names it in later messages.
    /// An error means this document could not be read at all.
    pub fn add(&mut self, text: &str, location: String) -> Result<(), String> {
        let doc: serde_yaml::Value =
            serde_yaml::from_str(text).map_err(|e| format!("not a Keploy mock document: {e}"))?;
        let kind = doc
            .get("kind")
            .and_then(serde_yaml::Value::as_str)
            .ok_or("a Keploy mock document without a `kind`")?
            .to_string();
        let name = doc
            .get("name")
            .and_then(serde_yaml::Value::as_str)
            .unwrap_or_default()
            .to_string();
        match kind.as_str() {
            "Http" => {
                let spec = doc.get("spec").cloned().unwrap_or_default();
                self.http.push(HttpMock::from_document(&name, spec)?);
            }
            "Postgres" => self.postgres_v1.add(&doc, name, location)?,
            "PostgresV2" | "PostgresV3" => match postgres_v3::convert(&kind, &doc) {
                Ok(mocks) => self.converted.extend(mocks),
                Err(message) => {
                    // Once per kind: a recording may hold thousands.
                    if !self.unserved.contains_key(&kind) {
                        tracing::info!("{location}: {kind} mock {name} not served: {message}");
                    }
                    *self.unserved.entry(kind).or_default() += 1;
                }
            },
            _ => *self.unserved.entry(kind).or_default() += 1,
        }
        Ok(())
    }

    /// Converts what was gathered. `tests` give the windows that attribute
    /// data mocks to tests; `first_connection` is the first connection
    /// number free in the set.
    pub fn finish(self, tests: &[HttpTestCase], first_connection: u64) -> Finished {
        let windows = windows::Windows::of_tests(tests);
        let (mut pg_mocks, problems) = self.postgres_v1.convert(first_connection);
        pg_mocks.extend(self.converted);
        for mock in &mut pg_mocks {
            windows.attribute(mock);
        }
        Finished {
            pg_mocks,
            http: self.http,
            unserved: self.unserved,
            problems,
        }
    }
}

/// `14 Mongo mocks: not served by recplay`, one line per kind.
pub fn unserved_notes(unserved: &BTreeMap<String, u64>) -> Vec<String> {
    unserved
        .iter()
        .map(|(kind, n)| {
            let plural = if *n == 1 { "mock" } else { "mocks" };
            format!("{n} {kind} {plural}: not served by recplay")
        })
        .collect()
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod v3_tests;
