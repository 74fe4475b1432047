//! The agent wire protocol, version 1: newline-delimited JSON over the Unix
//! socket named in `RECPLAY_COVERAGE_SOCKET` (docs/coverage-protocol.md).
//!
//! recplay sends requests (`snapshot`, `static`), each with an id; an agent
//! answers each request with one message carrying the same id. The agent
//! speaks first, once, with `hello`.

use std::collections::BTreeMap;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufRead, AsyncBufReadExt};

/// Bumped on any change an older agent or recplay could misread.
pub const PROTOCOL_VERSION: u32 = 1;

/// Names the socket the app's agents connect to; set for the app process.
pub const SOCKET_ENV: &str = "RECPLAY_COVERAGE_SOCKET";
/// The source tree an agent measures (default: the app's working directory).
pub const ROOT_ENV: &str = "RECPLAY_COVERAGE_ROOT";
/// `1` to record arcs for branch coverage, `0` for lines only.
pub const BRANCH_ENV: &str = "RECPLAY_COVERAGE_BRANCH";

/// A static description of a large tree is the biggest message; anything
/// past this is a broken agent, and reading it whole would exhaust memory.
pub const MAX_MESSAGE_BYTES: usize = 256 * 1024 * 1024;

/// What an agent says first.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Hello {
    pub version: u32,
    pub pid: u32,
    #[serde(default)]
    pub ppid: Option<u32>,
    pub language: String,
    /// The tracing engine (`ctrace`, `pytrace`, `sysmon`, ...).
    pub engine: String,
    /// How the agent cuts snapshots (`context` or `restart`).
    #[serde(default)]
    pub mode: Option<String>,
    #[serde(default)]
    pub branch: bool,
    /// The source root the agent measures.
    #[serde(default)]
    pub root: Option<String>,
    #[serde(default)]
    pub tool: Option<String>,
}

/// Lines (and arcs) one file ran since the previous snapshot.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct FileDelta {
    #[serde(default)]
    pub lines: Vec<u32>,
    /// `[from, to]` line transitions; a negative number is an entry to or
    /// exit from the code object starting at that line (coverage.py's arcs).
    #[serde(default)]
    pub arcs: Vec<(i32, i32)>,
}

/// One file's denominators: what could run.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct StaticFile {
    /// Executable statements, each by its first line.
    pub lines: Vec<u32>,
    /// Branch lines and the destinations each may jump to.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub branches: BTreeMap<u32, Vec<i32>>,
    /// Lines inside a multi-line statement, mapped to its first line, so an
    /// executed inner line counts for the statement.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub multiline: BTreeMap<u32, u32>,
}

/// Everything an agent may send, told apart by its `type` field.
#[derive(Debug, Clone)]
pub enum AgentMessage {
    Hello(Hello),
    Delta {
        id: u64,
        files: BTreeMap<String, FileDelta>,
    },
    Static {
        id: u64,
        files: BTreeMap<String, StaticFile>,
        /// Files that could not be parsed, with the reason.
        skipped: BTreeMap<String, String>,
    },
    Error {
        id: Option<u64>,
        message: String,
    },
}

// serde's internally tagged enums buffer their content and then cannot read
// the integer map keys `StaticFile` uses, so the tag is read first and the
// body parsed as its own struct.
#[derive(Deserialize)]
struct Tag {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct DeltaBody {
    id: u64,
    #[serde(default)]
    files: BTreeMap<String, FileDelta>,
}

#[derive(Deserialize)]
struct StaticBody {
    id: u64,
    #[serde(default)]
    files: BTreeMap<String, StaticFile>,
    #[serde(default)]
    skipped: BTreeMap<String, String>,
}

#[derive(Deserialize)]
struct ErrorBody {
    #[serde(default)]
    id: Option<u64>,
    message: String,
}

impl AgentMessage {
    /// The request this message answers, if any.
    pub fn id(&self) -> Option<u64> {
        match self {
            AgentMessage::Hello(_) => None,
            AgentMessage::Delta { id, .. } | AgentMessage::Static { id, .. } => Some(*id),
            AgentMessage::Error { id, .. } => *id,
        }
    }
}

/// Requests recplay sends.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Request {
    /// Report what ran since the previous snapshot, then start afresh.
    Snapshot { id: u64 },
    /// Describe every source file's coverable lines and branches (once).
    Static { id: u64 },
}

impl Request {
    /// One protocol line, newline included.
    pub fn to_line(self) -> Vec<u8> {
        // Serialising this enum of integers cannot fail.
        let mut line = serde_json::to_vec(&self).unwrap_or_default();
        line.push(b'\n');
        line
    }
}

/// Reads one newline-terminated message; `Ok(None)` at a clean end of stream.
/// Refuses a line longer than `max` instead of buffering it.
pub async fn read_message<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    max: usize,
) -> Result<Option<AgentMessage>> {
    let mut line = Vec::new();
    loop {
        let chunk = reader
            .fill_buf()
            .await
            .context("reading from a coverage agent")?;
        if chunk.is_empty() {
            if line.iter().all(u8::is_ascii_whitespace) {
                return Ok(None);
            }
            bail!("a coverage agent closed its connection in the middle of a message");
        }
        let (take, done) = match chunk.iter().position(|&b| b == b'\n') {
            Some(i) => (i + 1, true),
            None => (chunk.len(), false),
        };
        if line.len() + take > max + 1 {
            bail!(
                "a coverage agent sent a message over {max} bytes; \
                 the agent is broken or not speaking recplay's protocol"
            );
        }
        line.extend_from_slice(&chunk[..take]);
        reader.consume(take);
        if done {
            if line.iter().all(u8::is_ascii_whitespace) {
                line.clear();
                continue;
            }
            return parse_message(&line).map(Some);
        }
    }
}

/// Parses one message, naming what was wrong with it.
pub fn parse_message(line: &[u8]) -> Result<AgentMessage> {
    let context = || {
        let preview = String::from_utf8_lossy(&line[..line.len().min(120)]).into_owned();
        format!("a coverage agent sent a message recplay cannot read: {preview:?}")
    };
    let tag: Tag = serde_json::from_slice(line).with_context(context)?;
    let message = match tag.kind.as_str() {
        "hello" => AgentMessage::Hello(serde_json::from_slice(line).with_context(context)?),
        "delta" => {
            let body: DeltaBody = serde_json::from_slice(line).with_context(context)?;
            AgentMessage::Delta {
                id: body.id,
                files: body.files,
            }
        }
        "static" => {
            let body: StaticBody = serde_json::from_slice(line).with_context(context)?;
            AgentMessage::Static {
                id: body.id,
                files: body.files,
                skipped: body.skipped,
            }
        }
        "error" => {
            let body: ErrorBody = serde_json::from_slice(line).with_context(context)?;
            AgentMessage::Error {
                id: body.id,
                message: body.message,
            }
        }
        other => bail!(
            "a coverage agent sent a message of unknown type {other:?}; \
             it speaks a different protocol version than recplay"
        ),
    };
    Ok(message)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn reads_messages_and_skips_blank_lines() {
        let input = b"{\"type\":\"hello\",\"version\":1,\"pid\":7,\"language\":\"python\",\"engine\":\"ctrace\"}\n\n{\"type\":\"delta\",\"id\":3,\"files\":{\"/a.py\":{\"lines\":[1,2],\"arcs\":[[-1,1],[1,2]]}}}\n";
        let mut reader = &input[..];
        let hello = read_message(&mut reader, 1024)
            .await
            .expect("read")
            .expect("hello");
        assert!(matches!(hello, AgentMessage::Hello(ref h) if h.pid == 7 && h.engine == "ctrace"));
        let delta = read_message(&mut reader, 1024)
            .await
            .expect("read")
            .expect("delta");
        match delta {
            AgentMessage::Delta { id, files } => {
                assert_eq!(id, 3);
                assert_eq!(files["/a.py"].lines, vec![1, 2]);
                assert_eq!(files["/a.py"].arcs, vec![(-1, 1), (1, 2)]);
            }
            other => panic!("expected a delta, got {other:?}"),
        }
        assert!(read_message(&mut reader, 1024)
            .await
            .expect("eof")
            .is_none());
    }

    #[tokio::test]
    async fn refuses_an_oversized_line_and_a_truncated_one() {
        let long = [b'x'; 100];
        let mut reader = &long[..];
        let err = read_message(&mut reader, 10).await.expect_err("too long");
        assert!(err.to_string().contains("over 10 bytes"), "{err}");

        let truncated = b"{\"type\":\"delta\"";
        let mut reader = &truncated[..];
        let err = read_message(&mut reader, 1024)
            .await
            .expect_err("truncated");
        assert!(err.to_string().contains("middle of a message"), "{err}");
    }

    #[tokio::test]
    async fn names_malformed_json() {
        let mut reader = &b"not json\n"[..];
        let err = read_message(&mut reader, 1024).await.expect_err("bad json");
        assert!(format!("{err:#}").contains("cannot read"), "{err:#}");
    }

    #[test]
    fn reads_a_static_description_with_numeric_keys() {
        let line = br#"{"type":"static","id":9,"files":{"/a.py":{"lines":[1,2,4],"branches":{"2":[3,-1]},"multiline":{"5":4}}},"skipped":{"/b.py":"SyntaxError"}}"#;
        match parse_message(line).expect("static") {
            AgentMessage::Static { id, files, skipped } => {
                assert_eq!(id, 9);
                assert_eq!(files["/a.py"].branches[&2], vec![3, -1]);
                assert_eq!(files["/a.py"].multiline[&5], 4);
                assert_eq!(skipped["/b.py"], "SyntaxError");
            }
            other => panic!("expected static, got {other:?}"),
        }
        let err = parse_message(br#"{"type":"bye"}"#).expect_err("unknown type");
        assert!(err.to_string().contains("unknown type"), "{err}");
    }

    #[test]
    fn requests_are_one_json_line() {
        assert_eq!(
            Request::Snapshot { id: 4 }.to_line(),
            b"{\"type\":\"snapshot\",\"id\":4}\n".to_vec()
        );
    }

    /// Whatever an agent sends, a line is a message or an error saying
    /// recplay cannot read it: never a panic, never a stack overflow.
    #[test]
    fn arbitrary_lines_are_messages_or_errors() {
        let valid: [&[u8]; 4] = [
            br#"{"type":"hello","version":1,"pid":7,"language":"python","engine":"ctrace"}"#,
            br#"{"type":"delta","id":3,"files":{"/a.py":{"lines":[1,2],"arcs":[[-1,1],[1,2]]}}}"#,
            br#"{"type":"static","id":9,"files":{"/a.py":{"lines":[1],"branches":{"2":[3,-1]},"multiline":{"5":4}}}}"#,
            br#"{"type":"error","id":2,"message":"boom"}"#,
        ];
        let mut rng = recplay_proxy::test_rng::Rng::new(10);
        for round in 0..20_000 {
            let line = if round % 10 == 0 {
                rng.bytes(100)
            } else {
                rng.damage(valid[round % valid.len()])
            };
            if let Err(e) = parse_message(&line) {
                let message = format!("{e:#}");
                assert!(
                    message.contains("cannot read") || message.contains("unknown type"),
                    "{message}"
                );
            }
        }
    }

    #[test]
    fn out_of_range_numbers_and_deep_nesting_are_refused() {
        let deep = format!(
            r#"{{"type":"delta","id":1,"files":{}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        for line in [
            br#"{"type":"delta","id":1,"files":{"/a.py":{"lines":[-1]}}}"#.to_vec(),
            br#"{"type":"delta","id":1,"files":{"/a.py":{"lines":[4294967296]}}}"#.to_vec(),
            br#"{"type":"delta","id":1,"files":{"/a.py":{"arcs":[[1,99999999999]]}}}"#.to_vec(),
            br#"{"type":"delta","id":1e30,"files":{}}"#.to_vec(),
            br#"{"type":"delta","id":-1}"#.to_vec(),
            br#"{"type":"static","id":1,"files":{"/a.py":{"lines":[1],"branches":{"-2":[1]}}}}"#
                .to_vec(),
            br#"{"type":"hello","version":1,"pid":1e400,"language":"x","engine":"y"}"#.to_vec(),
            br#"{"type":1}"#.to_vec(),
            br#"[]"#.to_vec(),
            deep.into_bytes(),
        ] {
            let e = parse_message(&line)
                .expect_err(&String::from_utf8_lossy(&line[..line.len().min(80)]));
            assert!(format!("{e:#}").contains("cannot read"), "{e:#}");
        }
    }
}
