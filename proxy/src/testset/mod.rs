//! The on-disk model of a recording.
//!
//! A test set is a directory `test-set-N/` holding `tests/test-M.yaml` (one
//! Keploy Http document per recorded exchange) and `mocks.yaml` (one
//! `---`-separated Postgres document per database exchange).

pub mod http_case;
pub mod pg_mock;
pub mod store;
pub mod yaml;

pub use http_case::{HttpRequest, HttpResponse, HttpSpec, HttpTestCase};
pub use pg_mock::{BackendMsg, FrontendMsg, Lifetime, MockSpec, PgMock, PgValue};
pub use store::{LoadProblem, LoadedTestSet, StoreError, TestSetDir};

/// The format version recplay writes today. Readers accept every earlier
/// version; files written by Keploy itself carry none and read as version 0.
pub const FORMAT_VERSION: u32 = 1;
