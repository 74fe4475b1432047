//! The frontend decoder in every decode context and the backend decoder,
//! checked against an independent reading of the framing.
//!
//! For any input, the length word alone decides the outcome's kind: fewer
//! bytes than a header or than the announced frame is `Ok(None)`; a length
//! below the minimum or above the limit is an error; otherwise the decoder
//! returns exactly one frame's worth, or an error, and the same answer with
//! or without whatever follows that frame.

use std::panic::{catch_unwind, AssertUnwindSafe};

use bytes::BytesMut;

use super::alloc::{allowed_for, largest_allocation};
use super::seeds::{backend_messages, frontend_messages, startup_packets};
use super::{hex, mutate, Rng};
use crate::pgwire::backend::BackendMessage;
use crate::pgwire::backend::{encode_backend, EncodeError};
use crate::pgwire::frontend::{AuthRequest, Checked, DecodeContext, FrontendMessage};
use crate::pgwire::wire::{ProtocolError, MAX_MESSAGE_LEN, MAX_STARTUP_LEN, MIN_STARTUP_LEN};
use crate::testset::pg_mock::{BackendMsg, Format};

/// Mutated inputs per decode context.
const ITERATIONS: u64 = 20_000;

/// Every state the frontend decoder can be asked to read in.
fn contexts() -> Vec<DecodeContext> {
    let mut out = vec![DecodeContext::new(), DecodeContext::ready()];
    for auth in [
        AuthRequest::Password,
        AuthRequest::SaslInitial,
        AuthRequest::SaslContinue,
        AuthRequest::Gss,
    ] {
        out.push(DecodeContext {
            awaiting_startup: false,
            auth: Some(auth),
        });
    }
    out
}

/// What the length word says about `buf`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Frame {
    Incomplete,
    Invalid,
    Complete(usize),
}

fn frame_of(buf: &[u8], startup: bool) -> Frame {
    let (header, min, max, extra) = if startup {
        (4, MIN_STARTUP_LEN as i64, MAX_STARTUP_LEN as i64, 0)
    } else {
        (5, 4, MAX_MESSAGE_LEN as i64, 1)
    };
    if buf.len() < header {
        return Frame::Incomplete;
    }
    let at = header - 4;
    let len = i64::from(i32::from_be_bytes([
        buf[at],
        buf[at + 1],
        buf[at + 2],
        buf[at + 3],
    ]));
    if len < min || len > max {
        return Frame::Invalid;
    }
    let total = len as usize + extra;
    if buf.len() < total {
        Frame::Incomplete
    } else {
        Frame::Complete(total)
    }
}

/// Checks what the decoder made of `buf` against the framing and returns
/// it. `what` names the decoder and context in failure messages.
fn check<M: PartialEq + std::fmt::Debug>(
    what: &str,
    buf: &[u8],
    startup: bool,
    decode: impl Fn(&[u8]) -> Result<Option<(M, usize)>, ProtocolError>,
) -> Result<Option<(M, usize)>, ProtocolError> {
    let (outcome, largest) = largest_allocation(|| catch_unwind(AssertUnwindSafe(|| decode(buf))));
    let Ok(result) = outcome else {
        panic!("{what} decoder panicked on input {}", hex(buf));
    };
    assert!(
        largest <= allowed_for(buf.len()),
        "{what} decoder allocated {largest} bytes at once for {} input bytes: {}",
        buf.len(),
        hex(buf)
    );
    let frame = frame_of(buf, startup);
    match (frame, &result) {
        (Frame::Incomplete, Ok(None)) | (Frame::Invalid, Err(_)) => {}
        (Frame::Complete(len), Ok(Some((_, used)))) => assert!(
            *used == len && 0 < *used && *used <= buf.len(),
            "{what} decoder used {used} bytes of a {len}-byte frame: {}",
            hex(buf)
        ),
        (Frame::Complete(len), Err(_)) => {
            // An error must be about this frame, not what follows it.
            let alone = decode(&buf[..len]);
            assert_eq!(
                alone,
                result,
                "{what} decoder: the outcome depends on bytes after the frame: {}",
                hex(buf)
            );
        }
        _ => panic!(
            "{what} decoder returned {result:?} for a frame read as {frame:?}: {}",
            hex(buf)
        ),
    }
    if let (Frame::Complete(len), Ok(Some(_))) = (frame, &result) {
        assert_eq!(
            decode(&buf[..len]),
            result,
            "{what} decoder: the message depends on bytes after its frame: {}",
            hex(buf)
        );
    }
    result
}

fn check_frontend(buf: &[u8], ctx: &DecodeContext) -> Option<FrontendMessage> {
    let what = format!("frontend ({ctx:?})");
    let result = check(&what, buf, ctx.awaiting_startup, |b| {
        FrontendMessage::decode(b, ctx)
    });
    // The proxy's check before forwarding judges every input as decoding
    // does, with the same error, except text that is not UTF-8: the check
    // leaves that to the server, and then accepts the whole frame or finds
    // a fault in its structure that decoding stopped short of.
    let checked = catch_unwind(AssertUnwindSafe(|| FrontendMessage::check(buf, ctx)))
        .unwrap_or_else(|_| panic!("check panicked on input {}", hex(buf)));
    match &result {
        Err(ProtocolError::InvalidUtf8 { .. }) if !ctx.awaiting_startup => match &checked {
            Ok(Some(Checked { len, auth })) => {
                assert_eq!(
                    frame_of(buf, false),
                    Frame::Complete(*len),
                    "{what}: check accepted part of a frame: {}",
                    hex(buf)
                );
                assert_eq!(*auth, buf[0] == b'p', "{what}: {}", hex(buf));
            }
            Err(e) => assert!(
                !matches!(e, ProtocolError::InvalidUtf8 { .. }),
                "{what}: check judged the text's encoding: {}",
                hex(buf)
            ),
            Ok(None) => panic!("{what}: check wants more of a whole frame: {}", hex(buf)),
        },
        _ => {
            let expected = result.clone().map(|found| {
                found.map(|(msg, len)| Checked {
                    len,
                    auth: msg.is_auth(),
                })
            });
            assert_eq!(
                checked,
                expected,
                "{what}: check and decode part on {}",
                hex(buf)
            );
        }
    }
    let (msg, _) = result.ok()??;
    let unrecorded = msg.is_auth()
        || matches!(
            msg,
            FrontendMessage::SslRequest
                | FrontendMessage::GssEncRequest
                | FrontendMessage::CancelRequest { .. }
        );
    assert_eq!(
        msg.to_model().is_none(),
        unrecorded,
        "{msg:?}: only authentication and connection plumbing go unrecorded"
    );
    Some(msg)
}

/// A recorded server message must replay as the same message: encoding the
/// model and decoding it again gives the model back. The encoder refuses a
/// ReadyForQuery status it cannot send and leaves out error field codes
/// that are not ASCII, which the protocol does not define.
fn check_backend(buf: &[u8]) -> Option<BackendMessage> {
    let result = check("backend", buf, false, BackendMessage::decode);
    let (msg, _) = result.ok()??;
    let _ = msg.to_model(&[Format::Binary]);
    let _ = msg.to_model(&[Format::Text, Format::Binary]);
    let model = msg.to_model(&[])?;
    let mut out = BytesMut::new();
    match encode_backend(&model, &mut out) {
        Ok(()) => {}
        Err(EncodeError::BadStatus(_)) => return Some(msg),
        Err(e) => panic!("{model:?} decoded from {} does not encode: {e}", hex(buf)),
    }
    let again = BackendMessage::decode(&out)
        .ok()
        .flatten()
        .and_then(|(m, used)| (used == out.len()).then_some(m))
        .unwrap_or_else(|| panic!("{model:?} encodes to bytes that do not decode"));
    let expected = match model {
        BackendMsg::ErrorResponse { mut fields } => {
            fields.retain(|c, _| c.is_ascii());
            BackendMsg::ErrorResponse { fields }
        }
        BackendMsg::NoticeResponse { mut fields } => {
            fields.retain(|c, _| c.is_ascii());
            BackendMsg::NoticeResponse { fields }
        }
        other => other,
    };
    assert_eq!(
        again.to_model(&[]),
        Some(expected),
        "re-encoding changed the message decoded from {}",
        hex(buf)
    );
    Some(msg)
}

fn frontend_pool() -> Vec<Vec<u8>> {
    let mut pool = startup_packets();
    pool.extend(frontend_messages());
    pool
}

/// A seed, sometimes followed by another, mutated.
fn mutated(rng: &mut Rng, pool: &[Vec<u8>]) -> Vec<u8> {
    let mut buf = rng.pick(pool).clone();
    if rng.below(4) == 0 {
        buf.extend_from_slice(&rng.pick(pool)[..]);
    }
    mutate(rng, &mut buf, pool);
    buf
}

#[test]
fn frontend_mutations_in_every_context() {
    let pool = frontend_pool();
    for (i, ctx) in contexts().iter().enumerate() {
        let mut rng = Rng::new(0xF0 + i as u64);
        let mut decoded = 0;
        for _ in 0..ITERATIONS {
            let buf = mutated(&mut rng, &pool);
            decoded += usize::from(check_frontend(&buf, ctx).is_some());
        }
        // Mutations that never decode would test only the error paths.
        assert!(decoded > 500, "{ctx:?}: only {decoded} inputs decoded");
    }
}

#[test]
fn backend_mutations() {
    let pool = backend_messages();
    let mut rng = Rng::new(0xB0);
    let mut decoded = 0;
    for _ in 0..ITERATIONS * 2 {
        let buf = mutated(&mut rng, &pool);
        decoded += usize::from(check_backend(&buf).is_some());
    }
    assert!(decoded > 2_000, "only {decoded} inputs decoded");
}

/// Every prefix of every seed and of every pair of seeds, and every length
/// word worth trying in every seed.
#[test]
fn truncations_and_length_words() {
    let front = frontend_pool();
    let back = backend_messages();
    let pairs = |pool: &[Vec<u8>]| -> Vec<Vec<u8>> {
        let mut out = pool.to_vec();
        for a in pool {
            for b in pool {
                out.push([a.as_slice(), b.as_slice()].concat());
            }
        }
        out
    };
    for ctx in contexts() {
        for seed in pairs(&front) {
            for cut in 0..=seed.len() {
                check_frontend(&seed[..cut], &ctx);
            }
        }
    }
    for seed in pairs(&back) {
        for cut in 0..=seed.len() {
            check_backend(&seed[..cut]);
        }
    }
    for len in super::LENGTHS {
        for ctx in contexts() {
            for seed in &front {
                let mut buf = seed.clone();
                let at = usize::from(!ctx.awaiting_startup);
                buf[at..at + 4].copy_from_slice(&len.to_be_bytes());
                check_frontend(&buf, &ctx);
            }
        }
        for seed in &back {
            let mut buf = seed.clone();
            buf[1..5].copy_from_slice(&len.to_be_bytes());
            check_backend(&buf);
        }
    }
}

/// A whole message followed by anything decodes as that message first.
#[test]
fn a_valid_message_comes_out_first_whatever_follows() {
    let pool = frontend_pool();
    let mut rng = Rng::new(0xAF);
    for ctx in contexts() {
        for seed in &pool {
            let Ok(Some(first)) = FrontendMessage::decode(seed, &ctx) else {
                continue;
            };
            for _ in 0..200 {
                let mut buf = seed.clone();
                let tail = mutated(&mut rng, &pool);
                buf.extend_from_slice(&tail);
                assert_eq!(
                    FrontendMessage::decode(&buf, &ctx),
                    Ok(Some(first.clone())),
                    "{ctx:?}: {}",
                    hex(&buf)
                );
            }
        }
    }
    let pool = backend_messages();
    for seed in &pool {
        let first = BackendMessage::decode(seed)
            .expect("seed decodes")
            .expect("seed is whole");
        for _ in 0..200 {
            let mut buf = seed.clone();
            buf.extend_from_slice(&mutated(&mut rng, &pool));
            assert_eq!(BackendMessage::decode(&buf), Ok(Some(first.clone())));
        }
    }
}

/// Valid messages arriving in arbitrary chunks decode to the same sequence
/// as decoding each alone, and leave nothing behind.
#[test]
fn chunked_streams_decode_to_the_same_messages() {
    let ctx = DecodeContext::ready();
    let valid: Vec<(Vec<u8>, FrontendMessage)> = frontend_messages()
        .into_iter()
        .filter_map(|b| {
            let (m, _) = FrontendMessage::decode(&b, &ctx).ok()??;
            Some((b, m))
        })
        .collect();
    assert!(valid.len() > 10);
    let mut rng = Rng::new(0xC4);
    for _ in 0..300 {
        let picks: Vec<&(Vec<u8>, FrontendMessage)> =
            (0..1 + rng.below(8)).map(|_| rng.pick(&valid)).collect();
        let stream: Vec<u8> = picks.iter().flat_map(|(b, _)| b.clone()).collect();
        let mut buf = BytesMut::new();
        let mut got = Vec::new();
        let mut at = 0;
        while at < stream.len() {
            let n = 1 + rng.below(stream.len() - at);
            buf.extend_from_slice(&stream[at..at + n]);
            at += n;
            while let Some(m) = FrontendMessage::decode_from(&mut buf, &ctx).expect("valid stream")
            {
                got.push(m);
            }
        }
        let want: Vec<FrontendMessage> = picks.iter().map(|(_, m)| m.clone()).collect();
        assert_eq!(got, want);
        assert!(buf.is_empty());
    }
}
