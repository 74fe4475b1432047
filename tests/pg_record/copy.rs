//! COPY FROM STDIN and COPY TO STDOUT through the proxy, extended (tokio-
//! postgres) and simple (psql).

use std::io::Write;
use std::process::{Command, Stdio};

use bytes::Bytes;
use futures_util::{SinkExt, TryStreamExt};
use recplay_proxy::testset::pg_mock::{BackendMsg, FrontendMsg, PgValue};

use super::{connect, Recording};
use crate::support::pg::{pg_bin, PgCluster};

const COPY_IN: &str = "COPY fruit (id, name) FROM STDIN";
const COPY_OUT: &str = "COPY (SELECT id, name FROM fruit ORDER BY id) TO STDOUT";

async fn copy_out(client: &tokio_postgres::Client) -> Vec<u8> {
    let stream = client.copy_out(COPY_OUT).await.expect("copy out");
    let chunks: Vec<Bytes> = stream.try_collect().await.expect("copy data");
    chunks.concat()
}

fn text_of(v: &PgValue) -> String {
    String::from_utf8(v.to_bytes().expect("b64").expect("not null")).expect("utf8")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn copy_in_and_out_are_recorded_with_their_data() {
    let pg = PgCluster::start();
    pg.psql("CREATE TABLE fruit (id int, name text); INSERT INTO fruit VALUES (1, 'apple')");
    let rec = Recording::start(&pg.addr()).await;
    let client = connect(&rec.conn_str("postgres")).await;

    let sink = client.copy_in(COPY_IN).await.expect("copy in");
    futures_util::pin_mut!(sink);
    sink.send(Bytes::from_static(b"2\tkiwi\n3\tfig\n"))
        .await
        .expect("send rows");
    assert_eq!(sink.as_mut().finish().await.expect("finish"), 2);

    // psql's COPY FROM STDIN goes through the simple protocol.
    let mut child = Command::new(pg_bin("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p"])
        .arg(rec.addr.port().to_string())
        .args(["-U", "postgres", "-d", "postgres", "-c", COPY_IN])
        .env("PGSSLMODE", "disable")
        .stdin(Stdio::piped())
        .spawn()
        .expect("psql");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(b"4\tplum\n\\.\n")
        .expect("write stdin");
    assert!(child.wait().expect("psql exits").success());

    let through = copy_out(&client).await;
    let direct = copy_out(&connect(&pg.conn_str()).await).await;
    assert_eq!(through, direct);
    assert_eq!(through, b"1\tapple\n2\tkiwi\n3\tfig\n4\tplum\n");
    drop(client);
    let recorded = rec.finish().await;

    // tokio-postgres: Bind/Execute/Sync, the data, CopyDone and a second Sync.
    let ins = recorded
        .running(COPY_IN)
        .into_iter()
        .find(|m| matches!(m.spec.requests[0], FrontendMsg::Bind { .. }))
        .expect("tokio-postgres's COPY");
    let sent: String = ins
        .spec
        .requests
        .iter()
        .filter_map(|r| match r {
            FrontendMsg::CopyData { data } => Some(text_of(data)),
            _ => None,
        })
        .collect();
    assert_eq!(sent, "2\tkiwi\n3\tfig\n");
    assert!(ins.spec.requests.contains(&FrontendMsg::CopyDone));
    assert!(
        matches!(ins.spec.responses[1], BackendMsg::CopyInResponse { .. }),
        "{ins:#?}"
    );
    assert!(ins.spec.responses.contains(&BackendMsg::CommandComplete {
        tag: "COPY 2".into()
    }));
    assert_eq!(
        ins.spec.responses.last(),
        Some(&BackendMsg::ReadyForQuery { status: 'I' })
    );

    let simple = recorded
        .mocks
        .iter()
        .find(|m| {
            m.spec.requests.first()
                == Some(&FrontendMsg::Query {
                    query: COPY_IN.into(),
                })
        })
        .expect("psql's COPY");
    // psql forwards its input as is (some versions include the `\.` line).
    let [FrontendMsg::CopyData { data }, FrontendMsg::CopyDone] = &simple.spec.requests[1..] else {
        panic!("psql's COPY sends its data then CopyDone: {simple:#?}");
    };
    assert!(text_of(data).starts_with("4\tplum\n"), "{data:?}");
    assert!(simple
        .spec
        .responses
        .contains(&BackendMsg::CommandComplete {
            tag: "COPY 1".into()
        }));

    let out = recorded.one_running(COPY_OUT);
    assert!(out
        .spec
        .responses
        .iter()
        .any(|r| matches!(r, BackendMsg::CopyOutResponse { .. })));
    let received: String = out
        .spec
        .responses
        .iter()
        .filter_map(|r| match r {
            BackendMsg::CopyData { data } => Some(text_of(data)),
            _ => None,
        })
        .collect();
    assert_eq!(received.as_bytes(), through);
    assert!(out.spec.responses.contains(&BackendMsg::CopyDone));
    assert!(out.spec.responses.contains(&BackendMsg::CommandComplete {
        tag: "COPY 4".into()
    }));
}
