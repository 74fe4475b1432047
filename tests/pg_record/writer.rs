//! The writer thread follows each connection from what the connections hand
//! it: an answer far larger than one read is reassembled whole, and a
//! shutdown waits for the exchange still running before it closes the
//! connection.

use std::time::Duration;

use recplay_proxy::testset::pg_mock::{BackendMsg, PgValue};
use tokio_postgres::SimpleQueryMessage;

use super::{connect, data_rows, sqlstate, Recording};
use crate::support::pg::PgCluster;

const BIG: &str = "SELECT repeat('x', 300000) AS big, 7 AS small";
const SLOW: &str = "SELECT pg_sleep(0.6), 42 AS answer";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_spanning_many_reads_is_recorded_whole() {
    let pg = PgCluster::start();
    let rec = Recording::start(&pg.addr()).await;
    let client = connect(&rec.conn_str("postgres")).await;
    let answer = client.simple_query(BIG).await.expect("query");
    let big = answer.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => r.get("big").map(str::len),
        _ => None,
    });
    assert_eq!(big, Some(300_000));
    drop(client);
    let recorded = rec.finish().await;
    let rows = data_rows(recorded.one_running(BIG));
    assert_eq!(rows.len(), 1);
    let BackendMsg::DataRow { values } = rows[0] else {
        unreachable!()
    };
    assert_eq!(values[0], PgValue::Text("x".repeat(300_000)));
    assert_eq!(values[1], PgValue::Text("7".into()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_waits_for_the_exchange_in_flight() {
    let pg = PgCluster::start();
    let rec = Recording::start(&pg.addr()).await;
    let client = connect(&rec.conn_str("postgres")).await;
    let slow = tokio::spawn(async move {
        let answer = client.simple_query(SLOW).await;
        let after = client.simple_query("SELECT 1").await;
        (answer, after)
    });
    // Let the query reach the server, then stop recording while it runs.
    tokio::time::sleep(Duration::from_millis(200)).await;
    let recorded = rec.finish().await;
    let (answer, after) = slow.await.expect("client task");
    let answer = answer.expect("the running query completes");
    let value = answer.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(r) => r.get("answer").map(str::to_string),
        _ => None,
    });
    assert_eq!(value.as_deref(), Some("42"));
    // Then the proxy closes the connection, saying why: in answer to the
    // next query, or, when it sees the connection idle first, before the
    // query arrives (the client then finds the connection closed).
    let err = after.expect_err("the connection is closed after shutdown");
    assert!(err.is_closed() || sqlstate(&err) == "57P01", "{err:?}");
    let rows = data_rows(recorded.one_running(SLOW));
    assert_eq!(rows.len(), 1, "the exchange in flight was recorded");
    assert!(
        recorded.running("SELECT 1").is_empty(),
        "nothing started after the signal reached the server"
    );
}
