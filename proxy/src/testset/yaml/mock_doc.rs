//! A mocks.yaml document written field by field, without serde.
//!
//! The recorder writes one document per database exchange, and going
//! through serde's generic calls — a slot to match, an indentation loop and
//! a form to look up for every key — cost more than the rest of recording
//! an exchange. A mock's layout is fixed: every key sits at a known depth,
//! so each one is written here as a literal with its indentation, and only
//! values go through the scalar rules.
//!
//! The serde emitter stays the reference for the layout: the tests hold
//! this writer to its bytes for every message variant and thousands of
//! seeded mocks full of awkward strings.

use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};

use super::scalar::{indent, str_form, write_in_form, write_key, write_literal_block, StrForm};
use crate::testset::pg_mock::{
    BackendMsg, FieldDescription, Format, FrontendMsg, Lifetime, MockSpec, PgMock, PgValue, Target,
};

/// Key depth of a message's fields (`requests:`/`responses:` items sit at 2).
const FIELD: usize = 4;
/// Key depth of what a message field holds: a map's keys, a column's
/// fields after its first, a value's `base64:` inside a sequence item.
const NESTED: usize = 6;
/// Dash of an item in a message field's sequence.
const FIELD_ITEM: &str = "    - ";

/// Appends `mock` as one YAML document (no `---`/`...` markers) to `out`.
pub(crate) fn append_mock(mock: &PgMock, out: &mut String) {
    out.push_str("version: ");
    out.push_str(itoa::Buffer::new().format(mock.version));
    out.push_str("\nkind:");
    value_str(0, &mock.kind, out);
    out.push_str("name:");
    value_str(0, &mock.name, out);
    out.push_str("spec:\n");
    spec(&mock.spec, out);
}

fn spec(spec: &MockSpec, out: &mut String) {
    out.push_str("  connection:");
    value_num(spec.connection, out);
    out.push_str("  position:");
    value_num(spec.position, out);
    out.push_str("  lifetime:");
    match &spec.lifetime {
        Lifetime::Session => out.push_str(" session\n"),
        Lifetime::Unattributed => out.push_str(" unattributed\n"),
        // A one-key map, plain YAML (see `Lifetime`'s Serialize).
        Lifetime::Test(test) => {
            out.push_str("\n    test:");
            value_str(FIELD, test, out);
        }
    }
    if !spec.startup.is_empty() {
        out.push_str("  startup:");
        startup_block(&spec.startup, out);
    }
    out.push_str("  request_timestamp:");
    timestamp(&spec.request_timestamp, out);
    out.push_str("  response_timestamp:");
    timestamp(&spec.response_timestamp, out);
    out.push_str("  requests:");
    sequence(&spec.requests, out, request);
    out.push_str("  responses:");
    sequence(&spec.responses, out, response);
}

/// A sequence after its key: `[]` on the key's line when empty, else each
/// item written by `item` on lines of its own.
fn sequence<T>(list: &[T], out: &mut String, item: impl FnMut(&T, &mut String)) {
    block(list.iter(), " []\n", out, item);
}

/// A collection after its key: `empty` on the key's line when it has no
/// entries, else each entry written by `entry` on lines of its own.
fn block<T>(
    entries: impl ExactSizeIterator<Item = T>,
    empty: &str,
    out: &mut String,
    mut entry: impl FnMut(T, &mut String),
) {
    if entries.len() == 0 {
        out.push_str(empty);
        return;
    }
    out.push('\n');
    for e in entries {
        entry(e, out);
    }
}

/// One `requests:` item.
fn request(msg: &FrontendMsg, out: &mut String) {
    out.push_str("  - type: ");
    match msg {
        FrontendMsg::Startup {
            protocol,
            parameters,
        } => {
            out.push_str("Startup\n    protocol:");
            value_str(FIELD, protocol, out);
            out.push_str("    parameters:");
            string_map(FIELD, parameters, out);
        }
        FrontendMsg::Query { query } => {
            out.push_str("Query\n    query:");
            value_str(FIELD, query, out);
        }
        FrontendMsg::Parse {
            name,
            query,
            param_types,
        } => {
            out.push_str("Parse\n    name:");
            value_str(FIELD, name, out);
            out.push_str("    query:");
            value_str(FIELD, query, out);
            if !param_types.is_empty() {
                out.push_str("    param_types:");
                numbers(param_types, out);
            }
        }
        FrontendMsg::Bind {
            portal,
            statement,
            statement_query,
            param_formats,
            params,
            result_formats,
        } => {
            out.push_str("Bind\n    portal:");
            value_str(FIELD, portal, out);
            out.push_str("    statement:");
            value_str(FIELD, statement, out);
            if let Some(query) = statement_query {
                out.push_str("    statement_query:");
                value_str(FIELD, query, out);
            }
            if !param_formats.is_empty() {
                out.push_str("    param_formats:");
                formats(param_formats, out);
            }
            out.push_str("    params:");
            values(params, out);
            if !result_formats.is_empty() {
                out.push_str("    result_formats:");
                formats(result_formats, out);
            }
        }
        FrontendMsg::Describe { target: t, name } => {
            out.push_str("Describe\n    target:");
            target(*t, out);
            out.push_str("    name:");
            value_str(FIELD, name, out);
        }
        FrontendMsg::Execute { portal, max_rows } => {
            out.push_str("Execute\n    portal:");
            value_str(FIELD, portal, out);
            out.push_str("    max_rows:");
            value_num(*max_rows, out);
        }
        FrontendMsg::Close { target: t, name } => {
            out.push_str("Close\n    target:");
            target(*t, out);
            out.push_str("    name:");
            value_str(FIELD, name, out);
        }
        FrontendMsg::Sync => out.push_str("Sync\n"),
        FrontendMsg::Flush => out.push_str("Flush\n"),
        FrontendMsg::CopyData { data } => {
            out.push_str("CopyData\n    data:");
            value(data, out);
        }
        FrontendMsg::CopyDone => out.push_str("CopyDone\n"),
        FrontendMsg::CopyFail { message } => {
            out.push_str("CopyFail\n    message:");
            value_str(FIELD, message, out);
        }
        FrontendMsg::FunctionCall {
            function_oid,
            arg_formats,
            args,
            result_format,
        } => {
            out.push_str("FunctionCall\n    function_oid:");
            value_num(*function_oid, out);
            out.push_str("    arg_formats:");
            formats(arg_formats, out);
            out.push_str("    args:");
            values(args, out);
            out.push_str("    result_format:");
            format(*result_format, out);
        }
        FrontendMsg::Terminate => out.push_str("Terminate\n"),
    }
}

/// One `responses:` item.
fn response(msg: &BackendMsg, out: &mut String) {
    out.push_str("  - type: ");
    match msg {
        BackendMsg::AuthenticationOk => out.push_str("AuthenticationOk\n"),
        BackendMsg::ParameterStatus { name, value } => {
            out.push_str("ParameterStatus\n    name:");
            value_str(FIELD, name, out);
            out.push_str("    value:");
            value_str(FIELD, value, out);
        }
        BackendMsg::BackendKeyData {
            process_id,
            secret_key,
        } => {
            out.push_str("BackendKeyData\n    process_id:");
            value_num(*process_id, out);
            out.push_str("    secret_key:");
            value_num(*secret_key, out);
        }
        BackendMsg::ReadyForQuery { status } => {
            out.push_str("ReadyForQuery\n    status:");
            value_str(FIELD, status.encode_utf8(&mut [0; 4]), out);
        }
        BackendMsg::ParseComplete => out.push_str("ParseComplete\n"),
        BackendMsg::BindComplete => out.push_str("BindComplete\n"),
        BackendMsg::CloseComplete => out.push_str("CloseComplete\n"),
        BackendMsg::NoData => out.push_str("NoData\n"),
        BackendMsg::PortalSuspended => out.push_str("PortalSuspended\n"),
        BackendMsg::EmptyQueryResponse => out.push_str("EmptyQueryResponse\n"),
        BackendMsg::ParameterDescription { types } => {
            out.push_str("ParameterDescription\n    types:");
            numbers(types, out);
        }
        BackendMsg::RowDescription { fields } => {
            out.push_str("RowDescription\n    fields:");
            columns(fields, out);
        }
        BackendMsg::DataRow { values: row } => {
            out.push_str("DataRow\n    values:");
            values(row, out);
        }
        BackendMsg::CommandComplete { tag } => {
            out.push_str("CommandComplete\n    tag:");
            value_str(FIELD, tag, out);
        }
        BackendMsg::ErrorResponse { fields } => {
            out.push_str("ErrorResponse\n    fields:");
            notice_fields(fields, out);
        }
        BackendMsg::NoticeResponse { fields } => {
            out.push_str("NoticeResponse\n    fields:");
            notice_fields(fields, out);
        }
        BackendMsg::NotificationResponse {
            process_id,
            channel,
            payload,
        } => {
            out.push_str("NotificationResponse\n    process_id:");
            value_num(*process_id, out);
            out.push_str("    channel:");
            value_str(FIELD, channel, out);
            out.push_str("    payload:");
            value_str(FIELD, payload, out);
        }
        BackendMsg::CopyInResponse {
            format: f,
            column_formats,
        } => copy_response("CopyInResponse", *f, column_formats, out),
        BackendMsg::CopyOutResponse {
            format: f,
            column_formats,
        } => copy_response("CopyOutResponse", *f, column_formats, out),
        BackendMsg::CopyBothResponse {
            format: f,
            column_formats,
        } => copy_response("CopyBothResponse", *f, column_formats, out),
        BackendMsg::CopyData { data } => {
            out.push_str("CopyData\n    data:");
            value(data, out);
        }
        BackendMsg::CopyDone => out.push_str("CopyDone\n"),
        BackendMsg::FunctionCallResponse { result } => {
            out.push_str("FunctionCallResponse\n    result:");
            value(result, out);
        }
    }
}

fn copy_response(kind: &str, f: Format, column_formats: &[Format], out: &mut String) {
    out.push_str(kind);
    out.push_str("\n    format:");
    format(f, out);
    out.push_str("    column_formats:");
    formats(column_formats, out);
}

/// RowDescription's columns: the first field shares the item's dash.
fn columns(fields: &[FieldDescription], out: &mut String) {
    sequence(fields, out, |field, out| {
        out.push_str("    - name:");
        value_str(NESTED, &field.name, out);
        out.push_str("      table_oid:");
        value_num(field.table_oid, out);
        out.push_str("      column_id:");
        value_num(field.column_id, out);
        out.push_str("      type_oid:");
        value_num(field.type_oid, out);
        out.push_str("      type_size:");
        value_num(field.type_size, out);
        out.push_str("      type_modifier:");
        value_num(field.type_modifier, out);
        out.push_str("      format:");
        format(field.format, out);
    });
}

/// A string after `key:` whose key sits at `level`: a literal block when
/// it spans lines and can be one, else on the key's line.
fn value_str(level: usize, s: &str, out: &mut String) {
    let form = str_form(s);
    if form == StrForm::Escaped && write_literal_block(s, level + 2, out) {
        return;
    }
    out.push(' ');
    write_in_form(s, form, out);
    out.push('\n');
}

/// An RFC 3339 timestamp: digits and punctuation that would read as a
/// date, so always double-quoted, never escaped.
fn timestamp(at: &DateTime<Utc>, out: &mut String) {
    crate::testset::timestamp::with_text(at, |text| {
        debug_assert_eq!(str_form(text), StrForm::Quoted, "{text}");
        out.push_str(" \"");
        out.push_str(text);
        out.push_str("\"\n");
    });
}

fn value_num(n: impl itoa::Integer, out: &mut String) {
    out.push(' ');
    out.push_str(itoa::Buffer::new().format(n));
    out.push('\n');
}

fn format_name(f: Format) -> &'static str {
    match f {
        Format::Text => "text",
        Format::Binary => "binary",
    }
}

fn format(f: Format, out: &mut String) {
    out.push(' ');
    out.push_str(format_name(f));
    out.push('\n');
}

fn target(t: Target, out: &mut String) {
    out.push_str(match t {
        Target::Statement => " statement\n",
        Target::Portal => " portal\n",
    });
}

/// A message field's list of formats.
fn formats(list: &[Format], out: &mut String) {
    sequence(list, out, |f, out| {
        out.push_str(FIELD_ITEM);
        out.push_str(format_name(*f));
        out.push('\n');
    });
}

/// A message field's list of OIDs.
fn numbers(list: &[u32], out: &mut String) {
    sequence(list, out, |n, out| {
        out.push_str(FIELD_ITEM);
        out.push_str(itoa::Buffer::new().format(*n));
        out.push('\n');
    });
}

/// A message field holding one value.
fn value(v: &PgValue, out: &mut String) {
    match v {
        PgValue::Null => out.push_str(" null\n"),
        PgValue::Text(text) => value_str(FIELD, text, out),
        PgValue::Bytes { base64 } => {
            out.push_str("\n      base64:");
            value_str(NESTED, base64, out);
        }
    }
}

/// A message field's list of values.
fn values(list: &[PgValue], out: &mut String) {
    sequence(list, out, |v, out| {
        out.push_str(FIELD_ITEM);
        match v {
            PgValue::Null => out.push_str("null\n"),
            // No literal blocks in a sequence item, as the emitter does.
            PgValue::Text(text) => {
                write_in_form(text, str_form(text), out);
                out.push('\n');
            }
            PgValue::Bytes { base64 } => {
                out.push_str("base64:");
                value_str(NESTED, base64, out);
            }
        }
    });
}

/// Connections whose `startup:` block is remembered.
const REMEMBERED_STARTUPS: usize = 32;

/// A connection's start-up parameters and its `startup:` block as written.
type StartupBlock = (Arc<BTreeMap<String, String>>, String);

thread_local! {
    /// Recent connections' start-up parameters, each with its block as
    /// written: every mock of a connection shares one map (the same `Arc`,
    /// which cannot change while it is held here), so its block is worked
    /// out once rather than for every exchange.
    static STARTUP_BLOCKS: RefCell<Vec<StartupBlock>> =
        const { RefCell::new(Vec::new()) };
    /// Where the next new block goes once all places are taken.
    static NEXT_STARTUP: Cell<usize> = const { Cell::new(0) };
}

/// The `startup:` map's value, from [`STARTUP_BLOCKS`] when it is there.
fn startup_block(startup: &Arc<BTreeMap<String, String>>, out: &mut String) {
    STARTUP_BLOCKS.with_borrow_mut(|blocks| {
        if let Some((_, text)) = blocks.iter().find(|(known, _)| Arc::ptr_eq(known, startup)) {
            out.push_str(text);
            return;
        }
        let mut text = String::new();
        string_map(2, startup, &mut text);
        out.push_str(&text);
        let entry = (Arc::clone(startup), text);
        if blocks.len() < REMEMBERED_STARTUPS {
            blocks.push(entry);
        } else {
            let at = NEXT_STARTUP.replace((NEXT_STARTUP.get() + 1) % REMEMBERED_STARTUPS);
            blocks[at] = entry;
        }
    });
}

/// A string-to-string map after a key at `level`.
fn string_map(level: usize, map: &BTreeMap<String, String>, out: &mut String) {
    block(map.iter(), " {}\n", out, |(key, value), out| {
        map_key(level + 2, key, out);
        value_str(level + 2, value, out);
    });
}

/// ErrorResponse/NoticeResponse fields, keyed by their one-letter code.
fn notice_fields(fields: &BTreeMap<char, String>, out: &mut String) {
    block(fields.iter(), " {}\n", out, |(code, value), out| {
        map_key(NESTED, code.encode_utf8(&mut [0; 4]), out);
        value_str(NESTED, value, out);
    });
}

/// A key that is data, at `level`, and its colon.
fn map_key(level: usize, key: &str, out: &mut String) {
    indent(level, out);
    write_key(key, str_form(key), level, out);
}

#[cfg(test)]
mod tests;
