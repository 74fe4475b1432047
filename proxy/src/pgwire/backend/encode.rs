//! Recorded server messages back to wire bytes.
//!
//! postgres-protocol parses backend messages but has no serialisers for
//! them (it is a client library), and the mock server must speak as a
//! server. Every [`BackendMsg`] the recorder can write is encoded here; the
//! tests decode the bytes again with postgres-protocol so both sides agree
//! on the format.

use std::collections::BTreeMap;

use bytes::{BufMut, BytesMut};

use crate::pgwire::recorded::{BackendMsg, FieldDescription, Format, PgValue};

/// Why a recorded message cannot be put on the wire.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// A value stored as base64 in mocks.yaml does not decode (a hand edit).
    #[error("a {message} value in the recording is not valid base64 ({source}); fix or re-record the mock")]
    BadBase64 {
        /// The message type being encoded.
        message: &'static str,
        /// What base64 decoding reported.
        source: base64::DecodeError,
    },
    /// A string holds a NUL byte, which the protocol cannot carry.
    #[error("a {message} string contains a NUL byte, which PostgreSQL messages cannot carry")]
    NulInString {
        /// The message type being encoded.
        message: &'static str,
    },
    /// More items or bytes than the protocol's length fields can count.
    #[error("a {message} message is too large for the protocol's length fields")]
    TooLarge {
        /// The message type being encoded.
        message: &'static str,
    },
    /// A ReadyForQuery status other than I, T or E.
    #[error("ReadyForQuery status {0:?} is not one of I, T, E")]
    BadStatus(char),
}

/// Appends `msg` to `buf` as one complete backend message.
pub fn encode_backend(msg: &BackendMsg, buf: &mut BytesMut) -> Result<(), EncodeError> {
    match msg {
        BackendMsg::AuthenticationOk => framed(buf, b'R', "Authentication", |b| {
            b.put_i32(0);
            Ok(())
        }),
        BackendMsg::ParameterStatus { name, value } => framed(buf, b'S', "ParameterStatus", |b| {
            cstr(b, name, "ParameterStatus")?;
            cstr(b, value, "ParameterStatus")
        }),
        BackendMsg::BackendKeyData {
            process_id,
            secret_key,
        } => framed(buf, b'K', "BackendKeyData", |b| {
            b.put_i32(*process_id);
            b.put_i32(*secret_key);
            Ok(())
        }),
        BackendMsg::ReadyForQuery { status } => {
            let byte = match status {
                'I' | 'T' | 'E' => *status as u8,
                other => return Err(EncodeError::BadStatus(*other)),
            };
            framed(buf, b'Z', "ReadyForQuery", |b| {
                b.put_u8(byte);
                Ok(())
            })
        }
        BackendMsg::ParseComplete => empty(buf, b'1'),
        BackendMsg::BindComplete => empty(buf, b'2'),
        BackendMsg::CloseComplete => empty(buf, b'3'),
        BackendMsg::NoData => empty(buf, b'n'),
        BackendMsg::PortalSuspended => empty(buf, b's'),
        BackendMsg::EmptyQueryResponse => empty(buf, b'I'),
        BackendMsg::CopyDone => empty(buf, b'c'),
        BackendMsg::ParameterDescription { types } => {
            framed(buf, b't', "ParameterDescription", |b| {
                b.put_i16(count(types.len(), "ParameterDescription")?);
                for oid in types {
                    b.put_u32(*oid);
                }
                Ok(())
            })
        }
        BackendMsg::RowDescription { fields } => framed(buf, b'T', "RowDescription", |b| {
            b.put_i16(count(fields.len(), "RowDescription")?);
            for field in fields {
                field_description(b, field)?;
            }
            Ok(())
        }),
        BackendMsg::DataRow { values } => framed(buf, b'D', "DataRow", |b| {
            b.put_i16(count(values.len(), "DataRow")?);
            for value in values {
                match bytes_of(value, "DataRow")? {
                    None => b.put_i32(-1),
                    Some(v) => {
                        b.put_i32(len_i32(v.len(), "DataRow")?);
                        b.put_slice(&v);
                    }
                }
            }
            Ok(())
        }),
        BackendMsg::CommandComplete { tag } => framed(buf, b'C', "CommandComplete", |b| {
            cstr(b, tag, "CommandComplete")
        }),
        BackendMsg::ErrorResponse { fields } => {
            framed(buf, b'E', "ErrorResponse", |b| error_fields(b, fields))
        }
        BackendMsg::NoticeResponse { fields } => {
            framed(buf, b'N', "NoticeResponse", |b| error_fields(b, fields))
        }
        BackendMsg::NotificationResponse {
            process_id,
            channel,
            payload,
        } => framed(buf, b'A', "NotificationResponse", |b| {
            b.put_i32(*process_id);
            cstr(b, channel, "NotificationResponse")?;
            cstr(b, payload, "NotificationResponse")
        }),
        BackendMsg::CopyInResponse {
            format,
            column_formats,
        } => copy_response(buf, b'G', "CopyInResponse", *format, column_formats),
        BackendMsg::CopyOutResponse {
            format,
            column_formats,
        } => copy_response(buf, b'H', "CopyOutResponse", *format, column_formats),
        BackendMsg::CopyBothResponse {
            format,
            column_formats,
        } => copy_response(buf, b'W', "CopyBothResponse", *format, column_formats),
        BackendMsg::CopyData { data } => framed(buf, b'd', "CopyData", |b| {
            if let Some(v) = bytes_of(data, "CopyData")? {
                b.put_slice(&v);
            }
            Ok(())
        }),
        BackendMsg::FunctionCallResponse { result } => {
            framed(buf, b'V', "FunctionCallResponse", |b| {
                match bytes_of(result, "FunctionCallResponse")? {
                    None => b.put_i32(-1),
                    Some(v) => {
                        b.put_i32(len_i32(v.len(), "FunctionCallResponse")?);
                        b.put_slice(&v);
                    }
                }
                Ok(())
            })
        }
    }
}

/// An ErrorResponse built by the mock server itself (misses, bad input).
pub fn error_response(sqlstate: &str, message: &str, detail: Option<&str>) -> BackendMsg {
    let mut fields = BTreeMap::new();
    fields.insert('S', "ERROR".to_string());
    fields.insert('V', "ERROR".to_string());
    fields.insert('C', sqlstate.to_string());
    fields.insert('M', message.replace('\0', " "));
    if let Some(detail) = detail {
        fields.insert('D', detail.replace('\0', " "));
    }
    BackendMsg::ErrorResponse { fields }
}

/// Writes tag, a length placeholder, the body, then patches the length
/// (which counts itself but not the tag).
fn framed(
    buf: &mut BytesMut,
    tag: u8,
    message: &'static str,
    body: impl FnOnce(&mut BytesMut) -> Result<(), EncodeError>,
) -> Result<(), EncodeError> {
    let start = buf.len();
    buf.put_u8(tag);
    buf.put_i32(0);
    if let Err(e) = body(buf) {
        buf.truncate(start);
        return Err(e);
    }
    let len = match i32::try_from(buf.len() - start - 1) {
        Ok(len) => len,
        Err(_) => {
            buf.truncate(start);
            return Err(EncodeError::TooLarge { message });
        }
    };
    buf[start + 1..start + 5].copy_from_slice(&len.to_be_bytes());
    Ok(())
}

fn empty(buf: &mut BytesMut, tag: u8) -> Result<(), EncodeError> {
    buf.put_u8(tag);
    buf.put_i32(4);
    Ok(())
}

fn cstr(buf: &mut BytesMut, s: &str, message: &'static str) -> Result<(), EncodeError> {
    if s.as_bytes().contains(&0) {
        return Err(EncodeError::NulInString { message });
    }
    buf.put_slice(s.as_bytes());
    buf.put_u8(0);
    Ok(())
}

fn count(n: usize, message: &'static str) -> Result<i16, EncodeError> {
    i16::try_from(n).map_err(|_| EncodeError::TooLarge { message })
}

fn len_i32(n: usize, message: &'static str) -> Result<i32, EncodeError> {
    i32::try_from(n).map_err(|_| EncodeError::TooLarge { message })
}

fn format_code(f: Format) -> i16 {
    match f {
        Format::Text => 0,
        Format::Binary => 1,
    }
}

fn bytes_of(value: &PgValue, message: &'static str) -> Result<Option<Vec<u8>>, EncodeError> {
    value
        .to_bytes()
        .map_err(|source| EncodeError::BadBase64 { message, source })
}

fn field_description(buf: &mut BytesMut, f: &FieldDescription) -> Result<(), EncodeError> {
    cstr(buf, &f.name, "RowDescription")?;
    buf.put_u32(f.table_oid);
    buf.put_i16(f.column_id);
    buf.put_u32(f.type_oid);
    buf.put_i16(f.type_size);
    buf.put_i32(f.type_modifier);
    buf.put_i16(format_code(f.format));
    Ok(())
}

fn error_fields(buf: &mut BytesMut, fields: &BTreeMap<char, String>) -> Result<(), EncodeError> {
    for (code, value) in fields {
        if !code.is_ascii() || *code == '\0' {
            continue;
        }
        buf.put_u8(*code as u8);
        cstr(buf, value, "ErrorResponse")?;
    }
    buf.put_u8(0);
    Ok(())
}

fn copy_response(
    buf: &mut BytesMut,
    tag: u8,
    message: &'static str,
    format: Format,
    column_formats: &[Format],
) -> Result<(), EncodeError> {
    framed(buf, tag, message, |b| {
        b.put_i8(format_code(format) as i8);
        b.put_i16(count(column_formats.len(), message)?);
        for f in column_formats {
            b.put_i16(format_code(*f));
        }
        Ok(())
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use fallible_iterator::FallibleIterator;
    use postgres_protocol::message::backend::Message;

    fn encode(msg: &BackendMsg) -> BytesMut {
        let mut buf = BytesMut::new();
        encode_backend(msg, &mut buf).expect("encodes");
        buf
    }

    /// Parses exactly one message and checks nothing is left over.
    fn parse_one(mut buf: BytesMut) -> Message {
        let msg = Message::parse(&mut buf)
            .expect("valid message")
            .expect("a whole message");
        assert!(buf.is_empty(), "bytes left after one message");
        msg
    }

    #[test]
    fn startup_messages_parse_back() {
        assert!(matches!(
            parse_one(encode(&BackendMsg::AuthenticationOk)),
            Message::AuthenticationOk
        ));
        match parse_one(encode(&BackendMsg::ParameterStatus {
            name: "server_version".into(),
            value: "15.4".into(),
        })) {
            Message::ParameterStatus(p) => {
                assert_eq!(p.name().expect("name"), "server_version");
                assert_eq!(p.value().expect("value"), "15.4");
            }
            _ => panic!("not ParameterStatus"),
        }
        match parse_one(encode(&BackendMsg::BackendKeyData {
            process_id: 4242,
            secret_key: -7,
        })) {
            Message::BackendKeyData(k) => {
                assert_eq!(k.process_id(), 4242);
                assert_eq!(k.secret_key(), -7);
            }
            _ => panic!("not BackendKeyData"),
        }
        match parse_one(encode(&BackendMsg::ReadyForQuery { status: 'E' })) {
            Message::ReadyForQuery(r) => assert_eq!(r.status(), b'E'),
            _ => panic!("not ReadyForQuery"),
        }
    }

    #[test]
    fn empty_messages_parse_back() {
        assert!(matches!(
            parse_one(encode(&BackendMsg::ParseComplete)),
            Message::ParseComplete
        ));
        assert!(matches!(
            parse_one(encode(&BackendMsg::BindComplete)),
            Message::BindComplete
        ));
        assert!(matches!(
            parse_one(encode(&BackendMsg::CloseComplete)),
            Message::CloseComplete
        ));
        assert!(matches!(
            parse_one(encode(&BackendMsg::NoData)),
            Message::NoData
        ));
        assert!(matches!(
            parse_one(encode(&BackendMsg::PortalSuspended)),
            Message::PortalSuspended
        ));
        assert!(matches!(
            parse_one(encode(&BackendMsg::EmptyQueryResponse)),
            Message::EmptyQueryResponse
        ));
        assert!(matches!(
            parse_one(encode(&BackendMsg::CopyDone)),
            Message::CopyDone
        ));
    }

    #[test]
    fn rows_and_descriptions_parse_back() {
        match parse_one(encode(&BackendMsg::ParameterDescription {
            types: vec![23, 25],
        })) {
            Message::ParameterDescription(p) => {
                let types: Vec<u32> = p.parameters().collect().expect("oids");
                assert_eq!(types, vec![23, 25]);
            }
            _ => panic!("not ParameterDescription"),
        }
        let field = FieldDescription {
            name: "app_label".into(),
            table_oid: 16384,
            column_id: 2,
            type_oid: 1043,
            type_size: -1,
            type_modifier: 104,
            format: Format::Binary,
        };
        match parse_one(encode(&BackendMsg::RowDescription {
            fields: vec![field],
        })) {
            Message::RowDescription(r) => {
                let fields: Vec<_> = r.fields().collect().expect("fields");
                assert_eq!(fields.len(), 1);
                assert_eq!(fields[0].name(), "app_label");
                assert_eq!(fields[0].table_oid(), 16384);
                assert_eq!(fields[0].column_id(), 2);
                assert_eq!(fields[0].type_oid(), 1043);
                assert_eq!(fields[0].type_size(), -1);
                assert_eq!(fields[0].type_modifier(), 104);
                assert_eq!(fields[0].format(), 1);
            }
            _ => panic!("not RowDescription"),
        }
        match parse_one(encode(&BackendMsg::DataRow {
            values: vec![
                PgValue::Text("projects".into()),
                PgValue::Null,
                PgValue::from_bytes(Some(&[0, 0, 0, 15])),
            ],
        })) {
            Message::DataRow(row) => {
                let buf = row.buffer();
                let values: Vec<Option<Vec<u8>>> = row
                    .ranges()
                    .map(|r| Ok(r.map(|r| buf[r].to_vec())))
                    .collect()
                    .expect("ranges");
                assert_eq!(
                    values,
                    vec![Some(b"projects".to_vec()), None, Some(vec![0, 0, 0, 15])]
                );
            }
            _ => panic!("not DataRow"),
        }
        match parse_one(encode(&BackendMsg::CommandComplete {
            tag: "SELECT 1".into(),
        })) {
            Message::CommandComplete(c) => assert_eq!(c.tag().expect("tag"), "SELECT 1"),
            _ => panic!("not CommandComplete"),
        }
    }

    #[test]
    fn errors_notices_and_notifications_parse_back() {
        let msg = error_response("RP001", "no recorded answer", Some("nearest: x"));
        match parse_one(encode(&msg)) {
            Message::ErrorResponse(e) => {
                let fields: Vec<(u8, String)> = e
                    .fields()
                    .map(|f| Ok((f.type_(), String::from_utf8_lossy(f.value_bytes()).into())))
                    .collect()
                    .expect("fields");
                assert!(fields.contains(&(b'C', "RP001".into())));
                assert!(fields.contains(&(b'M', "no recorded answer".into())));
                assert!(fields.contains(&(b'D', "nearest: x".into())));
            }
            _ => panic!("not ErrorResponse"),
        }
        let mut notice = BTreeMap::new();
        notice.insert('S', "NOTICE".to_string());
        notice.insert('M', "relation exists".to_string());
        assert!(matches!(
            parse_one(encode(&BackendMsg::NoticeResponse { fields: notice })),
            Message::NoticeResponse(_)
        ));
        match parse_one(encode(&BackendMsg::NotificationResponse {
            process_id: 9,
            channel: "jobs".into(),
            payload: "42".into(),
        })) {
            Message::NotificationResponse(n) => {
                assert_eq!(n.process_id(), 9);
                assert_eq!(n.channel().expect("channel"), "jobs");
                assert_eq!(n.message().expect("payload"), "42");
            }
            _ => panic!("not NotificationResponse"),
        }
    }

    #[test]
    fn copy_messages_parse_back() {
        match parse_one(encode(&BackendMsg::CopyInResponse {
            format: Format::Text,
            column_formats: vec![Format::Text, Format::Text],
        })) {
            Message::CopyInResponse(c) => {
                assert_eq!(c.format(), 0);
                let formats: Vec<u16> = c.column_formats().collect().expect("formats");
                assert_eq!(formats, vec![0, 0]);
            }
            _ => panic!("not CopyInResponse"),
        }
        assert!(matches!(
            parse_one(encode(&BackendMsg::CopyOutResponse {
                format: Format::Binary,
                column_formats: vec![Format::Binary],
            })),
            Message::CopyOutResponse(_)
        ));
        // postgres-protocol does not parse CopyBothResponse (replication
        // only); its layout is CopyInResponse's with tag `W`.
        let both = encode(&BackendMsg::CopyBothResponse {
            format: Format::Text,
            column_formats: vec![],
        });
        assert_eq!(&both[..], &[b'W', 0, 0, 0, 7, 0, 0, 0]);
        match parse_one(encode(&BackendMsg::CopyData {
            data: PgValue::Text("1\tprojects\n".into()),
        })) {
            Message::CopyData(d) => assert_eq!(d.data(), b"1\tprojects\n"),
            _ => panic!("not CopyData"),
        }
    }

    #[test]
    fn bad_recordings_are_errors_not_panics() {
        let mut buf = BytesMut::new();
        let bad = BackendMsg::DataRow {
            values: vec![PgValue::Bytes {
                base64: "***".into(),
            }],
        };
        assert!(matches!(
            encode_backend(&bad, &mut buf),
            Err(EncodeError::BadBase64 { .. })
        ));
        assert!(buf.is_empty(), "a failed message leaves nothing behind");
        assert!(matches!(
            encode_backend(&BackendMsg::ReadyForQuery { status: 'X' }, &mut buf),
            Err(EncodeError::BadStatus('X'))
        ));
        assert!(matches!(
            encode_backend(
                &BackendMsg::CommandComplete { tag: "a\0b".into() },
                &mut buf
            ),
            Err(EncodeError::NulInString { .. })
        ));
    }
}
