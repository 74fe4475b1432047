//! The stored HTTP form, both ways: from what crossed the wire to what a
//! test case holds, and from a test case back to what is sent.
//!
//! The recorder, the replayer, the comparison and the report all need the
//! same answers to the same questions (how a header name is spelled, which
//! headers describe one hop rather than the message, how a compressed body
//! is undone, how a stored body becomes bytes again, which framing a
//! replayed request carries). They are answered here, once.
//!
//! - `headers`: header names, hop-by-hop and framing headers, and the
//!   ordered header map of a message.
//! - `body`: bodies to their stored form and back, Content-Encoding undone
//!   within a bound and redone.
//! - `request`: a recorded request as it goes back on the wire.

mod body;
mod headers;
mod request;

pub use body::{decode_content, encode_content, store_body, stored_bytes};
pub use headers::{
    canonical_header_name, header_fields, is_framing_header, is_hop_by_hop, is_transfer_header,
    HOP_BY_HOP,
};
pub use request::{replay_request, ReplayRequest};

/// Why a stored body cannot be turned back into bytes.
#[derive(Debug, thiserror::Error)]
pub enum FormError {
    #[error("the stored body is marked base64 but does not decode: {0}")]
    Base64(#[from] base64::DecodeError),
    #[error("the {encoding} body does not decode: {source}")]
    Decode {
        encoding: String,
        source: std::io::Error,
    },
    #[error("the {encoding} body expands past {limit} bytes")]
    TooLarge { encoding: String, limit: u64 },
    #[error("cannot re-encode a body as {0:?}")]
    UnknownEncoding(String),
    #[error("the recorded body was cut at the recording cap, so it cannot be sent again; re-record with a larger --body-cap")]
    Truncated,
    #[error("could not compress the body as {encoding}: {source}")]
    Encode {
        encoding: String,
        source: std::io::Error,
    },
}
