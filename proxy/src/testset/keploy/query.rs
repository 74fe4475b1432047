//! A Keploy PostgresV3 `query` invocation as the exchanges that ask it.
//!
//! Keploy keeps one invocation of a statement (its text, bind values and
//! formats, and the answer), not the messages that carried it: the same
//! invocation may have come as a simple Query or through the extended
//! protocol, prepared first or all in one batch. recplay matches whole
//! exchanges, so one invocation becomes one mock per way clients send it:
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

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::cell;
use super::fields::Field;
use super::sql_text::{max_placeholder, status_after};
use crate::pg::wire::model_value;
use crate::testset::pg_mock::{
    BackendMsg, FieldDescription, Format, FrontendMsg, Lifetime, MockSpec, PgMock, PgValue, Target,
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

/// The recorded answer, decoded once.
struct Answer<'a> {
    columns: Vec<Column>,
    /// Each row's cells, still logical: encoded per exchange's format.
    rows: Vec<Vec<Field<'a>>>,
    tag: Option<String>,
    error: Option<BTreeMap<char, String>>,
    notices: Vec<BackendMsg>,
    copy_out: Vec<BackendMsg>,
}

struct Column {
    field: FieldDescription,
    /// The format its values were delivered in at recording.
    format: Format,
}

/// SQLSTATE classes PostgreSQL raises while parsing or analysing a
/// statement (syntax error, undefined table or column, ...) rather than
/// while running it: such an error answers the Parse. Missing privileges
/// (42501) are found when the plan starts, after Bind.
fn is_parse_error(code: &str) -> bool {
    (code.starts_with("42") && code != "42501") || code.starts_with("0A")
}

/// The mocks of one `spec.postgresV3.query` block.
pub fn convert<'a>(query: &Field<'a>, at: &Placement) -> Result<Vec<PgMock>, String> {
    let sql = query.get("sqlNormalized")?.str()?;
    if sql.trim().is_empty() {
        return Err(format!("`{}.sqlNormalized` is empty", query.path));
    }
    let binds = query.list("bindValues")?;
    let placeholders = max_placeholder(sql);
    if placeholders > binds.len() {
        return Err(format!(
            "`{}.sqlNormalized` has placeholder ${placeholders} but only {} bind values were recorded: \
             literals were normalised away, so the statement the client sent cannot be recovered \
             (re-record with a current Keploy, which keeps the original text)",
            query.path,
            binds.len()
        ));
    }
    let param_oids: Vec<u32> = query
        .list("paramOids")?
        .iter()
        .map(Field::int_as)
        .collect::<Result<_, _>>()?;
    if !binds.is_empty() && param_oids.len() != binds.len() {
        return Err(format!(
            "`{}.paramOids` has {} entries for {} bind values",
            query.path,
            param_oids.len(),
            binds.len()
        ));
    }
    let bind_formats = formats(&query.list("bindFormats")?)?;
    let result_formats = formats(&query.list("resultFormats")?)?;
    let mut params = Vec::with_capacity(binds.len());
    for (i, value) in binds.iter().enumerate() {
        let format = pick(&bind_formats, i, &value.path)?;
        let bytes = cell::encode(value, param_oids[i], format)?;
        params.push(model_value(bytes, format));
    }
    let response = query.get("response")?;
    let answer = answer(&response)?;
    let before = preceding_status(query.str_or_empty("precedingTxState")?);

    let mut mocks = Vec::new();
    let mut push = |shape: &str, requests: Vec<FrontendMsg>, responses: Vec<BackendMsg>| {
        mocks.push(PgMock::new(
            format!("{}-{shape}", at.name),
            MockSpec {
                connection: at.connection,
                position: at.position,
                lifetime: (at.lifetime_of)(sql),
                startup: Arc::default(),
                request_timestamp: at.request_timestamp,
                response_timestamp: at.response_timestamp,
                requests,
                responses,
            },
        ));
    };
    let parse_failed = answer
        .error
        .as_ref()
        .and_then(|e| e.get(&'C'))
        .is_some_and(|code| is_parse_error(code));
    let after = match answer.error {
        Some(_) if before == 'I' => 'I',
        Some(_) => 'E',
        None => status_after(sql, before),
    };
    let ready = BackendMsg::ReadyForQuery { status: after };

    if binds.is_empty() {
        // The simple protocol always answers in text; a recorded value with
        // no text form leaves this way of asking out, not the others.
        if let Ok(rows) = data_rows(
            &answer,
            &answer
                .columns
                .iter()
                .map(|_| Format::Text)
                .collect::<Vec<_>>(),
        ) {
            let mut responses = Vec::new();
            if !answer.columns.is_empty() && !parse_failed {
                responses.push(row_description(&answer.columns, |_| Format::Text));
            }
            responses.extend(rows);
            responses.extend(ending(&answer, &ready));
            push(
                "simple",
                vec![FrontendMsg::Query {
                    query: sql.to_string(),
                }],
                responses,
            );
        }
    }

    let statement = format!("{}-stmt", at.name);
    let out_formats = resolve(&result_formats, answer.columns.len(), |i| {
        answer.columns[i].format
    })?;
    let rows = data_rows(&answer, &out_formats)?;
    let bind = |statement: &str| FrontendMsg::Bind {
        portal: String::new(),
        statement: statement.to_string(),
        statement_query: Some(sql.to_string()),
        param_formats: bind_formats.clone(),
        params: params.clone(),
        result_formats: result_formats.clone(),
    };
    let parse = |name: &str, types: Vec<u32>| FrontendMsg::Parse {
        name: name.to_string(),
        query: sql.to_string(),
        param_types: types,
    };
    let parse_error = |ready: &BackendMsg| {
        let mut out = answer.notices.clone();
        if let Some(fields) = &answer.error {
            out.push(BackendMsg::ErrorResponse {
                fields: fields.clone(),
            });
        }
        out.push(ready.clone());
        out
    };
    let describe_rows = |formats: &dyn Fn(usize) -> Format| {
        if answer.columns.is_empty() {
            BackendMsg::NoData
        } else {
            row_description(&answer.columns, formats)
        }
    };

    // Prepare: the statement's parameters and columns, before any data.
    let prepare_status = if parse_failed { after } else { before };
    let prepare_ready = BackendMsg::ReadyForQuery {
        status: prepare_status,
    };
    let prepare_answer = if parse_failed {
        parse_error(&prepare_ready)
    } else {
        vec![
            BackendMsg::ParseComplete,
            BackendMsg::ParameterDescription {
                types: param_oids.clone(),
            },
            describe_rows(&|_| Format::Text),
            prepare_ready,
        ]
    };
    push(
        "prepare",
        vec![
            parse(&statement, Vec::new()),
            FrontendMsg::Describe {
                target: Target::Statement,
                name: statement.clone(),
            },
            FrontendMsg::Sync,
        ],
        prepare_answer,
    );

    if !parse_failed {
        let mut responses = vec![BackendMsg::BindComplete];
        responses.extend(rows.iter().cloned());
        responses.extend(ending(&answer, &ready));
        push(
            "execute",
            vec![bind(&statement), execute(), FrontendMsg::Sync],
            responses,
        );
        let mut responses = vec![BackendMsg::BindComplete, describe_rows(&|i| out_formats[i])];
        responses.extend(rows.iter().cloned());
        responses.extend(ending(&answer, &ready));
        push(
            "execute-described",
            vec![
                bind(&statement),
                FrontendMsg::Describe {
                    target: Target::Portal,
                    name: String::new(),
                },
                execute(),
                FrontendMsg::Sync,
            ],
            responses,
        );
    }

    // One batch: the portal described (node-postgres, JDBC, psycopg 3),
    // with or without declared parameter types, or the unnamed statement
    // described after Bind with its types declared (tokio-postgres's
    // query_typed).
    let mut batches = vec![("unnamed", Vec::new(), Target::Portal)];
    if !param_oids.is_empty() {
        batches.push(("unnamed-typed", param_oids.clone(), Target::Portal));
    }
    batches.push((
        "unnamed-typed-statement",
        param_oids.clone(),
        Target::Statement,
    ));
    for (shape, types, target) in batches {
        let responses = if parse_failed {
            parse_error(&ready)
        } else {
            let mut out = vec![BackendMsg::ParseComplete, BackendMsg::BindComplete];
            if target == Target::Statement {
                out.push(BackendMsg::ParameterDescription {
                    types: param_oids.clone(),
                });
                out.push(describe_rows(&|_| Format::Text));
            } else {
                out.push(describe_rows(&|i| out_formats[i]));
            }
            out.extend(rows.iter().cloned());
            out.extend(ending(&answer, &ready));
            out
        };
        push(
            shape,
            vec![
                parse("", types),
                bind(""),
                FrontendMsg::Describe {
                    target,
                    name: String::new(),
                },
                execute(),
                FrontendMsg::Sync,
            ],
            responses,
        );
    }
    Ok(mocks)
}

fn execute() -> FrontendMsg {
    FrontendMsg::Execute {
        portal: String::new(),
        max_rows: 0,
    }
}

/// Format codes as recorded (0 text, 1 binary).
fn formats(codes: &[Field<'_>]) -> Result<Vec<Format>, String> {
    codes
        .iter()
        .map(|f| match f.int()? {
            0 => Ok(Format::Text),
            1 => Ok(Format::Binary),
            n => Err(format!("`{}` is not a format code (0 or 1): {n}", f.path)),
        })
        .collect()
}

/// The format of item `i` under PostgreSQL's rule: no codes is all text,
/// one code applies to all, otherwise one per item.
fn pick(codes: &[Format], i: usize, path: &str) -> Result<Format, String> {
    match codes.len() {
        0 => Ok(Format::Text),
        1 => Ok(codes[0]),
        _ => codes
            .get(i)
            .copied()
            .ok_or_else(|| format!("`{path}` has no format code")),
    }
}

/// Per-column formats: the requested result formats when recorded,
/// otherwise what the recorded RowDescription said.
fn resolve(
    codes: &[Format],
    columns: usize,
    recorded: impl Fn(usize) -> Format,
) -> Result<Vec<Format>, String> {
    if codes.len() > 1 && codes.len() != columns {
        return Err(format!(
            "`resultFormats` has {} codes for {columns} columns",
            codes.len()
        ));
    }
    Ok((0..columns)
        .map(|i| match codes.len() {
            0 => recorded(i),
            1 => codes[0],
            _ => codes[i],
        })
        .collect())
}

/// Keploy's `precedingTxState`: the status before the statement ran.
fn preceding_status(state: &str) -> char {
    match state.to_ascii_lowercase().as_str() {
        "t" | "intransaction" | "in_transaction" | "transaction" | "intx" | "active" => 'T',
        "e" | "failed" | "infailedtransaction" | "in_failed_transaction" | "error" => 'E',
        _ => 'I',
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

/// Notices, COPY output, then CommandComplete or the error, then `ready`.
fn ending(answer: &Answer<'_>, ready: &BackendMsg) -> Vec<BackendMsg> {
    let mut out = answer.copy_out.clone();
    out.extend(answer.notices.iter().cloned());
    match (&answer.error, &answer.tag) {
        (Some(fields), _) => out.push(BackendMsg::ErrorResponse {
            fields: fields.clone(),
        }),
        (None, Some(tag)) => out.push(BackendMsg::CommandComplete { tag: tag.clone() }),
        (None, None) => out.push(BackendMsg::EmptyQueryResponse),
    }
    out.push(ready.clone());
    out
}

fn answer<'a>(response: &Field<'a>) -> Result<Answer<'a>, String> {
    for unsupported in ["copyIn", "functionCall"] {
        if response.opt(unsupported)?.is_some() {
            return Err(format!(
                "`{}.{unsupported}` is not served: Keploy does not keep what the client sent with it",
                response.path
            ));
        }
    }
    let columns = response
        .list("rowDescription")?
        .iter()
        .map(column)
        .collect::<Result<Vec<_>, _>>()?;
    let mut rows = Vec::new();
    for row in response.list("rows")? {
        let cells = row.items()?;
        if cells.len() != columns.len() {
            return Err(format!(
                "`{}` has {} cells for {} columns",
                row.path,
                cells.len(),
                columns.len()
            ));
        }
        rows.push(cells);
    }
    let tag = response
        .opt("commandComplete")?
        .map(|f| f.str().map(str::to_string))
        .transpose()?;
    let error = response
        .opt("error")?
        .map(|e| error_fields(&e, "ERROR"))
        .transpose()?;
    let notices = response
        .list("notices")?
        .iter()
        .map(|n| error_fields(n, "NOTICE").map(|fields| BackendMsg::NoticeResponse { fields }))
        .collect::<Result<Vec<_>, _>>()?;
    let mut notices = notices;
    for n in response.list("notifications")? {
        notices.push(BackendMsg::NotificationResponse {
            process_id: n.int_or("backendPID", 0)?,
            channel: n.get("channel")?.str()?.to_string(),
            payload: n.str_or_empty("payload")?.to_string(),
        });
    }
    let copy_out = match response.opt("copyOut")? {
        Some(c) => copy_out(&c)?,
        None => Vec::new(),
    };
    if tag.is_none() && error.is_none() {
        return Err(format!(
            "`{}` has neither `commandComplete` nor `error`",
            response.path
        ));
    }
    Ok(Answer {
        columns,
        rows,
        tag,
        error,
        notices,
        copy_out,
    })
}

fn column(f: &Field<'_>) -> Result<Column, String> {
    let format = match f.int_or::<i16>("format", 0)? {
        0 => Format::Text,
        1 => Format::Binary,
        n => return Err(format!("`{}.format` is not a format code: {n}", f.path)),
    };
    Ok(Column {
        field: FieldDescription {
            name: f.get("name")?.str()?.to_string(),
            table_oid: f.int_or("tableOid", 0)?,
            column_id: f.int_or("colAttrNum", 0)?,
            type_oid: f.get("typeOid")?.int_as()?,
            type_size: f.int_or("typeSize", 0)?,
            type_modifier: f.int_or("typeMod", 0)?,
            format,
        },
        format,
    })
}

/// ErrorResponse / NoticeResponse fields from Keploy's error or notice.
fn error_fields(f: &Field<'_>, default_severity: &str) -> Result<BTreeMap<char, String>, String> {
    let mut fields = BTreeMap::new();
    let severity = match f.str_or_empty("severity")? {
        "" => default_severity,
        s => s,
    };
    fields.insert('S', severity.to_string());
    fields.insert('V', severity.to_string());
    let code = f.str_or_empty("code")?;
    if code.is_empty() && default_severity == "ERROR" {
        return Err(format!("`{}.code` is missing", f.path));
    }
    if !code.is_empty() {
        fields.insert('C', code.to_string());
    }
    fields.insert('M', f.str_or_empty("message")?.to_string());
    for (key, letter) in [("detail", 'D'), ("hint", 'H')] {
        let text = f.str_or_empty(key)?;
        if !text.is_empty() {
            fields.insert(letter, text.to_string());
        }
    }
    Ok(fields)
}

fn copy_out(c: &Field<'_>) -> Result<Vec<BackendMsg>, String> {
    let code = |f: &Field<'_>| match f.int()? {
        0 => Ok(Format::Text),
        1 => Ok(Format::Binary),
        n => Err(format!("`{}` is not a format code: {n}", f.path)),
    };
    let format = match c.opt("overallFormat")? {
        Some(f) => code(&f)?,
        None => Format::Text,
    };
    let column_formats = c
        .list("columnFormatCodes")?
        .iter()
        .map(code)
        .collect::<Result<Vec<_>, _>>()?;
    let mut out = vec![BackendMsg::CopyOutResponse {
        format,
        column_formats,
    }];
    for chunk in c.list("data")? {
        let bytes = super::fields::bytes(&chunk)?;
        out.push(BackendMsg::CopyData {
            data: PgValue::from_vec(Some(bytes)),
        });
    }
    out.push(BackendMsg::CopyDone);
    Ok(out)
}
