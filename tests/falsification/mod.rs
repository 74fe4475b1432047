//! Falsification of the bind-collapse regression.
//!
//! psycopg2 (and so Django) sends every statement as a simple Query with the
//! literals inlined. Lookups of `django_content_type` that differ only in a
//! literal — an app_label/model pair, or an id (13 vs 15) — are different
//! requests with different answers. A matcher that normalises literals away
//! serves the first recording to every variant, and
//! django-rest-polymorphic then resolves the wrong subclass.
//!
//! The check below replays recorded lookups in another order, interleaved
//! over two connections, and demands that each gets its own row. It is then
//! run against the deliberately collapsing matcher and must fail there:
//! a check that cannot fail under collapse proves nothing.

use std::collections::BTreeMap;
use std::net::SocketAddr;

use chrono::Utc;
use recplay_proxy::pg::matcher::MatchStrategy;
use recplay_proxy::testset::pg_mock::PgMock;
use recplay_proxy::window::TestWindows;
use tokio_postgres::SimpleQueryMessage;

use crate::support::pg::PgCluster;
use crate::support::pg_replay::{connect, record, Replay};

const SEED: &str = r#"CREATE TABLE "django_content_type" (
  "id" integer PRIMARY KEY,
  "app_label" varchar(100) NOT NULL,
  "model" varchar(100) NOT NULL,
  UNIQUE ("app_label", "model"));
INSERT INTO "django_content_type" VALUES
  (1, 'admin', 'logentry'), (7, 'auth', 'user'),
  (13, 'projects', 'project'),
  (14, 'projects', 'textclassificationproject'),
  (15, 'projects', 'sequencelabelingproject'),
  (16, 'projects', 'seq2seqproject');"#;

const COLUMNS: &str = r#"SELECT "django_content_type"."id", "django_content_type"."app_label", "django_content_type"."model" FROM "django_content_type""#;

/// The lookups, as Django writes them (literals inlined).
fn lookups() -> Vec<String> {
    let by_pair = |app: &str, model: &str| {
        format!(
            r#"{COLUMNS} WHERE ("django_content_type"."app_label" = '{app}' AND "django_content_type"."model" = '{model}') LIMIT 21"#
        )
    };
    let by_id = |id: u32| format!(r#"{COLUMNS} WHERE "django_content_type"."id" = {id} LIMIT 21"#);
    vec![
        by_pair("projects", "project"),
        by_pair("projects", "textclassificationproject"),
        by_pair("projects", "sequencelabelingproject"),
        by_pair("auth", "user"),
        by_id(13),
        by_id(15),
        by_id(14),
        by_id(16),
    ]
}

async fn row_of(client: &tokio_postgres::Client, query: &str) -> String {
    let messages = client.simple_query(query).await.expect("lookup");
    let rows: Vec<String> = messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => Some(
                (0..r.len())
                    .map(|i| r.get(i).unwrap_or("NULL"))
                    .collect::<Vec<_>>()
                    .join("|"),
            ),
            _ => None,
        })
        .collect();
    rows.join("; ")
}

/// Records every lookup, each in its own test window, on one connection.
async fn record_lookups() -> (Vec<PgMock>, BTreeMap<String, String>) {
    let pg = PgCluster::start();
    pg.psql(SEED);
    let windows = TestWindows::new();
    let mut expected = BTreeMap::new();
    let (expected_ref, windows_ref) = (&mut expected, &windows);
    let mocks = record(&pg, windows.clone(), |addr| async move {
        let client = connect(addr).await;
        for (n, query) in lookups().iter().enumerate() {
            let test = format!("test-{}", n + 1);
            windows_ref.open(&test, Utc::now());
            expected_ref.insert(query.clone(), row_of(&client, query).await);
            windows_ref.close(&test, Utc::now());
        }
    })
    .await;
    pg.stop();
    // Lookups of one shape (by pair, by id) must each have their own row,
    // or the check could not tell a collapsed answer from a right one.
    let all = lookups();
    for group in all.chunks(4) {
        let rows: std::collections::BTreeSet<&String> =
            group.iter().filter_map(|q| expected.get(q)).collect();
        assert_eq!(rows.len(), group.len(), "distinct rows: {expected:#?}");
    }
    (mocks, expected)
}

/// Replays the lookups in reverse, interleaved over two connections, each
/// inside its own test's window as the replayer opens them, and returns
/// every lookup whose row is not the recorded one.
async fn wrong_rows(
    addr: SocketAddr,
    windows: &TestWindows,
    expected: &BTreeMap<String, String>,
) -> Vec<String> {
    let clients = [connect(addr).await, connect(addr).await];
    let mut wrong = Vec::new();
    let all = lookups();
    for (turn, n) in (0..all.len()).rev().enumerate() {
        let test = format!("test-{}", n + 1);
        windows.open(&test, Utc::now());
        let got = row_of(&clients[turn % 2], &all[n]).await;
        windows.close(&test, Utc::now());
        if Some(&got) != expected.get(&all[n]) {
            wrong.push(format!(
                "{}: got {got:?}, recorded {:?}",
                all[n],
                expected.get(&all[n])
            ));
        }
    }
    wrong
}

/// Like [`wrong_rows`] but with no test window at all and the lookups
/// interleaved in a scrambled order: only literals can tell them apart.
async fn wrong_rows_without_windows(
    addr: SocketAddr,
    expected: &BTreeMap<String, String>,
) -> Vec<String> {
    let clients = [connect(addr).await, connect(addr).await];
    let all = lookups();
    let order = [5, 2, 7, 0, 4, 1, 6, 3];
    let mut wrong = Vec::new();
    for (turn, &n) in order.iter().enumerate() {
        let got = row_of(&clients[turn % 2], &all[n]).await;
        if Some(&got) != expected.get(&all[n]) {
            wrong.push(format!("{}: got {got:?}", all[n]));
        }
    }
    wrong
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn falsification_literal_variants_keep_their_rows_and_collapse_is_caught() {
    let (mocks, expected) = record_lookups().await;

    // The product: every lookup gets its own row, exactly matched.
    let windows = TestWindows::new();
    let replay = Replay::start(mocks.clone(), windows.clone(), MatchStrategy::Exact).await;
    let wrong = wrong_rows(replay.addr, &windows, &expected).await;
    assert!(
        wrong.is_empty(),
        "exact matcher returned wrong rows: {wrong:#?}"
    );
    for n in 1..=expected.len() {
        let usage = replay.handle.usage_for(&format!("test-{n}"));
        assert_eq!(usage.mocks.len(), 1, "test-{n}: {usage:?}");
        assert!(
            usage.misses.is_empty() && usage.fallbacks.is_empty(),
            "test-{n}: {usage:?}"
        );
    }
    drop(replay);

    let replay = Replay::start(mocks.clone(), TestWindows::new(), MatchStrategy::Exact).await;
    let wrong = wrong_rows_without_windows(replay.addr, &expected).await;
    assert!(
        wrong.is_empty(),
        "exact matcher without windows: {wrong:#?}"
    );
    drop(replay);

    // The regression, on purpose: the same checks must now fail.
    let windows = TestWindows::new();
    let replay = Replay::start(
        mocks.clone(),
        windows.clone(),
        MatchStrategy::CollapseLiterals,
    )
    .await;
    let wrong = wrong_rows(replay.addr, &windows, &expected).await;
    assert!(
        wrong.len() >= 2,
        "the check must detect bind-collapse, yet it passed: {wrong:#?}"
    );
    assert!(
        wrong
            .iter()
            .any(|w| w.contains("'textclassificationproject'") && w.contains("projects|project\"")),
        "the textclassificationproject lookup got the first recording's row: {wrong:#?}"
    );
    assert!(
        wrong.iter().any(|w| w.contains("\"id\" = 15")),
        "id 15 got another id's row: {wrong:#?}"
    );
    drop(replay);

    let replay = Replay::start(mocks, TestWindows::new(), MatchStrategy::CollapseLiterals).await;
    let wrong = wrong_rows_without_windows(replay.addr, &expected).await;
    assert!(
        !wrong.is_empty(),
        "collapse must be caught without windows too"
    );
}
