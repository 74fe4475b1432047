//! Valid messages of every kind, encoded by postgres-protocol's client
//! serialisers, by the crate's own server-side encoder, or by hand where
//! neither has one. Mutations start from these so they reach deep into each
//! message's fields instead of failing at the tag.

use std::collections::BTreeMap;

use bytes::{BufMut, BytesMut};
use postgres_protocol::message::frontend as pp;

use crate::pgwire::backend::encode_backend;
use crate::pgwire::frontend::tests::sample_bind;
use crate::testset::pg_mock::{BackendMsg, FieldDescription, Format, PgValue};

/// Tag, length word and body.
pub fn frame(tag: u8, body: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(body.len() + 5);
    b.push(tag);
    b.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
    b.extend_from_slice(body);
    b
}

fn with(f: impl FnOnce(&mut BytesMut)) -> Vec<u8> {
    let mut b = BytesMut::new();
    f(&mut b);
    b.to_vec()
}

/// Tagless packets a client sends before and instead of start-up.
pub fn startup_packets() -> Vec<Vec<u8>> {
    vec![
        with(pp::ssl_request),
        with(|b| pp::cancel_request(42, -7, b)),
        with(|b| {
            pp::startup_message(
                [
                    ("user", "alice"),
                    ("database", "shop"),
                    ("options", "-c x=é"),
                ],
                b,
            )
            .expect("encodes")
        }),
        // GSSENCRequest has no serialiser.
        vec![0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x30],
        // Protocol 3.2 with no parameters.
        vec![0, 0, 0, 9, 0, 3, 0, 2, 0],
    ]
}

/// Every tagged client message, including the four `p` variants.
pub fn frontend_messages() -> Vec<Vec<u8>> {
    let mut function_call = BytesMut::new();
    function_call.put_u32(1598);
    function_call.put_i16(1);
    function_call.put_i16(1);
    function_call.put_i16(2);
    function_call.put_i32(4);
    function_call.put_slice(&[0, 0, 0, 5]);
    function_call.put_i32(-1);
    function_call.put_i16(0);
    vec![
        with(|b| pp::query("SELECT 'héllo', $$x$$ /* c */ -- d", b).expect("encodes")),
        with(|b| pp::parse("s1", "SELECT $1::int4, $2", [23, 25], b).expect("encodes")),
        with(sample_bind),
        with(|b| pp::describe(b'S', "s1", b).expect("encodes")),
        with(|b| pp::describe(b'P', "", b).expect("encodes")),
        with(|b| pp::execute("p1", 10, b).expect("encodes")),
        with(|b| pp::close(b'S', "s1", b).expect("encodes")),
        with(pp::sync),
        with(pp::flush),
        with(pp::terminate),
        with(|b| {
            pp::CopyData::new(&b"1\tone\n"[..])
                .expect("encodes")
                .write(b)
        }),
        with(pp::copy_done),
        with(|b| pp::copy_fail("gave up", b).expect("encodes")),
        frame(b'F', &function_call),
        with(|b| pp::password_message(b"md5abc", b).expect("encodes")),
        with(|b| pp::sasl_initial_response("SCRAM-SHA-256", b"n,,n=,r=abc", b).expect("encodes")),
        frame(b'p', b"SCRAM-SHA-256\0\xff\xff\xff\xff"),
        with(|b| pp::sasl_response(b"c=biws,r=abc,p=xyz", b).expect("encodes")),
    ]
}

/// Every backend message kind: those the recorder keeps, through the
/// crate's encoder, and the authentication and negotiation messages it
/// only reads, by hand.
pub fn backend_messages() -> Vec<Vec<u8>> {
    let mut error = BTreeMap::new();
    error.insert('S', "ERROR".to_string());
    error.insert('C', "42P01".to_string());
    error.insert('M', "relation \"x\" does not exist".to_string());
    let models = [
        BackendMsg::AuthenticationOk,
        BackendMsg::ParameterStatus {
            name: "server_version".into(),
            value: "15.4".into(),
        },
        BackendMsg::BackendKeyData {
            process_id: 4242,
            secret_key: -7,
        },
        BackendMsg::ReadyForQuery { status: 'T' },
        BackendMsg::ParseComplete,
        BackendMsg::BindComplete,
        BackendMsg::CloseComplete,
        BackendMsg::NoData,
        BackendMsg::PortalSuspended,
        BackendMsg::EmptyQueryResponse,
        BackendMsg::CopyDone,
        BackendMsg::ParameterDescription {
            types: vec![23, 25],
        },
        BackendMsg::RowDescription {
            fields: vec![FieldDescription {
                name: "id".into(),
                table_oid: 16384,
                column_id: 1,
                type_oid: 23,
                type_size: 4,
                type_modifier: -1,
                format: Format::Binary,
            }],
        },
        BackendMsg::DataRow {
            values: vec![
                PgValue::Text("42".into()),
                PgValue::Null,
                PgValue::Bytes {
                    base64: "AAAAAQ==".into(),
                },
            ],
        },
        BackendMsg::CommandComplete {
            tag: "SELECT 1".into(),
        },
        BackendMsg::ErrorResponse {
            fields: error.clone(),
        },
        BackendMsg::NoticeResponse { fields: error },
        BackendMsg::NotificationResponse {
            process_id: 1,
            channel: "jobs".into(),
            payload: "{}".into(),
        },
        BackendMsg::CopyInResponse {
            format: Format::Text,
            column_formats: vec![Format::Text, Format::Text],
        },
        BackendMsg::CopyOutResponse {
            format: Format::Binary,
            column_formats: vec![Format::Binary],
        },
        BackendMsg::CopyBothResponse {
            format: Format::Text,
            column_formats: vec![],
        },
        BackendMsg::CopyData {
            data: PgValue::Text("1\tone\n".into()),
        },
        BackendMsg::FunctionCallResponse {
            result: PgValue::Text("5".into()),
        },
    ];
    let mut out: Vec<Vec<u8>> = models
        .iter()
        .map(|m| {
            let mut b = BytesMut::new();
            encode_backend(m, &mut b).expect("encodes");
            b.to_vec()
        })
        .collect();
    for (code, extra) in [
        (3i32, &b""[..]),
        (5, b"salt"),
        (7, b""),
        (8, b"gss token"),
        (10, b"SCRAM-SHA-256\0SCRAM-SHA-256-PLUS\0\0"),
        (11, b"r=abc,s=c2FsdA==,i=4096"),
        (12, b"v=abc"),
    ] {
        let mut body = code.to_be_bytes().to_vec();
        body.extend_from_slice(extra);
        out.push(frame(b'R', &body));
    }
    out.push(frame(b'v', b"\0\0\0\x01\0\0\0\x02_pq_.a\0_pq_.b\0"));
    out
}
