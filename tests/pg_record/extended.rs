//! Extended protocol through the proxy: binary parameters, statements
//! prepared once and bound in later exchanges, pipelined batches.

use bytes::{BufMut, BytesMut};
use postgres_protocol::message::frontend as pp;
use recplay_proxy::testset::pg_mock::{BackendMsg, Format, FrontendMsg, Lifetime, PgValue};

use super::{connect, data_rows, RawClient, Recording};
use crate::support::pg::PgCluster;

const BY_ID: &str = "SELECT id, name, price::text, data FROM items WHERE id = $1";

type Row = (i32, String, String, Option<Vec<u8>>);

async fn items(client: &tokio_postgres::Client) -> Vec<Row> {
    let stmt = client.prepare(BY_ID).await.expect("prepare");
    let mut out = Vec::new();
    for id in [1i32, 2] {
        for row in client.query(&stmt, &[&id]).await.expect("query") {
            out.push((row.get(0), row.get(1), row.get(2), row.get(3)));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn binary_parameters_and_statements_prepared_in_an_earlier_exchange() {
    let pg = PgCluster::start();
    pg.psql(
        "CREATE TABLE items (id int PRIMARY KEY, name text, price numeric, data bytea); \
         INSERT INTO items VALUES (1, 'apple', 1.50, '\\x00ff'), (2, 'pear', 2.25, NULL)",
    );
    let direct = items(&connect(&pg.conn_str()).await).await;

    let rec = Recording::start(&pg.addr()).await;
    let through = items(&connect(&rec.conn_str("postgres")).await).await;
    assert_eq!(through, direct);
    assert_eq!(through[0].3, Some(vec![0x00, 0xff]));
    let recorded = rec.finish().await;

    let conn = recorded.connection(1);
    // Start-up, prepare, two executions, and the Close tokio-postgres sends
    // when the statement is dropped if it got out before the connection did.
    assert!(
        conn.len() == 4
            || (conn.len() == 5 && matches!(conn[4].spec.requests[0], FrontendMsg::Close { .. })),
        "{conn:#?}"
    );
    let startup = conn[0];
    assert_eq!(startup.spec.position, 0);
    assert_eq!(startup.spec.lifetime, Lifetime::Session);
    assert_eq!(
        startup.spec.startup.get("user").map(String::as_str),
        Some("postgres")
    );
    assert!(matches!(
        startup.spec.requests[0],
        FrontendMsg::Startup { .. }
    ));
    assert!(startup.spec.responses.iter().any(
        |r| matches!(r, BackendMsg::ParameterStatus { name, .. } if name == "server_version")
    ));
    assert!(startup
        .spec
        .responses
        .iter()
        .any(|r| matches!(r, BackendMsg::BackendKeyData { .. })));
    assert_eq!(
        startup.spec.responses.last(),
        Some(&BackendMsg::ReadyForQuery { status: 'I' })
    );

    // The prepare exchange: Parse, Describe, Sync.
    let FrontendMsg::Parse { name, query, .. } = &conn[1].spec.requests[0] else {
        panic!("Parse first: {:#?}", conn[1]);
    };
    assert_eq!(query, BY_ID);
    assert!(conn[1]
        .spec
        .responses
        .iter()
        .any(|r| matches!(r, BackendMsg::ParameterDescription { types } if types == &vec![23])));

    // Each execution binds the statement prepared before, by name, and
    // knows its text.
    for (mock, id) in [(conn[2], 1u8), (conn[3], 2u8)] {
        assert_eq!(mock.spec.lifetime, Lifetime::Unattributed);
        let FrontendMsg::Bind {
            statement,
            statement_query,
            param_formats,
            params,
            result_formats,
            ..
        } = &mock.spec.requests[0]
        else {
            panic!("Bind first: {mock:#?}");
        };
        assert_eq!(statement, name);
        assert_eq!(statement_query.as_deref(), Some(BY_ID));
        assert_eq!(param_formats, &vec![Format::Binary]);
        let expected = PgValue::from_bytes(None);
        assert_ne!(params[0], expected);
        assert_eq!(
            params[0].to_bytes().expect("base64"),
            Some(vec![0, 0, 0, id])
        );
        assert!(
            matches!(params[0], PgValue::Bytes { .. }),
            "binary stays base64"
        );
        assert!(result_formats.iter().all(|f| *f == Format::Binary));
        let rows = data_rows(mock);
        assert_eq!(rows.len(), 1);
        let BackendMsg::DataRow { values } = rows[0] else {
            unreachable!()
        };
        assert_eq!(values[0].to_bytes().expect("b64"), Some(vec![0, 0, 0, id]));
        if id == 1 {
            assert_eq!(values[1].to_bytes().expect("b64"), Some(b"apple".to_vec()));
            assert_eq!(values[3].to_bytes().expect("b64"), Some(vec![0x00, 0xff]));
        } else {
            assert_eq!(values[3], PgValue::Null);
        }
        assert!(mock.spec.responses.contains(&BackendMsg::CommandComplete {
            tag: "SELECT 1".into()
        }));
        assert!(mock.spec.request_timestamp <= mock.spec.response_timestamp);
    }
    // Names follow completion order.
    let names: Vec<&str> = recorded.mocks.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names[..4], ["mock-1", "mock-2", "mock-3", "mock-4"]);
}

fn pipelined_batch() -> BytesMut {
    let mut b = BytesMut::new();
    pp::parse("add", "SELECT $1::int + 1", [], &mut b).expect("parse");
    bind_text("add", "41", &mut b);
    pp::execute("", 0, &mut b).expect("execute");
    pp::parse("", "SELECT upper($1)", [25], &mut b).expect("parse");
    bind_text("", "abc", &mut b);
    pp::execute("", 0, &mut b).expect("execute");
    pp::sync(&mut b);
    b
}

fn bind_text(statement: &str, value: &str, b: &mut BytesMut) {
    pp::bind(
        "",
        statement,
        [0i16],
        [value],
        |v, buf| {
            buf.put_slice(v.as_bytes());
            Ok::<_, Box<dyn std::error::Error + Sync + Send>>(postgres_protocol::IsNull::No)
        },
        [0i16],
        b,
    )
    .map_err(|_| "bind")
    .expect("bind");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pipelined_batch_is_one_exchange_with_every_answer() {
    let pg = PgCluster::start();
    let mut direct = RawClient::start(&pg.addr()).await;
    direct.send(&pipelined_batch()).await;
    let expected = direct.read_until_ready().await;

    let rec = Recording::start(&pg.addr()).await;
    let mut raw = RawClient::start(&rec.addr.to_string()).await;
    raw.send(&pipelined_batch()).await;
    let got = raw.read_until_ready().await;
    assert_eq!(got, expected, "byte-identical answers through the proxy");
    // The statement prepared in the batch is bound again in a later one.
    let mut again = BytesMut::new();
    bind_text("add", "1", &mut again);
    pp::execute("", 0, &mut again).expect("execute");
    pp::sync(&mut again);
    raw.send(&again).await;
    raw.read_until_ready().await;
    drop(raw);
    let recorded = rec.finish().await;

    let batch = recorded
        .running("SELECT $1::int + 1")
        .into_iter()
        .find(|m| m.spec.position == 1)
        .expect("the batch is the first exchange after start-up");
    assert_eq!(batch.spec.requests.len(), 7, "{batch:#?}");
    assert_eq!(batch.spec.requests[6], FrontendMsg::Sync);
    let rows: Vec<_> = data_rows(batch);
    assert_eq!(
        rows,
        [
            &BackendMsg::DataRow {
                values: vec![PgValue::Text("42".into())]
            },
            &BackendMsg::DataRow {
                values: vec![PgValue::Text("ABC".into())]
            },
        ]
    );
    let kinds: Vec<&str> = batch
        .spec
        .responses
        .iter()
        .map(|r| match r {
            BackendMsg::ParseComplete => "parse",
            BackendMsg::BindComplete => "bind",
            BackendMsg::DataRow { .. } => "row",
            BackendMsg::CommandComplete { .. } => "complete",
            BackendMsg::ReadyForQuery { .. } => "ready",
            _ => "other",
        })
        .collect();
    assert_eq!(
        kinds,
        ["parse", "bind", "row", "complete", "parse", "bind", "row", "complete", "ready"]
    );
    let later = recorded
        .mocks
        .iter()
        .find(|m| m.spec.position == 2 && m.spec.connection == batch.spec.connection)
        .expect("the later exchange");
    assert!(matches!(
        &later.spec.requests[0],
        FrontendMsg::Bind { statement_query: Some(q), .. } if q == "SELECT $1::int + 1"
    ));
    assert_eq!(
        data_rows(later),
        [&BackendMsg::DataRow {
            values: vec![PgValue::Text("2".into())]
        }]
    );
}
