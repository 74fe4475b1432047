//! A recorded invocation as the exchanges that ask it.
//!
//! The same invocation may have come as a simple Query or through the
//! extended protocol, prepared first or all in one batch, and recplay
//! matches whole exchanges, so one invocation becomes one mock per way
//! clients send it:
//!
//! - `simple`: Query (only for a statement without parameters);
//! - `prepare`: Parse + Describe statement + Sync, as tokio-postgres, pgx
//!   and JDBC's server-prepared statements send before the first run;
//! - `execute`: Bind + Execute + Sync of that prepared statement, and
//!   `execute-described` with a Describe of the portal before Execute;
//! - `unnamed`: Parse + Bind + Describe portal + Execute + Sync in one
//!   batch, as node-postgres, psycopg 3 and JDBC send, with the Parse
//!   declaring no parameter types, and `unnamed-typed` declaring Keploy's
//!   recorded parameter types (when there are any);
//! - `unnamed-typed-statement`: the same batch describing the statement
//!   instead of the portal, as tokio-postgres's `query_typed` sends it.
//!
//! Each carries the statement text and the bound values as they would
//! arrive, so the matcher's exact identity (text, values and formats) is
//! the recorded one: two invocations that differ in one bound value stay
//! two different requests. Answers are rebuilt as PostgreSQL would send
//! them: RowDescription with the recorded columns, DataRow values encoded
//! in the format the exchange asks for (see [`super::cell`]), notices,
//! CommandComplete or ErrorResponse, ReadyForQuery. Values are written
//! into the model the way the recorder writes wire values
//! ([`model_value`]: binary ones always as base64), so identities and
//! answers compare equal to recorded ones.

use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::cell;
use super::query::{Answer, Column, Invocation};
use crate::pgwire::wire::model_value;
use crate::testset::pg_mock::{
    BackendMsg, FieldDescription, Format, FrontendMsg, Lifetime, MockSpec, PgMock, Target,
};

/// Where the converted mocks sit in the recording, shared by all of them.
pub struct Placement {
    /// Prefix of the mocks' names; each adds its way of asking.
    pub name: String,
    /// Recorded connection and position, for statement resolution.
    pub connection: u64,
    pub position: u64,
    /// Decides session or unattributed from the statement text.
    pub lifetime_of: fn(&str) -> Lifetime,
    /// The recorded window, which the loader attributes tests by.
    pub request_timestamp: DateTime<Utc>,
    pub response_timestamp: DateTime<Utc>,
}

/// The mocks of one invocation, in the order of the list above.
pub fn mocks(invocation: &Invocation<'_>, at: &Placement) -> Result<Vec<PgMock>, String> {
    let out_formats = invocation.result_formats_per_column()?;
    let rows = data_rows(&invocation.answer, &out_formats)?;
    let mut b = Builder {
        inv: invocation,
        at,
        statement: format!("{}-stmt", at.name),
        ready: BackendMsg::ReadyForQuery {
            status: invocation.after(),
        },
        out_formats,
        rows,
        mocks: Vec::new(),
    };
    if invocation.params.is_empty() {
        b.simple();
    }
    b.prepare();
    if !invocation.parse_failed() {
        b.execute(false);
        b.execute(true);
    }
    b.batch("unnamed", Vec::new(), Target::Portal);
    if !invocation.param_oids.is_empty() {
        b.batch(
            "unnamed-typed",
            invocation.param_oids.clone(),
            Target::Portal,
        );
    }
    b.batch(
        "unnamed-typed-statement",
        invocation.param_oids.clone(),
        Target::Statement,
    );
    Ok(b.mocks)
}

struct Builder<'i, 'a> {
    inv: &'i Invocation<'a>,
    at: &'i Placement,
    /// The name the prepared statement is recorded under; names are not
    /// matched, this only keeps it apart from other recorded statements.
    statement: String,
    /// ReadyForQuery after the statement ran.
    ready: BackendMsg,
    /// The extended protocol's per-column formats, and its DataRows.
    out_formats: Vec<Format>,
    rows: Vec<BackendMsg>,
    mocks: Vec<PgMock>,
}

impl Builder<'_, '_> {
    fn push(&mut self, shape: &str, requests: Vec<FrontendMsg>, responses: Vec<BackendMsg>) {
        self.mocks.push(PgMock::new(
            format!("{}-{shape}", self.at.name),
            MockSpec {
                connection: self.at.connection,
                position: self.at.position,
                lifetime: (self.at.lifetime_of)(self.inv.sql),
                startup: Arc::default(),
                request_timestamp: self.at.request_timestamp,
                response_timestamp: self.at.response_timestamp,
                requests,
                responses,
            },
        ));
    }

    /// The simple protocol always answers in text; a recorded value with
    /// no text form leaves this way of asking out, not the others.
    fn simple(&mut self) {
        let answer = &self.inv.answer;
        let text = vec![Format::Text; answer.columns.len()];
        let Ok(rows) = data_rows(answer, &text) else {
            return;
        };
        let mut responses = Vec::new();
        if !answer.columns.is_empty() && !self.inv.parse_failed() {
            responses.push(row_description(&answer.columns, |_| Format::Text));
        }
        responses.extend(rows);
        responses.extend(self.ending());
        let query = FrontendMsg::Query {
            query: self.inv.sql.to_string(),
        };
        self.push("simple", vec![query], responses);
    }

    /// The statement's parameters and columns, before any data.
    fn prepare(&mut self) {
        let responses = if self.inv.parse_failed() {
            self.parse_error()
        } else {
            vec![
                BackendMsg::ParseComplete,
                BackendMsg::ParameterDescription {
                    types: self.inv.param_oids.clone(),
                },
                self.describe_rows(Target::Statement),
                BackendMsg::ReadyForQuery {
                    status: self.inv.before,
                },
            ]
        };
        let requests = vec![
            self.parse(&self.statement, Vec::new()),
            FrontendMsg::Describe {
                target: Target::Statement,
                name: self.statement.clone(),
            },
            FrontendMsg::Sync,
        ];
        self.push("prepare", requests, responses);
    }

    /// A run of the prepared statement, its portal described or not.
    fn execute(&mut self, described: bool) {
        let mut requests = vec![self.bind(&self.statement)];
        let mut responses = vec![BackendMsg::BindComplete];
        if described {
            requests.push(describe(Target::Portal));
            responses.push(self.describe_rows(Target::Portal));
        }
        requests.extend([execute(), FrontendMsg::Sync]);
        responses.extend(self.rows.iter().cloned());
        responses.extend(self.ending());
        let shape = if described {
            "execute-described"
        } else {
            "execute"
        };
        self.push(shape, requests, responses);
    }

    /// Parse, Bind, Describe `target`, Execute and Sync in one batch.
    fn batch(&mut self, shape: &str, types: Vec<u32>, target: Target) {
        let responses = if self.inv.parse_failed() {
            self.parse_error()
        } else {
            let mut out = vec![BackendMsg::ParseComplete, BackendMsg::BindComplete];
            if target == Target::Statement {
                out.push(BackendMsg::ParameterDescription {
                    types: self.inv.param_oids.clone(),
                });
            }
            out.push(self.describe_rows(target));
            out.extend(self.rows.iter().cloned());
            out.extend(self.ending());
            out
        };
        let requests = vec![
            self.parse("", types),
            self.bind(""),
            describe(target),
            execute(),
            FrontendMsg::Sync,
        ];
        self.push(shape, requests, responses);
    }

    fn parse(&self, name: &str, types: Vec<u32>) -> FrontendMsg {
        FrontendMsg::Parse {
            name: name.to_string(),
            query: self.inv.sql.to_string(),
            param_types: types,
        }
    }

    fn bind(&self, statement: &str) -> FrontendMsg {
        FrontendMsg::Bind {
            portal: String::new(),
            statement: statement.to_string(),
            statement_query: Some(self.inv.sql.to_string()),
            param_formats: self.inv.bind_formats.clone(),
            params: self.inv.params.clone(),
            result_formats: self.inv.result_formats.clone(),
        }
    }

    /// RowDescription (or NoData) for a Describe: a statement's columns are
    /// described before any format was asked for, so as text.
    fn describe_rows(&self, target: Target) -> BackendMsg {
        let columns = &self.inv.answer.columns;
        if columns.is_empty() {
            return BackendMsg::NoData;
        }
        match target {
            Target::Statement => row_description(columns, |_| Format::Text),
            Target::Portal => row_description(columns, |i| self.out_formats[i]),
        }
    }

    /// An error raised while parsing: it answers the Parse and nothing
    /// runs.
    fn parse_error(&self) -> Vec<BackendMsg> {
        let answer = &self.inv.answer;
        let mut out = answer.notices.clone();
        if let Some(fields) = &answer.error {
            out.push(BackendMsg::ErrorResponse {
                fields: fields.clone(),
            });
        }
        out.push(self.ready.clone());
        out
    }

    /// COPY output, notices, then CommandComplete or the error, then
    /// ReadyForQuery.
    fn ending(&self) -> Vec<BackendMsg> {
        let answer = &self.inv.answer;
        let mut out = answer.copy_out.clone();
        out.extend(answer.notices.iter().cloned());
        match (&answer.error, &answer.tag) {
            (Some(fields), _) => out.push(BackendMsg::ErrorResponse {
                fields: fields.clone(),
            }),
            (None, Some(tag)) => out.push(BackendMsg::CommandComplete { tag: tag.clone() }),
            (None, None) => out.push(BackendMsg::EmptyQueryResponse),
        }
        out.push(self.ready.clone());
        out
    }
}

fn describe(target: Target) -> FrontendMsg {
    FrontendMsg::Describe {
        target,
        name: String::new(),
    }
}

fn execute() -> FrontendMsg {
    FrontendMsg::Execute {
        portal: String::new(),
        max_rows: 0,
    }
}

fn row_description(columns: &[Column], format: impl Fn(usize) -> Format) -> BackendMsg {
    BackendMsg::RowDescription {
        fields: columns
            .iter()
            .enumerate()
            .map(|(i, c)| FieldDescription {
                format: format(i),
                ..c.field.clone()
            })
            .collect(),
    }
}

/// The recorded rows with each cell encoded in its column's `formats`.
fn data_rows(answer: &Answer<'_>, formats: &[Format]) -> Result<Vec<BackendMsg>, String> {
    answer
        .rows
        .iter()
        .map(|row| {
            let values = row
                .iter()
                .zip(&answer.columns)
                .zip(formats)
                .map(|((cell, column), format)| {
                    cell::encode(cell, column.field.type_oid, *format)
                        .map(|b| model_value(b, *format))
                })
                .collect::<Result<Vec<_>, _>>()?;
            Ok(BackendMsg::DataRow { values })
        })
        .collect()
}
