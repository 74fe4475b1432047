//! Keploy's PostgresV3 cells back to the bytes PostgreSQL sends.
//!
//! Keploy stores a result cell or a bind value as its *logical* value (an
//! integer, a string, a timestamp, `!!binary` bytes, a mapping for numeric
//! and a few other types) and drops the wire bytes. Serving the recording
//! needs those bytes again, in the format the client asked for, so each
//! value is encoded from its column's type OID the way PostgreSQL's own
//! output functions do (text) or its send functions do (binary).
//!
//! Only types whose bytes can be re-created exactly are encoded; anything
//! else (an array, an interval, a `json` document whose key order and
//! spacing Keploy did not keep, ...) is an error naming the cell, so the
//! mock is reported as not served rather than served with different bytes.

use chrono::{DateTime, Datelike, FixedOffset, NaiveDate, NaiveDateTime, Timelike};
use serde_yaml::Value;

use super::fields::{binary, bytes, Field};
use crate::testset::pg_mock::Format;

/// Type OIDs this module knows by name.
pub mod oid {
    pub const BOOL: u32 = 16;
    pub const BYTEA: u32 = 17;
    pub const CHAR: u32 = 18;
    pub const NAME: u32 = 19;
    pub const INT8: u32 = 20;
    pub const INT2: u32 = 21;
    pub const INT4: u32 = 23;
    pub const TEXT: u32 = 25;
    pub const OID: u32 = 26;
    pub const JSON: u32 = 114;
    pub const FLOAT4: u32 = 700;
    pub const FLOAT8: u32 = 701;
    pub const UNKNOWN: u32 = 705;
    pub const BPCHAR: u32 = 1042;
    pub const VARCHAR: u32 = 1043;
    pub const DATE: u32 = 1082;
    pub const TIME: u32 = 1083;
    pub const TIMESTAMP: u32 = 1114;
    pub const TIMESTAMPTZ: u32 = 1184;
    pub const NUMERIC: u32 = 1700;
    pub const UUID: u32 = 2950;
    pub const JSONB: u32 = 3802;
}

/// Microseconds between the Unix epoch and PostgreSQL's (2000-01-01).
const PG_EPOCH_UNIX_SECONDS: i64 = 946_684_800;

/// The wire bytes of `cell` for a column or parameter of type `type_oid`
/// in `format`; `None` is SQL NULL.
pub fn encode(cell: &Field<'_>, type_oid: u32, format: Format) -> Result<Option<Vec<u8>>, String> {
    if cell.value.is_null() {
        return Ok(None);
    }
    let cannot = |why: &str| {
        Err(format!(
            "`{}`: cannot re-create the {} bytes of a value of type OID {type_oid}: {why}",
            cell.path,
            format_name(format),
        ))
    };
    if let Some(bytes) = binary(cell) {
        let bytes = bytes?;
        return match (format, type_oid) {
            (Format::Binary, _) => Ok(Some(bytes)),
            (Format::Text, oid::BYTEA) => Ok(Some(bytea_text(&bytes))),
            (Format::Text, _) => match String::from_utf8(bytes) {
                Ok(text) => Ok(Some(text.into_bytes())),
                Err(_) => cannot("the recorded bytes are not text"),
            },
        };
    }
    match cell.value {
        Value::Bool(b) => match format {
            Format::Text => Ok(Some(if *b { b"t".to_vec() } else { b"f".to_vec() })),
            Format::Binary => Ok(Some(vec![u8::from(*b)])),
        },
        Value::Number(n) => encode_number(n, type_oid, format).or_else(|why| cannot(&why)),
        // Keploy writes bytea as !!binary, which reads back as its base64.
        Value::String(_) if type_oid == oid::BYTEA => {
            let raw = bytes(cell)?;
            Ok(Some(match format {
                Format::Binary => raw,
                Format::Text => bytea_text(&raw),
            }))
        }
        Value::String(s) => encode_string(s, type_oid, format).or_else(|why| cannot(&why)),
        Value::Mapping(_) => encode_mapping(cell, type_oid, format).or_else(|why| cannot(&why)),
        Value::Sequence(_) if type_oid == oid::JSONB => Ok(Some(jsonb(cell.value, format)?)),
        Value::Sequence(_) => cannot("arrays are not re-created"),
        Value::Null | Value::Tagged(_) => cannot("unexpected YAML value"),
    }
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Text => "text",
        Format::Binary => "binary",
    }
}

/// `\x` and lower-case hex: bytea's output with the default bytea_output.
fn bytea_text(bytes: &[u8]) -> Vec<u8> {
    format!("\\x{}", hex::encode(bytes)).into_bytes()
}

fn encode_number(
    n: &serde_yaml::Number,
    type_oid: u32,
    format: Format,
) -> Result<Option<Vec<u8>>, String> {
    if let Some(i) = n.as_i64() {
        return encode_integer(i, type_oid, format);
    }
    let f = n.as_f64().ok_or("not a number")?;
    encode_float(f, type_oid, format)
}

fn encode_integer(i: i64, type_oid: u32, format: Format) -> Result<Option<Vec<u8>>, String> {
    let range = |what: &str| format!("{i} does not fit {what}");
    let bytes = match (format, type_oid) {
        (Format::Text, oid::INT2 | oid::INT4 | oid::INT8 | oid::OID | oid::NUMERIC) => {
            i.to_string().into_bytes()
        }
        (Format::Text, oid::FLOAT4 | oid::FLOAT8) => {
            return encode_float(i as f64, type_oid, format)
        }
        (Format::Text, t) if is_text_type(t) => i.to_string().into_bytes(),
        (Format::Binary, oid::INT2) => i16::try_from(i)
            .map_err(|_| range("int2"))?
            .to_be_bytes()
            .to_vec(),
        (Format::Binary, oid::INT4) => i32::try_from(i)
            .map_err(|_| range("int4"))?
            .to_be_bytes()
            .to_vec(),
        (Format::Binary, oid::INT8) => i.to_be_bytes().to_vec(),
        (Format::Binary, oid::OID) => u32::try_from(i)
            .map_err(|_| range("oid"))?
            .to_be_bytes()
            .to_vec(),
        (Format::Binary, oid::FLOAT4 | oid::FLOAT8 | oid::NUMERIC) => {
            return encode_float_or_numeric(&i.to_string(), i as f64, type_oid)
        }
        _ => return Err("an integer for a type that is not numeric".into()),
    };
    Ok(Some(bytes))
}

fn encode_float_or_numeric(
    decimal: &str,
    f: f64,
    type_oid: u32,
) -> Result<Option<Vec<u8>>, String> {
    match type_oid {
        oid::NUMERIC => Ok(Some(numeric_binary(decimal)?)),
        _ => encode_float(f, type_oid, Format::Binary),
    }
}

fn encode_float(f: f64, type_oid: u32, format: Format) -> Result<Option<Vec<u8>>, String> {
    let bytes = match (format, type_oid) {
        (Format::Text, oid::FLOAT8) => float_text(f, 15),
        (Format::Text, oid::FLOAT4) => float_text(f64::from(f as f32), 6),
        (Format::Binary, oid::FLOAT8) => f.to_be_bytes().to_vec(),
        (Format::Binary, oid::FLOAT4) => (f as f32).to_be_bytes().to_vec(),
        _ => return Err("a floating-point value for a type that is not float4/float8".into()),
    };
    Ok(Some(bytes))
}

/// float4out/float8out with extra_float_digits = 1 (PostgreSQL 12 and
/// later): the shortest text that reads back exactly, in exponent form
/// when the decimal exponent is below -4 or at least `digits`.
fn float_text(f: f64, digits: i32) -> Vec<u8> {
    if f.is_nan() {
        return b"NaN".to_vec();
    }
    if f.is_infinite() {
        return if f > 0.0 {
            b"Infinity".to_vec()
        } else {
            b"-Infinity".to_vec()
        };
    }
    // `{:e}` is the shortest round-trip form: mantissa digits and exponent.
    let sci = if digits == 6 {
        format!("{:e}", f as f32)
    } else {
        format!("{f:e}")
    };
    let Some((mantissa, exp)) = sci.split_once('e') else {
        return sci.into_bytes();
    };
    let exp: i32 = exp.parse().unwrap_or(0);
    if exp < -4 || exp >= digits {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs()).into_bytes();
    }
    if digits == 6 {
        format!("{}", f as f32).into_bytes()
    } else {
        format!("{f}").into_bytes()
    }
}

/// Types whose text form is the logical string itself.
fn is_text_type(type_oid: u32) -> bool {
    matches!(
        type_oid,
        0 | oid::TEXT | oid::VARCHAR | oid::BPCHAR | oid::NAME | oid::CHAR | oid::UNKNOWN
    )
}

fn encode_string(s: &str, type_oid: u32, format: Format) -> Result<Option<Vec<u8>>, String> {
    let bytes = match (format, type_oid) {
        (_, t) if is_text_type(t) => s.as_bytes().to_vec(),
        (Format::Text, oid::TIMESTAMP | oid::TIMESTAMPTZ | oid::DATE) => match parse_time(s) {
            Some(t) => time_text(&t, type_oid),
            // Already PostgreSQL's text: keep it.
            None => s.as_bytes().to_vec(),
        },
        (Format::Binary, oid::TIMESTAMP | oid::TIMESTAMPTZ | oid::DATE) => {
            let t = parse_time(s).ok_or("the timestamp is not RFC 3339")?;
            time_binary(&t, type_oid)?
        }
        (Format::Binary, oid::UUID) => uuid_binary(s)?,
        (Format::Binary, oid::INT2 | oid::INT4 | oid::INT8 | oid::OID) => {
            let i: i64 = s.parse().map_err(|_| "not an integer")?;
            return encode_integer(i, type_oid, format);
        }
        (Format::Binary, oid::FLOAT4 | oid::FLOAT8) => {
            let f: f64 = s.parse().map_err(|_| "not a number")?;
            return encode_float(f, type_oid, format);
        }
        (Format::Binary, oid::BOOL) => match s {
            "t" | "true" => vec![1],
            "f" | "false" => vec![0],
            _ => return Err("not a boolean".into()),
        },
        (Format::Binary, oid::NUMERIC) => numeric_binary(s)?,
        (Format::Binary, oid::JSON) => s.as_bytes().to_vec(),
        (Format::Binary, oid::JSONB) => [&[1u8][..], s.as_bytes()].concat(),
        (Format::Binary, _) => return Err("the binary form of this type is not known".into()),
        // Every other type's text form is what Keploy kept as a string
        // (numeric, uuid, json, intervals, enums, ...).
        (Format::Text, _) => s.as_bytes().to_vec(),
    };
    Ok(Some(bytes))
}

/// A timestamp as Keploy writes it (RFC 3339, from Go's `time.Time`).
fn parse_time(s: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(s).ok()
}

/// PostgreSQL's ISO output: `2026-04-22 10:11:12.5` (trailing zeros of the
/// fraction dropped), `+00` / `+05:30` offsets for timestamptz, and the
/// offset the recording carried (the session's TimeZone).
fn time_text(t: &DateTime<FixedOffset>, type_oid: u32) -> Vec<u8> {
    let date = t.date_naive();
    let date_text = if date.year() <= 0 {
        format!(
            "{:04}-{:02}-{:02} BC",
            1 - date.year(),
            date.month(),
            date.day()
        )
    } else {
        format!("{:04}-{:02}-{:02}", date.year(), date.month(), date.day())
    };
    if type_oid == oid::DATE {
        return date_text.into_bytes();
    }
    let mut out = format!(
        "{} {:02}:{:02}:{:02}",
        date_text,
        t.hour(),
        t.minute(),
        t.second()
    );
    let micros = t.nanosecond() / 1000;
    if micros > 0 {
        let frac = format!("{micros:06}");
        out.push('.');
        out.push_str(frac.trim_end_matches('0'));
    }
    if type_oid == oid::TIMESTAMPTZ {
        let offset = t.offset().local_minus_utc();
        let sign = if offset < 0 { '-' } else { '+' };
        let (h, m) = (offset.abs() / 3600, offset.abs() % 3600 / 60);
        out.push_str(&format!("{sign}{h:02}"));
        if m != 0 {
            out.push_str(&format!(":{m:02}"));
        }
    }
    out.into_bytes()
}

/// timestamp/timestamptz: microseconds since 2000-01-01 (UTC for
/// timestamptz, the wall clock for timestamp); date: days since then.
fn time_binary(t: &DateTime<FixedOffset>, type_oid: u32) -> Result<Vec<u8>, String> {
    let pg_epoch = NaiveDate::from_ymd_opt(2000, 1, 1).ok_or("calendar")?;
    if type_oid == oid::DATE {
        let days = t.date_naive().signed_duration_since(pg_epoch).num_days();
        let days = i32::try_from(days).map_err(|_| "date out of range")?;
        return Ok(days.to_be_bytes().to_vec());
    }
    let wall: NaiveDateTime = if type_oid == oid::TIMESTAMPTZ {
        t.naive_utc()
    } else {
        t.naive_local()
    };
    let micros = wall.and_utc().timestamp_micros() - PG_EPOCH_UNIX_SECONDS * 1_000_000;
    Ok(micros.to_be_bytes().to_vec())
}

fn uuid_binary(s: &str) -> Result<Vec<u8>, String> {
    let hex_digits: String = s.chars().filter(|c| *c != '-').collect();
    let bytes = hex::decode(&hex_digits).map_err(|_| "not a UUID")?;
    if bytes.len() != 16 {
        return Err("not a UUID".into());
    }
    Ok(bytes)
}

fn encode_mapping(
    cell: &Field<'_>,
    type_oid: u32,
    format: Format,
) -> Result<Option<Vec<u8>>, String> {
    let keys = mapping_keys(cell.value);
    let has = |want: &[&str]| {
        let mut want: Vec<&str> = want.to_vec();
        want.sort_unstable();
        keys == want
    };
    if has(&["format", "bytes"]) {
        // A raw cell: the wire bytes of a type Keploy does not decode.
        let recorded: i64 = cell.get("format")?.int()?;
        let bytes = bytes(&cell.get("bytes")?)?;
        let wanted = i64::from(format == Format::Binary);
        if recorded != wanted {
            return Err(format!(
                "the recorded bytes are in format {recorded}, the client asked for {}",
                format_name(format)
            ));
        }
        return Ok(Some(bytes));
    }
    if has(&["int", "exp", "nan", "infinitymodifier", "valid"]) {
        let decimal = numeric_decimal(cell)?;
        return match format {
            Format::Text => Ok(Some(decimal.into_bytes())),
            Format::Binary => Ok(Some(numeric_binary(&decimal)?)),
        };
    }
    if has(&["uuid"]) {
        let field = cell.get("uuid")?;
        let bytes = match field.value.as_str() {
            Some(s) if s.len() == 36 => uuid_binary(s)?,
            _ => bytes(&field)?,
        };
        if bytes.len() != 16 {
            return Err("not a UUID".into());
        }
        return match format {
            Format::Binary => Ok(Some(bytes)),
            Format::Text => {
                let h = hex::encode(&bytes);
                Ok(Some(
                    format!(
                        "{}-{}-{}-{}-{}",
                        &h[..8],
                        &h[8..12],
                        &h[12..16],
                        &h[16..20],
                        &h[20..]
                    )
                    .into_bytes(),
                ))
            }
        };
    }
    if has(&["microseconds", "valid"]) && type_oid == oid::TIME {
        let micros = cell.get("microseconds")?.int()?;
        return match format {
            Format::Binary => Ok(Some(micros.to_be_bytes().to_vec())),
            Format::Text => {
                let secs = micros / 1_000_000;
                let mut out = format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60);
                let frac = micros % 1_000_000;
                if frac > 0 {
                    out.push('.');
                    out.push_str(format!("{frac:06}").trim_end_matches('0'));
                }
                Ok(Some(out.into_bytes()))
            }
        };
    }
    if type_oid == oid::JSONB {
        return Ok(Some(jsonb(cell.value, format)?));
    }
    if type_oid == oid::JSON {
        return Err(
            "Keploy keeps a json document parsed, so its key order and spacing are lost".into(),
        );
    }
    Err(format!(
        "the mapping with keys {keys:?} is not a type recplay re-creates"
    ))
}

fn mapping_keys(value: &Value) -> Vec<&str> {
    let mut keys: Vec<&str> = value
        .as_mapping()
        .map(|m| m.keys().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    keys
}

/// The decimal text of Keploy's numeric mapping (`int` × 10^`exp`), with
/// the scale the value had, as numeric_out prints it.
fn numeric_decimal(cell: &Field<'_>) -> Result<String, String> {
    if cell.get("nan")?.value.as_bool() == Some(true) {
        return Ok("NaN".into());
    }
    match cell.get("infinitymodifier")?.int()? {
        0 => {}
        m if m > 0 => return Ok("Infinity".into()),
        _ => return Ok("-Infinity".into()),
    }
    let int_field = cell.get("int")?;
    let int = match int_field.value {
        Value::Number(n) => n.to_string(),
        _ => int_field.str()?.to_string(),
    };
    let exp: i64 = cell.get("exp")?.int()?;
    let (negative, digits) = match int.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, int.as_str()),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("`{}` is not an integer: {int:?}", int_field.path));
    }
    if exp.unsigned_abs() > 1000 {
        return Err(format!("`{}.exp` is out of range: {exp}", cell.path));
    }
    let text = if exp >= 0 {
        format!("{digits}{}", "0".repeat(exp as usize))
    } else {
        let scale = (-exp) as usize;
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (whole, frac) = padded.split_at(padded.len() - scale);
        format!("{whole}.{frac}")
    };
    let text = text.trim_start_matches('0');
    let text = if text.is_empty() || text.starts_with('.') {
        format!("0{text}")
    } else {
        text.to_string()
    };
    let zero = text.bytes().all(|b| b == b'0' || b == b'.');
    Ok(if negative && !zero {
        format!("-{text}")
    } else {
        text
    })
}

/// numeric_send: base-10000 digits with weight, sign and display scale.
fn numeric_binary(decimal: &str) -> Result<Vec<u8>, String> {
    let (sign, body) = match decimal {
        "NaN" => return Ok(numeric_header(0, 0, 0xC000, 0)),
        "Infinity" => return Ok(numeric_header(0, 0, 0xD000, 0)),
        "-Infinity" => return Ok(numeric_header(0, 0, 0xF000, 0)),
        d => match d.strip_prefix('-') {
            Some(rest) => (0x4000u16, rest),
            None => (0u16, d.strip_prefix('+').unwrap_or(d)),
        },
    };
    let (whole, frac) = body.split_once('.').unwrap_or((body, ""));
    if whole.is_empty() && frac.is_empty()
        || !whole
            .bytes()
            .chain(frac.bytes())
            .all(|b| b.is_ascii_digit())
    {
        return Err(format!("not a decimal number: {decimal:?}"));
    }
    let dscale = i16::try_from(frac.len()).map_err(|_| "numeric scale out of range")?;
    let whole = whole.trim_start_matches('0');
    let pad_left = (4 - whole.len() % 4) % 4;
    let pad_right = (4 - frac.len() % 4) % 4;
    let all = format!(
        "{}{whole}{frac}{}",
        "0".repeat(pad_left),
        "0".repeat(pad_right)
    );
    let mut groups: Vec<i16> = all
        .as_bytes()
        .chunks(4)
        .map(|c| c.iter().fold(0i16, |acc, d| acc * 10 + i16::from(d - b'0')))
        .collect();
    let mut weight =
        i16::try_from((pad_left + whole.len()) / 4).map_err(|_| "numeric too large")? - 1;
    while groups.first() == Some(&0) {
        groups.remove(0);
        weight -= 1;
    }
    while groups.last() == Some(&0) {
        groups.pop();
    }
    let (sign, weight) = if groups.is_empty() {
        (0, 0)
    } else {
        (sign, weight)
    };
    let ndigits = i16::try_from(groups.len()).map_err(|_| "numeric too large")?;
    let mut out = numeric_header(ndigits, weight, sign, dscale);
    for g in groups {
        out.extend_from_slice(&g.to_be_bytes());
    }
    Ok(out)
}

fn numeric_header(ndigits: i16, weight: i16, sign: u16, dscale: i16) -> Vec<u8> {
    let mut out = Vec::with_capacity(8);
    out.extend_from_slice(&ndigits.to_be_bytes());
    out.extend_from_slice(&weight.to_be_bytes());
    out.extend_from_slice(&sign.to_be_bytes());
    out.extend_from_slice(&dscale.to_be_bytes());
    out
}

/// jsonb_out's text (`{"a": 1, "bb": [1, 2]}`: keys shortest first, then
/// bytewise, a space after `:` and `,`); jsonb_send prefixes version 1.
fn jsonb(value: &Value, format: Format) -> Result<Vec<u8>, String> {
    let mut text = String::new();
    write_jsonb(value, &mut text)?;
    Ok(match format {
        Format::Text => text.into_bytes(),
        Format::Binary => [&[1u8][..], text.as_bytes()].concat(),
    })
}

fn write_jsonb(value: &Value, out: &mut String) -> Result<(), String> {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => {
            out.push_str(&serde_json::to_string(s).map_err(|e| e.to_string())?);
        }
        Value::Sequence(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_jsonb(item, out)?;
            }
            out.push(']');
        }
        Value::Mapping(map) => {
            let mut entries: Vec<(&str, &Value)> = Vec::with_capacity(map.len());
            for (k, v) in map {
                let k = k.as_str().ok_or("a JSON object key that is not a string")?;
                entries.push((k, v));
            }
            entries.sort_by(|a, b| a.0.len().cmp(&b.0.len()).then(a.0.cmp(b.0)));
            out.push('{');
            for (i, (k, v)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&serde_json::to_string(k).map_err(|e| e.to_string())?);
                out.push_str(": ");
                write_jsonb(v, out)?;
            }
            out.push('}');
        }
        Value::Tagged(t) => write_jsonb(&t.value, out)?,
    }
    Ok(())
}
