//! PostgreSQL protocol v3: codecs, the recording proxy and the replay mock server.
//!
//! - [`wire`]: framing and size limits shared by both directions.
//! - [`frontend`]: client messages (incremental decoder, model conversion).
//! - [`backend`]: server messages (decoder, model conversion by result format,
//!   and the encoder that puts recorded answers back on the wire).
//! - [`exchange`]: grouping messages into exchanges, without I/O.
//! - [`record`]: the recording wire proxy.
//! - [`matcher`]: which recording answers a live exchange.
//! - [`mock_server`]: the replay server that answers from mocks.yaml.
//! - [`refuse`]: the ErrorResponse recplay's listeners answer with when
//!   they turn a client away (too many connections, a bad message).

pub mod backend;
pub mod exchange;
pub mod frontend;
#[cfg(test)]
mod fuzz_tests;
pub mod matcher;
pub mod mock_server;
pub mod record;
pub mod refuse;
pub mod wire;
