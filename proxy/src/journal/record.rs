//! How one record is framed in the journal, and the little binary layout
//! its payload is written in.
//!
//! A frame is `[len u32][crc32c u32][kind u8][payload]`, little-endian,
//! where `len` counts the kind byte and the payload, and the CRC32C covers
//! the length, the kind and the payload: a length cut by a crash, or bytes
//! changed on disk, are both caught before the payload is believed.

use super::JournalError;

/// Bytes before the kind: length and checksum.
pub const FRAME_HEAD: usize = 8;

/// A frame longer than this is taken for garbage, not allocated: a body is
/// capped long before (the proxy's body cap), and a torn length must not
/// ask for gigabytes.
pub const MAX_RECORD: u32 = 1 << 30;

/// What a record holds; the reader reports kinds it does not know.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(u8)]
pub enum RecordKind {
    /// One HTTP exchange: both heads, both captured bodies, timestamps.
    HttpExchange = 1,
    /// One step of one PostgreSQL connection's traffic: opened, bytes read
    /// from one side, or closed (see `pg::record::entry`). Mocks are made
    /// from these by replaying them in order.
    PgTraffic = 2,
}

impl RecordKind {
    /// The kind for a byte read from disk.
    pub fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            1 => Some(RecordKind::HttpExchange),
            2 => Some(RecordKind::PgTraffic),
            _ => None,
        }
    }
}

/// Frames a record: `fill` writes the payload straight into the frame, so
/// a record is built in one buffer with no copy.
pub fn frame(kind: RecordKind, fill: impl FnOnce(&mut Vec<u8>)) -> Vec<u8> {
    let mut buf = Vec::with_capacity(256);
    frame_into(&mut buf, kind, fill);
    buf
}

/// [`frame`], appending the frame to `buf` (which may hold other frames).
pub fn frame_into(buf: &mut Vec<u8>, kind: RecordKind, fill: impl FnOnce(&mut Vec<u8>)) {
    let start = buf.len();
    buf.extend_from_slice(&[0; FRAME_HEAD]);
    buf.push(kind as u8);
    fill(buf);
    let len = (buf.len() - start - FRAME_HEAD) as u32;
    buf[start..start + 4].copy_from_slice(&len.to_le_bytes());
    let crc = checksum(len, &buf[start + FRAME_HEAD..]);
    buf[start + 4..start + 8].copy_from_slice(&crc.to_le_bytes());
}

/// The CRC32C a frame carries: over its length and its body.
pub fn checksum(len: u32, body: &[u8]) -> u32 {
    crc32c::crc32c_append(crc32c::crc32c(&len.to_le_bytes()), body)
}

/// Appends `value` little-endian.
pub fn put_u64(buf: &mut Vec<u8>, value: u64) {
    buf.extend_from_slice(&value.to_le_bytes());
}

/// Appends `value` little-endian.
pub fn put_i64(buf: &mut Vec<u8>, value: i64) {
    buf.extend_from_slice(&value.to_le_bytes());
}

/// Appends a byte string with its length in front.
pub fn put_bytes(buf: &mut Vec<u8>, bytes: &[u8]) {
    buf.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
    buf.extend_from_slice(bytes);
}

/// Reads back what the `put_*` functions wrote; every read checks that the
/// payload holds what it claims.
pub struct Fields<'a> {
    rest: &'a [u8],
}

impl<'a> Fields<'a> {
    pub fn new(payload: &'a [u8]) -> Self {
        Fields { rest: payload }
    }

    fn take(&mut self, n: usize, what: &str) -> Result<&'a [u8], JournalError> {
        if self.rest.len() < n {
            return Err(JournalError::Payload(format!(
                "ends inside its {what} ({} bytes left, {n} needed)",
                self.rest.len()
            )));
        }
        let (head, rest) = self.rest.split_at(n);
        self.rest = rest;
        Ok(head)
    }

    pub fn u8(&mut self, what: &str) -> Result<u8, JournalError> {
        Ok(self.take(1, what)?[0])
    }

    pub fn u64(&mut self, what: &str) -> Result<u64, JournalError> {
        let mut b = [0; 8];
        b.copy_from_slice(self.take(8, what)?);
        Ok(u64::from_le_bytes(b))
    }

    pub fn i64(&mut self, what: &str) -> Result<i64, JournalError> {
        let mut b = [0; 8];
        b.copy_from_slice(self.take(8, what)?);
        Ok(i64::from_le_bytes(b))
    }

    pub fn bytes(&mut self, what: &str) -> Result<&'a [u8], JournalError> {
        let mut b = [0; 4];
        b.copy_from_slice(self.take(4, what)?);
        let len = u32::from_le_bytes(b) as usize;
        self.take(len, what)
    }

    pub fn text(&mut self, what: &str) -> Result<&'a str, JournalError> {
        let bytes = self.bytes(what)?;
        std::str::from_utf8(bytes)
            .map_err(|e| JournalError::Payload(format!("its {what} is not UTF-8: {e}")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_read_back_what_was_put() {
        let framed = frame(RecordKind::HttpExchange, |buf| {
            put_u64(buf, 7);
            put_i64(buf, -3);
            put_bytes(buf, b"abc");
        });
        let len = u32::from_le_bytes([framed[0], framed[1], framed[2], framed[3]]);
        assert_eq!(len as usize, framed.len() - FRAME_HEAD);
        let crc = u32::from_le_bytes([framed[4], framed[5], framed[6], framed[7]]);
        assert_eq!(crc, checksum(len, &framed[FRAME_HEAD..]));
        let mut fields = Fields::new(&framed[FRAME_HEAD + 1..]);
        assert_eq!(fields.u64("n").ok(), Some(7));
        assert_eq!(fields.i64("t").ok(), Some(-3));
        assert_eq!(fields.bytes("b").ok(), Some(&b"abc"[..]));
        assert!(fields.u8("past the end").is_err());
    }
}
