//! PostgreSQL protocol v3: codecs, the recording proxy and the replay mock server.
//!
//! - [`wire`]: framing and size limits shared by both directions.
//! - [`frontend`]: client messages (incremental decoder, model conversion).

pub mod frontend;
pub mod wire;
