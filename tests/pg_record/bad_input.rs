//! Malformed client bytes and absurd length prefixes close only the
//! offending connection, with an ErrorResponse; an unreachable server is
//! reported to the client.

use recplay_proxy::pg::record::PgRecorderConfig;

use super::{connect, RawClient, Recording};
use crate::support::pg::{free_port, PgCluster};

/// Reads what the proxy answered and checks it is an 08P01 ErrorResponse
/// followed by the end of the connection.
async fn expect_protocol_error(raw: &mut RawClient) -> String {
    let (tag, body) = raw.read_message().await.expect("an answer");
    assert_eq!(tag, b'E');
    let text = String::from_utf8_lossy(&body).into_owned();
    assert!(text.contains("C08P01"), "{text}");
    assert!(raw.read_message().await.is_none(), "connection closed");
    text
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_bytes_close_only_their_connection() {
    let pg = PgCluster::start();
    let rec = Recording::start(&pg.addr()).await;
    let addr = rec.addr.to_string();
    let bystander = connect(&rec.conn_str("postgres")).await;

    // A 2 GiB Query header after a good start-up.
    let mut huge = RawClient::start(&addr).await;
    huge.send(&[b'Q', 0x7f, 0xff, 0xff, 0xff]).await;
    let text = expect_protocol_error(&mut huge).await;
    assert!(text.contains("limit"), "{text}");

    // A negative length.
    let mut negative = RawClient::start(&addr).await;
    negative.send(&[b'Q', 0xff, 0xff, 0xff, 0x00]).await;
    expect_protocol_error(&mut negative).await;

    // An unknown tag.
    let mut unknown = RawClient::start(&addr).await;
    unknown.send(&[b'!', 0, 0, 0, 4]).await;
    let text = expect_protocol_error(&mut unknown).await;
    assert!(text.contains("unknown frontend message"), "{text}");

    // A start-up packet claiming 1 GiB.
    let mut startup = RawClient {
        stream: tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect"),
    };
    startup.send(&0x4000_0000i32.to_be_bytes()).await;
    expect_protocol_error(&mut startup).await;

    // A Bind whose value length runs past the message.
    let mut lying = RawClient::start(&addr).await;
    lying
        .send(&[
            b'B', 0, 0, 0, 16, 0, 0, 0, 0, 0, 1, 0x7f, 0xff, 0xff, 0xff, 0, 0,
        ])
        .await;
    expect_protocol_error(&mut lying).await;

    // The other connection carries on, and new ones are served.
    let n: i32 = bystander
        .query_one("SELECT 7", &[])
        .await
        .expect("query")
        .get(0);
    assert_eq!(n, 7);
    let late = connect(&rec.conn_str("postgres")).await;
    assert_eq!(late.simple_query("SELECT 1").await.expect("query").len(), 3);
    drop((bystander, late));
    let recorded = rec.finish().await;
    assert!(recorded.running("SELECT 7").len() == 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_server_is_reported_to_the_client() {
    let nowhere = format!("127.0.0.1:{}", free_port());
    let rec = Recording::start_with(PgRecorderConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        allow_remote: false,
        max_connections: recplay_proxy::pg::record::DEFAULT_MAX_CONNECTIONS,
        upstream: nowhere.clone(),
        client_tls: None,
        upstream_tls: None,
    })
    .await;
    let err = tokio_postgres::connect(&rec.conn_str("postgres"), tokio_postgres::NoTls)
        .await
        .err()
        .expect("connect fails");
    let db = err.as_db_error().expect("an ErrorResponse from the proxy");
    assert_eq!(db.code().code(), "08001");
    assert!(
        db.message()
            .contains("could not reach the PostgreSQL server"),
        "{}",
        db.message()
    );
    assert!(db.message().contains(&nowhere), "{}", db.message());
    let recorded = rec.finish().await;
    assert!(recorded.mocks.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_in_flight_reach_the_client_before_the_protocol_error() {
    let pg = PgCluster::start();
    let rec = Recording::start(&pg.addr()).await;
    let mut raw = RawClient::start(&rec.addr.to_string()).await;
    let mut query = bytes::BytesMut::new();
    postgres_protocol::message::frontend::query("SELECT pg_sleep(0.3), 42", &mut query)
        .expect("query");
    raw.send(&query).await;
    // The query is on its way to the server (still sleeping) when the
    // garbage arrives.
    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    raw.send(&[b'!', 0, 0, 0, 4]).await;
    let answer = raw.read_until_ready().await;
    let tags: Vec<u8> = answer.iter().map(|(tag, _)| *tag).collect();
    assert_eq!(tags, b"TDCZ", "the query's whole answer, then the error");
    assert!(String::from_utf8_lossy(&answer[1].1).contains("42"));
    let text = expect_protocol_error(&mut raw).await;
    assert!(text.contains("unknown frontend message"), "{text}");
    rec.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_the_server_ends_is_ended_for_the_client() {
    let pg = PgCluster::start();
    let rec = Recording::start(&pg.addr()).await;
    let victim = connect(&rec.conn_str("postgres")).await;
    let killer = connect(&rec.conn_str("postgres")).await;
    let pid: i32 = victim
        .query_one("SELECT pg_backend_pid()", &[])
        .await
        .expect("pid")
        .get(0);
    let ended: bool = killer
        .query_one("SELECT pg_terminate_backend($1)", &[&pid])
        .await
        .expect("terminate")
        .get(0);
    assert!(ended);
    // The server says why and closes; the proxy closes the client's side.
    let err = victim
        .simple_query("SELECT 1")
        .await
        .expect_err("the connection is gone");
    let closed = tokio::time::timeout(std::time::Duration::from_secs(5), async {
        while !victim.is_closed() {
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(closed.is_ok(), "client still open after: {err}");
    // The other connection carries on.
    assert_eq!(
        killer.simple_query("SELECT 1").await.expect("query").len(),
        3
    );
    drop((victim, killer));
    rec.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_connection_past_the_limit_gets_fatal_53300() {
    let pg = PgCluster::start();
    let rec = Recording::start_with(PgRecorderConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        allow_remote: false,
        max_connections: 2,
        upstream: pg.addr(),
        client_tls: None,
        upstream_tls: None,
    })
    .await;
    let first = connect(&rec.conn_str("postgres")).await;
    let second = connect(&rec.conn_str("postgres")).await;
    let err = tokio_postgres::connect(&rec.conn_str("postgres"), tokio_postgres::NoTls)
        .await
        .err()
        .expect("the third connection is refused");
    let db = err.as_db_error().expect("an ErrorResponse from the proxy");
    assert_eq!(db.code().code(), "53300");
    assert!(
        db.message().contains("--pg-max-connections"),
        "{}",
        db.message()
    );
    // The connections within the limit carry on and are recorded.
    let n: i32 = first
        .query_one("SELECT 11", &[])
        .await
        .expect("query")
        .get(0);
    assert_eq!(n, 11);
    let n: i32 = second
        .query_one("SELECT 12", &[])
        .await
        .expect("query")
        .get(0);
    assert_eq!(n, 12);
    drop((first, second));
    let recorded = rec.finish().await;
    assert_eq!(recorded.running("SELECT 11").len(), 1);
    assert_eq!(recorded.running("SELECT 12").len(), 1);
}
