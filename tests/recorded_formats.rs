//! Recordings made by every released format version still load and still
//! replay.
//!
//! `tests/fixtures/doccano/format-N/test-set-0` is a doccano test set as
//! recplay wrote it in format version N (recorded by the sample's flow:
//! gunicorn with two workers, psycopg2 sending simple Queries with inlined
//! literals). Each one must load with no problem, and its database
//! exchanges, sent again by a real client in recorded order, must get
//! exactly the recorded rows from the mock server: the bind-preserving
//! matcher on real traffic, polymorphic look-ups included.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::Utc;
use recplay_proxy::pg::matcher::MatchStrategy;
use recplay_proxy::testset::pg_mock::{BackendMsg, FrontendMsg, Lifetime, PgValue};
use recplay_proxy::testset::{PgMock, TestSetDir};
use recplay_proxy::window::TestWindows;
use tokio_postgres::SimpleQueryMessage;

use crate::support::pg_replay::{connect, Replay};

fn fixture_sets() -> Vec<(u32, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/doccano");
    let mut sets: Vec<(u32, PathBuf)> = std::fs::read_dir(&root)
        .expect("tests/fixtures/doccano exists")
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e
                .file_name()
                .to_str()?
                .strip_prefix("format-")?
                .parse()
                .ok()?;
            Some((version, e.path().join("test-set-0")))
        })
        .collect();
    sets.sort();
    assert!(
        !sets.is_empty(),
        "no format-N fixtures under {}",
        root.display()
    );
    sets
}

/// What a simple Query answered: the rows (as text) and the command tags,
/// or the SQLSTATE of the error.
#[derive(Debug, PartialEq)]
enum Answer {
    Rows {
        rows: Vec<Vec<Option<String>>>,
        commands: usize,
    },
    Error(String),
}

fn recorded_answer(mock: &PgMock) -> Answer {
    let mut rows = Vec::new();
    let mut commands = 0;
    for msg in &mock.spec.responses {
        match msg {
            BackendMsg::DataRow { values } => rows.push(
                values
                    .iter()
                    .map(|v| match v {
                        PgValue::Null => None,
                        PgValue::Text(s) => Some(s.clone()),
                        PgValue::Bytes { base64 } => Some(base64.clone()),
                    })
                    .collect(),
            ),
            BackendMsg::CommandComplete { .. } | BackendMsg::EmptyQueryResponse => commands += 1,
            BackendMsg::ErrorResponse { fields } => {
                return Answer::Error(fields.get(&'C').cloned().unwrap_or_default())
            }
            _ => {}
        }
    }
    Answer::Rows { rows, commands }
}

fn live_answer(result: Result<Vec<SimpleQueryMessage>, tokio_postgres::Error>) -> Answer {
    match result {
        Err(e) => Answer::Error(e.code().map(|c| c.code().to_string()).unwrap_or_default()),
        Ok(messages) => {
            let mut rows = Vec::new();
            let mut commands = 0;
            for m in messages {
                match m {
                    SimpleQueryMessage::Row(row) => rows.push(
                        (0..row.len())
                            .map(|i| row.get(i).map(str::to_string))
                            .collect(),
                    ),
                    SimpleQueryMessage::CommandComplete(_) => commands += 1,
                    _ => {}
                }
            }
            Answer::Rows { rows, commands }
        }
    }
}

fn simple_query(mock: &PgMock) -> Option<&str> {
    match mock.spec.requests.as_slice() {
        [FrontendMsg::Query { query }] => Some(query),
        _ => None,
    }
}

#[tokio::test]
async fn every_released_format_loads_and_its_database_exchanges_replay() {
    for (version, dir) in fixture_sets() {
        let set = TestSetDir::open(dir.clone()).load().expect("fixture loads");
        assert!(
            set.problems.is_empty(),
            "format {version}: {:?}",
            set.problems
        );
        assert!(set.tests.len() > 50, "format {version}: too few tests");
        assert!(set.mocks.len() > 100, "format {version}: too few mocks");
        assert!(set.mocks.iter().all(|m| m.version == version));
        assert!(set.tests.iter().all(|t| t.recplay_format == version));

        let mut queries: Vec<&PgMock> = set
            .mocks
            .iter()
            .filter(|m| simple_query(m).is_some())
            .collect();
        queries.sort_by_key(|m| m.spec.request_timestamp);
        let polymorphic = queries
            .iter()
            .filter(|m| simple_query(m).is_some_and(|q| q.contains("django_content_type")))
            .count();
        assert!(
            polymorphic > 0,
            "format {version}: no content-type look-ups"
        );

        let windows = TestWindows::new();
        let replay = Replay::start(set.mocks.clone(), windows.clone(), MatchStrategy::Exact).await;
        let mut clients = HashMap::new();
        for mock in &queries {
            let client = match clients.entry(mock.spec.connection) {
                std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(connect(replay.addr).await)
                }
            };
            let test = match &mock.spec.lifetime {
                Lifetime::Test(name) => Some(name.clone()),
                _ => None,
            };
            if let Some(test) = &test {
                windows.open(test, Utc::now());
            }
            let query = simple_query(mock).unwrap_or_default();
            let answer = live_answer(client.simple_query(query).await);
            if let Some(test) = &test {
                windows.close(test, Utc::now());
            }
            assert_eq!(
                answer,
                recorded_answer(mock),
                "format {version}: {} ({query}) answered differently on replay",
                mock.name
            );
        }
        let test_names: Vec<&str> = set.tests.iter().map(|t| t.name.as_str()).collect();
        for name in test_names {
            let usage = replay.handle.usage_for(name);
            assert!(
                usage.misses.is_empty() && usage.fallbacks.is_empty(),
                "format {version}: {name} missed or fell back: {usage:?}"
            );
        }
    }
}

/// Every format version recplay has written keeps its recording here, so
/// bumping the version without one fails.
#[test]
fn every_format_version_has_a_fixture() {
    let versions: Vec<u32> = fixture_sets().into_iter().map(|(v, _)| v).collect();
    let written: Vec<u32> = (1..=recplay_proxy::testset::FORMAT_VERSION).collect();
    assert_eq!(
        versions, written,
        "tests/fixtures/doccano/format-N for each N"
    );
}
