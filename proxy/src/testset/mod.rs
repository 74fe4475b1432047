//! The on-disk model of a recording.
//!
//! A test set is a directory `test-set-N/` holding `tests/test-M.yaml` (one
//! Keploy Http document per recorded exchange) and `mocks.yaml` (one
//! `---`-separated Postgres document per database exchange).
//! [`http_form`] turns an HTTP exchange into its stored form and a stored
//! request back into what is sent; the recorder, the replayer, the
//! comparison and the report all go through it.
//!
//! # Layout
//! - [`http_case`], [`http_form`], [`stream_body`]: HTTP test cases, and
//!   the stored HTTP form both ways.
//! - [`pg_mock`]: one recorded PostgreSQL exchange; its messages are the
//!   protocol core's ([`crate::pgwire::recorded`]).
//! - [`pg_exchange`]: how one connection's PostgreSQL messages group into
//!   those exchanges, for the recorder, the mock server and the Keploy
//!   importer alike.
//! - [`keploy`]: what Keploy writes (Http mocks, its Postgres mocks of every
//!   version) read into this model.
//! - [`store`], [`mock_file`], [`test_files`], [`yaml`]: the test-set
//!   directory, reading and writing its files.
//! - [`redact`], [`noise_path`]: secrets kept out of stored files, and the
//!   selectors that name noisy fields.

mod atomic_write;
#[cfg(test)]
mod corruption_tests;
pub mod http_case;
pub mod http_form;
pub mod keploy;
pub mod mock_file;
pub mod noise_path;
pub mod pg_exchange;
pub mod pg_mock;
pub mod redact;
mod regular_file;
#[cfg(test)]
mod samples;
pub mod store;
mod store_error;
pub mod stream_body;
mod test_file;
pub mod test_files;
#[cfg(test)]
mod test_rng;
mod timestamp;
pub mod yaml;

pub use http_case::{Headers, HttpRequest, HttpResponse, HttpSpec, HttpTestCase};
pub use pg_mock::{BackendMsg, FrontendMsg, Lifetime, MockSpec, PgMock, PgValue};
pub use store::{LoadProblem, LoadedTestSet, SkippedTest, StoreError, TestSetDir};

/// The format version recplay writes today. Readers accept every earlier
/// version; files written by Keploy itself carry none and read as version 0.
///
/// - 1: the first.
/// - 2: every mock in mocks.yaml, and every test file, ends with YAML's
///   document-end marker (`...`), so a document cut short is told from a
///   whole one even when the cut fell at the end of a line and what is left
///   still parses.
/// - 3: mocks are `kind: recplay-Postgres` (formats 1 and 2 said
///   `Postgres`, which Keploy took for its own Postgres mocks and misread;
///   Keploy skips any kind with a dash), and they are plain YAML that any
///   reader loads: a test's lifetime is the one-key map
///   `lifetime: {test: test-N}` (written in block style, `test:` on the
///   next line) instead of the custom tag `!test test-N`. `session` and
///   `unattributed` stay plain strings. Test files are unchanged (they
///   never held a tag).
pub const FORMAT_VERSION: u32 = 3;

/// The newest format this build reads. It may run ahead of
/// [`FORMAT_VERSION`]: a release that reads a format before any release
/// writes it lets recordings go back and forth between neighbouring
/// releases.
pub const NEWEST_READ_VERSION: u32 = 3;

/// The first format whose documents end with `...`.
pub const END_MARKER_VERSION: u32 = 2;

/// The first format whose mocks are `kind: recplay-Postgres` and hold no
/// YAML tag.
pub const PLAIN_MOCK_VERSION: u32 = 3;
