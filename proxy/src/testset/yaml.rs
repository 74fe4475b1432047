//! A fast block-style YAML writer for documents that serde can express as
//! JSON values.
//!
//! serde_yaml's emitter costs tens of microseconds per mock, and the
//! PostgreSQL recorder writes one mock per exchange: at pgbench rates that
//! cost alone throttled recording. Going through `serde_json::Value` and
//! writing block YAML directly is an order of magnitude cheaper and yields
//! the same readable layout. Strings that could be misread (numbers,
//! booleans, nulls, anything with YAML punctuation or non-printable
//! characters) are double-quoted with escapes, so what serde_yaml reads back
//! is exactly what was written; the unit tests hold it to that.

use std::fmt::Write as _;

use serde::Serialize;
use serde_json::Value;

/// `value` as a block-style YAML document (no leading `---`).
pub fn to_yaml<T: Serialize>(value: &T) -> Result<String, serde_json::Error> {
    let value = serde_json::to_value(value)?;
    let mut out = String::with_capacity(1024);
    match &value {
        Value::Object(map) if !map.is_empty() => write_map(map, 0, false, &mut out),
        Value::Array(items) if !items.is_empty() => write_seq(items, 0, &mut out),
        scalar => {
            write_scalar(scalar, &mut out);
            out.push('\n');
        }
    }
    Ok(out)
}

fn indent(n: usize, out: &mut String) {
    for _ in 0..n {
        out.push(' ');
    }
}

/// Writes `map` at `level`; with `inline_first` the first key continues the
/// current line (after a sequence dash).
fn write_map(
    map: &serde_json::Map<String, Value>,
    level: usize,
    inline_first: bool,
    out: &mut String,
) {
    for (i, (key, value)) in map.iter().enumerate() {
        if i > 0 || !inline_first {
            indent(level, out);
        }
        write_str(key, out);
        out.push(':');
        if let Some((variant, inner)) = tagged_variant(key, value) {
            out.push_str(" !");
            out.push_str(variant);
            out.push(' ');
            write_str(inner, out);
            out.push('\n');
            continue;
        }
        match value {
            Value::Object(m) if !m.is_empty() => {
                out.push('\n');
                write_map(m, level + 2, false, out);
            }
            Value::Array(items) if !items.is_empty() => {
                out.push('\n');
                write_seq(items, level, out);
            }
            scalar => {
                out.push(' ');
                write_scalar(scalar, out);
                out.push('\n');
            }
        }
    }
}

/// Fields holding an externally tagged enum with a string payload, which
/// serde_yaml writes and reads as a YAML tag (`lifetime: !test test-1`)
/// while JSON shows a one-key map. `Lifetime` is the only such enum in the
/// test-set model.
const TAGGED_ENUM_FIELDS: &[&str] = &["lifetime"];

fn tagged_variant<'a>(key: &str, value: &'a Value) -> Option<(&'a str, &'a str)> {
    if !TAGGED_ENUM_FIELDS.contains(&key) {
        return None;
    }
    let map = value.as_object()?;
    if map.len() != 1 {
        return None;
    }
    let (variant, inner) = map.iter().next()?;
    let plain_tag = variant
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '_');
    match inner {
        Value::String(s) if plain_tag && !variant.is_empty() => Some((variant, s)),
        _ => None,
    }
}

fn write_seq(items: &[Value], level: usize, out: &mut String) {
    for item in items {
        indent(level, out);
        match item {
            Value::Object(m) if !m.is_empty() => {
                out.push_str("- ");
                write_map(m, level + 2, true, out);
            }
            Value::Array(inner) if !inner.is_empty() => {
                out.push_str("-\n");
                write_seq(inner, level + 2, out);
            }
            scalar => {
                out.push_str("- ");
                write_scalar(scalar, out);
                out.push('\n');
            }
        }
    }
}

fn write_scalar(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Value::String(s) => write_str(s, out),
        Value::Array(_) => out.push_str("[]"),
        Value::Object(_) => out.push_str("{}"),
    }
}

/// Words some YAML readers take for booleans or null.
const RESERVED: &[&str] = &["true", "false", "null", "yes", "no", "on", "off", "y", "n"];

fn is_plain_safe(s: &str) -> bool {
    let Some(first) = s.chars().next() else {
        return false;
    };
    if !(first.is_ascii_alphabetic() || first == '_') || s.ends_with(' ') {
        return false;
    }
    if RESERVED.iter().any(|w| s.eq_ignore_ascii_case(w)) {
        return false;
    }
    s.chars().all(|c| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                ' ' | '_' | '-' | '.' | '/' | '(' | ')' | '=' | '+' | '*' | '$'
            )
    }) && !s.contains("  ")
}

fn write_str(s: &str, out: &mut String) {
    if is_plain_safe(s) {
        out.push_str(s);
        return;
    }
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            // Outside YAML's printable set: escaped.
            c if (c as u32) < 0x20
                || (0x7f..=0x9f).contains(&(c as u32))
                || matches!(
                    c,
                    '\u{feff}' | '\u{fffe}' | '\u{ffff}' | '\u{2028}' | '\u{2029}'
                ) =>
            {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::testset::pg_mock::*;

    fn sample() -> PgMock {
        let mut fields = BTreeMap::new();
        for (k, v) in [
            ('S', "ERROR"),
            ('C', "22012"),
            ('M', "division: by #zero"),
            ('n', "y"),
        ] {
            fields.insert(k, v.to_string());
        }
        PgMock::new(
            "mock-1",
            MockSpec {
                connection: 1,
                position: 3,
                lifetime: Lifetime::Test("test-1".into()),
                startup: [("user".to_string(), "postgres".to_string())]
                    .into_iter()
                    .collect(),
                request_timestamp: chrono::Utc::now(),
                response_timestamp: chrono::Utc::now(),
                requests: vec![
                    FrontendMsg::Parse {
                        name: String::new(),
                        query: "SELECT $1::int\n  -- 'x': \"y\"".into(),
                        param_types: vec![23],
                    },
                    FrontendMsg::Bind {
                        portal: String::new(),
                        statement: "s0".into(),
                        statement_query: Some("SELECT 1".into()),
                        param_formats: vec![Format::Binary, Format::Text],
                        params: vec![
                            PgValue::Bytes {
                                base64: "AAAAAQ==".into(),
                            },
                            PgValue::Text("true".into()),
                            PgValue::Text("12".into()),
                            PgValue::Text("".into()),
                            PgValue::Text(" lead".into()),
                            PgValue::Text("- dash".into()),
                            PgValue::Text("tab\there \u{7f}\u{85} é ✓".into()),
                            PgValue::Null,
                            PgValue::Text("null".into()),
                            PgValue::Text("~".into()),
                        ],
                        result_formats: vec![],
                    },
                    FrontendMsg::Sync,
                ],
                responses: vec![
                    BackendMsg::ErrorResponse { fields },
                    BackendMsg::DataRow { values: vec![] },
                    BackendMsg::ReadyForQuery { status: 'E' },
                ],
            },
        )
    }

    #[test]
    fn serde_yaml_reads_back_exactly_what_was_written() {
        let mock = sample();
        let text = to_yaml(&mock).expect("emit");
        let back: PgMock = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back, mock, "\n{text}");
        assert!(text.contains("\nkind: Postgres\n"), "{text}");
        assert!(
            text.contains("    type: Sync\n") || text.contains("  - type: Sync\n"),
            "{text}"
        );
    }

    #[test]
    fn lifetimes_round_trip() {
        for lifetime in [
            Lifetime::Session,
            Lifetime::Unattributed,
            Lifetime::Test("test-7".into()),
        ] {
            let mut mock = sample();
            mock.spec.lifetime = lifetime.clone();
            let text = to_yaml(&mock).expect("emit");
            let back: PgMock =
                serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(back.spec.lifetime, lifetime);
            // The same spelling serde_yaml itself uses.
            let theirs = serde_yaml::to_string(&mock).expect("serde_yaml");
            let line = |t: &str| {
                t.lines()
                    .find(|l| l.contains("lifetime:"))
                    .map(str::to_string)
            };
            assert_eq!(line(&text), line(&theirs));
        }
    }
}
