//! The on-disk model of a recording.
//!
//! A test set is a directory `test-set-N/` holding `tests/test-M.yaml` (one
//! Keploy Http document per recorded exchange) and `mocks.yaml` (one
//! `---`-separated Postgres document per database exchange).

#[cfg(test)]
mod corruption_tests;
pub mod http_case;
pub mod keploy;
pub mod pg_mock;
#[cfg(test)]
mod samples;
pub mod store;
#[cfg(test)]
mod test_rng;
mod timestamp;
pub mod yaml;

pub use http_case::{HttpRequest, HttpResponse, HttpSpec, HttpTestCase};
pub use pg_mock::{BackendMsg, FrontendMsg, Lifetime, MockSpec, PgMock, PgValue};
pub use store::{LoadProblem, LoadedTestSet, StoreError, TestSetDir};

/// The format version recplay writes today. Readers accept every earlier
/// version; files written by Keploy itself carry none and read as version 0.
///
/// - 1: the first.
/// - 2: every mock in mocks.yaml, and every test file, ends with YAML's
///   document-end marker (`...`), so a document cut short is told from a
///   whole one even when the cut fell at the end of a line and what is left
///   still parses.
pub const FORMAT_VERSION: u32 = 2;

/// The first format whose documents end with `...`.
pub const END_MARKER_VERSION: u32 = 2;
