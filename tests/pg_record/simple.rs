//! Simple protocol through the proxy: tokio-postgres `simple_query` and psql,
//! with literals inlined as psycopg2 sends them; session-level statements;
//! attribution to the HTTP test in flight; an error inside a transaction.

use std::process::Command;

use chrono::Utc;
use recplay_proxy::testset::pg_mock::{BackendMsg, FrontendMsg, Lifetime, PgValue};
use tokio_postgres::SimpleQueryMessage;

use super::{connect, data_rows, sqlstate, Recording};
use crate::support::pg::{pg_bin, PgCluster};

fn rows(messages: &[SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    messages
        .iter()
        .filter_map(|m| match m {
            SimpleQueryMessage::Row(r) => {
                Some((0..r.len()).map(|i| r.get(i).map(str::to_string)).collect())
            }
            _ => None,
        })
        .collect()
}

fn psql(port: u16, sql: &str) -> String {
    let out = Command::new(pg_bin("psql"))
        .args([
            "-X",
            "-A",
            "-t",
            "-v",
            "ON_ERROR_STOP=1",
            "-h",
            "127.0.0.1",
            "-p",
        ])
        .arg(port.to_string())
        .args(["-U", "postgres", "-d", "postgres", "-c", sql])
        .env("PGSSLMODE", "disable")
        .output()
        .expect("run psql");
    assert!(
        out.status.success(),
        "psql: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

const PROJECT_A: &str = "SELECT id, model FROM projects WHERE model = 'textclassificationproject'";
const PROJECT_B: &str = "SELECT id, model FROM projects WHERE model = 'sequencelabelingproject'";
const BY_ID_15: &str = "SELECT id, model FROM projects WHERE id = 15";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simple_queries_keep_their_literals_and_answers() {
    let pg = PgCluster::start();
    pg.psql(
        "CREATE TABLE projects (id int, model text); \
         INSERT INTO projects VALUES (13, 'textclassificationproject'), (15, 'sequencelabelingproject')",
    );
    let direct = connect(&pg.conn_str()).await;
    let mut expected = Vec::new();
    for q in [PROJECT_A, PROJECT_B, BY_ID_15] {
        expected.push(rows(&direct.simple_query(q).await.expect("direct")));
    }
    let psql_direct = psql(pg.port, PROJECT_B);

    let rec = Recording::start(&pg.addr()).await;
    let client = connect(&rec.conn_str("postgres")).await;
    client
        .simple_query("SET TIME ZONE 'UTC'")
        .await
        .expect("set");
    rec.windows.open("test-1", Utc::now());
    let mut got = Vec::new();
    for q in [PROJECT_A, PROJECT_B] {
        got.push(rows(&client.simple_query(q).await.expect("through")));
    }
    rec.windows.close("test-1", Utc::now());
    got.push(rows(&client.simple_query(BY_ID_15).await.expect("through")));
    assert_eq!(got, expected);
    assert_eq!(psql(rec.addr.port(), PROJECT_B), psql_direct);
    drop(client);
    let recorded = rec.finish().await;

    let set = recorded.one_running("SET TIME ZONE 'UTC'");
    assert_eq!(set.spec.lifetime, Lifetime::Session);
    assert!(set
        .spec
        .responses
        .contains(&BackendMsg::CommandComplete { tag: "SET".into() }));

    let a = recorded.one_running(PROJECT_A);
    assert_eq!(a.spec.lifetime, Lifetime::Test("test-1".into()));
    assert_eq!(
        a.spec.requests,
        vec![FrontendMsg::Query {
            query: PROJECT_A.into()
        }]
    );
    let BackendMsg::RowDescription { fields } = &a.spec.responses[0] else {
        panic!("RowDescription first: {a:#?}");
    };
    let names: Vec<&str> = fields.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(names, ["id", "model"]);
    assert_eq!(fields[0].type_oid, 23);
    assert_eq!(
        data_rows(a),
        [&BackendMsg::DataRow {
            values: vec![
                PgValue::Text("13".into()),
                PgValue::Text("textclassificationproject".into())
            ]
        }]
    );
    assert_eq!(
        &a.spec.responses[2..],
        [
            BackendMsg::CommandComplete {
                tag: "SELECT 1".into()
            },
            BackendMsg::ReadyForQuery { status: 'I' }
        ]
    );
    // Both literals recorded, each with its own answer: one from the client,
    // one from psql on its own connection.
    let b = recorded.running(PROJECT_B);
    assert_eq!(b.len(), 2);
    for m in &b {
        assert_eq!(
            data_rows(m),
            [&BackendMsg::DataRow {
                values: vec![
                    PgValue::Text("15".into()),
                    PgValue::Text("sequencelabelingproject".into())
                ]
            }]
        );
    }
    assert_ne!(b[0].spec.connection, b[1].spec.connection);
    assert_eq!(
        recorded.one_running(BY_ID_15).spec.lifetime,
        Lifetime::Unattributed
    );
    assert_eq!(recorded.summary.connections, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_error_inside_a_transaction_is_recorded_as_the_client_saw_it() {
    let pg = PgCluster::start();
    pg.psql("CREATE TABLE t (n int)");
    async fn run(client: &tokio_postgres::Client) -> Vec<String> {
        let mut seen = Vec::new();
        client.batch_execute("BEGIN").await.expect("begin");
        seen.push(
            client
                .execute("INSERT INTO t VALUES ($1)", &[&7i32])
                .await
                .expect("insert")
                .to_string(),
        );
        seen.push(sqlstate(
            &client
                .query("SELECT 1 / (n - 7) FROM t", &[])
                .await
                .expect_err("division by zero"),
        ));
        seen.push(sqlstate(
            &client
                .query("SELECT n FROM t", &[])
                .await
                .expect_err("aborted"),
        ));
        client.batch_execute("ROLLBACK").await.expect("rollback");
        seen.push(
            client
                .query_one("SELECT count(*) FROM t", &[])
                .await
                .expect("count")
                .get::<_, i64>(0)
                .to_string(),
        );
        seen
    }
    let expected = run(&connect(&pg.conn_str()).await).await;
    assert_eq!(expected, ["1", "22012", "25P02", "0"]);
    let rec = Recording::start(&pg.addr()).await;
    let got = run(&connect(&rec.conn_str("postgres")).await).await;
    assert_eq!(got, expected);
    let recorded = rec.finish().await;

    assert_eq!(
        recorded.one_running("BEGIN").spec.lifetime,
        Lifetime::Session
    );
    assert_eq!(
        recorded.one_running("ROLLBACK").spec.lifetime,
        Lifetime::Session
    );
    let failed = recorded
        .running("SELECT 1 / (n - 7) FROM t")
        .into_iter()
        .find(|m| {
            m.spec
                .responses
                .iter()
                .any(|r| matches!(r, BackendMsg::ErrorResponse { .. }))
        })
        .expect("the failing exchange");
    let Some(BackendMsg::ErrorResponse { fields }) = failed
        .spec
        .responses
        .iter()
        .find(|r| matches!(r, BackendMsg::ErrorResponse { .. }))
    else {
        unreachable!()
    };
    assert_eq!(fields.get(&'C').map(String::as_str), Some("22012"));
    assert_eq!(
        fields.get(&'M').map(String::as_str),
        Some("division by zero")
    );
    assert_eq!(
        failed.spec.responses.last(),
        Some(&BackendMsg::ReadyForQuery { status: 'E' })
    );
    let aborted = recorded
        .mocks
        .iter()
        .find(|m| {
            m.spec.responses.iter().any(|r| matches!(r, BackendMsg::ErrorResponse { fields } if fields.get(&'C').map(String::as_str) == Some("25P02")))
        })
        .expect("the aborted-transaction exchange");
    assert_eq!(
        aborted.spec.responses.last(),
        Some(&BackendMsg::ReadyForQuery { status: 'E' })
    );
}

/// Messages a raw client gets for `queries`, one simple Query each, on a
/// connection to `addr`.
async fn raw_answers(addr: &str, queries: &[&[u8]]) -> Vec<Vec<(u8, Vec<u8>)>> {
    let mut raw = super::RawClient::start(addr).await;
    let mut answers = Vec::new();
    for sql in queries {
        let mut frame = vec![b'Q'];
        frame.extend_from_slice(&(sql.len() as i32 + 5).to_be_bytes());
        frame.extend_from_slice(sql);
        frame.push(0);
        raw.send(&frame).await;
        answers.push(raw.read_until_ready().await);
    }
    answers
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_in_another_encoding_is_served_and_reported_unrecorded() {
    let pg = PgCluster::start();
    let rec = Recording::start(&pg.addr()).await;
    // 'café' in LATIN1: the é is the single byte 0xE9, not UTF-8.
    let queries: [&[u8]; 3] = [
        b"SET client_encoding TO 'LATIN1'",
        b"SELECT 'caf\xe9' AS word",
        b"SELECT 2",
    ];
    let direct = raw_answers(&pg.addr(), &queries).await;
    let through = raw_answers(&rec.addr.to_string(), &queries).await;
    // The proxy changes nothing: the same messages, byte for byte (the
    // SET's ParameterStatus included).
    assert_eq!(through, direct);
    let row = &through[1]
        .iter()
        .find(|(tag, _)| *tag == b'D')
        .expect("a row")
        .1;
    assert!(row.ends_with(b"caf\xe9"), "{row:?}");

    // Another client, in UTF-8, is recorded as usual alongside.
    let other = connect(&rec.conn_str("postgres")).await;
    other.simple_query("SELECT 'café'").await.expect("query");
    drop(other);

    let recorded = rec.finish().await;
    assert_eq!(recorded.summary.unrecorded_connections, 1);
    assert_eq!(
        recorded.running("SET client_encoding TO 'LATIN1'").len(),
        1,
        "what came before the text recplay cannot hold is recorded"
    );
    assert!(recorded.running("SELECT 2").is_empty());
    assert_eq!(recorded.running("SELECT 'café'").len(), 1);
}
