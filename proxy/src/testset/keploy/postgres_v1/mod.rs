//! Keploy's `Postgres` mocks (its v1 layout) as recplay mocks.
//!
//! Keploy wrote one document per round trip of a connection: the packets
//! the client sent (`postgresrequests`) and those the server answered
//! (`postgresresponses`), with their times; a start-up with a password
//! spans two documents. recplay's exchange framer already knows how to
//! turn a connection's messages into exchanges, what is session-level and
//! what never to store (authentication), so the documents are grouped by
//! connection, in file order, and their messages fed through the framer
//! recplay's recorder uses ([`ConnFramer`]): the mocks come out as if
//! recplay had recorded the traffic itself.
//!
//! - [`packets`]: one packet as protocol messages.

mod packets;

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use serde_yaml::Value;

use crate::testset::pg_exchange::lifetime::is_session_sql;
use crate::testset::pg_exchange::ConnFramer;
use crate::testset::pg_mock::{FrontendMsg, Lifetime, MockSpec};
use crate::testset::PgMock;
use crate::window::TestWindows;

/// The `Postgres` documents of a mocks.yaml, in file order.
#[derive(Debug, Default)]
pub struct Documents {
    docs: Vec<Document>,
}

#[derive(Debug)]
struct Document {
    name: String,
    location: String,
    /// Keploy's connection id, when it wrote one.
    connection: Option<String>,
    requests: Vec<Value>,
    responses: Vec<Value>,
    requested: DateTime<Utc>,
    answered: DateTime<Utc>,
}

impl Documents {
    /// Keeps one `kind: Postgres` document for [`Documents::convert`].
    pub fn add(&mut self, doc: &Value, name: String, location: String) -> Result<(), String> {
        let spec = doc
            .get("spec")
            .ok_or("a Keploy Postgres mock without a `spec`")?;
        let packets = |key: &str| match spec.get(key) {
            Some(Value::Sequence(items)) => items.clone(),
            _ => Vec::new(),
        };
        let time = |key: &str| -> Result<DateTime<Utc>, String> {
            let text = spec
                .get(key)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("a Keploy Postgres mock without `{key}`"))?;
            DateTime::parse_from_rfc3339(text)
                .map(|t| t.with_timezone(&Utc))
                .map_err(|e| format!("`{key}: {text}` is not a time: {e}"))
        };
        let connection = doc
            .get("connectionId")
            .or_else(|| spec.get("metadata").and_then(|m| m.get("connID")))
            .and_then(|id| match id {
                Value::String(s) if !s.is_empty() => Some(s.clone()),
                Value::Number(n) => Some(n.to_string()),
                _ => None,
            });
        let requested = time("reqtimestampmock")?;
        self.docs.push(Document {
            name,
            location,
            connection,
            requests: packets("postgresrequests"),
            responses: packets("postgresresponses"),
            requested,
            answered: time("restimestampmock").unwrap_or(requested),
        });
        Ok(())
    }

    /// The documents as recplay mocks, numbering connections from
    /// `first_connection`; and `(location, message)` for each document that
    /// could not be read (the rest of its connection is then left out, as
    /// its state is unknown).
    pub fn convert(self, first_connection: u64) -> (Vec<PgMock>, Vec<(String, String)>) {
        let mut out = Output::default();
        let mut open: HashMap<String, Connection> = HashMap::new();
        let mut next_number = first_connection;
        // Documents without an id: a start-up opens a new connection, the
        // rest continue the last one.
        let mut anonymous = 0u64;
        for doc in self.docs {
            let starts = doc.requests.first().is_some_and(packets::is_startup);
            let key = match &doc.connection {
                Some(id) => format!("id {id}"),
                None => {
                    let current = format!("#{anonymous}");
                    if anonymous == 0 || (starts && open.get(&current).is_some_and(|c| c.started)) {
                        anonymous += 1;
                    }
                    format!("#{anonymous}")
                }
            };
            let reopen = starts && open.get(&key).is_some_and(|c| c.started);
            if reopen || !open.contains_key(&key) {
                if let Some(old) = open.remove(&key) {
                    old.close(&key);
                }
                open.insert(key.clone(), Connection::new(next_number));
                next_number += 1;
            }
            let Some(conn) = open.get_mut(&key) else {
                continue;
            };
            conn.feed(&doc, &mut out);
        }
        for (key, conn) in open {
            conn.close(&key);
        }
        (out.mocks, out.problems)
    }
}

#[derive(Default)]
struct Output {
    mocks: Vec<PgMock>,
    problems: Vec<(String, String)>,
    names: HashSet<String>,
}

impl Output {
    /// Names a mock after the document that completed it, unique in the set.
    fn push(&mut self, doc_name: &str, spec: MockSpec) {
        let base = if doc_name.is_empty() {
            "keploy-mock"
        } else {
            doc_name
        };
        let mut name = base.to_string();
        let mut n = 1;
        while self.names.contains(&name) {
            n += 1;
            name = format!("{base}-{n}");
        }
        self.names.insert(name.clone());
        self.mocks.push(PgMock::new(name, spec));
    }
}

/// The lifetime of a connection's first exchange when its start-up is not
/// in the recording (Keploy left it out): the recorder takes position 0 for
/// the start-up, session-level by definition, but here it is an ordinary
/// exchange and is judged by its statements.
fn first_without_startup(spec: &MockSpec) -> Lifetime {
    let session = spec.requests.iter().all(|r| match r {
        FrontendMsg::Query { query } | FrontendMsg::Parse { query, .. } => is_session_sql(query),
        FrontendMsg::CopyData { .. } | FrontendMsg::FunctionCall { .. } => false,
        _ => true,
    });
    if session {
        Lifetime::Session
    } else {
        Lifetime::Unattributed
    }
}

/// One connection being rebuilt.
struct Connection {
    recorder: ConnFramer,
    decoding: packets::Decoding,
    /// Its start-up was seen.
    started: bool,
    /// A document could not be read: the rest is skipped.
    broken: bool,
}

impl Connection {
    fn new(number: u64) -> Self {
        Connection {
            // No windows: tests are attributed once every mock is built
            // (see `super::windows`).
            recorder: ConnFramer::new(number, TestWindows::new()),
            decoding: packets::Decoding::default(),
            started: false,
            broken: false,
        }
    }

    fn feed(&mut self, doc: &Document, out: &mut Output) {
        if self.broken {
            return;
        }
        if let Err(message) = self.try_feed(doc, out) {
            self.broken = true;
            self.recorder.abandon();
            out.problems.push((
                doc.location.clone(),
                format!(
                    "Keploy Postgres mock {}: {message}; the rest of its connection is not served",
                    doc.name
                ),
            ));
        }
    }

    fn try_feed(&mut self, doc: &Document, out: &mut Output) -> Result<(), String> {
        let mut open_batch = false;
        for (i, packet) in doc.requests.iter().enumerate() {
            let requests = packets::requests(packet, &mut self.decoding)
                .map_err(|e| format!("request packet {}: {e}", i + 1))?;
            for message in requests.messages {
                self.started |= matches!(
                    message,
                    crate::pgwire::frontend::FrontendMessage::Startup { .. }
                );
                self.recorder.on_frontend(message, doc.requested);
            }
            open_batch = requests.open_batch;
        }
        let mut answers = Vec::new();
        for (i, packet) in doc.responses.iter().enumerate() {
            let messages = packets::responses(packet, &mut self.decoding)
                .map_err(|e| format!("response packet {}: {e}", i + 1))?;
            answers.extend(messages);
        }
        let ready = answers.iter().any(|m| {
            matches!(
                m,
                crate::pgwire::backend::BackendMessage::ReadyForQuery { .. }
            )
        });
        if open_batch && ready {
            self.recorder.on_frontend(
                crate::pgwire::frontend::FrontendMessage::Sync,
                doc.requested,
            );
        }
        for message in answers {
            if let Some(mut spec) = self.recorder.on_backend(message, doc.answered) {
                if spec.position == 0 && !self.started {
                    spec.lifetime = first_without_startup(&spec);
                }
                out.push(&doc.name, spec);
            }
        }
        Ok(())
    }

    /// The recording ends: exchanges still waiting for their answer were
    /// never completed and are not served.
    fn close(self, key: &str) {
        if !self.recorder.idle() && !self.broken {
            tracing::info!(
                "Keploy Postgres connection {key}: its last exchange has no complete answer and is not served"
            );
        }
    }
}

#[cfg(test)]
mod tests;
