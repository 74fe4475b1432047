//! mocks.yaml read document by document, and one document read back when
//! its answer is served.
//!
//! A recording may be far larger than the memory a CI runner has, so the
//! loader never holds the whole file: it reads a document at a time, hands
//! each parsed mock to a [`MockSink`] together with where the document lies
//! ([`DocRef`]), and the sink keeps what it needs (the matcher keeps the
//! identity, not the answer). Serving re-reads and re-parses that one
//! document. The file may have changed in between (a new recording over
//! the old one, a truncation): each [`DocRef`] carries a digest of the
//! document's bytes, so a changed document is an error naming the file,
//! never a wrong answer.

use std::fs;
use std::hash::Hasher;
use std::io::BufRead;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use super::keploy::KeployMocks;
use super::PgMock;

/// A file or document that could not be loaded; the rest of the set still is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadProblem {
    /// File, plus `#N` for the Nth document of mocks.yaml.
    pub location: String,
    pub message: String,
}

/// Where a document of mocks.yaml lies, and what it held when loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DocRef {
    /// Byte offset of the document's first line.
    pub offset: u64,
    /// Length in bytes, the end marker included.
    pub len: u32,
    /// The file's line number of the document's first line.
    pub line: u32,
    /// [`bytes_digest`] of the document when it was loaded.
    pub digest: u32,
}

/// Receives the mocks of a test set as the loader reads them.
pub trait MockSink {
    /// The file the following [`MockSink::stored`] documents come from.
    fn open(&mut self, file: std::sync::Arc<MockFile>) {
        let _ = file;
    }
    /// A mock of recplay's own format and where its document lies.
    fn stored(&mut self, mock: PgMock, at: DocRef);
    /// A mock converted from Keploy's documents: it has no document of its
    /// own to read back, so it is kept whole.
    fn held(&mut self, mock: PgMock);
}

/// Every mock kept whole, in order: what [`super::TestSetDir::load`]
/// returns.
impl MockSink for Vec<PgMock> {
    fn stored(&mut self, mock: PgMock, _at: DocRef) {
        self.push(mock);
    }
    fn held(&mut self, mock: PgMock) {
        self.push(mock);
    }
}

/// Why a served document could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum ReadBackError {
    #[error("{path}: could not read the mock at line {line}: {source}")]
    Io {
        path: PathBuf,
        line: u32,
        #[source]
        source: std::io::Error,
    },
    #[error("{path} ends before the mock at line {line}: the file was truncated after the test set was loaded; run the tests again")]
    Truncated { path: PathBuf, line: u32 },
    #[error("{path} changed after the test set was loaded (the mock at line {line} is not what was loaded); do not record into a test set while it is replayed, and run the tests again")]
    Changed { path: PathBuf, line: u32 },
    #[error("{path}: the mock at line {line} no longer parses: {message}")]
    Parse {
        path: PathBuf,
        line: u32,
        message: String,
    },
}

/// mocks.yaml, open for reading answers back while the mock server runs.
#[derive(Debug)]
pub struct MockFile {
    path: PathBuf,
    file: fs::File,
}

impl MockFile {
    /// Opens `path`; the handle stays open so a file replaced by rename
    /// keeps serving what was loaded.
    pub fn open(path: &Path) -> std::io::Result<MockFile> {
        Ok(MockFile {
            path: path.to_path_buf(),
            file: fs::File::open(path)?,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The open file, for the loader's one pass from the start.
    pub(crate) fn file(&self) -> &fs::File {
        &self.file
    }

    /// The mock of the document at `at`, parsed again, or why it is no
    /// longer the document that was loaded.
    pub fn read(&self, at: &DocRef) -> Result<PgMock, ReadBackError> {
        let mut bytes = vec![0; at.len as usize];
        if let Err(source) = self.file.read_exact_at(&mut bytes, at.offset) {
            return Err(if source.kind() == std::io::ErrorKind::UnexpectedEof {
                ReadBackError::Truncated {
                    path: self.path.clone(),
                    line: at.line,
                }
            } else {
                ReadBackError::Io {
                    path: self.path.clone(),
                    line: at.line,
                    source,
                }
            });
        }
        if bytes_digest(&bytes) != at.digest {
            return Err(ReadBackError::Changed {
                path: self.path.clone(),
                line: at.line,
            });
        }
        let doc = Document {
            bytes,
            offset: at.offset,
            line: at.line as usize,
            ended: true,
            cut_mid_line: false,
        };
        parse_mock(&doc).map_err(|message| ReadBackError::Parse {
            path: self.path.clone(),
            line: at.line,
            message,
        })
    }
}

/// A digest of a document's bytes, to tell at serve time whether it is
/// still the one loaded. In memory only, and kept for every mock, so 32
/// bits: it guards against a file changed by mistake, not by an attacker,
/// and a changed document must also still parse, and (in the matcher) still
/// carry the loaded mock's name, to be served.
pub fn bytes_digest(bytes: &[u8]) -> u32 {
    let mut h = std::collections::hash_map::DefaultHasher::new();
    h.write(bytes);
    let h = h.finish();
    (h ^ (h >> 32)) as u32
}

/// One `---`-separated document of mocks.yaml.
#[derive(Debug, Default)]
pub struct Document {
    pub bytes: Vec<u8>,
    /// Byte offset in the file of its first line.
    pub offset: u64,
    /// The file's line number of the document's first line.
    pub line: usize,
    /// Whether it closes with the `...` end marker.
    pub ended: bool,
    /// Whether it is the file's last and the file stops inside a line.
    pub cut_mid_line: bool,
}

impl Document {
    /// Where this document lies, for reading it back.
    pub fn at(&self) -> DocRef {
        DocRef {
            offset: self.offset,
            len: u32::try_from(self.bytes.len()).unwrap_or(u32::MAX),
            line: u32::try_from(self.line).unwrap_or(u32::MAX),
            digest: bytes_digest(&self.bytes),
        }
    }
}

/// Calls `visit` with each document of `reader`, holding one at a time.
/// Splits at `---` lines, and after `...` lines, so what follows a
/// document's end marker (a separator cut short, say) is never taken for
/// part of it. The last document is visited even when empty.
pub fn for_each_document(
    mut reader: impl BufRead,
    mut visit: impl FnMut(&Document),
) -> std::io::Result<()> {
    let mut doc = Document {
        line: 1,
        ..Default::default()
    };
    let mut line = Vec::new();
    let (mut offset, mut line_no, mut ends_in_newline) = (0u64, 0usize, true);
    loop {
        line.clear();
        let n = reader.read_until(b'\n', &mut line)?;
        if n == 0 {
            break;
        }
        line_no += 1;
        ends_in_newline = line.ends_with(b"\n");
        let content = line.trim_ascii_end();
        let (separator, end_marker) = (content == b"---", content == b"...");
        if separator || end_marker {
            if end_marker {
                doc.bytes.extend_from_slice(&line);
            }
            doc.ended = end_marker;
            visit(&doc);
            doc.bytes.clear();
            doc.offset = offset + n as u64;
            doc.line = line_no + 1;
            doc.ended = false;
        } else {
            doc.bytes.extend_from_slice(&line);
        }
        offset += n as u64;
    }
    doc.cut_mid_line = offset > 0 && !ends_in_newline;
    visit(&doc);
    Ok(())
}

/// What a pass over mocks.yaml found besides recplay's own mocks.
pub(crate) struct Scan {
    pub(crate) problems: Vec<LoadProblem>,
    pub(crate) keploy: KeployMocks,
    /// One past the highest recorded connection: Keploy's converted
    /// connections are numbered from here.
    pub(crate) next_connection: u64,
    /// Reading stopped early (an I/O error); what loaded before is kept.
    pub(crate) error: Option<String>,
    /// How many of Keploy's documents were read.
    pub(crate) keploy_documents: usize,
    /// The file's last document, when it failed to parse and lacks its
    /// end: a write cut by a crash (of a recplay older than the journal),
    /// not a mock anyone recorded whole.
    pub(crate) torn: Option<LoadProblem>,
}

/// Parses each document on its own, holding one at a time, so one bad
/// document (typically the last, cut by a crash) does not hide the others
/// and a recording larger than memory still loads. recplay's documents go
/// to `sink`; Keploy's are gathered for [`KeployMocks::finish`].
pub(crate) fn scan_mock_documents(
    reader: impl std::io::BufRead,
    path: &Path,
    sink: &mut dyn MockSink,
) -> Scan {
    let mut scan = Scan {
        problems: Vec::new(),
        keploy: KeployMocks::default(),
        next_connection: 1,
        error: None,
        keploy_documents: 0,
        torn: None,
    };
    let mut index = 0;
    // A failed document is a problem once another one follows it; the
    // last one may be a torn tail instead.
    let mut failed_last: Option<(LoadProblem, bool)> = None;
    let read = for_each_document(reader, |doc| {
        if doc.bytes.trim_ascii().is_empty() {
            return;
        }
        if let Some((problem, _)) = failed_last.take() {
            scan.problems.push(problem);
        }
        index += 1;
        let location = || format!("{}#{}", path.display(), index);
        // Keploy's documents (a string `version`) take their own path.
        if let Ok(text) = std::str::from_utf8(&doc.bytes) {
            if super::keploy::is_keploy_document(text) {
                scan.keploy_documents += 1;
                if let Err(message) = scan.keploy.add(text, location()) {
                    scan.problems.push(LoadProblem {
                        location: location(),
                        message,
                    });
                }
                return;
            }
        }
        match parse_mock(doc) {
            Ok(mock) => {
                scan.next_connection = scan.next_connection.max(mock.spec.connection + 1);
                sink.stored(mock, doc.at());
            }
            Err(message) => {
                let problem = LoadProblem {
                    location: location(),
                    message,
                };
                failed_last = Some((problem, doc.ended));
            }
        }
    });
    match failed_last {
        Some((problem, false)) if read.is_ok() => scan.torn = Some(problem),
        Some((problem, _)) => scan.problems.push(problem),
        None => {}
    }
    if let Err(e) = read {
        scan.error = Some(format!(
            "could not be read past mock #{index}: {e}; the mocks before it are served"
        ));
    }
    scan
}

/// One document parsed, refusing one written by a newer recplay or one
/// cut short.
pub(crate) fn parse_mock(doc: &Document) -> Result<PgMock, String> {
    let text =
        utf8(&doc.bytes).map_err(|e| format!("the document starting at line {} {e}", doc.line))?;
    let mock: PgMock = serde_yaml::from_str(text).map_err(|e| {
        // Parsed again behind as many blank lines as precede the document,
        // so the error's line numbers are the file's.
        let padded = "\n".repeat(doc.line.saturating_sub(1)) + text;
        match serde_yaml::from_str::<PgMock>(&padded) {
            Err(e) => e.to_string(),
            Ok(_) => e.to_string(),
        }
    })?;
    newer_format(u64::from(mock.version))?;
    mock.check_kind()?;
    // Mocks written before the end marker can only be caught when the cut
    // fell inside a line.
    let marked = mock.version >= super::END_MARKER_VERSION;
    if (marked && !doc.ended) || doc.cut_mid_line {
        return Err(format!(
            "the document starting at line {} is cut short{}: the recording stopped while writing it",
            doc.line,
            if marked { " (it lacks the closing `...`)" } else { "" }
        ));
    }
    Ok(mock)
}

/// `bytes` as UTF-8, or where it stops being UTF-8.
pub(crate) fn utf8(bytes: &[u8]) -> Result<&str, String> {
    std::str::from_utf8(bytes).map_err(|e| {
        let at = e.valid_up_to();
        let line = bytes[..at].iter().filter(|&&b| b == b'\n').count() + 1;
        format!("is not UTF-8 text: invalid byte at offset {at} (line {line})")
    })
}

/// Refuses what a newer recplay wrote: its meaning may have changed in
/// ways this reader would get wrong.
pub(crate) fn newer_format(version: u64) -> Result<(), String> {
    if version > u64::from(super::NEWEST_READ_VERSION) {
        return Err(format!(
            "was written by a newer recplay (format {version}; this one reads up to {}): upgrade recplay",
            super::NEWEST_READ_VERSION
        ));
    }
    Ok(())
}
