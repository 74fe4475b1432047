//! Record against a real PostgreSQL through the recording proxy, stop the
//! cluster, replay through the mock server: clients must get exactly what
//! they got while recording.
//!
//! Each scenario is one async function run twice — once against the
//! recorder, once against the mock server — producing a transcript of
//! everything the client observed (rows, command tags, error codes and
//! messages, COPY output). The transcripts must be equal and non-trivial.

use std::future::Future;
use std::net::SocketAddr;

use chrono::Utc;
use futures_util::future::join_all;
use recplay_proxy::pg::matcher::{FallbackReason, MatchStrategy, TestUsage};
use recplay_proxy::window::TestWindows;
use tokio_postgres::SimpleQueryMessage;

use crate::support::pg::{pg_bin, PgCluster};
use crate::support::pg_replay::{connect, record, Replay};

const SEED: &str =
    "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price float8, data bytea);
INSERT INTO items VALUES
  (1, 'alpha', 1.25, '\\x00ff'), (2, 'beta', 2.5, NULL), (3, 'gamma', 3.75, '\\x0102'),
  (4, 'delta', 4.0, NULL), (5, 'epsilon', 5.5, '\\xdeadbeef');";

/// The test window both phases run in, as the replayer would open it.
const TEST: &str = "test-1";

/// Seeds a fresh cluster, records `scenario` through the proxy, stops the
/// cluster, replays `replay_scenario` through the mock server, and returns
/// both transcripts and what the test used.
async fn record_then_replay<R, RF, P, PF>(
    record_scenario: R,
    replay_scenario: P,
) -> (Vec<String>, Vec<String>, TestUsage)
where
    R: FnOnce(SocketAddr) -> RF,
    RF: Future<Output = Vec<String>>,
    P: FnOnce(SocketAddr) -> PF,
    PF: Future<Output = Vec<String>>,
{
    let pg = PgCluster::start();
    pg.psql(SEED);
    let windows = TestWindows::new();
    let mut recorded = Vec::new();
    windows.open(TEST, Utc::now());
    let recorded_ref = &mut recorded;
    let mocks = record(&pg, windows.clone(), |addr| async move {
        *recorded_ref = record_scenario(addr).await;
    })
    .await;
    windows.close(TEST, Utc::now());
    pg.stop();

    let windows = TestWindows::new();
    let replay = Replay::start(mocks, windows.clone(), MatchStrategy::Exact).await;
    windows.open(TEST, Utc::now());
    let replayed = replay_scenario(replay.addr).await;
    windows.close(TEST, Utc::now());
    assert!(
        recorded.len() > 1,
        "the scenario observed something: {recorded:?}"
    );
    (recorded, replayed, replay.handle.usage_for(TEST))
}

fn assert_clean(usage: &TestUsage) {
    assert!(usage.misses.is_empty(), "no misses: {:?}", usage.misses);
    assert!(
        usage.fallbacks.is_empty(),
        "no fallbacks: {:?}",
        usage.fallbacks
    );
    assert!(!usage.mocks.is_empty(), "the test used recorded mocks");
}

fn error_line(e: &tokio_postgres::Error) -> String {
    match e.as_db_error() {
        Some(db) => format!("error {} {}", db.code().code(), db.message()),
        None => format!("client error {e}"),
    }
}

fn simple_lines(messages: &[SimpleQueryMessage]) -> Vec<String> {
    messages
        .iter()
        .map(|m| match m {
            SimpleQueryMessage::Row(row) => {
                let cols: Vec<String> = (0..row.len())
                    .map(|i| row.get(i).unwrap_or("NULL").to_string())
                    .collect();
                format!("row {}", cols.join("|"))
            }
            SimpleQueryMessage::CommandComplete(n) => format!("complete {n}"),
            SimpleQueryMessage::RowDescription(cols) => {
                let names: Vec<&str> = cols.iter().map(|c| c.name()).collect();
                format!("columns {}", names.join(","))
            }
            _ => "other".to_string(),
        })
        .collect()
}

async fn extended(addr: SocketAddr) -> Vec<String> {
    let client = connect(addr).await;
    let mut out = Vec::new();
    let stmt = client
        .prepare("SELECT id, name, price, data FROM items WHERE id = $1 OR name = $2 ORDER BY id")
        .await
        .expect("prepare");
    // Binary parameters, the same statement reused, and a repeated
    // identical call that must get the next recorded answer.
    for (id, name) in [(1i32, "gamma"), (4, "nobody"), (1, "gamma"), (2, "epsilon")] {
        for row in client.query(&stmt, &[&id, &name]).await.expect("query") {
            let id: i32 = row.get(0);
            let name: String = row.get(1);
            let price: Option<f64> = row.get(2);
            let data: Option<Vec<u8>> = row.get(3);
            out.push(format!("{id} {name} {price:?} {data:?}"));
        }
        out.push("--".into());
    }
    let inserted = client
        .execute(
            "INSERT INTO items VALUES ($1, $2, $3, $4)",
            &[&6i32, &"zeta", &6.125f64, &vec![0u8, 1, 255]],
        )
        .await
        .expect("insert");
    out.push(format!("inserted {inserted}"));
    let row = client
        .query_one("SELECT data, price * 2 FROM items WHERE id = $1", &[&6i32])
        .await
        .expect("select back");
    let data: Vec<u8> = row.get(0);
    let doubled: f64 = row.get(1);
    out.push(format!("{data:?} {doubled}"));
    let big: i64 = client
        .query_one("SELECT $1::int8 + 1", &[&41i64])
        .await
        .expect("int8")
        .get(0);
    out.push(format!("int8 {big}"));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn extended_protocol_with_binary_params_and_statement_reuse() {
    let (recorded, replayed, usage) = record_then_replay(extended, extended).await;
    assert!(recorded.iter().any(|l| l.contains("gamma")));
    assert_eq!(replayed, recorded);
    assert_clean(&usage);
}

async fn simple(addr: SocketAddr) -> Vec<String> {
    let client = connect(addr).await;
    let mut out = Vec::new();
    let messages = client
        .simple_query(
            "SELECT id, name, price FROM items WHERE id IN (2, 3) ORDER BY id; SELECT count(*) FROM items",
        )
        .await
        .expect("simple query");
    out.extend(simple_lines(&messages));
    let messages = client
        .simple_query("UPDATE items SET price = price + 1 WHERE name = 'delta'")
        .await
        .expect("update");
    out.extend(simple_lines(&messages));
    let messages = client
        .simple_query("SELECT price FROM items WHERE name = 'delta'")
        .await
        .expect("select");
    out.extend(simple_lines(&messages));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_query_multi_statement() {
    let (recorded, replayed, usage) = record_then_replay(simple, simple).await;
    assert!(
        recorded.ends_with(&["columns price".into(), "row 5".into(), "complete 1".into()]),
        "the update was seen: {recorded:?}"
    );
    assert_eq!(replayed, recorded);
    assert_clean(&usage);
}

/// psql over TCP (it sends an SSLRequest first), with a COPY FROM STDIN
/// over the simple protocol fed from its standard input.
async fn psql(addr: SocketAddr) -> Vec<String> {
    tokio::task::spawn_blocking(move || {
        use std::io::Write;
        use std::process::{Command, Stdio};
        let mut child = Command::new(pg_bin("psql"))
            .args(["-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(addr.ip().to_string())
            .args([
                "-p",
                &addr.port().to_string(),
                "-U",
                "postgres",
                "-d",
                "postgres",
            ])
            .args(["-c", "SELECT name, price FROM items ORDER BY id"])
            .args(["-c", "COPY items (id, name) FROM STDIN"])
            .args(["-c", "SELECT id, name FROM items WHERE id > 5 ORDER BY id"])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("psql runs");
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(b"7\tfrom-psql\n8\tmore\n\\.\n")
            .expect("COPY rows");
        let out = child.wait_with_output().expect("psql finishes");
        assert!(
            out.status.success(),
            "psql failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout)
            .lines()
            .map(str::to_string)
            .collect()
    })
    .await
    .expect("psql task")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_with_simple_protocol_copy() {
    let (recorded, replayed, usage) = record_then_replay(psql, psql).await;
    assert!(recorded.contains(&"8|more".to_string()), "{recorded:?}");
    assert_eq!(replayed, recorded);
    assert_clean(&usage);
}

async fn transaction(addr: SocketAddr) -> Vec<String> {
    let client = connect(addr).await;
    let mut out = Vec::new();
    client.batch_execute("BEGIN").await.expect("begin");
    let n = client
        .execute(
            "INSERT INTO items (id, name) VALUES ($1, $2)",
            &[&20i32, &"tx"],
        )
        .await
        .expect("insert in tx");
    out.push(format!("inserted {n}"));
    let e = client
        .query("SELECT 1 / (id - id) FROM items WHERE id = $1", &[&20i32])
        .await
        .expect_err("division by zero");
    out.push(error_line(&e));
    let e = client
        .simple_query("SELECT 1")
        .await
        .expect_err("transaction aborted");
    out.push(error_line(&e));
    client.batch_execute("ROLLBACK").await.expect("rollback");
    let count: i64 = client
        .query_one("SELECT count(*) FROM items WHERE id = $1", &[&20i32])
        .await
        .expect("count")
        .get(0);
    out.push(format!("after rollback {count}"));
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transaction_with_an_error() {
    let (recorded, replayed, usage) = record_then_replay(transaction, transaction).await;
    assert!(
        recorded.iter().any(|l| l.starts_with("error 22012")),
        "{recorded:?}"
    );
    assert!(
        recorded.iter().any(|l| l.starts_with("error 25P02")),
        "{recorded:?}"
    );
    assert_eq!(replayed, recorded);
    assert!(usage.misses.is_empty(), "{:?}", usage.misses);
}

async fn copy(addr: SocketAddr) -> Vec<String> {
    use futures_util::{SinkExt, StreamExt};
    let client = connect(addr).await;
    let mut out = Vec::new();
    let sink = client
        .copy_in("COPY items (id, name, price) FROM STDIN")
        .await
        .expect("copy in");
    futures_util::pin_mut!(sink);
    sink.send(bytes::Bytes::from_static(
        b"30\tcopied\t2.5\n31\tmore\t\\N\n",
    ))
    .await
    .expect("rows");
    let n = sink.finish().await.expect("copy finishes");
    out.push(format!("copied {n}"));
    let stream = client
        .copy_out("COPY (SELECT id, name, price FROM items WHERE id >= 30 ORDER BY id) TO STDOUT")
        .await
        .expect("copy out");
    futures_util::pin_mut!(stream);
    let mut text = Vec::new();
    while let Some(chunk) = stream.next().await {
        text.extend_from_slice(&chunk.expect("chunk"));
    }
    out.push(String::from_utf8_lossy(&text).into_owned());
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_in_and_out() {
    let (recorded, replayed, usage) = record_then_replay(copy, copy).await;
    assert_eq!(recorded[0], "copied 2");
    assert!(recorded[1].contains("31\tmore\t\\N"), "{recorded:?}");
    assert_eq!(replayed, recorded);
    assert_clean(&usage);
}

async fn pipelined(addr: SocketAddr) -> Vec<String> {
    let client = connect(addr).await;
    let stmt = client
        .prepare("SELECT name FROM items WHERE id = $1")
        .await
        .expect("prepare");
    // Issued together: tokio-postgres writes them back to back, so the
    // server sees one pipelined batch of Bind/Execute/Sync groups.
    let ids = [5i32, 1, 3, 2, 4];
    let params: Vec<[&(dyn tokio_postgres::types::ToSql + Sync); 1]> =
        ids.iter().map(|id| [id as _]).collect();
    let results = join_all(params.iter().map(|p| client.query(&stmt, p))).await;
    ids.iter()
        .zip(results)
        .map(|(id, r)| {
            let rows = r.expect("pipelined query");
            let name: String = rows[0].get(0);
            format!("{id} {name}")
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pipelined_batch() {
    let (recorded, replayed, usage) = record_then_replay(pipelined, pipelined).await;
    assert_eq!(recorded[0], "5 epsilon");
    assert_eq!(replayed, recorded);
    assert_clean(&usage);
}

/// Recording: one connection prepares the lookup once and runs it for
/// every id in turn.
async fn one_connection(addr: SocketAddr) -> Vec<String> {
    let client = connect(addr).await;
    let stmt = client
        .prepare("SELECT id, name FROM items WHERE id = $1")
        .await
        .expect("prepare");
    let mut out = Vec::new();
    for id in 1..=4i32 {
        let row = client.query_one(&stmt, &[&id]).await.expect("lookup");
        let name: String = row.get(1);
        out.push(format!("{id} {name}"));
    }
    out
}

/// Replay: a pool of four connections runs them concurrently.
async fn four_connections(addr: SocketAddr) -> Vec<String> {
    let lookups = (1..=4i32).map(|id| async move {
        let client = connect(addr).await;
        let row = client
            .query_one("SELECT id, name FROM items WHERE id = $1", &[&id])
            .await
            .expect("lookup");
        let name: String = row.get(1);
        format!("{id} {name}")
    });
    join_all(lookups).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pool_opens_more_connections_at_replay() {
    let (recorded, replayed, usage) = record_then_replay(one_connection, four_connections).await;
    assert_eq!(recorded.len(), 4);
    assert_eq!(replayed, recorded);
    // Four connections prepared what one prepared once: not a fallback.
    assert_clean(&usage);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_miss_answers_the_recplay_sqlstate_naming_candidates() {
    let (recorded, replayed, usage) = record_then_replay(one_connection, |addr| async move {
        let client = connect(addr).await;
        let e = client
            .simple_query("SELECT id, name FROM items WHERE name = 'never recorded'")
            .await
            .expect_err("a miss is an error");
        let db = e.as_db_error().expect("a server error");
        vec![
            db.code().code().to_string(),
            db.message().to_string(),
            db.detail().unwrap_or_default().to_string(),
        ]
    })
    .await;
    assert_ne!(replayed, recorded);
    assert_eq!(replayed[0], "RP001");
    assert!(replayed[1].contains("never recorded"), "{replayed:?}");
    assert!(
        replayed[2].contains("SELECT id , name FROM items WHERE id = $1"),
        "the nearest recorded statement is named: {replayed:?}"
    );
    assert_eq!(usage.misses.len(), 1);
}

async fn lookup_by_name(addr: SocketAddr, name: &str) -> Vec<String> {
    let client = connect(addr).await;
    let messages = client
        .simple_query(&format!(
            "SELECT id, name FROM items WHERE name = '{name}'; SELECT count(*) FROM items"
        ))
        .await
        .expect("lookup");
    simple_lines(&messages)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_same_shape_answer_is_reported_with_the_differing_literal() {
    let (recorded, replayed, usage) = record_then_replay(
        |addr| async move { lookup_by_name(addr, "alpha").await },
        |addr| async move { lookup_by_name(addr, "omega").await },
    )
    .await;
    // The only recording of that shape answers, and the report says so.
    assert_eq!(replayed, recorded);
    assert!(usage.misses.is_empty(), "{:?}", usage.misses);
    let [fallback] = usage.fallbacks.as_slice() else {
        panic!("one fallback expected: {usage:?}")
    };
    assert_eq!(fallback.reason, FallbackReason::SameShape);
    assert_eq!(
        fallback
            .differing
            .iter()
            .map(|d| (d.recorded.as_str(), d.actual.as_str()))
            .collect::<Vec<_>>(),
        vec![("'alpha'", "'omega'")]
    );
}
