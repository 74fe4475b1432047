//! A real client served from answers read back from mocks.yaml, and told
//! clearly when the file changed under the server.

use chrono::Utc;
use tokio_postgres::{NoTls, SimpleQueryMessage};

use super::*;
use crate::pg::matcher::UNREADABLE_SQLSTATE;
use crate::testset::pg_mock::{
    BackendMsg, FieldDescription, Format, FrontendMsg, MockSpec, PgValue,
};
use crate::testset::store::render_mocks;
use crate::testset::{Lifetime, TestSetDir};

fn select(value: &str) -> PgMock {
    PgMock::new(
        "mock-1",
        MockSpec {
            connection: 1,
            position: 1,
            lifetime: Lifetime::Session,
            startup: Default::default(),
            request_timestamp: Utc::now(),
            response_timestamp: Utc::now(),
            requests: vec![FrontendMsg::Query {
                query: "SELECT name FROM t".into(),
            }],
            responses: vec![
                BackendMsg::RowDescription {
                    fields: vec![FieldDescription {
                        name: "name".into(),
                        table_oid: 0,
                        column_id: 0,
                        type_oid: 25,
                        type_size: -1,
                        type_modifier: -1,
                        format: Format::Text,
                    }],
                },
                BackendMsg::DataRow {
                    values: vec![PgValue::Text(value.into())],
                },
                BackendMsg::CommandComplete {
                    tag: "SELECT 1".into(),
                },
                BackendMsg::ReadyForQuery { status: 'I' },
            ],
        },
    )
}

fn first_value(messages: &[SimpleQueryMessage]) -> Option<String> {
    messages.iter().find_map(|m| match m {
        SimpleQueryMessage::Row(row) => row.get(0).map(str::to_string),
        _ => None,
    })
}

#[tokio::test]
async fn answers_are_read_back_and_a_changed_file_is_an_error_the_client_sees() {
    let dir = tempfile::tempdir().expect("tempdir");
    let set = TestSetDir::create_next(dir.path()).expect("create");
    let recorded = render_mocks(&[select("alpha")]);
    std::fs::write(set.mocks_path(), &recorded).expect("write");
    let mut index = Index::default();
    let loaded = set.load_with(&mut index).expect("load");
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    let server = MockServer::bind_index(
        "127.0.0.1:0".parse().expect("addr"),
        index,
        TestWindows::new(),
        MatchStrategy::Exact,
    )
    .await
    .expect("binds");
    let addr = server.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));
    let config = format!(
        "host=127.0.0.1 port={} user=postgres dbname=postgres",
        addr.port()
    );
    let (client, connection) = tokio_postgres::connect(&config, NoTls)
        .await
        .expect("connects");
    tokio::spawn(connection);

    let rows = client
        .simple_query("SELECT name FROM t")
        .await
        .expect("served");
    assert_eq!(first_value(&rows).as_deref(), Some("alpha"));

    // Recorded over while replaying: the same length, another answer.
    let changed = recorded.replace("alpha", "omega");
    std::fs::write(set.mocks_path(), changed).expect("write");
    let err = client
        .simple_query("SELECT name FROM t")
        .await
        .expect_err("a changed document is not served");
    let db = err.as_db_error().expect("an ErrorResponse");
    assert_eq!(db.code().code(), UNREADABLE_SQLSTATE);
    assert!(
        db.message()
            .contains("changed after the test set was loaded"),
        "{db:?}"
    );
    assert!(db.message().contains("mocks.yaml"), "{db:?}");

    // The connection survives the error, and the document put back as it
    // was loaded serves again.
    std::fs::write(set.mocks_path(), &recorded).expect("write");
    let rows = client
        .simple_query("SELECT name FROM t")
        .await
        .expect("served");
    assert_eq!(first_value(&rows).as_deref(), Some("alpha"));
    let _ = stop.send(());
    running.await.expect("server stops");
}
