//! Framing shared by both directions of protocol v3: length prefixes checked
//! against named limits before anything is allocated, and a bounds-checked
//! reader over one message body.
//!
//! The frontend and backend decoders build on this but stay apart, because
//! the same tag byte means different things in each direction (`C` is Close
//! from the client and CommandComplete from the server).

use thiserror::Error;

use super::recorded::{Format, PgValue};

/// Largest message either side may announce. PostgreSQL itself caps a
/// message at 1 GiB (`PQ_LARGE_MESSAGE_LIMIT`); anything claiming more is a
/// broken or hostile peer, and is refused before a buffer is sized from it.
pub const MAX_MESSAGE_LEN: usize = 1 << 30;

/// Largest tagless start-up packet (SSLRequest, StartupMessage, ...), the
/// same limit as the server's `MAX_STARTUP_PACKET_LENGTH`.
pub const MAX_STARTUP_LEN: usize = 10_000;

/// Smallest start-up packet: the length word and the request code.
pub const MIN_STARTUP_LEN: usize = 8;

/// Why bytes could not be read as a protocol v3 message.
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum ProtocolError {
    #[error("message '{tag}' announces a negative or too small length {len}")]
    BadLength { tag: TagName, len: i64 },
    #[error("message '{tag}' announces {len} bytes, more than the limit of {limit}")]
    TooLong {
        tag: TagName,
        len: usize,
        limit: usize,
    },
    #[error("{what} ends before its {field}")]
    Truncated {
        what: &'static str,
        field: &'static str,
    },
    #[error("{what} has {extra} unexpected bytes after its last field")]
    TrailingBytes { what: &'static str, extra: usize },
    #[error("{what}: {field} is not valid UTF-8")]
    InvalidUtf8 {
        what: &'static str,
        field: &'static str,
    },
    #[error("{what}: a count or length is negative ({value})")]
    NegativeCount { what: &'static str, value: i64 },
    #[error("{what}: format code {code} is neither 0 (text) nor 1 (binary)")]
    BadFormatCode { what: &'static str, code: i16 },
    #[error("{what}: target '{target}' is neither 'S' (statement) nor 'P' (portal)")]
    BadTarget { what: &'static str, target: TagName },
    #[error("unknown {direction} message tag '{tag}'")]
    UnknownTag {
        direction: &'static str,
        tag: TagName,
    },
    #[error("authentication request with unknown code {code} (known: 0, 2, 3, 5 to 12)")]
    UnknownAuthCode { code: i32 },
    #[error("start-up packet with unsupported protocol or request code {code}")]
    UnsupportedStartupCode { code: u32 },
    #[error("password message 'p' arrived while the server had asked for no authentication")]
    UnexpectedPassword,
}

/// A tag byte, shown as a character when printable and as hex otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TagName(pub u8);

impl std::fmt::Display for TagName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.0.is_ascii_graphic() {
            write!(f, "{}", self.0 as char)
        } else {
            write!(f, "0x{:02x}", self.0)
        }
    }
}

/// Length of the next tagged message (tag + length word + body) once its
/// header is in `buf`: `Ok(None)` while fewer than 5 bytes are buffered.
/// The whole message may not be buffered yet; callers compare the returned
/// length with what they hold.
pub fn tagged_frame_len(buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
    let Some(header) = buf.get(..5) else {
        return Ok(None);
    };
    let tag = header[0];
    let len = i32::from_be_bytes([header[1], header[2], header[3], header[4]]);
    if len < 4 {
        return Err(ProtocolError::BadLength {
            tag: TagName(tag),
            len: len.into(),
        });
    }
    // The length word counts itself but not the tag byte.
    let len = len as usize;
    if len > MAX_MESSAGE_LEN {
        return Err(ProtocolError::TooLong {
            tag: TagName(tag),
            len,
            limit: MAX_MESSAGE_LEN,
        });
    }
    Ok(Some(len + 1))
}

/// Length of the next tagless start-up packet once its length word is in
/// `buf`: `Ok(None)` while fewer than 4 bytes are buffered.
pub fn startup_frame_len(buf: &[u8]) -> Result<Option<usize>, ProtocolError> {
    let Some(header) = buf.get(..4) else {
        return Ok(None);
    };
    let len = i32::from_be_bytes([header[0], header[1], header[2], header[3]]);
    if len < MIN_STARTUP_LEN as i32 {
        return Err(ProtocolError::BadLength {
            tag: TagName(0),
            len: len.into(),
        });
    }
    let len = len as usize;
    if len > MAX_STARTUP_LEN {
        return Err(ProtocolError::TooLong {
            tag: TagName(0),
            len,
            limit: MAX_STARTUP_LEN,
        });
    }
    Ok(Some(len))
}

/// A bounds-checked cursor over one message body. Every read names the
/// message and field, so a malformed message yields an error that says
/// exactly what was wrong.
pub struct Reader<'a> {
    buf: &'a [u8],
    what: &'static str,
}

impl<'a> Reader<'a> {
    /// A reader over `body`, reporting errors as being in message `what`.
    pub fn new(body: &'a [u8], what: &'static str) -> Self {
        Reader { buf: body, what }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    fn take(&mut self, n: usize, field: &'static str) -> Result<&'a [u8], ProtocolError> {
        if self.buf.len() < n {
            return Err(ProtocolError::Truncated {
                what: self.what,
                field,
            });
        }
        let (head, tail) = self.buf.split_at(n);
        self.buf = tail;
        Ok(head)
    }

    /// One byte (a tag, a target, a status).
    pub fn u8(&mut self, field: &'static str) -> Result<u8, ProtocolError> {
        Ok(self.take(1, field)?[0])
    }

    /// A big-endian Int16.
    pub fn i16(&mut self, field: &'static str) -> Result<i16, ProtocolError> {
        let b = self.take(2, field)?;
        Ok(i16::from_be_bytes([b[0], b[1]]))
    }

    /// A big-endian Int32.
    pub fn i32(&mut self, field: &'static str) -> Result<i32, ProtocolError> {
        let b = self.take(4, field)?;
        Ok(i32::from_be_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// A big-endian Int32 read as unsigned (OIDs).
    pub fn u32(&mut self, field: &'static str) -> Result<u32, ProtocolError> {
        Ok(self.i32(field)? as u32)
    }

    /// A count that must not be negative (Int16 on the wire).
    pub fn count16(&mut self, field: &'static str) -> Result<usize, ProtocolError> {
        let n = self.i16(field)?;
        if n < 0 {
            return Err(ProtocolError::NegativeCount {
                what: self.what,
                value: n.into(),
            });
        }
        Ok(n as usize)
    }

    /// A NUL-terminated UTF-8 string, read in place.
    pub fn str(&mut self, field: &'static str) -> Result<&'a str, ProtocolError> {
        let s = self.until_nul(field)?;
        std::str::from_utf8(s).map_err(|_| ProtocolError::InvalidUtf8 {
            what: self.what,
            field,
        })
    }

    /// A NUL-terminated string in whatever encoding the client uses, read
    /// in place: what the proxy checks before forwarding (the server, which
    /// knows the client's encoding, judges the text itself).
    pub fn text(&mut self, field: &'static str) -> Result<&'a [u8], ProtocolError> {
        self.until_nul(field)
    }

    /// A NUL-terminated UTF-8 string.
    pub fn cstr(&mut self, field: &'static str) -> Result<String, ProtocolError> {
        self.str(field).map(str::to_owned)
    }

    /// A NUL-terminated string from the server, where bytes that are not
    /// UTF-8 (a client_encoding other than UTF8) are replaced rather than
    /// refused: the proxy must not drop a connection over a notice's text.
    pub fn cstr_lossy(&mut self, field: &'static str) -> Result<String, ProtocolError> {
        Ok(String::from_utf8_lossy(self.until_nul(field)?).into_owned())
    }

    /// The bytes before the next NUL, which is consumed too.
    fn until_nul(&mut self, field: &'static str) -> Result<&'a [u8], ProtocolError> {
        // CStr finds the NUL a word at a time; query texts are long.
        let s = std::ffi::CStr::from_bytes_until_nul(self.buf)
            .map_err(|_| ProtocolError::Truncated {
                what: self.what,
                field,
            })?
            .to_bytes();
        self.buf = &self.buf[s.len() + 1..];
        Ok(s)
    }

    /// An Int32 length followed by that many bytes, read in place; -1 is
    /// SQL NULL. The length is checked against what is actually buffered.
    pub fn nullable_slice(
        &mut self,
        field: &'static str,
    ) -> Result<Option<&'a [u8]>, ProtocolError> {
        let len = self.i32(field)?;
        if len == -1 {
            return Ok(None);
        }
        if len < 0 {
            return Err(ProtocolError::NegativeCount {
                what: self.what,
                value: len.into(),
            });
        }
        self.take(len as usize, field).map(Some)
    }

    /// [`nullable_slice`](Self::nullable_slice), copied: a lying length
    /// allocates nothing.
    pub fn nullable_bytes(
        &mut self,
        field: &'static str,
    ) -> Result<Option<Vec<u8>>, ProtocolError> {
        Ok(self.nullable_slice(field)?.map(<[u8]>::to_vec))
    }

    /// Everything left in the body.
    pub fn rest(&mut self) -> &'a [u8] {
        std::mem::take(&mut self.buf)
    }

    /// Fails when bytes remain: a message longer than its fields is malformed.
    pub fn finish(self) -> Result<(), ProtocolError> {
        if self.buf.is_empty() {
            Ok(())
        } else {
            Err(ProtocolError::TrailingBytes {
                what: self.what,
                extra: self.buf.len(),
            })
        }
    }

    /// `count` items of at most `min_item_size` bytes each, refusing counts
    /// that could not fit in what remains: keeps a lying count from sizing a
    /// vector.
    pub fn capacity_for(&self, count: usize, min_item_size: usize) -> usize {
        count.min(self.buf.len() / min_item_size.max(1))
    }
}

/// A format code (0 text, 1 binary) as a recorded [`Format`].
pub fn format_code(code: i16, what: &'static str) -> Result<Format, ProtocolError> {
    match code {
        0 => Ok(Format::Text),
        1 => Ok(Format::Binary),
        code => Err(ProtocolError::BadFormatCode { what, code }),
    }
}

/// The format that applies to value `index` given the wire's format list:
/// none means all text, one applies to all, otherwise one per value.
pub fn format_of(formats: &[Format], index: usize) -> Format {
    match formats {
        [] => Format::Text,
        [only] => *only,
        many => many.get(index).copied().unwrap_or(Format::Text),
    }
}

/// A value as the model stores it: text-format values as text when they are
/// UTF-8, binary-format values always as base64 (their bytes may happen to be
/// valid UTF-8, e.g. an int4 `1` is `\0\0\0\x01`, and must not read as text).
pub fn model_value(bytes: Option<Vec<u8>>, format: Format) -> PgValue {
    use base64::Engine as _;
    match (bytes, format) {
        (None, _) => PgValue::Null,
        (Some(b), Format::Binary) => PgValue::Bytes {
            base64: base64::engine::general_purpose::STANDARD.encode(b),
        },
        (Some(b), Format::Text) => PgValue::from_vec(Some(b)),
    }
}
