//! Reading a journal back, record by record.
//!
//! A record is believed only when its whole frame is there and its CRC32C
//! matches. The first frame that is cut short or does not match ends the
//! journal: everything from there on is a torn tail (a crash in the middle
//! of a write), reported with its size, never decoded.

use std::fs::File;
use std::io::{BufReader, ErrorKind, Read};
use std::path::{Path, PathBuf};

use super::record::{checksum, FRAME_HEAD, MAX_RECORD};
use super::{io_err, JournalError, FORMAT_VERSION, HEADER_LEN, MAGIC};

/// One complete record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Record {
    /// Where its frame starts in the file.
    pub offset: u64,
    /// The kind byte (see [`super::RecordKind`]; an unknown one is kept so
    /// the caller can name it).
    pub kind: u8,
    pub payload: Vec<u8>,
}

/// What comes next in a journal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Record(Record),
    /// The file ends on a whole record.
    End,
    /// From `offset` to the end of the file (`bytes` long) no whole record
    /// is left; `reason` says what was found.
    Torn {
        offset: u64,
        bytes: u64,
        reason: String,
    },
}

/// Reads a journal from its start.
pub struct JournalReader {
    file: BufReader<File>,
    offset: u64,
    path: PathBuf,
    /// The header itself was cut: the journal holds nothing.
    torn_header: Option<u64>,
}

impl JournalReader {
    /// Opens `path` and checks its header. A file shorter than the header
    /// (a crash while it was made) reads as a torn tail with no record; a
    /// foreign file or another format version is an error that names it.
    pub fn open(path: &Path) -> Result<Self, JournalError> {
        let file = File::open(path).map_err(io_err(path))?;
        Self::from_file(file, path)
    }

    /// [`JournalReader::open`] on a file already open (and locked).
    pub fn from_file(file: File, path: &Path) -> Result<Self, JournalError> {
        let mut file = BufReader::with_capacity(256 * 1024, file);
        let mut header = [0u8; HEADER_LEN];
        let got = read_up_to(&mut file, &mut header).map_err(io_err(path))?;
        let mut reader = JournalReader {
            file,
            offset: got as u64,
            path: path.to_path_buf(),
            torn_header: None,
        };
        if got < HEADER_LEN {
            if header[..got.min(MAGIC.len())] != MAGIC[..got.min(MAGIC.len())] {
                return Err(JournalError::NotAJournal {
                    path: path.to_path_buf(),
                });
            }
            reader.torn_header = Some(got as u64);
            return Ok(reader);
        }
        if header[..8] != MAGIC {
            return Err(JournalError::NotAJournal {
                path: path.to_path_buf(),
            });
        }
        let found = u16::from_le_bytes([header[8], header[9]]);
        if found != FORMAT_VERSION {
            return Err(JournalError::Version {
                path: path.to_path_buf(),
                found,
                supported: FORMAT_VERSION,
            });
        }
        Ok(reader)
    }

    /// Where the next frame starts.
    pub fn offset(&self) -> u64 {
        self.offset
    }

    /// The next record, the end, or the torn tail.
    pub fn next_record(&mut self) -> Result<Next, JournalError> {
        if let Some(bytes) = self.torn_header.take() {
            return Ok(Next::Torn {
                offset: 0,
                bytes,
                reason: "the journal's header is cut short".to_string(),
            });
        }
        let start = self.offset;
        let mut head = [0u8; FRAME_HEAD];
        let got = read_up_to(&mut self.file, &mut head).map_err(io_err(&self.path))?;
        if got == 0 {
            return Ok(Next::End);
        }
        if got < FRAME_HEAD {
            return self.torn(start, got as u64, "a frame's length is cut short");
        }
        let len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]);
        let crc = u32::from_le_bytes([head[4], head[5], head[6], head[7]]);
        if len == 0 || len > MAX_RECORD {
            return self.torn(start, got as u64, &format!("a frame claims {len} bytes"));
        }
        let mut body = vec![0u8; len as usize];
        let read = read_up_to(&mut self.file, &mut body).map_err(io_err(&self.path))?;
        if read < body.len() {
            let what = format!("a frame of {len} bytes ends after {read}");
            return self.torn(start, (got + read) as u64, &what);
        }
        if checksum(len, &body) != crc {
            return self.torn(
                start,
                (got + read) as u64,
                "a frame's CRC32C does not match its bytes",
            );
        }
        self.offset = start + (FRAME_HEAD + body.len()) as u64;
        let kind = body[0];
        body.remove(0);
        Ok(Next::Record(Record {
            offset: start,
            kind,
            payload: body,
        }))
    }

    /// The tail from `start`: its size is the rest of the file, of which
    /// `consumed` bytes were read already.
    fn torn(&mut self, start: u64, consumed: u64, reason: &str) -> Result<Next, JournalError> {
        let mut rest = 0u64;
        let mut buf = [0u8; 64 * 1024];
        loop {
            match self.file.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => rest += n as u64,
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(io_err(&self.path)(e)),
            }
        }
        self.offset = start + consumed + rest;
        Ok(Next::Torn {
            offset: start,
            bytes: consumed + rest,
            reason: reason.to_string(),
        })
    }
}

/// Fills `buf` as far as the file goes; returns how much was read.
fn read_up_to(reader: &mut impl Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match reader.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}
