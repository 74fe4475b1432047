//! Keploy's PostgresV3 mocks, converted and served by the mock server to
//! real clients: tokio-postgres over the extended protocol, `simple_query`
//! and psql over the simple protocol. Clients must get exactly the
//! recorded rows; a bound value must pick its own recording; a statement
//! nobody recorded must miss with recplay's SQLSTATE.

use std::time::{Duration, SystemTime};

use recplay_proxy::pg::matcher::{MatchStrategy, MISS_SQLSTATE};
use recplay_proxy::testset::keploy::postgres_v3::convert;
use recplay_proxy::testset::pg_mock::PgMock;
use recplay_proxy::window::TestWindows;
use serde::Deserialize;
use tokio_postgres::types::Type;
use tokio_postgres::SimpleQueryMessage;

mod batch;
mod real_server;

pub use crate::support::pg_replay::simple_rows;

use crate::support::pg::pg_bin;
use crate::support::pg_replay::{connect, Replay};

const FIXTURE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/tests/fixtures/keploy-v3/test-set-0/mocks.yaml"
);

const BY_ID: &str = "SELECT id, name FROM items WHERE id = $1";
const ALL_TYPES: &str =
    "SELECT id, name, price, active, created_at, data, note, amount FROM items WHERE id <= $1::bigint ORDER BY id";
const SIMPLE: &str =
    "SELECT id, name, price, amount, active, created_at, data, note FROM items ORDER BY id";

/// Every document of the fixture through `convert`, as the mocks.yaml
/// reader hands them over; the documents refused must be exactly the
/// sub-types that record no exchange.
fn fixture_mocks() -> Vec<PgMock> {
    let text = std::fs::read_to_string(FIXTURE).expect("fixture");
    let mut mocks = Vec::new();
    let mut refused = Vec::new();
    for doc in serde_yaml::Deserializer::from_str(&text) {
        let doc = serde_yaml::Value::deserialize(doc).expect("fixture parses");
        let kind = doc["kind"].as_str().expect("kind");
        match convert(kind, &doc) {
            Ok(converted) => mocks.extend(converted),
            Err(e) => refused.push((doc["name"].as_str().unwrap_or("").to_string(), e)),
        }
    }
    let names: Vec<&str> = refused.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        ["mock-8", "mock-9", "mock-10", "mock-11"],
        "{refused:?}"
    );
    mocks
}

async fn serve() -> Replay {
    serve_with(MatchStrategy::Exact).await
}

async fn serve_with(strategy: MatchStrategy) -> Replay {
    Replay::start(fixture_mocks(), TestWindows::new(), strategy).await
}

/// Asks for ids 13 then 15 (the other order than recorded, so the value
/// and not the order must pick the answer); returns the rows received.
async fn by_id_answers(replay: &Replay) -> Vec<(i32, String)> {
    let client = connect(replay.addr).await;
    let mut got = Vec::new();
    for id in [13i32, 15] {
        let rows = client.query(BY_ID, &[&id]).await.expect("served");
        got.extend(rows.iter().map(|r| (r.get(0), r.get(1))));
    }
    got
}

#[tokio::test]
async fn each_bound_value_gets_its_own_recorded_answer() {
    let replay = serve().await;
    assert_eq!(
        by_id_answers(&replay).await,
        [(13, "thirteen".to_string()), (15, "fifteen".to_string())]
    );
    let usage = replay.handle.usage_outside_tests();
    assert!(usage.misses.is_empty(), "{:?}", usage.misses);
    assert!(
        usage.fallbacks.is_empty(),
        "exact matches only: {:?}",
        usage.fallbacks
    );
}

#[tokio::test]
async fn a_one_round_trip_batch_is_served_too() {
    let replay = serve().await;
    let client = connect(replay.addr).await;
    for (id, name) in [(15i32, "fifteen"), (13, "thirteen")] {
        let rows = client
            .query_typed(BY_ID, &[(&id, Type::INT4)])
            .await
            .expect("served");
        let got: Vec<(i32, String)> = rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        assert_eq!(got, [(id, name.to_string())]);
    }
    let usage = replay.handle.usage_outside_tests();
    assert!(usage.fallbacks.is_empty(), "{:?}", usage.fallbacks);
}

/// The check above fails when bound values are normalised away (Keploy's
/// "bind-collapse"): then the first recording answers every value.
#[tokio::test]
async fn the_bound_value_check_catches_bind_collapse() {
    let replay = serve_with(MatchStrategy::CollapseLiterals).await;
    assert_eq!(
        by_id_answers(&replay).await,
        [(15, "fifteen".to_string()), (15, "fifteen".to_string())]
    );
}

#[tokio::test]
async fn a_changed_statement_misses_with_recplays_sqlstate() {
    let replay = serve().await;
    let client = connect(replay.addr).await;
    let err = client
        .query("SELECT id, name FROM items WHERE id > $1", &[&13i32])
        .await
        .expect_err("nothing recorded");
    let db = err.as_db_error().expect("an ErrorResponse");
    assert_eq!(db.code().code(), MISS_SQLSTATE);
    assert!(
        db.message().contains("no recorded answer"),
        "{}",
        db.message()
    );
}

#[tokio::test]
async fn binary_results_of_every_recorded_type_arrive_as_recorded() {
    let replay = serve().await;
    let client = connect(replay.addr).await;
    let rows = client.query(ALL_TYPES, &[&2i64]).await.expect("served");
    type Row = (
        i32,
        String,
        f64,
        bool,
        SystemTime,
        Option<Vec<u8>>,
        Option<String>,
    );
    let got: Vec<Row> = rows
        .iter()
        .map(|r| {
            (
                r.get(0),
                r.get(1),
                r.get(2),
                r.get(3),
                r.get(4),
                r.get(5),
                r.get(6),
            )
        })
        .collect();
    let at = |secs: u64, millis: u64| {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_millis(millis)
    };
    assert_eq!(
        got,
        [
            (
                1,
                "alpha".to_string(),
                1.25,
                true,
                at(1_776_852_672, 500),
                Some(vec![0x00, 0xff]),
                None
            ),
            (
                2,
                "beta".to_string(),
                2.5,
                false,
                at(1_776_902_400, 0),
                None,
                Some("it's \"quoted\"".to_string())
            ),
        ]
    );
}

#[tokio::test]
async fn a_recorded_error_is_answered_with_its_sqlstate() {
    let replay = serve().await;
    let client = connect(replay.addr).await;
    let err = client
        .execute(
            "INSERT INTO items (id, name) VALUES ($1, $2)",
            &[&1i32, &"duplicate"],
        )
        .await
        .expect_err("recorded as failing");
    let db = err.as_db_error().expect("an ErrorResponse");
    assert_eq!(db.code().code(), "23505");
    assert_eq!(db.detail(), Some("Key (id)=(1) already exists."));
    // The connection stays usable, as after a real error.
    let rows = client.query(BY_ID, &[&15i32]).await.expect("served");
    assert_eq!(rows.len(), 1);
}

#[tokio::test]
async fn simple_queries_get_the_recorded_rows_in_text() {
    let replay = serve().await;
    let client = connect(replay.addr).await;
    // A session statement may be replayed any number of times.
    for _ in 0..2 {
        client
            .simple_query("SET search_path TO public")
            .await
            .expect("session mock");
    }
    let messages = client.simple_query(SIMPLE).await.expect("served");
    let s = |v: &str| Some(v.to_string());
    assert_eq!(
        simple_rows(&messages),
        [
            vec![
                s("1"),
                s("alpha"),
                s("1.25"),
                s("10.50"),
                s("t"),
                s("2026-04-22 10:11:12.5+00"),
                s("\\x00ff"),
                None
            ],
            vec![
                s("2"),
                s("beta"),
                s("2.5"),
                s("-7"),
                s("f"),
                s("2026-04-23 00:00:00+00"),
                None,
                s("it's \"quoted\"")
            ],
            vec![
                s("3"),
                s(""),
                s("0.1"),
                s("0.001"),
                s("t"),
                s("2026-04-24 23:59:59.000001+00"),
                s("\\xdeadbeef"),
                s("")
            ],
        ]
    );
    assert!(matches!(
        messages.last(),
        Some(SimpleQueryMessage::CommandComplete(3))
    ));
    let err = client
        .simple_query("SELECT * FROM missing_table")
        .await
        .expect_err("recorded as failing");
    assert_eq!(
        err.as_db_error().map(|e| e.code().code()),
        Some("42P01"),
        "{err}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_gets_the_recorded_rows() {
    let replay = serve().await;
    let port = replay.addr.port().to_string();
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(pg_bin("psql"))
            .args(["-X", "-A", "-t", "-F", "|", "-h", "127.0.0.1", "-p"])
            .args([
                port.as_str(),
                "-U",
                "postgres",
                "-d",
                "postgres",
                "-c",
                SIMPLE,
            ])
            .output()
    })
    .await
    .expect("joins")
    .expect("psql runs");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        String::from_utf8_lossy(&output.stdout),
        "1|alpha|1.25|10.50|t|2026-04-22 10:11:12.5+00|\\x00ff|\n\
         2|beta|2.5|-7|f|2026-04-23 00:00:00+00||it's \"quoted\"\n\
         3||0.1|0.001|t|2026-04-24 23:59:59.000001+00|\\xdeadbeef|\n"
    );
}
