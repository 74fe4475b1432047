//! One packet of a Keploy v1 Postgres mock (`postgresrequests` or
//! `postgresresponses` entry) as the protocol messages it carried.
//!
//! A packet is one read from the socket: a `header` list with the tag of
//! each message in it, and either its raw bytes (`payload`, base64) or
//! only Keploy's decoded fields (`query`, `parse`, `bind`, `data_row`, ...).
//! The raw bytes are the truth and go through recplay's own decoders;
//! Keploy's fields are a fallback, and a lossy one: its decoder never saw a
//! packet's last message when that message was five bytes long (Sync, NoData,
//! BindComplete, ...), which is why it kept the payload of such packets, and
//! it wrote SQL NULL in a row as an empty string.

use std::collections::BTreeMap;

use base64::Engine as _;
use serde_yaml::Value;

use crate::pgwire::backend::{Authentication, BackendMessage};
use crate::pgwire::frontend::{AuthRequest, DecodeContext, FrontendMessage, PROTOCOL_3_0};
use crate::testset::pg_mock::{FieldDescription, Format, Target};

/// What decoding a connection's packets must remember between them.
#[derive(Debug, Clone, Copy)]
pub struct Decoding {
    /// A tagless start-up packet comes next.
    pub awaiting_startup: bool,
    /// What the server last asked the client to authenticate with.
    pub auth: Option<AuthRequest>,
}

impl Default for Decoding {
    fn default() -> Self {
        Decoding {
            awaiting_startup: true,
            auth: None,
        }
    }
}

/// A request packet's messages, and whether it is an extended-protocol
/// batch whose closing Sync Keploy's fields lost (see the module docs).
pub struct Requests {
    /// In wire order; authentication included (the recorder drops it).
    pub messages: Vec<FrontendMessage>,
    /// Read from fields, it ends inside an extended-protocol batch.
    pub open_batch: bool,
}

/// Whether this request packet opens a connection.
pub fn is_startup(packet: &Value) -> bool {
    text(packet, "identifier") == "StartupRequest" || packet.get("startup_message").is_some()
}

/// The client messages of one `postgresrequests` entry.
pub fn requests(packet: &Value, state: &mut Decoding) -> Result<Requests, String> {
    if let Some(bytes) = payload(packet)? {
        let messages = decode_frontend(&bytes, state)?;
        return Ok(Requests {
            messages,
            open_batch: false,
        });
    }
    if is_startup(packet) {
        let startup = packet.get("startup_message").ok_or(
            "a start-up packet with neither its bytes (payload) nor its fields (startup_message)",
        )?;
        let protocol = startup
            .get("protocolversion")
            .and_then(Value::as_u64)
            .and_then(|v| u32::try_from(v).ok())
            .unwrap_or(PROTOCOL_3_0);
        let parameters = match startup.get("parameters") {
            Some(Value::Mapping(map)) => map.iter().map(|(k, v)| (scalar(k), scalar(v))).collect(),
            _ => Vec::new(),
        };
        state.awaiting_startup = false;
        return Ok(Requests {
            messages: vec![FrontendMessage::Startup {
                protocol,
                parameters,
            }],
            open_batch: false,
        });
    }
    let letters = header(packet)?;
    let mut lists = Lists::default();
    let mut messages = Vec::with_capacity(letters.len());
    for letter in &letters {
        let message = match letter.as_str() {
            "Q" => FrontendMessage::Query(text(field(packet, "query")?, "string").to_string()),
            "P" => {
                let parse = lists.next(packet, "parse")?;
                FrontendMessage::Parse {
                    name: text(parse, "name").to_string(),
                    query: text(parse, "query").to_string(),
                    param_types: numbers(parse.get("parameter_oids"))?,
                }
            }
            "B" => {
                let bind = lists.next(packet, "bind")?;
                FrontendMessage::Bind {
                    portal: text(bind, "destination_portal").to_string(),
                    statement: text(bind, "prepared_statement").to_string(),
                    param_formats: formats(bind.get("parameter_format_codes"))?,
                    params: match bind.get("parameters") {
                        Some(Value::Sequence(values)) => values
                            .iter()
                            .map(|v| bytes(v).map(Some))
                            .collect::<Result<_, _>>()?,
                        _ => Vec::new(),
                    },
                    result_formats: formats(bind.get("result_format_codes"))?,
                }
            }
            "D" => {
                let describe = field(packet, "describe")?;
                FrontendMessage::Describe {
                    target: target(describe)?,
                    name: text(describe, "name").to_string(),
                }
            }
            "E" => {
                let execute = lists.next(packet, "execute")?;
                FrontendMessage::Execute {
                    portal: text(execute, "portal").to_string(),
                    max_rows: number(execute.get("max_rows")).unwrap_or(0) as i32,
                }
            }
            "C" => {
                let close = field(packet, "close")?;
                FrontendMessage::Close {
                    target: target(close)?,
                    name: text(close, "name").to_string(),
                }
            }
            "S" => FrontendMessage::Sync,
            "H" => FrontendMessage::Flush,
            "X" => FrontendMessage::Terminate,
            "c" => FrontendMessage::CopyDone,
            "d" => FrontendMessage::CopyData(bytes(field(field(packet, "copy_data")?, "data")?)?),
            "f" => FrontendMessage::CopyFail(text(field(packet, "copy_fail")?, "message").into()),
            // Authentication: never read, never stored.
            "p" => continue,
            other => {
                return Err(format!(
                    "a client message `{other}` that Keploy kept only as fields recplay cannot read"
                ))
            }
        };
        messages.push(message);
    }
    let open_batch = letters
        .last()
        .is_some_and(|l| matches!(l.as_str(), "P" | "B" | "D" | "E" | "C"));
    Ok(Requests {
        messages,
        open_batch,
    })
}

/// The server messages of one `postgresresponses` entry.
pub fn responses(packet: &Value, state: &mut Decoding) -> Result<Vec<BackendMessage>, String> {
    if let Some(bytes) = payload(packet)? {
        // The one-byte answer to an SSLRequest or GSSENCRequest.
        if matches!(bytes.as_slice(), b"N" | b"S" | b"G") {
            return Ok(Vec::new());
        }
        let mut messages = Vec::new();
        let mut at = 0;
        while at < bytes.len() {
            match BackendMessage::decode(&bytes[at..]) {
                Ok(Some((message, used))) => {
                    if let BackendMessage::Authentication(auth) = &message {
                        state.auth = auth.reply_expected();
                    }
                    messages.push(message);
                    at += used;
                }
                Ok(None) => {
                    return Err(format!("its payload ends inside a message (at byte {at})"))
                }
                Err(e) => return Err(format!("its payload does not decode at byte {at}: {e}")),
            }
        }
        return Ok(messages);
    }
    let letters = header(packet)?;
    let mut lists = Lists::default();
    let mut messages = Vec::with_capacity(letters.len());
    for (i, letter) in letters.iter().enumerate() {
        let message = match letter.as_str() {
            "R" => {
                let auth = authentication(packet, letters.get(i + 1).map(String::as_str));
                state.auth = auth.reply_expected();
                BackendMessage::Authentication(auth)
            }
            "S" => {
                let status = lists.next(packet, "parameter_status")?;
                BackendMessage::ParameterStatus {
                    name: text(status, "name").to_string(),
                    value: text(status, "value").to_string(),
                }
            }
            "K" => {
                let key = field(packet, "backend_key_data")?;
                BackendMessage::BackendKeyData {
                    process_id: number(key.get("process_id")).unwrap_or(0) as i32,
                    secret_key: number(key.get("secret_key")).unwrap_or(0) as i32,
                }
            }
            "Z" => BackendMessage::ReadyForQuery {
                status: packet
                    .get("ready_for_query")
                    .and_then(|r| number(r.get("txstatus")))
                    .and_then(|s| u8::try_from(s).ok())
                    .unwrap_or(b'I'),
            },
            "1" => BackendMessage::ParseComplete,
            "2" => BackendMessage::BindComplete,
            "3" => BackendMessage::CloseComplete,
            "n" => BackendMessage::NoData,
            "s" => BackendMessage::PortalSuspended,
            "I" => BackendMessage::EmptyQueryResponse,
            "c" => BackendMessage::CopyDone,
            "t" => BackendMessage::ParameterDescription {
                types: numbers(field(packet, "parameter_description")?.get("parameteroids"))?,
            },
            "T" => BackendMessage::RowDescription {
                fields: row_description(field(packet, "row_description")?)?,
            },
            "D" => {
                let row = lists.next(packet, "data_row")?;
                let values = match row.get("row_values") {
                    Some(Value::Sequence(values)) => values.iter().map(row_value).collect(),
                    _ => Vec::new(),
                };
                BackendMessage::DataRow { values }
            }
            "C" => {
                let complete = lists.next(packet, "command_complete")?;
                let tag = match text(complete, "command_tag_type") {
                    "" => String::from_utf8_lossy(&bytes(
                        complete.get("command_tag").unwrap_or(&Value::Null),
                    )?)
                    .into_owned(),
                    tag => tag.to_string(),
                };
                BackendMessage::CommandComplete { tag }
            }
            "E" => BackendMessage::ErrorResponse {
                fields: notice_fields(field(packet, "error_response")?),
            },
            "N" => BackendMessage::NoticeResponse {
                fields: notice_fields(field(packet, "notice_response")?),
            },
            "d" => BackendMessage::CopyData(bytes(field(field(packet, "copy_data")?, "data")?)?),
            other => {
                return Err(format!(
                    "a server message `{other}` that Keploy kept only as fields recplay cannot read"
                ))
            }
        };
        messages.push(message);
    }
    Ok(messages)
}

/// Client messages from raw bytes, with recplay's own decoder.
fn decode_frontend(bytes: &[u8], state: &mut Decoding) -> Result<Vec<FrontendMessage>, String> {
    let mut messages = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let ctx = DecodeContext {
            awaiting_startup: state.awaiting_startup,
            // A `p` read without knowing what was asked is still a secret.
            auth: state.auth.or(Some(AuthRequest::Password)),
        };
        match FrontendMessage::decode(&bytes[at..], &ctx) {
            Ok(Some((message, used))) => {
                match &message {
                    FrontendMessage::Startup { .. } | FrontendMessage::CancelRequest { .. } => {
                        state.awaiting_startup = false
                    }
                    m if m.is_auth() => state.auth = None,
                    _ => {}
                }
                messages.push(message);
                at += used;
            }
            Ok(None) => return Err(format!("its payload ends inside a message (at byte {at})")),
            Err(e) => return Err(format!("its payload does not decode at byte {at}: {e}")),
        }
    }
    Ok(messages)
}

/// Which authentication message an `R` is. Keploy keeps one `auth_type`
/// per packet; an `R` followed by another `R` is SASL's final message, one
/// followed by anything else is AuthenticationOk.
fn authentication(packet: &Value, next: Option<&str>) -> Authentication {
    match next {
        Some("R") => return Authentication::SaslFinal,
        Some(_) => return Authentication::Ok,
        None => {}
    }
    match number(packet.get("auth_type")).unwrap_or(0) {
        3 => Authentication::CleartextPassword,
        5 => Authentication::Md5Password,
        7 => Authentication::Gss,
        8 => Authentication::GssContinue,
        9 => Authentication::Sspi,
        10 => Authentication::Sasl {
            mechanisms: vec!["SCRAM-SHA-256".to_string()],
        },
        11 => Authentication::SaslContinue,
        12 => Authentication::SaslFinal,
        _ => Authentication::Ok,
    }
}

fn row_description(desc: &Value) -> Result<Vec<FieldDescription>, String> {
    let Some(Value::Sequence(fields)) = desc.get("fields") else {
        return Ok(Vec::new());
    };
    fields
        .iter()
        .map(|f| {
            let name = match f.get("name") {
                Some(name) if !name.is_null() => {
                    String::from_utf8_lossy(&bytes(name)?).into_owned()
                }
                _ => text(f, "field_name").to_string(),
            };
            Ok(FieldDescription {
                name,
                table_oid: number(f.get("table_oid")).unwrap_or(0) as u32,
                column_id: number(f.get("table_attribute_number")).unwrap_or(0) as i16,
                type_oid: number(f.get("data_type_oid")).unwrap_or(0) as u32,
                type_size: number(f.get("data_type_size")).unwrap_or(0) as i16,
                type_modifier: number(f.get("type_modifier")).unwrap_or(-1) as i32,
                format: format_code(number(f.get("format")).unwrap_or(0))?,
            })
        })
        .collect()
}

/// Keploy's spelled-out error and notice fields, by their one-letter code.
fn notice_fields(notice: &Value) -> BTreeMap<char, String> {
    const CODES: &[(&str, char)] = &[
        ("severity", 'S'),
        ("severity_unlocalized", 'V'),
        ("code", 'C'),
        ("message", 'M'),
        ("detail", 'D'),
        ("hint", 'H'),
        ("position", 'P'),
        ("internal_position", 'p'),
        ("internal_query", 'q'),
        ("where", 'W'),
        ("schema_name", 's'),
        ("table_name", 't'),
        ("column_name", 'c'),
        ("data_type_name", 'd'),
        ("constraint_name", 'n'),
        ("file", 'F'),
        ("line", 'L'),
        ("routine", 'R'),
    ];
    CODES
        .iter()
        .filter_map(|(key, code)| {
            let value = notice.get(*key).map(scalar).unwrap_or_default();
            // Keploy writes every field; an absent one is empty or 0.
            (!value.is_empty() && value != "0").then_some((*code, value))
        })
        .collect()
}

/// A `row_values` entry: `b64:` marks bytes that were not printable ASCII.
fn row_value(value: &Value) -> Option<Vec<u8>> {
    if value.is_null() {
        return None;
    }
    let text = scalar(value);
    if let Some(encoded) = text.strip_prefix("b64:") {
        if let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded) {
            return Some(decoded);
        }
    }
    Some(text.into_bytes())
}

/// Successive entries of a list field (`parse`, `bind`, `data_row`, ...),
/// one per header letter; older recordings kept a single map instead.
#[derive(Default)]
struct Lists {
    taken: BTreeMap<&'static str, usize>,
}

impl Lists {
    fn next<'a>(&mut self, packet: &'a Value, key: &'static str) -> Result<&'a Value, String> {
        let index = self.taken.entry(key).or_default();
        let found = match packet.get(key) {
            Some(Value::Sequence(items)) => items.get(*index),
            Some(map @ Value::Mapping(_)) if *index == 0 => Some(map),
            _ => None,
        };
        *index += 1;
        found.ok_or_else(|| format!("its header lists more `{key}` messages than it holds"))
    }
}

fn header(packet: &Value) -> Result<Vec<String>, String> {
    match packet.get("header") {
        Some(Value::Sequence(letters)) => Ok(letters.iter().map(scalar).collect()),
        _ => Err("a packet with neither a payload nor a header".to_string()),
    }
}

fn payload(packet: &Value) -> Result<Option<Vec<u8>>, String> {
    match packet.get("payload").and_then(Value::as_str) {
        Some(encoded) if !encoded.is_empty() => base64::engine::general_purpose::STANDARD
            .decode(encoded.trim())
            .map(Some)
            .map_err(|e| format!("its payload is not base64: {e}")),
        _ => Ok(None),
    }
}

fn field<'a>(packet: &'a Value, key: &str) -> Result<&'a Value, String> {
    packet
        .get(key)
        .ok_or_else(|| format!("its header names a message whose `{key}` is missing"))
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    value.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// A scalar as text: YAML may read a header letter as a number or a bool.
fn scalar(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        Value::Tagged(t) => scalar(&t.value),
        _ => String::new(),
    }
}

fn number(value: Option<&Value>) -> Option<i64> {
    match value? {
        Value::Number(n) => n.as_i64().or_else(|| n.as_u64().map(|u| u as i64)),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

fn numbers(value: Option<&Value>) -> Result<Vec<u32>, String> {
    match value {
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|v| {
                number(Some(v))
                    .and_then(|n| u32::try_from(n).ok())
                    .ok_or_else(|| format!("{v:?} is not a type OID"))
            })
            .collect(),
        _ => Ok(Vec::new()),
    }
}

fn formats(value: Option<&Value>) -> Result<Vec<Format>, String> {
    match value {
        Some(Value::Sequence(items)) => items
            .iter()
            .map(|v| format_code(number(Some(v)).unwrap_or(-1)))
            .collect(),
        _ => Ok(Vec::new()),
    }
}

fn format_code(code: i64) -> Result<Format, String> {
    match code {
        0 => Ok(Format::Text),
        1 => Ok(Format::Binary),
        other => Err(format!(
            "format code {other} is neither 0 (text) nor 1 (binary)"
        )),
    }
}

fn target(value: &Value) -> Result<Target, String> {
    match number(value.get("object_type")) {
        Some(83) => Ok(Target::Statement),
        Some(80) => Ok(Target::Portal),
        other => Err(format!(
            "object_type {other:?} is neither 83 (statement) nor 80 (portal)"
        )),
    }
}

/// Bytes as Go's YAML writes a `[]byte`: a list of numbers, or text.
fn bytes(value: &Value) -> Result<Vec<u8>, String> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::String(s) => Ok(s.as_bytes().to_vec()),
        Value::Sequence(items) => items
            .iter()
            .map(|v| {
                number(Some(v))
                    .and_then(|n| u8::try_from(n).ok())
                    .ok_or_else(|| format!("{v:?} is not a byte"))
            })
            .collect(),
        Value::Tagged(t) if t.tag == "binary" => match &t.value {
            Value::String(s) => base64::engine::general_purpose::STANDARD
                .decode(s.split_whitespace().collect::<String>())
                .map_err(|e| format!("a !!binary value that is not base64: {e}")),
            other => bytes(other),
        },
        other => Err(format!("{other:?} is not a byte string")),
    }
}
