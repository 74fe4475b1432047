//! Where a message's body ends (RFC 9112 §6), and a chunked body walked as
//! it streams: the chunks pass on as they came while their payload is
//! handed out for the recording.

use http::header::{self, HeaderMap};
use http::{Method, StatusCode};

/// How a body is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framing {
    /// No body.
    Empty,
    /// Exactly this many bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
    /// Until the sender closes (a response only).
    UntilClose,
}

/// Why a message's framing cannot be trusted.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum FramingError {
    #[error("invalid Content-Length")]
    BadLength,
    #[error("a request with a Transfer-Encoding that does not end in chunked")]
    UnframedRequest,
    #[error("both Transfer-Encoding and Content-Length")]
    Ambiguous,
}

fn content_length(headers: &HeaderMap) -> Result<Option<u64>, FramingError> {
    let mut length = None;
    for value in headers.get_all(header::CONTENT_LENGTH) {
        let text = value.to_str().map_err(|_| FramingError::BadLength)?;
        for part in text.split(',') {
            let part = part.trim();
            if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                return Err(FramingError::BadLength);
            }
            let n: u64 = part.parse().map_err(|_| FramingError::BadLength)?;
            if length.is_some_and(|seen| seen != n) {
                return Err(FramingError::BadLength);
            }
            length = Some(n);
        }
    }
    Ok(length)
}

/// Whether the last transfer coding is `chunked`; `None` without the header.
fn chunked_last(headers: &HeaderMap) -> Option<bool> {
    let mut last = None;
    for value in headers.get_all(header::TRANSFER_ENCODING) {
        let text = value.to_str().unwrap_or("");
        for coding in text.split(',') {
            let coding = coding.trim();
            if !coding.is_empty() {
                last = Some(coding.eq_ignore_ascii_case("chunked"));
            }
        }
    }
    last.or(headers
        .contains_key(header::TRANSFER_ENCODING)
        .then_some(false))
}

/// A request's body framing. Both headers at once is refused outright: a
/// proxy that picks one while the upstream picks the other is how
/// requests are smuggled.
pub(crate) fn of_request(headers: &HeaderMap) -> Result<Framing, FramingError> {
    let length = content_length(headers)?;
    match chunked_last(headers) {
        Some(_) if length.is_some() => Err(FramingError::Ambiguous),
        Some(true) => Ok(Framing::Chunked),
        Some(false) => Err(FramingError::UnframedRequest),
        None => Ok(match length {
            None | Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
        }),
    }
}

/// A response's body framing, which depends on the request it answers.
pub(crate) fn of_response(
    method: &Method,
    status: StatusCode,
    headers: &HeaderMap,
) -> Result<Framing, FramingError> {
    if method == Method::HEAD
        || status.is_informational()
        || status == StatusCode::NO_CONTENT
        || status == StatusCode::NOT_MODIFIED
    {
        return Ok(Framing::Empty);
    }
    match chunked_last(headers) {
        // Transfer-Encoding overrides Content-Length (RFC 9112 §6.3).
        Some(true) => Ok(Framing::Chunked),
        Some(false) => Ok(Framing::UntilClose),
        None => Ok(match content_length(headers)? {
            None => Framing::UntilClose,
            Some(0) => Framing::Empty,
            Some(n) => Framing::Length(n),
        }),
    }
}

/// Why a chunked body is broken.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub(crate) enum ChunkError {
    #[error("invalid chunk size")]
    BadSize,
    #[error("a chunk not followed by CRLF")]
    MissingCrlf,
    #[error("chunk extensions or trailers past {MAX_LINE} bytes")]
    TooLong,
}

/// Longest chunk extension or trailer section accepted.
const MAX_LINE: usize = 64 * 1024;

#[derive(Debug, Clone, Copy)]
enum State {
    /// Reading hex digits; how many so far and their value.
    Size {
        digits: u8,
        value: u64,
    },
    /// Skipping an extension up to its CR.
    Extension {
        value: u64,
    },
    SizeLf {
        value: u64,
    },
    Data {
        left: u64,
    },
    DataCr,
    DataLf,
    /// At the start of a trailer line (or of the final CRLF).
    TrailerStart,
    TrailerLine,
    TrailerLf,
    EndLf,
    Done,
}

/// Walks a chunked body piece by piece.
#[derive(Debug)]
pub(crate) struct Chunked {
    state: State,
    /// Extension and trailer bytes seen, bounded by [`MAX_LINE`].
    line_bytes: usize,
}

impl Default for Chunked {
    fn default() -> Self {
        Chunked {
            state: State::Size {
                digits: 0,
                value: 0,
            },
            line_bytes: 0,
        }
    }
}

impl Chunked {
    /// Whether the last chunk and the trailers have been seen.
    pub(crate) fn is_done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    fn count_line_byte(&mut self) -> Result<(), ChunkError> {
        self.line_bytes += 1;
        if self.line_bytes > MAX_LINE {
            return Err(ChunkError::TooLong);
        }
        Ok(())
    }

    /// Walks `input`, handing each run of payload to `data`. Returns how
    /// many bytes of `input` belong to the body: all of them, or fewer
    /// once the body ended.
    pub(crate) fn feed(
        &mut self,
        input: &[u8],
        mut data: impl FnMut(&[u8]),
    ) -> Result<usize, ChunkError> {
        let mut at = 0;
        while at < input.len() {
            let byte = input[at];
            self.state = match self.state {
                State::Done => return Ok(at),
                State::Data { left } => {
                    let take = usize::try_from(left)
                        .unwrap_or(usize::MAX)
                        .min(input.len() - at);
                    data(&input[at..at + take]);
                    at += take;
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::DataCr
                    } else {
                        State::Data { left }
                    };
                    continue;
                }
                State::Size { digits, value } => match byte {
                    b'0'..=b'9' | b'a'..=b'f' | b'A'..=b'F' => {
                        if digits >= 15 {
                            return Err(ChunkError::BadSize);
                        }
                        let digit = (byte as char).to_digit(16).unwrap_or(0);
                        State::Size {
                            digits: digits + 1,
                            value: value * 16 + u64::from(digit),
                        }
                    }
                    b';' | b' ' | b'\t' if digits > 0 => {
                        self.line_bytes = 0;
                        State::Extension { value }
                    }
                    b'\r' if digits > 0 => State::SizeLf { value },
                    _ => return Err(ChunkError::BadSize),
                },
                State::Extension { value } => {
                    self.count_line_byte()?;
                    match byte {
                        b'\r' => State::SizeLf { value },
                        _ => State::Extension { value },
                    }
                }
                State::SizeLf { value } => match byte {
                    b'\n' if value == 0 => {
                        self.line_bytes = 0;
                        State::TrailerStart
                    }
                    b'\n' => State::Data { left: value },
                    _ => return Err(ChunkError::MissingCrlf),
                },
                State::DataCr => match byte {
                    b'\r' => State::DataLf,
                    _ => return Err(ChunkError::MissingCrlf),
                },
                State::DataLf => match byte {
                    b'\n' => State::Size {
                        digits: 0,
                        value: 0,
                    },
                    _ => return Err(ChunkError::MissingCrlf),
                },
                State::TrailerStart => match byte {
                    b'\r' => State::EndLf,
                    _ => {
                        self.count_line_byte()?;
                        State::TrailerLine
                    }
                },
                State::TrailerLine => {
                    self.count_line_byte()?;
                    match byte {
                        b'\r' => State::TrailerLf,
                        _ => State::TrailerLine,
                    }
                }
                State::TrailerLf => match byte {
                    b'\n' => State::TrailerStart,
                    _ => return Err(ChunkError::MissingCrlf),
                },
                State::EndLf => match byte {
                    b'\n' => {
                        self.state = State::Done;
                        return Ok(at + 1);
                    }
                    _ => return Err(ChunkError::MissingCrlf),
                },
            };
            at += 1;
        }
        Ok(at)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(wire: &[u8], piece: usize) -> Result<(Vec<u8>, usize), ChunkError> {
        let mut walker = Chunked::default();
        let mut payload = Vec::new();
        let mut used = 0;
        for part in wire.chunks(piece) {
            used += walker.feed(part, |d| payload.extend_from_slice(d))?;
            if walker.is_done() {
                break;
            }
        }
        assert!(walker.is_done(), "the body ended");
        Ok((payload, used))
    }

    #[test]
    fn a_chunked_body_is_walked_whatever_the_pieces_it_arrives_in() {
        let wire = b"5;ext=1\r\nhello\r\nA\r\n0123456789\r\n0\r\nX-Sum: 1\r\n\r\nNEXT";
        for piece in 1..=wire.len() {
            let (payload, used) = decode_in_pieces(wire, piece).expect("valid");
            assert_eq!(payload, b"hello0123456789", "pieces of {piece}");
            assert_eq!(used, wire.len() - 4, "pieces of {piece}");
        }
    }

    #[test]
    fn broken_chunks_are_errors() {
        for bad in [
            &b"zz\r\nhello\r\n0\r\n\r\n"[..],
            b"5\r\nhelloXX0\r\n\r\n",
            b"\r\n",
            b"fffffffffffffffff\r\n",
        ] {
            let mut walker = Chunked::default();
            assert!(walker.feed(bad, |_| ()).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn framing_follows_the_headers_and_refuses_ambiguity() {
        let mut headers = HeaderMap::new();
        assert_eq!(of_request(&headers), Ok(Framing::Empty));
        headers.insert(header::CONTENT_LENGTH, "12".parse().expect("value"));
        assert_eq!(of_request(&headers), Ok(Framing::Length(12)));
        headers.insert(header::TRANSFER_ENCODING, "chunked".parse().expect("value"));
        assert_eq!(of_request(&headers), Err(FramingError::Ambiguous));
        assert_eq!(
            of_response(&Method::GET, StatusCode::OK, &headers),
            Ok(Framing::Chunked)
        );
        assert_eq!(
            of_response(&Method::HEAD, StatusCode::OK, &headers),
            Ok(Framing::Empty)
        );
        headers.insert(header::CONTENT_LENGTH, "1, 2".parse().expect("value"));
        headers.remove(header::TRANSFER_ENCODING);
        assert_eq!(of_request(&headers), Err(FramingError::BadLength));
        assert_eq!(
            of_response(&Method::GET, StatusCode::OK, &HeaderMap::new()),
            Ok(Framing::UntilClose)
        );
    }
}
