//! PostgreSQL: the recording proxy and the replay mock server, built on the
//! protocol core in [`crate::pgwire`] and on the model's grouping of
//! messages into exchanges ([`crate::testset::pg_exchange`]).
//!
//! - [`record`]: the recording wire proxy.
//! - [`matcher`]: which recording answers a live exchange.
//! - [`mock_server`]: the replay server that answers from mocks.yaml.
//! - [`refuse`]: the ErrorResponse recplay's listeners answer with when
//!   they turn a client away (too many connections, a bad message).

#[cfg(test)]
mod fuzz_tests;
pub mod matcher;
pub mod mock_server;
pub mod record;
pub mod refuse;
