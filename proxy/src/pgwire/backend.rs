//! Server (backend) messages: decoded here, encoded back to wire bytes by
//! [`encode_backend`] (in `backend/encode.rs`), so each message's layout is
//! read and written in one module.
//!
//! postgres-protocol parses most backend messages, but not CopyBothResponse,
//! FunctionCallResponse or NegotiateProtocolVersion, and a recording proxy
//! must understand everything a server may send; so this is a small decoder
//! of its own over the shared [`wire`](super::wire) framing, kept apart from
//! the frontend decoder because tag bytes overlap between directions.
//!
//! DataRow values are raw bytes on the wire; whether they are text or binary
//! is decided by the result formats the client asked for, which only the
//! connection knows, so [`BackendMessage::to_model`] takes them.

mod encode;

use std::collections::BTreeMap;

pub use encode::{encode_backend, error_response, EncodeError};

use super::frontend::AuthRequest;
use super::recorded::{BackendMsg, FieldDescription, Format, PgValue};
use super::wire::{
    format_code, format_of, model_value, tagged_frame_len, ProtocolError, Reader, TagName,
};

/// An authentication request or outcome (`R`). Only `Ok` is ever recorded;
/// the rest are kept here only so the proxy can tell which kind of `p`
/// message the client will send next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authentication {
    Ok,
    KerberosV5,
    CleartextPassword,
    /// The salt is not kept: it is part of the secret exchange.
    Md5Password,
    ScmCredential,
    Gss,
    GssContinue,
    Sspi,
    Sasl {
        mechanisms: Vec<String>,
    },
    SaslContinue,
    SaslFinal,
}

impl Authentication {
    /// How the client's next `p` message is to be read after this request
    /// (`None`: the server expects no `p` message).
    pub fn reply_expected(&self) -> Option<AuthRequest> {
        match self {
            Authentication::CleartextPassword | Authentication::Md5Password => {
                Some(AuthRequest::Password)
            }
            Authentication::Sasl { .. } => Some(AuthRequest::SaslInitial),
            Authentication::SaslContinue => Some(AuthRequest::SaslContinue),
            Authentication::Gss | Authentication::GssContinue | Authentication::Sspi => {
                Some(AuthRequest::Gss)
            }
            Authentication::Ok
            | Authentication::SaslFinal
            | Authentication::KerberosV5
            | Authentication::ScmCredential => None,
        }
    }
}

/// One decoded server message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackendMessage {
    Authentication(Authentication),
    /// The server does not support the requested minor version or options.
    NegotiateProtocolVersion {
        newest_minor: i32,
        unsupported: Vec<String>,
    },
    ParameterStatus {
        name: String,
        value: String,
    },
    BackendKeyData {
        process_id: i32,
        secret_key: i32,
    },
    ReadyForQuery {
        status: u8,
    },
    ParseComplete,
    BindComplete,
    CloseComplete,
    NoData,
    PortalSuspended,
    EmptyQueryResponse,
    ParameterDescription {
        types: Vec<u32>,
    },
    RowDescription {
        fields: Vec<FieldDescription>,
    },
    DataRow {
        values: Vec<Option<Vec<u8>>>,
    },
    CommandComplete {
        tag: String,
    },
    ErrorResponse {
        fields: BTreeMap<char, String>,
    },
    NoticeResponse {
        fields: BTreeMap<char, String>,
    },
    NotificationResponse {
        process_id: i32,
        channel: String,
        payload: String,
    },
    CopyInResponse {
        format: Format,
        column_formats: Vec<Format>,
    },
    CopyOutResponse {
        format: Format,
        column_formats: Vec<Format>,
    },
    CopyBothResponse {
        format: Format,
        column_formats: Vec<Format>,
    },
    CopyData(Vec<u8>),
    CopyDone,
    FunctionCallResponse {
        result: Option<Vec<u8>>,
    },
}

impl BackendMessage {
    /// Decodes the next message at the start of `buf`: the message and the
    /// bytes it took, or `None` while `buf` holds only part of it.
    pub fn decode(buf: &[u8]) -> Result<Option<(BackendMessage, usize)>, ProtocolError> {
        let Some(len) = tagged_frame_len(buf)? else {
            return Ok(None);
        };
        let Some(body) = buf.get(5..len) else {
            return Ok(None);
        };
        decode_tagged(buf[0], body).map(|m| Some((m, len)))
    }

    /// The message as the mock file records it, or `None` for what is never
    /// recorded (authentication other than its final Ok, protocol
    /// negotiation). `result_formats` are the formats of the current result
    /// set's columns (wire rules: none = all text, one = all, else per
    /// column); binary values are stored as base64.
    pub fn to_model(&self, result_formats: &[Format]) -> Option<BackendMsg> {
        self.clone().into_model(result_formats)
    }

    /// [`to_model`](Self::to_model), moving the decoded text and bytes into
    /// the model instead of copying them.
    pub fn into_model(self, result_formats: &[Format]) -> Option<BackendMsg> {
        Some(match self {
            BackendMessage::Authentication(Authentication::Ok) => BackendMsg::AuthenticationOk,
            BackendMessage::Authentication(_) | BackendMessage::NegotiateProtocolVersion { .. } => {
                return None
            }
            BackendMessage::ParameterStatus { name, value } => {
                BackendMsg::ParameterStatus { name, value }
            }
            BackendMessage::BackendKeyData {
                process_id,
                secret_key,
            } => BackendMsg::BackendKeyData {
                process_id,
                secret_key,
            },
            BackendMessage::ReadyForQuery { status } => BackendMsg::ReadyForQuery {
                status: char::from(status),
            },
            BackendMessage::ParseComplete => BackendMsg::ParseComplete,
            BackendMessage::BindComplete => BackendMsg::BindComplete,
            BackendMessage::CloseComplete => BackendMsg::CloseComplete,
            BackendMessage::NoData => BackendMsg::NoData,
            BackendMessage::PortalSuspended => BackendMsg::PortalSuspended,
            BackendMessage::EmptyQueryResponse => BackendMsg::EmptyQueryResponse,
            BackendMessage::ParameterDescription { types } => {
                BackendMsg::ParameterDescription { types }
            }
            BackendMessage::RowDescription { fields } => BackendMsg::RowDescription { fields },
            BackendMessage::DataRow { values } => BackendMsg::DataRow {
                values: values
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| model_value(v, format_of(result_formats, i)))
                    .collect(),
            },
            BackendMessage::CommandComplete { tag } => BackendMsg::CommandComplete { tag },
            BackendMessage::ErrorResponse { fields } => BackendMsg::ErrorResponse { fields },
            BackendMessage::NoticeResponse { fields } => BackendMsg::NoticeResponse { fields },
            BackendMessage::NotificationResponse {
                process_id,
                channel,
                payload,
            } => BackendMsg::NotificationResponse {
                process_id,
                channel,
                payload,
            },
            BackendMessage::CopyInResponse {
                format,
                column_formats,
            } => BackendMsg::CopyInResponse {
                format,
                column_formats,
            },
            BackendMessage::CopyOutResponse {
                format,
                column_formats,
            } => BackendMsg::CopyOutResponse {
                format,
                column_formats,
            },
            BackendMessage::CopyBothResponse {
                format,
                column_formats,
            } => BackendMsg::CopyBothResponse {
                format,
                column_formats,
            },
            BackendMessage::CopyData(data) => BackendMsg::CopyData {
                data: PgValue::from_vec(Some(data)),
            },
            BackendMessage::CopyDone => BackendMsg::CopyDone,
            BackendMessage::FunctionCallResponse { result } => BackendMsg::FunctionCallResponse {
                result: PgValue::from_vec(result),
            },
        })
    }
}

fn decode_tagged(tag: u8, body: &[u8]) -> Result<BackendMessage, ProtocolError> {
    use BackendMessage as M;
    let simple =
        |what: &'static str, msg: BackendMessage| Reader::new(body, what).finish().map(|()| msg);
    let msg = match tag {
        b'R' => decode_authentication(body)?,
        b'v' => {
            let mut r = Reader::new(body, "NegotiateProtocolVersion");
            let newest_minor = r.i32("newest minor version")?;
            let n = r.i32("option count")?;
            let n = usize::try_from(n).map_err(|_| ProtocolError::NegativeCount {
                what: "NegotiateProtocolVersion",
                value: n.into(),
            })?;
            let mut unsupported = Vec::with_capacity(r.capacity_for(n, 1));
            for _ in 0..n {
                unsupported.push(r.cstr_lossy("option name")?);
            }
            r.finish()?;
            M::NegotiateProtocolVersion {
                newest_minor,
                unsupported,
            }
        }
        b'S' => {
            let mut r = Reader::new(body, "ParameterStatus");
            let name = r.cstr_lossy("name")?;
            let value = r.cstr_lossy("value")?;
            r.finish()?;
            M::ParameterStatus { name, value }
        }
        b'K' => {
            let mut r = Reader::new(body, "BackendKeyData");
            let process_id = r.i32("process id")?;
            let secret_key = r.i32("secret key")?;
            r.finish()?;
            M::BackendKeyData {
                process_id,
                secret_key,
            }
        }
        b'Z' => {
            let mut r = Reader::new(body, "ReadyForQuery");
            let status = r.u8("transaction status")?;
            r.finish()?;
            M::ReadyForQuery { status }
        }
        b'1' => simple("ParseComplete", M::ParseComplete)?,
        b'2' => simple("BindComplete", M::BindComplete)?,
        b'3' => simple("CloseComplete", M::CloseComplete)?,
        b'n' => simple("NoData", M::NoData)?,
        b's' => simple("PortalSuspended", M::PortalSuspended)?,
        b'I' => simple("EmptyQueryResponse", M::EmptyQueryResponse)?,
        b'c' => simple("CopyDone", M::CopyDone)?,
        b't' => {
            let mut r = Reader::new(body, "ParameterDescription");
            let n = r.count16("parameter count")?;
            let mut types = Vec::with_capacity(r.capacity_for(n, 4));
            for _ in 0..n {
                types.push(r.u32("parameter type")?);
            }
            r.finish()?;
            M::ParameterDescription { types }
        }
        b'T' => {
            let mut r = Reader::new(body, "RowDescription");
            let n = r.count16("field count")?;
            let mut fields = Vec::with_capacity(r.capacity_for(n, 19));
            for _ in 0..n {
                fields.push(FieldDescription {
                    name: r.cstr_lossy("field name")?,
                    table_oid: r.u32("table oid")?,
                    column_id: r.i16("column number")?,
                    type_oid: r.u32("type oid")?,
                    type_size: r.i16("type size")?,
                    type_modifier: r.i32("type modifier")?,
                    format: format_code(r.i16("format code")?, "RowDescription")?,
                });
            }
            r.finish()?;
            M::RowDescription { fields }
        }
        b'D' => {
            let mut r = Reader::new(body, "DataRow");
            let n = r.count16("column count")?;
            let mut values = Vec::with_capacity(r.capacity_for(n, 4));
            for _ in 0..n {
                values.push(r.nullable_bytes("column value")?);
            }
            r.finish()?;
            M::DataRow { values }
        }
        b'C' => {
            let mut r = Reader::new(body, "CommandComplete");
            let tag = r.cstr_lossy("command tag")?;
            r.finish()?;
            M::CommandComplete { tag }
        }
        b'E' => M::ErrorResponse {
            fields: notice_fields(body, "ErrorResponse")?,
        },
        b'N' => M::NoticeResponse {
            fields: notice_fields(body, "NoticeResponse")?,
        },
        b'A' => {
            let mut r = Reader::new(body, "NotificationResponse");
            let process_id = r.i32("process id")?;
            let channel = r.cstr_lossy("channel")?;
            let payload = r.cstr_lossy("payload")?;
            r.finish()?;
            M::NotificationResponse {
                process_id,
                channel,
                payload,
            }
        }
        b'G' | b'H' | b'W' => {
            let what = match tag {
                b'G' => "CopyInResponse",
                b'H' => "CopyOutResponse",
                _ => "CopyBothResponse",
            };
            let mut r = Reader::new(body, what);
            let format = match r.u8("overall format")? {
                0 => Format::Text,
                1 => Format::Binary,
                code => {
                    return Err(ProtocolError::BadFormatCode {
                        what,
                        code: code.into(),
                    })
                }
            };
            let n = r.count16("column count")?;
            let mut column_formats = Vec::with_capacity(r.capacity_for(n, 2));
            for _ in 0..n {
                column_formats.push(format_code(r.i16("column format")?, what)?);
            }
            r.finish()?;
            match tag {
                b'G' => M::CopyInResponse {
                    format,
                    column_formats,
                },
                b'H' => M::CopyOutResponse {
                    format,
                    column_formats,
                },
                _ => M::CopyBothResponse {
                    format,
                    column_formats,
                },
            }
        }
        b'd' => M::CopyData(body.to_vec()),
        b'V' => {
            let mut r = Reader::new(body, "FunctionCallResponse");
            let result = r.nullable_bytes("result")?;
            r.finish()?;
            M::FunctionCallResponse { result }
        }
        other => {
            return Err(ProtocolError::UnknownTag {
                direction: "backend",
                tag: TagName(other),
            })
        }
    };
    Ok(msg)
}

fn notice_fields(body: &[u8], what: &'static str) -> Result<BTreeMap<char, String>, ProtocolError> {
    let mut r = Reader::new(body, what);
    let mut fields = BTreeMap::new();
    loop {
        let code = r.u8("field code")?;
        if code == 0 {
            break;
        }
        let value = r.cstr_lossy("field value")?;
        fields.insert(code as char, value);
    }
    r.finish()?;
    Ok(fields)
}

fn decode_authentication(body: &[u8]) -> Result<BackendMessage, ProtocolError> {
    let mut r = Reader::new(body, "Authentication");
    let code = r.i32("request code")?;
    let auth = match code {
        0 => Authentication::Ok,
        2 => Authentication::KerberosV5,
        3 => Authentication::CleartextPassword,
        5 => {
            r.i32("salt")?;
            Authentication::Md5Password
        }
        6 => Authentication::ScmCredential,
        7 => Authentication::Gss,
        8 => {
            r.rest();
            Authentication::GssContinue
        }
        9 => Authentication::Sspi,
        10 => {
            let mut mechanisms = Vec::new();
            loop {
                let m = r.cstr_lossy("SASL mechanism")?;
                if m.is_empty() {
                    break;
                }
                mechanisms.push(m);
            }
            Authentication::Sasl { mechanisms }
        }
        11 => {
            r.rest();
            Authentication::SaslContinue
        }
        12 => {
            r.rest();
            Authentication::SaslFinal
        }
        // The whole code, not a byte of it: 260 must not read as 4.
        code => return Err(ProtocolError::UnknownAuthCode { code }),
    };
    r.finish()?;
    Ok(BackendMessage::Authentication(auth))
}

#[cfg(test)]
mod tests;
