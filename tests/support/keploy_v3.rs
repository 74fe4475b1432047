//! Keploy's PostgresV3 layout, written from real traffic.
//!
//! Keploy's V3 recorder keeps no packets. It writes one `session` document
//! per recording (the start-up answer: ParameterStatus, BackendKeyData) and
//! one `query` document per invocation of a statement: its text
//! (`sqlNormalized`), the values bound to it (`bindValues`, `bindFormats`,
//! `paramOids`; all `omitempty`, so absent for a simple Query), the answer
//! decoded into logical cells (`rowDescription`, `rows`, `commandComplete`
//! or `error`) and its `<connID>:<seq>` `invocationId` (pkg/models/mock.go,
//! `PostgresV3QuerySpec`). [`keploy_v3`] writes what a [`Capture`] relayed
//! that way, from the messages of each connection (a message may span two
//! reads, so each side is reassembled first).
//!
//! Only the simple protocol is written, which is what psycopg2 speaks; a
//! Parse or a Bind fails the writer rather than being written wrong.

use std::fmt::Write as _;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};

use super::keploy_v1::{time, Capture, Chunk};

/// One whole message of one side; `tag` 0 for a tagless start-up packet,
/// `b'1'` for the one-byte answer to an SSL or GSSENC request.
struct Msg {
    from_client: bool,
    tag: u8,
    body: Vec<u8>,
    at: DateTime<Utc>,
}

/// Everything `capture` relayed as Keploy PostgresV3 documents: the first
/// connection's start-up as the session, then every Query of every
/// connection in the order it was sent.
pub fn keploy_v3(capture: &Capture) -> String {
    let chunks = capture.chunks();
    let mut connections: Vec<u64> = chunks.iter().map(|c| c.connection).collect();
    connections.sort_unstable();
    connections.dedup();
    let mut session = None;
    let mut queries: Vec<(DateTime<Utc>, String)> = Vec::new();
    for conn in connections {
        let msgs = reassemble(chunks.iter().filter(|c| c.connection == conn));
        // Keploy numbers connections from 0.
        let conn_id = conn - 1;
        let (startup, rest) = split_startup(&msgs);
        if session.is_none() {
            session = startup.map(|s| session_doc(s, conn_id));
        }
        queries.extend(query_docs(rest, conn_id));
    }
    queries.sort_by_key(|q| q.0);
    let mut docs: Vec<String> = session.into_iter().collect();
    docs.extend(queries.into_iter().map(|q| q.1));
    docs.iter()
        .enumerate()
        .map(|(n, body)| {
            format!("version: api.keploy.io/v1beta1\nkind: PostgresV3\nname: mock-{n}\n{body}")
        })
        .collect::<Vec<_>>()
        .join("---\n")
}

/// The messages of one connection in the order they were read.
fn reassemble<'a>(chunks: impl Iterator<Item = &'a Chunk>) -> Vec<Msg> {
    let mut out = Vec::new();
    let (mut client, mut server) = (Vec::<u8>::new(), Vec::<u8>::new());
    let mut started = false;
    let mut one_byte_answers = 0;
    for chunk in chunks {
        let buf = if chunk.from_client {
            &mut client
        } else {
            &mut server
        };
        buf.extend_from_slice(&chunk.bytes);
        loop {
            let (tag, header) = if chunk.from_client && !started {
                (0, 0)
            } else if !chunk.from_client && one_byte_answers > 0 {
                let Some(&answer) = buf.first() else { break };
                one_byte_answers -= 1;
                buf.drain(..1);
                out.push(Msg {
                    from_client: false,
                    tag: b'1',
                    body: vec![answer],
                    at: chunk.at,
                });
                continue;
            } else {
                (*buf.first().unwrap_or(&0), 1)
            };
            let Some(len) = buf.get(header..header + 4) else {
                break;
            };
            let len = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            if buf.len() < header + len {
                break;
            }
            let body = buf[header + 4..header + len].to_vec();
            buf.drain(..header + len);
            if tag == 0 {
                let code = body
                    .get(..4)
                    .map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]]));
                if matches!(code, Some(80_877_103 | 80_877_104)) {
                    one_byte_answers += 1;
                } else {
                    started = true;
                }
            }
            out.push(Msg {
                from_client: chunk.from_client,
                tag,
                body,
                at: chunk.at,
            });
        }
    }
    out
}

/// The start-up (StartupMessage to the first ReadyForQuery) and the rest.
fn split_startup(msgs: &[Msg]) -> (Option<&[Msg]>, &[Msg]) {
    let Some(first_ready) = msgs.iter().position(|m| !m.from_client && m.tag == b'Z') else {
        return (None, msgs);
    };
    (Some(&msgs[..=first_ready]), &msgs[first_ready + 1..])
}

/// `spec` of the session document.
fn session_doc(startup: &[Msg], conn_id: u64) -> String {
    let mut status = Vec::new();
    let (mut pid, mut key, mut auth, mut ssl, mut protocol) = (0, 0, "trust", None, None);
    for m in startup {
        match (m.from_client, m.tag) {
            (true, 0) if m.body.len() >= 4 => {
                let v = u32::from_be_bytes([m.body[0], m.body[1], m.body[2], m.body[3]]);
                if v >> 16 == 3 {
                    protocol = Some(format!("{}.{}", v >> 16, v & 0xffff));
                }
            }
            (false, b'1') => ssl = Some(m.body[0] as char),
            (false, b'S') => {
                let mut parts = m.body.split(|b| *b == 0);
                let name = String::from_utf8_lossy(parts.next().unwrap_or_default());
                let value = String::from_utf8_lossy(parts.next().unwrap_or_default());
                status.push((name.into_owned(), value.into_owned()));
            }
            (false, b'K') if m.body.len() >= 8 => {
                pid = i32::from_be_bytes([m.body[0], m.body[1], m.body[2], m.body[3]]);
                key = i32::from_be_bytes([m.body[4], m.body[5], m.body[6], m.body[7]]);
            }
            (false, b'R') if m.body.len() >= 4 => {
                auth = match i32::from_be_bytes([m.body[0], m.body[1], m.body[2], m.body[3]]) {
                    3 => "password",
                    5 => "md5",
                    10 => "scram",
                    _ => auth,
                };
            }
            _ => {}
        }
    }
    status.sort();
    let server_version = status
        .iter()
        .find(|(n, _)| n == "server_version")
        .map(|(_, v)| v.clone())
        .unwrap_or_default();
    let mut out = String::new();
    writeln!(
        out,
        "spec:\n    metadata:\n        type: config\n        connID: \"{conn_id}\"\n    postgresV3:\n        type: session\n        session:"
    )
    .ok();
    if let Some(p) = protocol {
        writeln!(out, "            protocolVersion: \"{p}\"").ok();
    }
    if let Some(s) = ssl {
        writeln!(out, "            sslResponse: \"{s}\"").ok();
    }
    writeln!(out, "            serverVersion: {}", quote(&server_version)).ok();
    out.push_str("            parameterStatus:\n");
    for (name, value) in &status {
        writeln!(out, "                {}: {}", quote(name), quote(value)).ok();
    }
    writeln!(
        out,
        "            backendProcessID: {pid}\n            backendSecretKey: {key}\n            observedAuthMode: {auth}"
    )
    .ok();
    close(
        &mut out,
        &startup[0].at,
        &startup[startup.len() - 1].at,
        conn_id,
    );
    out
}

/// `(sent, spec)` of each Query after the start-up.
fn query_docs(msgs: &[Msg], conn_id: u64) -> Vec<(DateTime<Utc>, String)> {
    let mut out = Vec::new();
    let mut before = 'I';
    let mut seq = 0;
    let mut at = 0;
    while at < msgs.len() {
        let m = &msgs[at];
        at += 1;
        if !m.from_client || m.tag == b'X' {
            continue;
        }
        assert_eq!(
            m.tag, b'Q',
            "this writer speaks the simple protocol only, got {:?}",
            m.tag as char
        );
        let sql = cstring(&m.body);
        let answer_len = msgs[at..]
            .iter()
            .position(|r| !r.from_client && r.tag == b'Z')
            .expect("every Query is answered");
        let answer = &msgs[at..=at + answer_len];
        at += answer_len + 1;
        let last = &answer[answer.len() - 1];
        out.push((
            m.at,
            query_doc(&sql, answer, before, conn_id, seq, m.at, last.at),
        ));
        before = last.body.first().map_or('I', |s| *s as char);
        seq += 1;
    }
    out
}

fn query_doc(
    sql: &str,
    answer: &[Msg],
    before: char,
    conn_id: u64,
    seq: u64,
    sent: DateTime<Utc>,
    done: DateTime<Utc>,
) -> String {
    let hash: String = Sha256::digest(sql.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect();
    let mut out = String::new();
    writeln!(
        out,
        "spec:\n    metadata:\n        type: mocks\n        connID: \"{conn_id}\"\n    postgresV3:\n        type: query\n        query:\n            sqlAstHash: sha256:{hash}\n            sqlNormalized: {}\n            invocationId: \"{conn_id}:{seq}\"",
        quote(sql)
    )
    .ok();
    if before != 'I' {
        writeln!(out, "            precedingTxState: {before}").ok();
    }
    out.push_str("            response:\n");
    let mut types = Vec::new();
    let mut rows = Vec::new();
    for m in answer {
        match m.tag {
            b'T' => types = row_description(&mut out, &m.body),
            b'D' => rows.push(data_row(&m.body, &types)),
            b'C' => writeln!(
                out,
                "                commandComplete: {}",
                quote(&cstring(&m.body))
            )
            .unwrap_or_default(),
            b'E' => {
                out.push_str("                error:\n");
                for (letter, key) in [
                    ('S', "severity"),
                    ('C', "code"),
                    ('M', "message"),
                    ('D', "detail"),
                    ('H', "hint"),
                ] {
                    if let Some(text) = error_field(&m.body, letter) {
                        writeln!(out, "                    {key}: {}", quote(&text)).ok();
                    }
                }
            }
            _ => {}
        }
    }
    if !rows.is_empty() {
        out.push_str("                rows:\n");
        for row in rows {
            if row.is_empty() {
                out.push_str("                    - []\n");
            }
            for (i, cell) in row.iter().enumerate() {
                let lead = if i == 0 { "- - " } else { "  - " };
                writeln!(out, "                    {lead}{cell}").ok();
            }
        }
    }
    close(&mut out, &sent, &done, conn_id);
    out
}

fn close(out: &mut String, sent: &DateTime<Utc>, done: &DateTime<Utc>, conn_id: u64) {
    writeln!(
        out,
        "    reqTimestampMock: {}\n    resTimestampMock: {}\nconnectionId: \"{conn_id}\"",
        time(*sent),
        time(*done)
    )
    .ok();
}

/// Writes a RowDescription's columns; returns their type OIDs.
fn row_description(out: &mut String, body: &[u8]) -> Vec<u32> {
    let count = u16::from_be_bytes([body[0], body[1]]);
    let mut at = 2;
    let mut types = Vec::new();
    out.push_str("                rowDescription:\n");
    for _ in 0..count {
        let name = cstring(&body[at..]);
        at += name.len() + 1;
        let f = &body[at..at + 18];
        at += 18;
        let table = u32::from_be_bytes([f[0], f[1], f[2], f[3]]);
        let column = i16::from_be_bytes([f[4], f[5]]);
        let type_oid = u32::from_be_bytes([f[6], f[7], f[8], f[9]]);
        let size = i16::from_be_bytes([f[10], f[11]]);
        let modifier = i32::from_be_bytes([f[12], f[13], f[14], f[15]]);
        writeln!(
            out,
            "                    - name: {}\n                      tableOid: {table}\n                      colAttrNum: {column}\n                      typeOid: {type_oid}\n                      typeSize: {size}\n                      typeMod: {modifier}",
            quote(&name)
        )
        .ok();
        types.push(type_oid);
    }
    types
}

/// A DataRow's text values as Keploy's logical cells, in YAML.
fn data_row(body: &[u8], types: &[u32]) -> Vec<String> {
    let count = u16::from_be_bytes([body[0], body[1]]) as usize;
    let mut at = 2;
    (0..count)
        .map(|i| {
            let len = i32::from_be_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]]);
            at += 4;
            let Ok(len) = usize::try_from(len) else {
                return "null".to_string();
            };
            let text = String::from_utf8_lossy(&body[at..at + len]).into_owned();
            at += len;
            cell(&text, types.get(i).copied().unwrap_or(0))
        })
        .collect()
}

/// One text value as the logical value Keploy keeps for its type: numbers
/// and booleans as YAML scalars, anything else as its text.
fn cell(text: &str, type_oid: u32) -> String {
    match type_oid {
        16 => (text == "t").to_string(),
        20 | 21 | 23 | 26 if text.parse::<i64>().is_ok() => text.to_string(),
        700 | 701 => match text.parse::<f64>() {
            Ok(f) if f.is_finite() => format!("{f:?}"),
            _ => quote(text),
        },
        _ => quote(text),
    }
}

fn cstring(bytes: &[u8]) -> String {
    let end = bytes.iter().position(|b| *b == 0).unwrap_or(bytes.len());
    String::from_utf8_lossy(&bytes[..end]).into_owned()
}

fn error_field(body: &[u8], letter: char) -> Option<String> {
    let mut at = 0;
    while at < body.len() && body[at] != 0 {
        let text = cstring(&body[at + 1..]);
        if body[at] as char == letter {
            return Some(text);
        }
        at += text.len() + 2;
    }
    None
}

/// A YAML double-quoted scalar (JSON's string syntax is one).
fn quote(text: &str) -> String {
    serde_json::to_string(text).unwrap_or_default()
}
