//! A capped copy of a body as it crosses the proxy.
//!
//! The proxy never buffers a body to forward it: each piece goes on as soon
//! as it arrives. Recording only needs the first `cap` bytes (and, past the
//! cap, the full size and a sha256 so a reviewer can still tell bodies
//! apart), so memory per exchange is bounded by the cap whatever the body's
//! size.

use std::future::Future;
use std::pin::Pin;

use sha2::{Digest, Sha256};

/// Resolves once a completed exchange is safe with the sink (its record
/// written); until then the proxy holds back the response's last bytes,
/// so a client never has a whole response whose record a crash can lose.
/// An error says why it was not kept; the client's response is then cut.
pub type Hold = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>>;

/// What the recorder learns about one body.
#[derive(Debug, Clone, Default)]
pub struct CapturedBody {
    /// The first `cap` bytes (all of them when the body fit).
    pub bytes: Vec<u8>,
    /// Total bytes that crossed the proxy.
    pub size: u64,
    /// Hex sha256 of every byte; computed only once the cap was exceeded,
    /// so small bodies cost nothing extra.
    pub sha256: Option<String>,
    /// False when the body stopped early (client or upstream went away, or
    /// the peer never read it).
    pub complete: bool,
}

impl CapturedBody {
    /// True when `bytes` holds only a prefix of the body.
    pub fn truncated(&self) -> bool {
        self.size > self.bytes.len() as u64
    }
}

/// Accumulates a capped copy of one body.
#[derive(Debug)]
pub(crate) struct Capture {
    cap: usize,
    bytes: Vec<u8>,
    size: u64,
    hasher: Option<Sha256>,
}

impl Capture {
    pub(crate) fn new(cap: u64) -> Self {
        Capture {
            cap: usize::try_from(cap).unwrap_or(usize::MAX),
            bytes: Vec::new(),
            size: 0,
            hasher: None,
        }
    }

    pub(crate) fn push(&mut self, chunk: &[u8]) {
        self.size += chunk.len() as u64;
        if let Some(hasher) = self.hasher.as_mut() {
            hasher.update(chunk);
            return;
        }
        let room = self.cap - self.bytes.len();
        if chunk.len() <= room {
            self.bytes.extend_from_slice(chunk);
            return;
        }
        // Crossing the cap: from here on only the hash grows.
        let mut hasher = Sha256::new();
        hasher.update(&self.bytes);
        hasher.update(chunk);
        self.bytes.extend_from_slice(&chunk[..room]);
        self.hasher = Some(hasher);
    }

    pub(crate) fn finish(self, complete: bool) -> CapturedBody {
        CapturedBody {
            bytes: self.bytes,
            size: self.size,
            sha256: self.hasher.map(|h| hex::encode(h.finalize())),
            complete,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_cap_only_size_and_hash_grow() {
        let mut capture = Capture::new(4);
        capture.push(b"abc");
        capture.push(b"defg");
        let body = capture.finish(true);
        assert_eq!(body.bytes, b"abcd");
        assert_eq!(body.size, 7);
        assert!(body.truncated());
        let expected = hex::encode(Sha256::digest(b"abcdefg"));
        assert_eq!(body.sha256.as_deref(), Some(expected.as_str()));
    }

    #[test]
    fn a_body_at_the_cap_is_whole_and_unhashed() {
        let mut capture = Capture::new(3);
        capture.push(b"abc");
        let body = capture.finish(true);
        assert!(!body.truncated());
        assert_eq!(body.sha256, None);
    }
}
