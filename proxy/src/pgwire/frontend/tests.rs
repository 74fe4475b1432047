//! Round trips: encode with postgres-protocol's serialisers (or by hand where
//! it has none), decode with ours, compare, and check every byte was used.

use bytes::{BufMut, BytesMut};
use postgres_protocol::message::frontend as pp;
use postgres_protocol::IsNull;

use super::*;
use crate::pgwire::wire::ProtocolError;

/// A Bind of portal `p1` to statement `s1` with a binary int4 7, a NULL
/// and a text `x`, asking for one binary result column.
pub(crate) fn sample_bind(b: &mut BytesMut) {
    let values: Vec<Option<Vec<u8>>> = vec![Some(vec![0, 0, 0, 7]), None, Some(b"x".to_vec())];
    pp::bind(
        "p1",
        "s1",
        [1i16, 0, 0],
        values,
        |v, buf| match v {
            Some(bytes) => {
                buf.put_slice(&bytes);
                Ok::<_, Box<dyn std::error::Error + Sync + Send>>(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        },
        [1i16],
        b,
    )
    .map_err(|_| "bind")
    .expect("encodes")
}

fn decode_all(bytes: &[u8], ctx: DecodeContext) -> FrontendMessage {
    let (msg, used) = FrontendMessage::decode(bytes, &ctx)
        .expect("decodes")
        .expect("complete");
    assert_eq!(used, bytes.len(), "the whole message is consumed");
    // Every strict prefix is incomplete, never an error.
    for cut in 0..bytes.len() {
        assert_eq!(
            FrontendMessage::decode(&bytes[..cut], &ctx),
            Ok(None),
            "prefix {cut}"
        );
    }
    msg
}

macro_rules! roundtrip {
    ($ctx:expr, $encode:expr, $expected:expr) => {{
        let mut buf = BytesMut::new();
        #[allow(clippy::redundant_closure_call)]
        ($encode)(&mut buf);
        assert_eq!(decode_all(&buf, $ctx), $expected);
    }};
}

#[test]
fn startup_phase_packets_round_trip() {
    let ctx = DecodeContext::new();
    roundtrip!(
        ctx,
        |b: &mut BytesMut| pp::ssl_request(b),
        FrontendMessage::SslRequest
    );
    roundtrip!(
        ctx,
        |b: &mut BytesMut| pp::cancel_request(42, -7, b),
        FrontendMessage::CancelRequest {
            process_id: 42,
            secret_key: -7
        }
    );
    roundtrip!(
        ctx,
        |b: &mut BytesMut| pp::startup_message(
            [
                ("user", "alice"),
                ("database", "shop"),
                ("application_name", "app")
            ],
            b
        )
        .expect("encode"),
        FrontendMessage::Startup {
            protocol: PROTOCOL_3_0,
            parameters: vec![
                ("user".into(), "alice".into()),
                ("database".into(), "shop".into()),
                ("application_name".into(), "app".into()),
            ],
        }
    );
    // No serialiser for GSSENCRequest: 8 bytes, length then code.
    let mut b = BytesMut::new();
    b.put_i32(8);
    b.put_u32(GSSENC_REQUEST_CODE);
    assert_eq!(decode_all(&b, ctx), FrontendMessage::GssEncRequest);
}

#[test]
fn simple_and_extended_messages_round_trip() {
    let ctx = DecodeContext::ready();
    roundtrip!(
        ctx,
        |b: &mut BytesMut| pp::query("SELECT 'héllo'", b).expect("encode"),
        FrontendMessage::Query("SELECT 'héllo'".into())
    );
    roundtrip!(
        ctx,
        |b: &mut BytesMut| pp::parse("s1", "SELECT $1::int4, $2", [23, 25], b).expect("encode"),
        FrontendMessage::Parse {
            name: "s1".into(),
            query: "SELECT $1::int4, $2".into(),
            param_types: vec![23, 25],
        }
    );
    roundtrip!(
        ctx,
        sample_bind,
        FrontendMessage::Bind {
            portal: "p1".into(),
            statement: "s1".into(),
            param_formats: vec![Format::Binary, Format::Text, Format::Text],
            params: vec![Some(vec![0, 0, 0, 7]), None, Some(b"x".to_vec())],
            result_formats: vec![Format::Binary],
        }
    );
    roundtrip!(
        ctx,
        |b: &mut BytesMut| pp::describe(b'S', "s1", b).expect("encode"),
        FrontendMessage::Describe {
            target: Target::Statement,
            name: "s1".into()
        }
    );
    roundtrip!(
        ctx,
        |b: &mut BytesMut| pp::execute("p1", 10, b).expect("encode"),
        FrontendMessage::Execute {
            portal: "p1".into(),
            max_rows: 10
        }
    );
    roundtrip!(
        ctx,
        |b: &mut BytesMut| pp::close(b'P', "p1", b).expect("encode"),
        FrontendMessage::Close {
            target: Target::Portal,
            name: "p1".into()
        }
    );
    roundtrip!(ctx, |b: &mut BytesMut| pp::sync(b), FrontendMessage::Sync);
    roundtrip!(ctx, |b: &mut BytesMut| pp::flush(b), FrontendMessage::Flush);
    roundtrip!(
        ctx,
        |b: &mut BytesMut| pp::terminate(b),
        FrontendMessage::Terminate
    );
}

#[test]
fn copy_and_function_call_round_trip() {
    let ctx = DecodeContext::ready();
    roundtrip!(
        ctx,
        |b: &mut BytesMut| pp::CopyData::new(&b"1\tone\n"[..])
            .expect("encode")
            .write(b),
        FrontendMessage::CopyData(b"1\tone\n".to_vec())
    );
    roundtrip!(
        ctx,
        |b: &mut BytesMut| pp::copy_done(b),
        FrontendMessage::CopyDone
    );
    roundtrip!(
        ctx,
        |b: &mut BytesMut| pp::copy_fail("client gave up", b).expect("encode"),
        FrontendMessage::CopyFail("client gave up".into())
    );
    // FunctionCall has no serialiser: build it by hand.
    let mut body = BytesMut::new();
    body.put_u32(1598); // oid
    body.put_i16(1);
    body.put_i16(1); // all binary
    body.put_i16(2);
    body.put_i32(4);
    body.put_slice(&[0, 0, 0, 5]);
    body.put_i32(-1);
    body.put_i16(0); // text result
    let mut b = BytesMut::new();
    b.put_u8(b'F');
    b.put_i32(body.len() as i32 + 4);
    b.put_slice(&body);
    let msg = decode_all(&b, ctx);
    assert_eq!(
        msg,
        FrontendMessage::FunctionCall {
            function_oid: 1598,
            arg_formats: vec![Format::Binary],
            args: vec![Some(vec![0, 0, 0, 5]), None],
            result_format: Format::Text,
        }
    );
    assert_eq!(
        msg.to_model(),
        Some(FrontendMsg::FunctionCall {
            function_oid: 1598,
            arg_formats: vec![Format::Binary],
            args: vec![
                PgValue::Bytes {
                    base64: "AAAABQ==".into()
                },
                PgValue::Null
            ],
            result_format: Format::Text,
        })
    );
}

#[test]
fn the_p_tag_is_read_by_what_the_server_asked_for() {
    let mut b = BytesMut::new();
    pp::password_message(b"md5abcdef", &mut b).expect("encode");
    let ctx = DecodeContext {
        awaiting_startup: false,
        auth: Some(AuthRequest::Password),
    };
    assert_eq!(
        decode_all(&b, ctx),
        FrontendMessage::Password(b"md5abcdef".to_vec())
    );
    assert_eq!(
        FrontendMessage::decode(&b, &DecodeContext::ready()),
        Err(ProtocolError::UnexpectedPassword)
    );

    let mut b = BytesMut::new();
    pp::sasl_initial_response("SCRAM-SHA-256", b"n,,n=,r=abc", &mut b).expect("encode");
    let ctx = DecodeContext {
        awaiting_startup: false,
        auth: Some(AuthRequest::SaslInitial),
    };
    let msg = decode_all(&b, ctx);
    assert_eq!(
        msg,
        FrontendMessage::SaslInitialResponse {
            mechanism: "SCRAM-SHA-256".into(),
            data: Some(b"n,,n=,r=abc".to_vec()),
        }
    );

    let mut b = BytesMut::new();
    pp::sasl_response(b"c=biws,r=abc,p=xyz", &mut b).expect("encode");
    let ctx = DecodeContext {
        awaiting_startup: false,
        auth: Some(AuthRequest::SaslContinue),
    };
    let resp = decode_all(&b, ctx);
    assert_eq!(
        resp,
        FrontendMessage::SaslResponse(b"c=biws,r=abc,p=xyz".to_vec())
    );

    // Secrets never reach the model.
    for m in [msg, resp, FrontendMessage::Password(b"secret".to_vec())] {
        assert!(m.is_auth());
        assert_eq!(m.to_model(), None);
    }
}

#[test]
fn bind_values_become_model_values_by_format() {
    let msg = FrontendMessage::Bind {
        portal: String::new(),
        statement: "s".into(),
        param_formats: vec![Format::Text, Format::Binary, Format::Text],
        params: vec![Some(b"15".to_vec()), Some(vec![0, 0, 0, 1]), None],
        result_formats: vec![],
    };
    let Some(FrontendMsg::Bind {
        params,
        statement_query,
        ..
    }) = msg.to_model()
    else {
        panic!("a Bind converts to a Bind");
    };
    assert_eq!(statement_query, None);
    assert_eq!(
        params,
        vec![
            PgValue::Text("15".into()),
            // Valid UTF-8, but binary: kept as base64.
            PgValue::Bytes {
                base64: "AAAAAQ==".into()
            },
            PgValue::Null,
        ]
    );
}

#[test]
fn absurd_lengths_are_refused_before_allocation() {
    let ctx = DecodeContext::ready();
    // Negative length.
    let bad = [b'Q', 0xff, 0xff, 0xff, 0xf0];
    assert!(matches!(
        FrontendMessage::decode(&bad, &ctx),
        Err(ProtocolError::BadLength { len: -16, .. })
    ));
    // 2 GiB - 1: refused from the 5-byte header alone.
    let huge = [b'Q', 0x7f, 0xff, 0xff, 0xff];
    assert!(matches!(
        FrontendMessage::decode(&huge, &ctx),
        Err(ProtocolError::TooLong { .. })
    ));
    // Start-up packet longer than the start-up limit.
    let big_startup = 20_000i32.to_be_bytes();
    assert!(matches!(
        FrontendMessage::decode(&big_startup, &DecodeContext::new()),
        Err(ProtocolError::TooLong { .. })
    ));
    // A Bind claiming a 1 MB value it does not carry.
    let mut b = BytesMut::new();
    b.put_u8(b'B');
    let body: &[u8] = &[0, 0, 0, 0, 0, 1, 0x00, 0x10, 0, 0, 0, 0];
    b.put_i32(body.len() as i32 + 4);
    b.put_slice(body);
    assert!(matches!(
        FrontendMessage::decode(&b, &ctx),
        Err(ProtocolError::Truncated { .. })
    ));
}

#[test]
fn malformed_messages_say_what_is_wrong() {
    let ctx = DecodeContext::ready();
    let unknown = [b'!', 0, 0, 0, 4];
    assert!(matches!(
        FrontendMessage::decode(&unknown, &ctx),
        Err(ProtocolError::UnknownTag { .. })
    ));
    // Query without its NUL.
    let mut b = BytesMut::new();
    b.put_u8(b'Q');
    b.put_i32(4 + 3);
    b.put_slice(b"SEL");
    let err = FrontendMessage::decode(&b, &ctx).expect_err("malformed");
    assert!(err.to_string().contains("Query"), "{err}");
    // Describe with a bad target.
    let mut b = BytesMut::new();
    b.put_u8(b'D');
    b.put_i32(4 + 2);
    b.put_slice(b"X\0");
    assert!(matches!(
        FrontendMessage::decode(&b, &ctx),
        Err(ProtocolError::BadTarget { .. })
    ));
    // Unsupported protocol version.
    let mut b = BytesMut::new();
    b.put_i32(8);
    b.put_u32(2 << 16);
    assert!(matches!(
        FrontendMessage::decode(&b, &DecodeContext::new()),
        Err(ProtocolError::UnsupportedStartupCode { .. })
    ));
}

#[test]
fn decode_from_consumes_pipelined_messages_one_by_one() {
    let mut buf = BytesMut::new();
    pp::parse("", "SELECT 1", [], &mut buf).expect("encode");
    pp::sync(&mut buf);
    pp::query("SELECT 2", &mut buf).expect("encode");
    let ctx = DecodeContext::ready();
    let mut seen = Vec::new();
    while let Some(m) = FrontendMessage::decode_from(&mut buf, &ctx).expect("decodes") {
        seen.push(m);
    }
    assert!(buf.is_empty());
    assert_eq!(seen.len(), 3);
    assert_eq!(seen[1], FrontendMessage::Sync);
}

#[test]
fn the_check_leaves_text_encodings_to_the_server() {
    let frame = |tag: u8, body: &[u8]| {
        let mut f = vec![tag];
        f.extend_from_slice(&(body.len() as i32 + 4).to_be_bytes());
        f.extend_from_slice(body);
        f
    };
    let ctx = DecodeContext::ready();
    // 'café' in LATIN1, in a Query, a Parse and a CopyFail; a cleartext
    // password in LATIN1.
    let latin1 = [
        frame(b'Q', b"SELECT 'caf\xe9'\0"),
        frame(b'P', b"\0SELECT 'caf\xe9'\0\0\0"),
        frame(b'f', b"caf\xe9\0"),
    ];
    for bytes in &latin1 {
        assert!(matches!(
            FrontendMessage::decode(bytes, &ctx),
            Err(ProtocolError::InvalidUtf8 { .. })
        ));
        assert_eq!(
            FrontendMessage::check(bytes, &ctx),
            Ok(Some(Checked {
                len: bytes.len(),
                auth: false
            }))
        );
    }
    let password_ctx = DecodeContext {
        auth: Some(AuthRequest::Password),
        ..DecodeContext::ready()
    };
    let password = frame(b'p', b"caf\xe9\0");
    assert_eq!(
        FrontendMessage::check(&password, &password_ctx),
        Ok(Some(Checked {
            len: password.len(),
            auth: true
        }))
    );
    // The structure is still checked, after the text too: a text without
    // its NUL, bytes after a CopyFail's message; and in the messages read
    // in place that hold no text, a FunctionCall's bad result format.
    assert!(FrontendMessage::check(&frame(b'Q', b"SELECT 'caf\xe9'"), &ctx).is_err());
    assert_eq!(
        FrontendMessage::check(&frame(b'f', b"caf\xe9\0extra"), &ctx),
        Err(ProtocolError::TrailingBytes {
            what: "CopyFail",
            extra: 5
        })
    );
    let mut call = vec![0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 4];
    call.extend_from_slice(b"caf\xe9\0\x07");
    assert!(matches!(
        FrontendMessage::check(&frame(b'F', &call), &ctx),
        Err(ProtocolError::BadFormatCode { code: 7, .. })
    ));
}
