//! Answers read back from mocks.yaml when served: the same answer as
//! recorded, and a clear error when the file changed since it was loaded.

use std::fs;

use chrono::Utc;

use super::*;
use crate::testset::pg_mock::{BackendMsg, FrontendMsg, Lifetime, MockSpec, PgValue};
use crate::testset::store::render_mocks;
use crate::testset::TestSetDir;

fn mock(n: usize, lifetime: Lifetime, query: &str, rows: &[&str]) -> PgMock {
    let mut responses: Vec<BackendMsg> = rows
        .iter()
        .map(|r| BackendMsg::DataRow {
            values: vec![PgValue::Text((*r).into()), PgValue::Null],
        })
        .collect();
    responses.push(BackendMsg::CommandComplete {
        tag: format!("SELECT {}", rows.len()),
    });
    responses.push(BackendMsg::ReadyForQuery { status: 'I' });
    PgMock::new(
        format!("mock-{n}"),
        MockSpec {
            connection: 1,
            position: n as u64,
            lifetime,
            startup: Default::default(),
            request_timestamp: Utc::now(),
            response_timestamp: Utc::now(),
            requests: vec![FrontendMsg::Query {
                query: query.into(),
            }],
            responses,
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

/// A test set whose mocks.yaml holds `mocks`, loaded into an index.
fn loaded(mocks: &[PgMock]) -> (tempfile::TempDir, TestSetDir, Matcher) {
    let dir = tempfile::tempdir().expect("tempdir");
    let set = TestSetDir::create_next(dir.path()).expect("create");
    fs::write(set.mocks_path(), render_mocks(mocks)).expect("write");
    let mut index = Index::default();
    let loaded = set.load_with(&mut index).expect("load");
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    (dir, set, Matcher::from_index(index, MatchStrategy::Exact))
}

fn recorded() -> Vec<PgMock> {
    vec![
        mock(1, Lifetime::Session, "SELECT 1", &["1"]),
        mock(
            2,
            Lifetime::Test("test-1".into()),
            "SELECT name FROM t WHERE id = 7",
            &["seven", "sieben: 'quoted'\nand a second line"],
        ),
        mock(
            3,
            Lifetime::Unattributed,
            "SELECT name FROM t WHERE id = 8",
            &[],
        ),
    ]
}

#[test]
fn an_answer_read_back_is_the_recorded_one() {
    let recorded = recorded();
    let (_dir, _set, mut m) = loaded(&recorded);
    for (query, test, want) in [
        ("SELECT name FROM t WHERE id = 8", None, &recorded[2]),
        (
            "SELECT name FROM t WHERE id = 7",
            Some("test-1"),
            &recorded[1],
        ),
        ("SELECT 1", Some("test-1"), &recorded[0]),
    ] {
        match m.find(&live(query), test) {
            Outcome::Answer { mock, fallback } => {
                assert_eq!(*mock, *want, "{query}");
                assert!(fallback.is_none(), "{query}: {fallback:?}");
            }
            other => panic!("{query}: {other:?}"),
        }
    }
    assert_eq!(m.usage_for("test-1").mocks, ["mock-2", "mock-1"]);
    // A same-shape fallback names the literal that differs, from the index.
    let Outcome::Answer { mock, fallback } = m.find(&live("SELECT name FROM t WHERE id = 9"), None)
    else {
        panic!("no same-shape answer");
    };
    let fallback = fallback.expect("a same-shape fallback");
    assert_eq!(fallback.mock, mock.name);
    assert_eq!(fallback.differing[0].actual, "9");
}

#[test]
fn a_mocks_file_changed_after_loading_is_an_error_at_serve_time() {
    let recorded = recorded();
    let (_dir, set, mut m) = loaded(&recorded);
    // Same length, one answer's value changed: never served as recorded.
    let text = fs::read_to_string(set.mocks_path()).expect("read");
    fs::write(set.mocks_path(), text.replace("seven", "SEVEN")).expect("write");
    let Outcome::Unreadable(message) =
        m.find(&live("SELECT name FROM t WHERE id = 7"), Some("test-1"))
    else {
        panic!("a changed document was served");
    };
    assert!(
        message.contains("changed after the test set was loaded"),
        "{message}"
    );
    assert!(message.contains("mocks.yaml"), "{message}");
    // The test's report names it.
    let usage = m.usage_for("test-1");
    assert!(
        usage.misses[0].candidates[0].contains("mock-2"),
        "{usage:?}"
    );
    // Documents before the change still serve.
    assert!(matches!(
        m.find(&live("SELECT 1"), None),
        Outcome::Answer { .. }
    ));
}

#[test]
fn a_mocks_file_truncated_after_loading_is_an_error_at_serve_time() {
    let recorded = recorded();
    let (_dir, set, mut m) = loaded(&recorded);
    let text = fs::read(set.mocks_path()).expect("read");
    fs::write(set.mocks_path(), &text[..text.len() / 2]).expect("write");
    let Outcome::Unreadable(message) = m.find(&live("SELECT name FROM t WHERE id = 8"), None)
    else {
        panic!("a truncated document was served");
    };
    assert!(message.contains("truncated"), "{message}");
}

#[test]
fn a_torn_last_document_is_left_out_and_the_rest_serve() {
    let recorded = recorded();
    let dir = tempfile::tempdir().expect("tempdir");
    let set = TestSetDir::create_next(dir.path()).expect("create");
    let text = render_mocks(&recorded);
    // Cut at the end of a line: only the missing end marker tells.
    let torn = text.strip_suffix("...\n").expect("an end marker");
    fs::write(set.mocks_path(), torn).expect("write");
    let mut index = Index::default();
    let loaded = set.load_with(&mut index).expect("load");
    // A crash's torn tail: left out with a warning, not a failed test.
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let mut m = Matcher::from_index(index, MatchStrategy::Exact);
    assert_eq!(m.index.len(), 2);
    match m.find(&live("SELECT name FROM t WHERE id = 7"), Some("test-1")) {
        Outcome::Answer { mock, .. } => assert_eq!(*mock, recorded[1]),
        other => panic!("{other:?}"),
    }
}
