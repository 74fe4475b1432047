//! Decoding of client (frontend) messages.
//!
//! postgres-protocol only serialises frontend messages, so the proxy and the
//! mock server need this decoder. It is incremental: give it the bytes
//! buffered so far and it returns the next whole message and how many bytes
//! it used, or `None` when more bytes are needed. Lengths are checked against
//! [`MAX_MESSAGE_LEN`]/[`MAX_STARTUP_LEN`] before anything is allocated.
//!
//! Two things cannot be told from the bytes alone, so the caller supplies a
//! [`DecodeContext`]: whether a tagless start-up packet is expected (before
//! StartupMessage, and after an SSLRequest/GSSENCRequest was answered), and
//! which authentication request the server sent last, because
//! PasswordMessage, SASLInitialResponse, SASLResponse and GSSResponse all
//! share the tag `p`.

use std::collections::BTreeMap;

use bytes::{Buf, BytesMut};

use super::recorded::{Format, FrontendMsg, PgValue, Target};
use super::wire::{
    format_code, format_of, model_value, startup_frame_len, tagged_frame_len, ProtocolError,
    Reader, TagName,
};

pub use super::wire::{MAX_MESSAGE_LEN, MAX_STARTUP_LEN};

/// Request code of an SSLRequest (in place of a protocol version).
pub const SSL_REQUEST_CODE: u32 = 80_877_103;
/// Request code of a GSSENCRequest.
pub const GSSENC_REQUEST_CODE: u32 = 80_877_104;
/// Request code of a CancelRequest.
pub const CANCEL_REQUEST_CODE: u32 = 80_877_102;
/// Protocol 3.0, the only major version spoken.
pub const PROTOCOL_3_0: u32 = 196_608;

/// What the server last asked the client to authenticate with; decides how
/// a `p` message is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthRequest {
    /// AuthenticationCleartextPassword or AuthenticationMD5Password.
    Password,
    /// AuthenticationSASL: the next `p` is a SASLInitialResponse.
    SaslInitial,
    /// AuthenticationSASLContinue: the next `p` is a SASLResponse.
    SaslContinue,
    /// AuthenticationGSS/SSPI/GSSContinue: the next `p` is a GSSResponse.
    Gss,
}

/// Connection state the decoder needs (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DecodeContext {
    /// A tagless start-up packet comes next.
    pub awaiting_startup: bool,
    /// The authentication request outstanding, if any.
    pub auth: Option<AuthRequest>,
}

impl DecodeContext {
    /// A fresh connection: the first packet is a start-up packet.
    pub fn new() -> Self {
        DecodeContext {
            awaiting_startup: true,
            auth: None,
        }
    }

    /// After start-up: only tagged messages, no authentication pending.
    pub fn ready() -> Self {
        DecodeContext {
            awaiting_startup: false,
            auth: None,
        }
    }
}

impl Default for DecodeContext {
    fn default() -> Self {
        Self::new()
    }
}

/// What [`FrontendMessage::check`] learns about a message without building
/// it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Checked {
    /// The bytes the message takes.
    pub len: usize,
    /// An authentication message: its bytes must never be recorded.
    pub auth: bool,
}

/// One decoded client message, with every field the wire carries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FrontendMessage {
    SslRequest,
    GssEncRequest,
    Startup {
        /// Major version in the high 16 bits, minor in the low 16.
        protocol: u32,
        /// In wire order.
        parameters: Vec<(String, String)>,
    },
    CancelRequest {
        process_id: i32,
        secret_key: i32,
    },
    /// Cleartext password or MD5 hash: never recorded.
    Password(Vec<u8>),
    /// Never recorded.
    SaslInitialResponse {
        mechanism: String,
        data: Option<Vec<u8>>,
    },
    /// Never recorded.
    SaslResponse(Vec<u8>),
    /// Never recorded.
    GssResponse(Vec<u8>),
    Query(String),
    Parse {
        name: String,
        query: String,
        param_types: Vec<u32>,
    },
    Bind {
        portal: String,
        statement: String,
        param_formats: Vec<Format>,
        params: Vec<Option<Vec<u8>>>,
        result_formats: Vec<Format>,
    },
    Describe {
        target: Target,
        name: String,
    },
    Execute {
        portal: String,
        max_rows: i32,
    },
    Close {
        target: Target,
        name: String,
    },
    Sync,
    Flush,
    CopyData(Vec<u8>),
    CopyDone,
    CopyFail(String),
    FunctionCall {
        function_oid: u32,
        arg_formats: Vec<Format>,
        args: Vec<Option<Vec<u8>>>,
        result_format: Format,
    },
    Terminate,
}

impl FrontendMessage {
    /// Decodes the next message at the start of `buf`. Returns the message
    /// and the number of bytes it took, or `None` if `buf` does not yet hold
    /// a whole message.
    pub fn decode(
        buf: &[u8],
        ctx: &DecodeContext,
    ) -> Result<Option<(FrontendMessage, usize)>, ProtocolError> {
        if ctx.awaiting_startup {
            let Some(len) = startup_frame_len(buf)? else {
                return Ok(None);
            };
            let Some(packet) = buf.get(4..len) else {
                return Ok(None);
            };
            return decode_startup(packet).map(|m| Some((m, len)));
        }
        let Some(len) = tagged_frame_len(buf)? else {
            return Ok(None);
        };
        let Some(body) = buf.get(5..len) else {
            return Ok(None);
        };
        decode_tagged(buf[0], body, ctx).map(|m| Some((m, len)))
    }

    /// Whether the next message at the start of `buf` is well formed, as
    /// [`decode`](Self::decode) judges it, without keeping it: the recording
    /// proxy checks every message before forwarding it, and reads it in
    /// place rather than copying its text out. `None` when `buf` does not
    /// yet hold a whole message.
    ///
    /// Unlike `decode`, it accepts text that is not UTF-8 (a client whose
    /// client_encoding is, say, LATIN1): such a client is served as without
    /// the proxy, and the writer, which cannot record it, says so.
    pub fn check(buf: &[u8], ctx: &DecodeContext) -> Result<Option<Checked>, ProtocolError> {
        if ctx.awaiting_startup {
            return Ok(Self::decode(buf, ctx)?.map(|(msg, len)| Checked {
                len,
                auth: msg.is_auth(),
            }));
        }
        let Some(len) = tagged_frame_len(buf)? else {
            return Ok(None);
        };
        let Some(body) = buf.get(5..len) else {
            return Ok(None);
        };
        check_tagged(buf[0], body, ctx.auth)?;
        // Every `p` message is an authentication message.
        Ok(Some(Checked {
            len,
            auth: buf[0] == b'p',
        }))
    }

    /// Like [`decode`](Self::decode), consuming the message's bytes from
    /// `buf` when one is complete.
    pub fn decode_from(
        buf: &mut BytesMut,
        ctx: &DecodeContext,
    ) -> Result<Option<FrontendMessage>, ProtocolError> {
        match Self::decode(buf, ctx)? {
            Some((msg, used)) => {
                buf.advance(used);
                Ok(Some(msg))
            }
            None => Ok(None),
        }
    }

    /// Whether this is an authentication message (whose contents must never
    /// be written anywhere).
    pub fn is_auth(&self) -> bool {
        matches!(
            self,
            FrontendMessage::Password(_)
                | FrontendMessage::SaslInitialResponse { .. }
                | FrontendMessage::SaslResponse(_)
                | FrontendMessage::GssResponse(_)
        )
    }

    /// The message as the mock file records it. `None` for messages that are
    /// never recorded: authentication (secrets), SSL/GSS negotiation and
    /// CancelRequest (connection plumbing, not part of an exchange).
    /// A Bind's `statement_query` is left empty; the recorder fills it from
    /// the Parse it saw for that statement.
    pub fn to_model(&self) -> Option<FrontendMsg> {
        self.clone().into_model()
    }

    /// [`to_model`](Self::to_model), moving the decoded text and bytes into
    /// the model instead of copying them.
    pub fn into_model(self) -> Option<FrontendMsg> {
        Some(match self {
            FrontendMessage::SslRequest
            | FrontendMessage::GssEncRequest
            | FrontendMessage::CancelRequest { .. }
            | FrontendMessage::Password(_)
            | FrontendMessage::SaslInitialResponse { .. }
            | FrontendMessage::SaslResponse(_)
            | FrontendMessage::GssResponse(_) => return None,
            FrontendMessage::Startup {
                protocol,
                parameters,
            } => FrontendMsg::Startup {
                protocol: format!("{}.{}", protocol >> 16, protocol & 0xffff),
                parameters: parameters.into_iter().collect::<BTreeMap<_, _>>(),
            },
            FrontendMessage::Query(query) => FrontendMsg::Query { query },
            FrontendMessage::Parse {
                name,
                query,
                param_types,
            } => FrontendMsg::Parse {
                name,
                query,
                param_types,
            },
            FrontendMessage::Bind {
                portal,
                statement,
                param_formats,
                params,
                result_formats,
            } => FrontendMsg::Bind {
                portal,
                statement,
                statement_query: None,
                params: model_values(params, &param_formats),
                param_formats,
                result_formats,
            },
            FrontendMessage::Describe { target, name } => FrontendMsg::Describe { target, name },
            FrontendMessage::Execute { portal, max_rows } => {
                FrontendMsg::Execute { portal, max_rows }
            }
            FrontendMessage::Close { target, name } => FrontendMsg::Close { target, name },
            FrontendMessage::Sync => FrontendMsg::Sync,
            FrontendMessage::Flush => FrontendMsg::Flush,
            FrontendMessage::CopyData(data) => FrontendMsg::CopyData {
                data: PgValue::from_vec(Some(data)),
            },
            FrontendMessage::CopyDone => FrontendMsg::CopyDone,
            FrontendMessage::CopyFail(message) => FrontendMsg::CopyFail { message },
            FrontendMessage::FunctionCall {
                function_oid,
                arg_formats,
                args,
                result_format,
            } => FrontendMsg::FunctionCall {
                function_oid,
                args: model_values(args, &arg_formats),
                arg_formats,
                result_format,
            },
            FrontendMessage::Terminate => FrontendMsg::Terminate,
        })
    }
}

fn model_values(values: Vec<Option<Vec<u8>>>, formats: &[Format]) -> Vec<PgValue> {
    values
        .into_iter()
        .enumerate()
        .map(|(i, v)| model_value(v, format_of(formats, i)))
        .collect()
}

/// `packet` is everything after the length word.
fn decode_startup(packet: &[u8]) -> Result<FrontendMessage, ProtocolError> {
    let mut r = Reader::new(packet, "start-up packet");
    let code = r.u32("request code")?;
    let msg = match code {
        SSL_REQUEST_CODE => FrontendMessage::SslRequest,
        GSSENC_REQUEST_CODE => FrontendMessage::GssEncRequest,
        CANCEL_REQUEST_CODE => {
            let mut r = Reader::new(r.rest(), "CancelRequest");
            let process_id = r.i32("process id")?;
            let secret_key = r.i32("secret key")?;
            r.finish()?;
            return Ok(FrontendMessage::CancelRequest {
                process_id,
                secret_key,
            });
        }
        code if code >> 16 == 3 => {
            let mut r = Reader::new(r.rest(), "StartupMessage");
            let mut parameters = Vec::new();
            loop {
                let name = r.cstr("parameter name")?;
                if name.is_empty() {
                    break;
                }
                let value = r.cstr("parameter value")?;
                parameters.push((name, value));
            }
            r.finish()?;
            return Ok(FrontendMessage::Startup {
                protocol: code,
                parameters,
            });
        }
        code => return Err(ProtocolError::UnsupportedStartupCode { code }),
    };
    r.finish()?;
    Ok(msg)
}

fn target(byte: u8, what: &'static str) -> Result<Target, ProtocolError> {
    match byte {
        b'S' => Ok(Target::Statement),
        b'P' => Ok(Target::Portal),
        other => Err(ProtocolError::BadTarget {
            what,
            target: TagName(other),
        }),
    }
}

fn formats(r: &mut Reader<'_>, what: &'static str) -> Result<Vec<Format>, ProtocolError> {
    let n = r.count16("format count")?;
    let mut out = Vec::with_capacity(r.capacity_for(n, 2));
    for _ in 0..n {
        out.push(format_code(r.i16("format code")?, what)?);
    }
    Ok(out)
}

fn values(r: &mut Reader<'_>) -> Result<Vec<Option<Vec<u8>>>, ProtocolError> {
    let n = r.count16("value count")?;
    let mut out = Vec::with_capacity(r.capacity_for(n, 4));
    for _ in 0..n {
        out.push(r.nullable_bytes("value")?);
    }
    Ok(out)
}

/// Checks a message after start-up field by field in place, with the errors
/// [`decode_tagged`] gives, reading text as bytes in whatever encoding the
/// client uses.
fn check_tagged(tag: u8, body: &[u8], auth: Option<AuthRequest>) -> Result<(), ProtocolError> {
    match tag {
        b'Q' => check_one_text(body, "Query", "query text")?,
        b'P' => {
            let mut r = Reader::new(body, "Parse");
            r.text("statement name")?;
            r.text("query text")?;
            for _ in 0..r.count16("parameter type count")? {
                r.u32("parameter type")?;
            }
            r.finish()?;
        }
        b'B' => {
            let mut r = Reader::new(body, "Bind");
            r.text("portal name")?;
            r.text("statement name")?;
            check_formats(&mut r, "Bind")?;
            for _ in 0..r.count16("value count")? {
                r.nullable_slice("value")?;
            }
            check_formats(&mut r, "Bind")?;
            r.finish()?;
        }
        b'D' | b'C' => {
            let what = if tag == b'D' { "Describe" } else { "Close" };
            let mut r = Reader::new(body, what);
            target(r.u8("target")?, what)?;
            r.text("name")?;
            r.finish()?;
        }
        b'E' => {
            let mut r = Reader::new(body, "Execute");
            r.text("portal name")?;
            r.i32("row limit")?;
            r.finish()?;
        }
        b'S' => Reader::new(body, "Sync").finish()?,
        b'H' => Reader::new(body, "Flush").finish()?,
        b'X' => Reader::new(body, "Terminate").finish()?,
        b'c' => Reader::new(body, "CopyDone").finish()?,
        // CopyData is any bytes.
        b'd' => {}
        b'f' => check_one_text(body, "CopyFail", "message")?,
        b'F' => {
            let mut r = Reader::new(body, "FunctionCall");
            r.u32("function oid")?;
            check_formats(&mut r, "FunctionCall")?;
            for _ in 0..r.count16("value count")? {
                r.nullable_slice("value")?;
            }
            format_code(r.i16("result format")?, "FunctionCall")?;
            r.finish()?;
        }
        b'p' => match auth {
            None => return Err(ProtocolError::UnexpectedPassword),
            // The whole body, as decoding reads it (a password up to its
            // terminating NUL, but a message that lacks it is refused).
            Some(AuthRequest::Password) => {
                if body.last() != Some(&0) {
                    return Err(ProtocolError::Truncated {
                        what: "PasswordMessage",
                        field: "terminating NUL",
                    });
                }
            }
            Some(AuthRequest::SaslInitial) => {
                let mut r = Reader::new(body, "SASLInitialResponse");
                r.text("mechanism")?;
                r.nullable_slice("initial response")?;
                r.finish()?;
            }
            Some(AuthRequest::SaslContinue | AuthRequest::Gss) => {}
        },
        other => {
            return Err(ProtocolError::UnknownTag {
                direction: "frontend",
                tag: TagName(other),
            })
        }
    }
    Ok(())
}

/// A message that is one text and nothing else.
fn check_one_text(
    body: &[u8],
    what: &'static str,
    field: &'static str,
) -> Result<(), ProtocolError> {
    let mut r = Reader::new(body, what);
    r.text(field)?;
    r.finish()
}

fn check_formats(r: &mut Reader<'_>, what: &'static str) -> Result<(), ProtocolError> {
    for _ in 0..r.count16("format count")? {
        format_code(r.i16("format code")?, what)?;
    }
    Ok(())
}

fn decode_tagged(
    tag: u8,
    body: &[u8],
    ctx: &DecodeContext,
) -> Result<FrontendMessage, ProtocolError> {
    let msg = match tag {
        b'Q' => {
            let mut r = Reader::new(body, "Query");
            let q = r.cstr("query text")?;
            r.finish()?;
            FrontendMessage::Query(q)
        }
        b'P' => {
            let mut r = Reader::new(body, "Parse");
            let name = r.cstr("statement name")?;
            let query = r.cstr("query text")?;
            let n = r.count16("parameter type count")?;
            let mut param_types = Vec::with_capacity(r.capacity_for(n, 4));
            for _ in 0..n {
                param_types.push(r.u32("parameter type")?);
            }
            r.finish()?;
            FrontendMessage::Parse {
                name,
                query,
                param_types,
            }
        }
        b'B' => {
            let mut r = Reader::new(body, "Bind");
            let portal = r.cstr("portal name")?;
            let statement = r.cstr("statement name")?;
            let param_formats = formats(&mut r, "Bind")?;
            let params = values(&mut r)?;
            let result_formats = formats(&mut r, "Bind")?;
            r.finish()?;
            FrontendMessage::Bind {
                portal,
                statement,
                param_formats,
                params,
                result_formats,
            }
        }
        b'D' | b'C' => {
            let what = if tag == b'D' { "Describe" } else { "Close" };
            let mut r = Reader::new(body, what);
            let t = target(r.u8("target")?, what)?;
            let name = r.cstr("name")?;
            r.finish()?;
            if tag == b'D' {
                FrontendMessage::Describe { target: t, name }
            } else {
                FrontendMessage::Close { target: t, name }
            }
        }
        b'E' => {
            let mut r = Reader::new(body, "Execute");
            let portal = r.cstr("portal name")?;
            let max_rows = r.i32("row limit")?;
            r.finish()?;
            FrontendMessage::Execute { portal, max_rows }
        }
        b'S' => empty(body, "Sync", FrontendMessage::Sync)?,
        b'H' => empty(body, "Flush", FrontendMessage::Flush)?,
        b'X' => empty(body, "Terminate", FrontendMessage::Terminate)?,
        b'c' => empty(body, "CopyDone", FrontendMessage::CopyDone)?,
        b'd' => FrontendMessage::CopyData(body.to_vec()),
        b'f' => {
            let mut r = Reader::new(body, "CopyFail");
            let m = r.cstr("message")?;
            r.finish()?;
            FrontendMessage::CopyFail(m)
        }
        b'F' => {
            let mut r = Reader::new(body, "FunctionCall");
            let function_oid = r.u32("function oid")?;
            let arg_formats = formats(&mut r, "FunctionCall")?;
            let args = values(&mut r)?;
            let result_format = format_code(r.i16("result format")?, "FunctionCall")?;
            r.finish()?;
            FrontendMessage::FunctionCall {
                function_oid,
                arg_formats,
                args,
                result_format,
            }
        }
        b'p' => decode_auth(body, ctx.auth)?,
        other => {
            return Err(ProtocolError::UnknownTag {
                direction: "frontend",
                tag: TagName(other),
            })
        }
    };
    Ok(msg)
}

fn empty(
    body: &[u8],
    what: &'static str,
    msg: FrontendMessage,
) -> Result<FrontendMessage, ProtocolError> {
    Reader::new(body, what).finish()?;
    Ok(msg)
}

fn decode_auth(body: &[u8], auth: Option<AuthRequest>) -> Result<FrontendMessage, ProtocolError> {
    match auth {
        None => Err(ProtocolError::UnexpectedPassword),
        Some(AuthRequest::Password) => {
            let mut r = Reader::new(body, "PasswordMessage");
            // Kept as bytes: a password need not be UTF-8, and is never shown.
            let rest = r.rest();
            match rest.split_last() {
                Some((0, password)) => Ok(FrontendMessage::Password(password.to_vec())),
                _ => Err(ProtocolError::Truncated {
                    what: "PasswordMessage",
                    field: "terminating NUL",
                }),
            }
        }
        Some(AuthRequest::SaslInitial) => {
            let mut r = Reader::new(body, "SASLInitialResponse");
            let mechanism = r.cstr("mechanism")?;
            let data = r.nullable_bytes("initial response")?;
            r.finish()?;
            Ok(FrontendMessage::SaslInitialResponse { mechanism, data })
        }
        Some(AuthRequest::SaslContinue) => Ok(FrontendMessage::SaslResponse(body.to_vec())),
        Some(AuthRequest::Gss) => Ok(FrontendMessage::GssResponse(body.to_vec())),
    }
}

#[cfg(test)]
pub(crate) mod tests;
