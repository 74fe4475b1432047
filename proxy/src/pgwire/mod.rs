//! PostgreSQL protocol v3, both directions, without I/O: the protocol core
//! everything else that speaks PostgreSQL builds on. It imports nothing of
//! the on-disk model ([`crate::testset`]); the model stores its messages.
//!
//! - [`wire`]: framing and size limits shared by both directions.
//! - [`frontend`]: client messages (incremental decoder, and conversion to
//!   the recorded form).
//! - [`backend`]: server messages (decoder, conversion to the recorded form
//!   by result format, and the encoder that puts recorded answers back on
//!   the wire).
//! - [`recorded`]: the messages of both directions as a recording holds
//!   them, with their values and format codes.

pub mod backend;
pub mod frontend;
pub mod recorded;
pub mod wire;
