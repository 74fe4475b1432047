//! PostgreSQL protocol v3: codecs, the recording proxy and the replay mock server.
//!
//! - [`wire`]: framing and size limits shared by both directions.
//! - [`frontend`]: client messages (incremental decoder, model conversion).
//! - [`backend`]: server messages (decoder, model conversion by result format).
//! - [`record`]: the recording wire proxy.

pub mod backend;
pub mod frontend;
pub mod record;
pub mod wire;
