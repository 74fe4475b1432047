use base64::Engine as _;
use bytes::BytesMut;
use postgres_protocol::message::frontend;

use super::Documents;
use crate::pgwire::backend::encode_backend;
use crate::testset::pg_mock::{BackendMsg, FrontendMsg, Lifetime, PgValue};
use crate::testset::PgMock;

fn convert(yaml: &str) -> (Vec<PgMock>, Vec<(String, String)>) {
    let mut docs = Documents::default();
    for (i, text) in yaml.trim_end().split("\n---\n").enumerate() {
        let doc: serde_yaml::Value = serde_yaml::from_str(text).expect("test yaml");
        let name = doc["name"].as_str().unwrap_or_default().to_string();
        docs.add(&doc, name, format!("mocks.yaml#{}", i + 1))
            .expect("document is kept");
    }
    docs.convert(1)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn backend_bytes(msgs: &[BackendMsg]) -> Vec<u8> {
    let mut buf = BytesMut::new();
    for m in msgs {
        encode_backend(m, &mut buf).expect("encodes");
    }
    buf.to_vec()
}

/// Keploy's own v1 layout with decoded fields only (no payloads), as it
/// wrote an MD5 start-up, a simple query and a prepared statement (the
/// batches' Sync missing, as in its recordings).
const FIELDS_ONLY: &str = include_str!(
    "../../../../../tests/fixtures/keploy-mocks/postgres-v1-fields/test-set-0/mocks.yaml"
);

#[test]
fn keploys_decoded_fields_become_mocks_without_the_password() {
    let (mocks, problems) = convert(FIELDS_ONLY);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(mocks.len(), 4, "{mocks:#?}");
    let positions: Vec<u64> = mocks.iter().map(|m| m.spec.position).collect();
    assert_eq!(positions, [0, 1, 2, 3]);
    assert!(mocks.iter().all(|m| m.spec.connection == 1));

    let startup = &mocks[0];
    assert_eq!(startup.spec.lifetime, Lifetime::Session);
    assert_eq!(
        startup.spec.startup.get("database").map(String::as_str),
        Some("shop")
    );
    assert!(startup
        .spec
        .responses
        .contains(&BackendMsg::AuthenticationOk));
    assert!(startup
        .spec
        .responses
        .contains(&BackendMsg::BackendKeyData {
            process_id: 31,
            secret_key: 2938221901u32 as i32
        }));
    let written = serde_yaml::to_string(&mocks).expect("serialise");
    assert!(!written.contains("md5"), "{written}");

    let query = &mocks[1];
    assert_eq!(
        query.spec.requests,
        [FrontendMsg::Query {
            query: "SELECT id, name, data FROM items ORDER BY id".into()
        }]
    );
    let rows: Vec<&Vec<PgValue>> = query
        .spec
        .responses
        .iter()
        .filter_map(|m| match m {
            BackendMsg::DataRow { values } => Some(values),
            _ => None,
        })
        .collect();
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0][0], PgValue::Text("1".into()));
    assert_eq!(rows[0][2], PgValue::Text("café".into()));
    assert!(query.spec.responses.contains(&BackendMsg::CommandComplete {
        tag: "SELECT 2".into()
    }));
    assert_eq!(query.spec.lifetime, Lifetime::Unattributed);

    // Keploy's fields lost the batches' Sync; the answer's ReadyForQuery
    // says it was there.
    let prepare = &mocks[2];
    assert_eq!(prepare.spec.requests.last(), Some(&FrontendMsg::Sync));
    let execute = &mocks[3];
    match &execute.spec.requests[0] {
        FrontendMsg::Bind {
            statement,
            statement_query,
            params,
            ..
        } => {
            assert_eq!(statement, "s1");
            assert_eq!(
                statement_query.as_deref(),
                Some("SELECT name FROM items WHERE id = $1")
            );
            assert_eq!(params, &[PgValue::Text("2".into())]);
        }
        other => panic!("not a Bind: {other:?}"),
    }
    assert!(execute
        .spec
        .responses
        .contains(&BackendMsg::CommandComplete {
            tag: "SELECT 1".into()
        }));
}

/// Where Keploy kept the bytes, they are decoded with recplay's codec: a
/// NoData Keploy's fields never showed is there, and a pipelined packet of
/// two batches gives two mocks.
#[test]
fn payloads_are_decoded_with_recplays_codec() {
    let mut startup = BytesMut::new();
    frontend::startup_message([("user", "app"), ("database", "shop")], &mut startup)
        .expect("startup");
    let ready = BackendMsg::ReadyForQuery { status: 'I' };
    let startup_answer = backend_bytes(&[
        BackendMsg::AuthenticationOk,
        BackendMsg::ParameterStatus {
            name: "server_version".into(),
            value: "15.4".into(),
        },
        ready.clone(),
    ]);
    let mut batch = BytesMut::new();
    for (statement, param) in [
        ("UPDATE items SET price = 1 WHERE id = $1", "4"),
        ("DELETE FROM items WHERE id = $1", "5"),
    ] {
        frontend::parse("", statement, [], &mut batch).expect("parse");
        frontend::bind(
            "",
            "",
            [0],
            [param],
            |p, buf| {
                buf.extend_from_slice(p.as_bytes());
                Ok(postgres_protocol::IsNull::No)
            },
            [0],
            &mut batch,
        )
        .map_err(|_| "bind")
        .expect("bind");
        frontend::describe(b'P', "", &mut batch).expect("describe");
        frontend::execute("", 0, &mut batch).expect("execute");
        frontend::sync(&mut batch);
    }
    let answer = |tag: &str| {
        vec![
            BackendMsg::ParseComplete,
            BackendMsg::BindComplete,
            BackendMsg::NoData,
            BackendMsg::CommandComplete { tag: tag.into() },
            BackendMsg::ReadyForQuery { status: 'I' },
        ]
    };
    let mut answers = answer("UPDATE 1");
    answers.extend(answer("DELETE 1"));
    let yaml = format!(
        r#"version: api.keploy.io/v1beta1
kind: Postgres
name: mock-0
connectionId: "7"
spec:
    metadata: {{type: config}}
    postgresrequests:
        - identifier: StartupRequest
          payload: {}
    postgresresponses:
        - header: [R, S, Z]
          payload: {}
    reqtimestampmock: 2025-01-01T00:00:00Z
    restimestampmock: 2025-01-01T00:00:00.1Z
---
version: api.keploy.io/v1beta1
kind: Postgres
name: mock-1
connectionId: "7"
spec:
    metadata: {{type: config}}
    postgresrequests:
        - header: [P, B, D, E, S, P, B, D, E, S]
          payload: {}
    postgresresponses:
        - header: ["1", "2", n, C, Z, "1", "2", n, C, Z]
          payload: {}
    reqtimestampmock: 2025-01-01T00:00:01Z
    restimestampmock: 2025-01-01T00:00:01.1Z"#,
        b64(&startup),
        b64(&startup_answer),
        b64(&batch),
        b64(&backend_bytes(&answers)),
    );
    let (mocks, problems) = convert(&yaml);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(mocks.len(), 3, "{mocks:#?}");
    assert_eq!(mocks[0].spec.requests.len(), 1);
    assert_eq!(mocks[1].spec.responses, answer("UPDATE 1"));
    assert_eq!(mocks[2].spec.responses, answer("DELETE 1"));
    assert_eq!(mocks[2].spec.position, 2);
    let names: Vec<&str> = mocks.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["mock-0", "mock-1", "mock-1-2"]);
}

#[test]
fn a_payload_that_does_not_decode_is_named_and_other_connections_load() {
    let yaml = r#"version: api.keploy.io/v1beta1
kind: Postgres
name: mock-0
connectionId: "1"
spec:
    postgresrequests:
        - header: [Q]
          payload: UQAAAAhTRUxFQ1Q=
    postgresresponses: []
    reqtimestampmock: 2025-01-01T00:00:00Z
    restimestampmock: 2025-01-01T00:00:00Z
---
version: api.keploy.io/v1beta1
kind: Postgres
name: mock-1
connectionId: "2"
spec:
    postgresrequests:
        - identifier: StartupRequest
          startup_message:
            protocolversion: 196608
            parameters: {user: app}
    postgresresponses:
        - header: [R, Z]
          ready_for_query: {txstatus: 73}
    reqtimestampmock: 2025-01-01T00:00:00Z
    restimestampmock: 2025-01-01T00:00:00Z"#;
    let (mocks, problems) = convert(yaml);
    assert_eq!(mocks.len(), 1, "{mocks:?}");
    assert_eq!(mocks[0].name, "mock-1");
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].0, "mocks.yaml#1");
    assert!(problems[0].1.contains("mock-0"), "{problems:?}");
}

/// Keploy left a connection's start-up out: its first exchange is data,
/// not the session-level start-up the recorder takes position 0 for.
#[test]
fn a_connection_without_its_start_up_keeps_its_first_query_as_data() {
    let doc = |name: &str, query: &str| {
        format!(
            r#"version: api.keploy.io/v1beta1
kind: Postgres
name: {name}
spec:
    postgresrequests:
        - header: [Q]
          query: {{string: "{query}"}}
    postgresresponses:
        - header: [C, Z]
          command_complete: [{{command_tag_type: SELECT 1}}]
          ready_for_query: {{txstatus: 73}}
    reqtimestampmock: 2025-01-01T00:00:00Z
    restimestampmock: 2025-01-01T00:00:00Z"#
        )
    };
    let yaml = format!(
        "{}\n---\n{}",
        doc("mock-0", "SELECT name FROM items"),
        doc("mock-1", "SET search_path TO shop")
    );
    let (mocks, problems) = convert(&yaml);
    assert!(problems.is_empty(), "{problems:?}");
    let lifetimes: Vec<(u64, &Lifetime)> = mocks
        .iter()
        .map(|m| (m.spec.position, &m.spec.lifetime))
        .collect();
    assert_eq!(
        lifetimes,
        [(0, &Lifetime::Unattributed), (1, &Lifetime::Session)]
    );
}

/// Keploy appended a second run to the same file, names starting over and
/// no connection ids: each start-up opens a connection of its own, and
/// names stay unique.
#[test]
fn a_start_up_without_a_connection_id_opens_a_new_connection() {
    let yaml = format!(
        "{}\n---\n{}",
        FIELDS_ONLY.trim_end(),
        FIELDS_ONLY.trim_end()
    );
    let (mocks, problems) = convert(&yaml);
    assert!(problems.is_empty(), "{problems:?}");
    let places: Vec<(u64, u64)> = mocks
        .iter()
        .map(|m| (m.spec.connection, m.spec.position))
        .collect();
    assert_eq!(
        places,
        [
            (1, 0),
            (1, 1),
            (1, 2),
            (1, 3),
            (2, 0),
            (2, 1),
            (2, 2),
            (2, 3)
        ]
    );
    let mut names: Vec<&str> = mocks.iter().map(|m| m.name.as_str()).collect();
    names.sort_unstable();
    names.dedup();
    assert_eq!(names.len(), 8);
}
