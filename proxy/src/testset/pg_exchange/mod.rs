//! Exchanges: how one connection's messages group into request and answer,
//! without I/O.
//!
//! Everything that turns a stream of decoded messages into exchanges uses
//! this module, so the rules live once: the recorder (live traffic), the
//! Keploy importer (Keploy's recorded packets, fed as if live) and the mock
//! server (which answers each exchange as its request side ends).
//!
//! It lives in the model, beside the mocks it builds ([`super::pg_mock`]):
//! it reads the protocol core's messages ([`crate::pgwire`]) and nothing
//! above the model, so the Keploy importer ([`super::keploy`]), which
//! mocks.yaml's loader runs, uses it without importing upward.
//!
//! - [`framer`]: where a client message leaves its exchange
//!   ([`request_end`]) and [`ConnFramer`], which groups a connection's
//!   traffic into recorded exchanges.
//! - [`lifetime`]: which statements are session-level.
//! - `by_name`: a connection's prepared statements and portals.

pub(crate) mod by_name;
pub mod framer;
pub mod lifetime;

pub use framer::{request_end, ConnFramer, RequestEnd};
