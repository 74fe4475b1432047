//! Backend messages built byte by byte as a server sends them, checked
//! against postgres-protocol's own parser where it has one.

use bytes::{BufMut, BytesMut};
use postgres_protocol::message::backend::Message as PpMessage;

use super::*;

fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut b = BytesMut::new();
    b.put_u8(tag);
    b.put_i32(body.len() as i32 + 4);
    b.put_slice(body);
    b.to_vec()
}

fn decode_whole(bytes: &[u8]) -> BackendMessage {
    let (m, used) = BackendMessage::decode(bytes)
        .expect("decodes")
        .expect("complete");
    assert_eq!(used, bytes.len());
    for cut in 0..bytes.len() {
        assert_eq!(BackendMessage::decode(&bytes[..cut]), Ok(None));
    }
    m
}

#[test]
fn data_rows_honour_result_formats() {
    let mut body = BytesMut::new();
    body.put_i16(3);
    body.put_i32(2);
    body.put_slice(b"42");
    body.put_i32(4);
    body.put_slice(&[0, 0, 0, 1]);
    body.put_i32(-1);
    let bytes = frame(b'D', &body);
    // postgres-protocol agrees on the framing.
    let mut pp_buf = BytesMut::from(&bytes[..]);
    assert!(matches!(
        PpMessage::parse(&mut pp_buf).expect("pp parses"),
        Some(PpMessage::DataRow(_))
    ));
    let m = decode_whole(&bytes);
    assert_eq!(
        m.to_model(&[]),
        Some(BackendMsg::DataRow {
            values: vec![
                PgValue::Text("42".into()),
                PgValue::Text("\0\0\0\u{1}".into()),
                PgValue::Null
            ]
        })
    );
    assert_eq!(
        m.to_model(&[Format::Text, Format::Binary, Format::Binary]),
        Some(BackendMsg::DataRow {
            values: vec![
                PgValue::Text("42".into()),
                PgValue::Bytes {
                    base64: "AAAAAQ==".into()
                },
                PgValue::Null
            ]
        })
    );
}

#[test]
fn row_description_error_and_complete_decode() {
    let mut body = BytesMut::new();
    body.put_i16(1);
    body.put_slice(b"id\0");
    body.put_u32(16384);
    body.put_i16(1);
    body.put_u32(23);
    body.put_i16(4);
    body.put_i32(-1);
    body.put_i16(0);
    assert_eq!(
        decode_whole(&frame(b'T', &body)).to_model(&[]),
        Some(BackendMsg::RowDescription {
            fields: vec![FieldDescription {
                name: "id".into(),
                table_oid: 16384,
                column_id: 1,
                type_oid: 23,
                type_size: 4,
                type_modifier: -1,
                format: Format::Text,
            }]
        })
    );
    let err = frame(b'E', b"SERROR\0C22012\0Mdivision by zero\0\0");
    let Some(BackendMsg::ErrorResponse { fields }) = decode_whole(&err).to_model(&[]) else {
        panic!("an error response");
    };
    assert_eq!(fields.get(&'C').map(String::as_str), Some("22012"));
    assert_eq!(
        fields.get(&'M').map(String::as_str),
        Some("division by zero")
    );
    assert_eq!(
        decode_whole(&frame(b'C', b"SELECT 1\0")).to_model(&[]),
        Some(BackendMsg::CommandComplete {
            tag: "SELECT 1".into()
        })
    );
    assert_eq!(
        decode_whole(&frame(b'Z', b"T")).to_model(&[]),
        Some(BackendMsg::ReadyForQuery { status: 'T' })
    );
    assert_eq!(
        decode_whole(&frame(b'W', &[0, 0, 1, 0, 0])).to_model(&[]),
        Some(BackendMsg::CopyBothResponse {
            format: Format::Text,
            column_formats: vec![Format::Text]
        })
    );
}

#[test]
fn authentication_is_understood_but_only_ok_is_recorded() {
    let mut sasl = BytesMut::new();
    sasl.put_i32(10);
    sasl.put_slice(b"SCRAM-SHA-256\0\0");
    let m = decode_whole(&frame(b'R', &sasl));
    assert_eq!(
        m,
        BackendMessage::Authentication(Authentication::Sasl {
            mechanisms: vec!["SCRAM-SHA-256".into()]
        })
    );
    assert_eq!(m.to_model(&[]), None);
    let mut md5 = BytesMut::new();
    md5.put_i32(5);
    md5.put_slice(b"salt");
    assert_eq!(
        decode_whole(&frame(b'R', &md5)),
        BackendMessage::Authentication(Authentication::Md5Password)
    );
    let mut cont = BytesMut::new();
    cont.put_i32(11);
    cont.put_slice(b"r=nonce,s=salt,i=4096");
    assert_eq!(decode_whole(&frame(b'R', &cont)).to_model(&[]), None);
    assert_eq!(
        decode_whole(&frame(b'R', &[0, 0, 0, 0])).to_model(&[]),
        Some(BackendMsg::AuthenticationOk)
    );
}

#[test]
fn malformed_backend_messages_are_errors() {
    assert!(BackendMessage::decode(&[b'D', 0x80, 0, 0, 0]).is_err());
    assert!(BackendMessage::decode(&[b'D', 0x7f, 0xff, 0xff, 0xff]).is_err());
    // A DataRow claiming 32767 columns with no bytes for them.
    assert!(BackendMessage::decode(&frame(b'D', &[0x7f, 0xff])).is_err());
    assert!(BackendMessage::decode(&frame(b'?', b"")).is_err());
    assert!(BackendMessage::decode(&frame(b'Z', b"")).is_err());
}

#[test]
fn an_unknown_authentication_code_is_reported_whole() {
    // Code 260 (0x0104) once read as its low byte, "tag 0x04".
    let err =
        BackendMessage::decode(&frame(b'R', &260i32.to_be_bytes())).expect_err("unknown code");
    assert_eq!(err, ProtocolError::UnknownAuthCode { code: 260 });
    assert!(err.to_string().contains("260"), "{err}");
    let err =
        BackendMessage::decode(&frame(b'R', &(-1i32).to_be_bytes())).expect_err("negative code");
    assert_eq!(err, ProtocolError::UnknownAuthCode { code: -1 });
}
