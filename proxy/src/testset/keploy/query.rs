//! A Keploy PostgresV3 `query` block, read and checked: the statement,
//! its bound values as the client sent them, and the recorded answer.
//!
//! Keploy keeps one invocation of a statement (its text, bind values and
//! formats, and the answer), not the messages that carried it; which
//! exchanges it becomes is [`super::exchanges`]' concern. Bound values are
//! re-encoded here, once, in the format the client sent them; result cells
//! stay logical until an exchange says which format it wants.

use std::collections::BTreeMap;

use super::cell;
use super::fields::Field;
use super::sql_text::{max_placeholder, status_after};
use crate::pgwire::wire::model_value;
use crate::testset::pg_mock::{BackendMsg, FieldDescription, Format, PgValue};

/// One recorded invocation, ready to be turned into exchanges.
pub struct Invocation<'a> {
    /// The statement text, as the client sent it.
    pub sql: &'a str,
    /// Bound values, encoded as they arrived.
    pub params: Vec<PgValue>,
    /// The parameter types the server inferred (ParameterDescription).
    pub param_oids: Vec<u32>,
    /// Bind's parameter and result format codes, as recorded.
    pub bind_formats: Vec<Format>,
    pub result_formats: Vec<Format>,
    pub answer: Answer<'a>,
    /// Transaction status before the statement ran.
    pub before: char,
}

/// The recorded answer, decoded once.
pub struct Answer<'a> {
    pub columns: Vec<Column>,
    /// Each row's cells, still logical: encoded per exchange's format.
    pub rows: Vec<Vec<Field<'a>>>,
    /// CommandComplete's tag, when the statement succeeded.
    pub tag: Option<String>,
    /// ErrorResponse fields, when it failed.
    pub error: Option<BTreeMap<char, String>>,
    /// NoticeResponse and NotificationResponse messages, in order.
    pub notices: Vec<BackendMsg>,
    /// CopyOutResponse, CopyData, CopyDone of a COPY TO STDOUT.
    pub copy_out: Vec<BackendMsg>,
}

/// A recorded result column.
pub struct Column {
    pub field: FieldDescription,
    /// The format its values were delivered in at recording.
    pub format: Format,
}

/// SQLSTATE classes PostgreSQL raises while parsing or analysing a
/// statement (syntax error, undefined table or column, ...) rather than
/// while running it: such an error answers the Parse. Missing privileges
/// (42501) are found when the plan starts, after Bind.
fn is_parse_error(code: &str) -> bool {
    (code.starts_with("42") && code != "42501") || code.starts_with("0A")
}

/// Reads a `spec.postgresV3.query` block.
pub fn read<'a>(query: &Field<'a>) -> Result<Invocation<'a>, String> {
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
    let answer = answer(&query.get("response")?)?;
    Ok(Invocation {
        sql,
        params,
        param_oids,
        bind_formats,
        result_formats,
        answer,
        before: preceding_status(query.str_or_empty("precedingTxState")?),
    })
}

impl Invocation<'_> {
    /// Whether the recorded error answered the Parse rather than Execute.
    pub fn parse_failed(&self) -> bool {
        self.answer
            .error
            .as_ref()
            .and_then(|e| e.get(&'C'))
            .is_some_and(|code| is_parse_error(code))
    }

    /// Transaction status once the statement ran (or failed).
    pub fn after(&self) -> char {
        match self.answer.error {
            Some(_) if self.before == 'I' => 'I',
            Some(_) => 'E',
            None => status_after(self.sql, self.before),
        }
    }

    /// Per-column formats of the extended protocol's DataRows.
    pub fn result_formats_per_column(&self) -> Result<Vec<Format>, String> {
        let columns = &self.answer.columns;
        resolve(&self.result_formats, columns.len(), |i| columns[i].format)
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
