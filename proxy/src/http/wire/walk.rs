//! How far one body has been walked: where it ends (by its framing) and
//! its payload, handed to the record's capped copy on the way.

use crate::http::capture::Capture;

use super::framing::{ChunkError, Chunked, Framing};

/// How far one body has been walked.
pub(crate) enum Walk {
    Done,
    Length(u64),
    Chunked(Chunked),
    UntilClose,
}

impl Walk {
    pub(crate) fn new(framing: Framing) -> Self {
        match framing {
            Framing::Empty | Framing::Length(0) => Walk::Done,
            Framing::Length(n) => Walk::Length(n),
            Framing::Chunked => Walk::Chunked(Chunked::default()),
            Framing::UntilClose => Walk::UntilClose,
        }
    }

    pub(crate) fn is_done(&self) -> bool {
        matches!(self, Walk::Done)
    }

    /// Walks `input`: the body's payload goes to `capture` (and, when
    /// `payload` is given, is also collected there for a client that cannot
    /// read chunks). Returns how many bytes of `input` are the body's.
    pub(crate) fn take(
        &mut self,
        input: &[u8],
        capture: &mut Capture,
        mut payload: Option<&mut Vec<u8>>,
    ) -> Result<usize, ChunkError> {
        let used = match self {
            Walk::Done => 0,
            Walk::Length(left) => {
                let used = usize::try_from(*left)
                    .unwrap_or(usize::MAX)
                    .min(input.len());
                capture.push(&input[..used]);
                *left -= used as u64;
                if *left == 0 {
                    *self = Walk::Done;
                }
                used
            }
            Walk::UntilClose => {
                capture.push(input);
                input.len()
            }
            Walk::Chunked(walker) => {
                let used = walker.feed(input, |data| {
                    capture.push(data);
                    if let Some(out) = payload.as_deref_mut() {
                        out.extend_from_slice(data);
                    }
                })?;
                if walker.is_done() {
                    *self = Walk::Done;
                }
                return Ok(used);
            }
        };
        if let Some(out) = payload {
            out.extend_from_slice(&input[..used]);
        }
        Ok(used)
    }
}
