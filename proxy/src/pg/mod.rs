//! PostgreSQL protocol v3: codecs, the recording proxy and the replay mock server.

pub mod encode;
pub mod matcher;
