//! The recorder's exchange grouping fed arbitrary interleavings of client
//! and server messages, as a confused client or server could produce. It
//! may record odd exchanges or abandon the connection, but must not panic,
//! must number exchanges uniquely and in order, and must never wedge: a
//! ReadyForQuery always completes the oldest exchange in flight.

use chrono::Utc;

use super::seeds::{backend_messages, frontend_messages, startup_packets};
use super::{mutate, Rng};
use crate::pgwire::backend::BackendMessage;
use crate::pgwire::frontend::{AuthRequest, DecodeContext, FrontendMessage};
use crate::testset::pg_exchange::lifetime::is_session_sql;
use crate::testset::pg_exchange::ConnFramer;
use crate::testset::pg_mock::{FrontendMsg, Lifetime, MockSpec};
use crate::window::TestWindows;

/// Every message the seeds decode to, plus whatever their mutations decode
/// to, so odd-but-valid messages (empty names, zero counts) are included.
fn pools() -> (Vec<FrontendMessage>, Vec<BackendMessage>) {
    let mut rng = Rng::new(0xE0);
    let mut contexts = vec![DecodeContext::new(), DecodeContext::ready()];
    for auth in [
        AuthRequest::Password,
        AuthRequest::SaslInitial,
        AuthRequest::SaslContinue,
        AuthRequest::Gss,
    ] {
        contexts.push(DecodeContext {
            awaiting_startup: false,
            auth: Some(auth),
        });
    }
    let mut raw = startup_packets();
    raw.extend(frontend_messages());
    let mut front = Vec::new();
    for i in 0..4_000 {
        let mut buf = raw[i % raw.len()].clone();
        if i >= raw.len() {
            mutate(&mut rng, &mut buf, &raw);
        }
        for ctx in &contexts {
            if let Ok(Some((m, _))) = FrontendMessage::decode(&buf, ctx) {
                front.push(m);
            }
        }
    }
    let raw = backend_messages();
    let mut back = Vec::new();
    for i in 0..4_000 {
        let mut buf = raw[i % raw.len()].clone();
        if i >= raw.len() {
            mutate(&mut rng, &mut buf, &raw);
        }
        if let Ok(Some((m, _))) = BackendMessage::decode(&buf) {
            back.push(m);
        }
    }
    // Session-level statements, simple and prepared under the names the
    // seeds bind, so exchanges of both lifetimes come up.
    let session = [
        FrontendMessage::Query("SET search_path = app".into()),
        FrontendMessage::Query("BEGIN; SELECT 1".into()),
        parse("s1", "SHOW TimeZone"),
        parse("s1", "SELECT $1::int4"),
        parse("", "COMMIT"),
        parse("", "select set_config('a', 'b', false)"),
    ];
    for _ in 0..40 {
        front.extend(session.iter().cloned());
    }
    (front, back)
}

fn parse(name: &str, query: &str) -> FrontendMessage {
    FrontendMessage::Parse {
        name: name.into(),
        query: query.into(),
        param_types: vec![],
    }
}

/// The lifetime rule, read off a finished mock's requests: session-level
/// when every statement it runs is (a Bind by the text it resolved to);
/// COPY data and function calls never are; an exchange running none is
/// plumbing and session-level too. The recorder works this out as messages
/// arrive; this is the same rule applied afterwards.
fn runs_only_session_statements(requests: &[FrontendMsg]) -> bool {
    requests.iter().all(|r| match r {
        FrontendMsg::Query { query } | FrontendMsg::Parse { query, .. } => is_session_sql(query),
        FrontendMsg::Bind {
            statement_query, ..
        } => statement_query.as_deref().is_some_and(is_session_sql),
        FrontendMsg::CopyData { .. } | FrontendMsg::FunctionCall { .. } => false,
        _ => true,
    })
}

/// Checks a completed mock; returns whether it is a session-level one
/// after start-up.
fn check_completed(done: Option<&MockSpec>, last_position: &mut Option<u64>) -> bool {
    let Some(spec) = done else {
        return false;
    };
    {
        assert!(
            last_position.map_or(true, |p| spec.position > p),
            "position {} after {last_position:?}",
            spec.position
        );
        *last_position = Some(spec.position);
        assert!(!spec.responses.is_empty(), "a mock completed unanswered");
    }
    let expected = if spec.position == 0 || runs_only_session_statements(&spec.requests) {
        Lifetime::Session
    } else {
        Lifetime::Unattributed
    };
    assert_eq!(spec.lifetime, expected, "{:?}", spec.requests);
    spec.position > 0 && expected == Lifetime::Session
}

#[test]
fn arbitrary_message_sequences_never_wedge_the_recorder() {
    let (front, back) = pools();
    assert!(front.len() > 1_000 && back.len() > 400);
    let rfq = BackendMessage::ReadyForQuery { status: b'I' };
    let mut rng = Rng::new(0xE1);
    let mut mocks = 0;
    // Session-level mocks after start-up, so the lifetime rule is tested
    // both ways.
    let mut session = 0;
    for _ in 0..2_000 {
        let mut rec = ConnFramer::new(1, TestWindows::new());
        let mut last = None;
        let mut sent = 0;
        let now = Utc::now();
        for _ in 0..rng.below(40) {
            if rng.below(2) == 0 {
                rec.on_frontend(rng.pick(&front).clone(), now);
                sent += 1;
            } else {
                let done = rec.on_backend(rng.pick(&back).clone(), now);
                mocks += usize::from(done.is_some());
                session += usize::from(check_completed(done.as_ref(), &mut last));
            }
        }
        if rng.below(8) == 0 {
            rec.abandon();
            assert!(rec.idle() && !rec.is_recording());
            rec.on_frontend(rng.pick(&front).clone(), now);
            assert!(rec.on_backend(rfq.clone(), now).is_none() && rec.idle());
            continue;
        }
        // Each ReadyForQuery completes one exchange, so as many as were
        // opened drain the recorder.
        for _ in 0..=sent {
            let done = rec.on_backend(rfq.clone(), now);
            mocks += usize::from(done.is_some());
            session += usize::from(check_completed(done.as_ref(), &mut last));
        }
        assert!(rec.idle(), "exchanges still in flight after {sent} answers");
    }
    assert!(mocks > 2_000, "only {mocks} mocks completed");
    assert!(
        session > 200 && session < mocks / 2,
        "{session} of {mocks} mocks session-level"
    );
}
