use super::*;
use crate::testset::pg_mock::{BackendMsg, FrontendMsg, Lifetime, MockSpec, PgValue};
use chrono::Utc;

fn mock(n: usize, conn: u64, lifetime: Lifetime, query: &str, answer: &str) -> PgMock {
    PgMock::new(
        format!("mock-{n}"),
        MockSpec {
            connection: conn,
            position: n as u64,
            lifetime,
            startup: Default::default(),
            request_timestamp: Utc::now(),
            response_timestamp: Utc::now(),
            requests: vec![FrontendMsg::Query {
                query: query.into(),
            }],
            responses: vec![BackendMsg::DataRow {
                values: vec![PgValue::Text(answer.into())],
            }],
        },
    )
}

fn live(query: &str) -> Identity {
    identify(
        &[FrontendMsg::Query {
            query: query.into(),
        }],
        &mut Statements::new(),
    )
    .expect("identity")
}

fn answered(outcome: &Outcome) -> (&str, Option<&Fallback>) {
    match outcome {
        Outcome::Answer { mock, fallback } => (mock.name.as_str(), fallback.as_ref()),
        Outcome::Miss(m) => panic!("unexpected miss: {m:?}"),
        Outcome::Unreadable(e) => panic!("unexpected unreadable answer: {e}"),
    }
}

const Q13: &str = "SELECT * FROM ct WHERE id = 13";
const Q15: &str = "SELECT * FROM ct WHERE id = 15";
const Q99: &str = "SELECT * FROM ct WHERE id = 99";

fn t(name: &str) -> Lifetime {
    Lifetime::Test(name.into())
}

#[test]
fn literal_variants_get_their_own_answers_in_any_order() {
    let mut m = Matcher::new(
        vec![
            mock(1, 1, t("test-1"), Q13, "13"),
            mock(2, 1, t("test-1"), Q15, "15"),
        ],
        MatchStrategy::Exact,
    );
    assert_eq!(
        answered(&m.find(&live(Q15), Some("test-1"))),
        ("mock-2", None)
    );
    assert_eq!(
        answered(&m.find(&live(Q13), Some("test-1"))),
        ("mock-1", None)
    );
    assert_eq!(m.usage_for("test-1").mocks, vec!["mock-2", "mock-1"]);
}

#[test]
fn collapse_serves_the_first_recording_to_every_variant() {
    let mut m = Matcher::new(
        vec![
            mock(1, 1, t("test-1"), Q13, "13"),
            mock(2, 1, t("test-1"), Q15, "15"),
        ],
        MatchStrategy::CollapseLiterals,
    );
    assert_eq!(answered(&m.find(&live(Q15), None)).0, "mock-1");
}

#[test]
fn the_current_test_window_is_preferred_then_session_then_anywhere() {
    let mut m = Matcher::new(
        vec![
            mock(1, 1, t("test-1"), Q13, "a"),
            mock(2, 1, t("test-2"), Q13, "b"),
            mock(3, 1, Lifetime::Session, Q15, "s"),
            mock(4, 1, t("test-1"), Q15, "c"),
        ],
        MatchStrategy::Exact,
    );
    assert_eq!(answered(&m.find(&live(Q13), Some("test-2"))).0, "mock-2");
    // Session mocks come before other tests' data mocks, and are reused.
    assert_eq!(answered(&m.find(&live(Q15), Some("test-2"))).0, "mock-3");
    assert_eq!(answered(&m.find(&live(Q15), Some("test-2"))).0, "mock-3");
    // In its own window, test-1 gets its data mock first.
    assert_eq!(answered(&m.find(&live(Q15), Some("test-1"))).0, "mock-4");
    // No test: anywhere unconsumed, in recorded order.
    assert_eq!(answered(&m.find(&live(Q13), None)).0, "mock-1");
}

#[test]
fn data_mocks_are_consumed_in_recorded_order_then_reused() {
    let mut m = Matcher::new(
        vec![
            mock(1, 1, t("test-1"), Q13, "first"),
            mock(2, 2, t("test-1"), Q13, "second"),
        ],
        MatchStrategy::Exact,
    );
    assert_eq!(
        answered(&m.find(&live(Q13), Some("test-1"))),
        ("mock-1", None)
    );
    assert_eq!(
        answered(&m.find(&live(Q13), Some("test-1"))),
        ("mock-2", None)
    );
    let third = m.find(&live(Q13), Some("test-1"));
    let (name, fallback) = answered(&third);
    assert_eq!(name, "mock-2");
    assert_eq!(fallback.map(|f| f.reason), Some(FallbackReason::Reused));
}

#[test]
fn same_shape_is_a_reported_fallback_scored_by_agreeing_literals() {
    let q = |id: u32, label: &str| {
        format!("SELECT * FROM ct WHERE id = {id} AND app_label = '{label}'")
    };
    let mut m = Matcher::new(
        vec![
            mock(1, 1, t("test-1"), &q(13, "auth"), "a"),
            mock(2, 1, t("test-1"), &q(15, "projects"), "b"),
        ],
        MatchStrategy::Exact,
    );
    let out = m.find(&live(&q(99, "projects")), Some("test-1"));
    let (name, fallback) = answered(&out);
    assert_eq!(
        name, "mock-2",
        "the recording agreeing on more literals wins"
    );
    let fallback = fallback.expect("reported");
    assert_eq!(fallback.reason, FallbackReason::SameShape);
    assert_eq!(
        fallback.differing,
        vec![LiteralDiff {
            position: 0,
            recorded: "15".into(),
            actual: "99".into()
        }]
    );
    assert_eq!(m.usage_for("test-1").fallbacks.len(), 1);
}

#[test]
fn a_miss_names_the_nearest_candidates() {
    let mut m = Matcher::new(
        vec![
            mock(1, 1, t("test-1"), Q13, "a"),
            mock(2, 1, t("test-1"), "UPDATE other SET x = 1", "b"),
        ],
        MatchStrategy::Exact,
    );
    let out = m.find(
        &live("SELECT name FROM ct WHERE id = 13 LIMIT 1"),
        Some("test-9"),
    );
    let Outcome::Miss(miss) = out else {
        panic!("expected a miss")
    };
    assert!(miss.candidates[0].starts_with("mock-1: SELECT"), "{miss:?}");
    assert_eq!(m.usage_for("test-9").misses, vec![miss.clone()]);
    let (message, detail) = miss_message(&miss);
    assert!(message.contains("LIMIT 1"));
    assert!(detail.contains("mock-1"));
    let _ = Q99;
}

#[test]
fn binds_resolve_statements_prepared_on_earlier_exchanges_of_the_recording() {
    use crate::testset::pg_mock::Format;
    let parse = FrontendMsg::Parse {
        name: "s0".into(),
        query: "SELECT $1::int".into(),
        param_types: vec![],
    };
    let bind = |v: &str| FrontendMsg::Bind {
        portal: String::new(),
        statement: "s0".into(),
        statement_query: None,
        param_formats: vec![Format::Binary],
        params: vec![PgValue::Text(v.into())],
        result_formats: vec![],
    };
    let mut prep = mock(1, 7, t("test-1"), "", "");
    prep.spec.requests = vec![parse.clone(), FrontendMsg::Sync];
    let mut exec = mock(2, 7, t("test-1"), "", "");
    exec.spec.requests = vec![
        bind("x"),
        FrontendMsg::Execute {
            portal: String::new(),
            max_rows: 0,
        },
        FrontendMsg::Sync,
    ];
    let mut m = Matcher::new(vec![prep, exec], MatchStrategy::Exact);
    assert!(m.unindexed().is_empty());
    // Replay names the statement differently.
    let mut statements = Statements::new();
    let mut renamed = parse;
    if let FrontendMsg::Parse { name, .. } = &mut renamed {
        *name = "s42".into();
    }
    let p = identify(&[renamed, FrontendMsg::Sync], &mut statements).expect("parse");
    assert_eq!(answered(&m.find(&p, Some("test-1"))).0, "mock-1");
    let mut b = bind("x");
    if let FrontendMsg::Bind { statement, .. } = &mut b {
        *statement = "s42".into();
    }
    let e = identify(
        &[
            b,
            FrontendMsg::Execute {
                portal: String::new(),
                max_rows: 0,
            },
            FrontendMsg::Sync,
        ],
        &mut statements,
    )
    .expect("bind");
    assert_eq!(answered(&m.find(&e, Some("test-1"))), ("mock-2", None));
}

#[test]
fn rewind_makes_consumed_mocks_available_again() {
    let mut m = Matcher::new(
        vec![
            mock(1, 1, t("test-1"), Q13, "a"),
            mock(2, 1, t("test-1"), Q13, "b"),
        ],
        MatchStrategy::Exact,
    );
    assert_eq!(answered(&m.find(&live(Q13), Some("test-1"))).0, "mock-1");
    assert_eq!(answered(&m.find(&live(Q13), Some("test-1"))).0, "mock-2");
    m.rewind();
    assert_eq!(
        answered(&m.find(&live(Q13), Some("test-1"))),
        ("mock-1", None)
    );
}

#[test]
fn restore_puts_back_only_what_was_consumed_since_the_checkpoint() {
    let mut m = Matcher::new(
        vec![
            mock(1, 1, t("test-1"), Q13, "a"),
            mock(2, 1, t("test-2"), Q13, "b"),
        ],
        MatchStrategy::Exact,
    );
    assert_eq!(answered(&m.find(&live(Q13), Some("test-1"))).0, "mock-1");
    let before_test_2 = m.checkpoint();
    assert_eq!(answered(&m.find(&live(Q13), Some("test-2"))).0, "mock-2");
    let after_test_2 = m.checkpoint();
    // A second pass of test-2 from where its first pass started gets the
    // same answer, not a reused one.
    m.restore(&before_test_2);
    assert_eq!(
        answered(&m.find(&live(Q13), Some("test-2"))),
        ("mock-2", None)
    );
    // Back to where the first pass left off: everything is used up.
    m.restore(&after_test_2);
    let outcome = m.find(&live(Q13), Some("test-3"));
    let (name, fallback) = answered(&outcome);
    assert_eq!(name, "mock-2");
    assert!(fallback.is_some(), "a reuse is reported");
}
