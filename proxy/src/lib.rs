//! recplay-proxy: the network half of recplay.
//!
//! # Layout
//! - [`testset`]: the on-disk model — Keploy-compatible Http test cases and
//!   the stored HTTP form both ways (from the wire, back to the wire),
//!   readable Postgres mocks and the grouping of PostgreSQL messages into
//!   them, the Keploy importer, and the test-set directory that holds them
//!   (atomic writes, crash-tolerant loading, format versions).
//! - [`http`]: the recording HTTP proxy.
//! - [`egress`]: the app's outgoing HTTP calls, recorded as Http mocks and
//!   served back at replay.
//! - [`journal`]: the append-only, write-ahead file each recording writes
//!   on the traffic's path, and reading it back.
//! - [`keploy_yml`]: keploy.yml's model and its parsing from text, with
//!   the check that names keys neither recplay nor Keploy knows.
//! - [`recovery`]: turning a journal left by a crash into its test files.
//! - [`priority`]: background threads yield to the traffic.
//! - [`pgwire`]: PostgreSQL protocol v3 without I/O — the messages of both
//!   directions, their decoders and encoder, and the form a recording holds
//!   them in. The ground floor: it imports nothing of the model.
//! - [`pg`]: the recording PostgreSQL wire proxy, and the replay mock server
//!   with its matcher.
//! - [`serve`]: the accept / limit / drain loop every listener runs on.
//! - [`tls`]: loading certificates, keys and trust for both proxies.
//! - [`window`]: which HTTP test is in flight, so database exchanges can be
//!   attributed to the test whose request/response window contains them.
//!
//! - `test_rng` (tests only): a seeded generator of test inputs.
//!
//! No command-line concerns live here; the `recplay` binary wires these
//! pieces together.

pub mod egress;
pub mod http;
pub mod journal;
pub mod keploy_yml;
pub mod pg;
pub mod pgwire;
pub mod priority;
pub mod recovery;
pub mod serve;
#[cfg(any(test, feature = "test-support"))]
#[doc(hidden)]
pub mod test_rng;
pub mod testset;
pub mod tls;
pub mod window;
