use std::path::Path;

use chrono::{DateTime, Utc};

use super::windows::Windows;
use super::{is_keploy_document, unserved_notes};
use crate::testset::store::{parse_mock_bytes, TestSetDir};
use crate::testset::{HttpSpec, HttpTestCase, Lifetime};

#[test]
fn a_string_version_is_keploys_and_a_number_recplays() {
    assert!(is_keploy_document(
        "version: api.keploy.io/v1beta1\nkind: Mongo\n"
    ));
    assert!(is_keploy_document("---\nversion: \"anything\"\nkind: X\n"));
    assert!(!is_keploy_document("version: 2\nkind: Postgres\n"));
    assert!(!is_keploy_document(
        "version: 3 # recplay\nkind: recplay-Postgres\n"
    ));
    assert!(!is_keploy_document(
        "kind: Postgres\nspec:\n  version: v1\n"
    ));
}

const RECPLAY_MOCK: &str = "---\nversion: 2\nkind: Postgres\nname: mock-1\nspec:\n  connection: 1\n  position: 0\n  lifetime: session\n  request_timestamp: 2026-01-01T00:00:00Z\n  response_timestamp: 2026-01-01T00:00:00Z\n  requests:\n  - type: Query\n    query: SELECT 1\n  responses:\n  - type: ReadyForQuery\n    status: I\n...\n";

const KEPLOY_OTHERS: &str = r#"---
version: api.keploy.io/v1beta1
kind: Mongo
name: mock-2
spec:
    metadata:
        operation: '{ OpMsg flags: 0, sections: [{ SectionSingle msg: {"find": "users"} }] }'
    requests: []
    responses: []
---
version: api.keploy.io/v1beta1
kind: Mongo
name: mock-3
spec: {}
---
version: api.keploy.io/v1beta1
kind: Http
name: mock-4
spec:
    metadata:
        name: Http
    req:
        method: GET
        proto_major: 1
        proto_minor: 1
        url: http://rates.example/v1/eur
        header:
            Accept: application/json
        body: ""
        timestamp: 2026-01-01T00:00:01Z
    resp:
        status_code: 200
        header:
            Content-Type: application/json
        body: '{"rate":1.08}'
        status_message: OK
        proto_major: 1
        proto_minor: 1
        timestamp: 2026-01-01T00:00:01.2Z
    objects: []
    created: 1767225601
    reqTimestampMock: 2026-01-01T00:00:01Z
    resTimestampMock: 2026-01-01T00:00:01.2Z
---
version: api.keploy.io/v1beta1
kind: PostgresV3
name: mock-5
spec: {}
---
version: api.keploy.io/v1beta1
kind: SomethingNew
name: mock-6
spec: {}
"#;

#[test]
fn keploy_documents_beside_recplays_load_and_are_counted() {
    let text = format!("{RECPLAY_MOCK}{KEPLOY_OTHERS}");
    let dir = tempfile::tempdir().expect("tempdir");
    let set = TestSetDir::create_next(dir.path()).expect("create");
    std::fs::write(set.mocks_path(), &text).expect("write");
    let loaded = set.load().expect("load");
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    assert_eq!(loaded.mocks.len(), 1);
    assert_eq!(loaded.http_mocks.len(), 1);
    let http = &loaded.http_mocks[0];
    assert_eq!(http.name, "mock-4");
    assert_eq!(http.spec.req.url, "http://rates.example/v1/eur");
    assert_eq!(http.spec.resp.status_code, 200);
    assert_eq!(http.spec.resp.body.body, r#"{"rate":1.08}"#);
    let counts: Vec<(&str, u64)> = loaded
        .unserved
        .iter()
        .map(|(k, n)| (k.as_str(), *n))
        .collect();
    // PostgresV3 stays unserved until its converter exists.
    let v3 = super::postgres_v3::convert("PostgresV3", &serde_yaml::Value::Null).is_err();
    let mut expected = vec![("Mongo", 2), ("SomethingNew", 1)];
    if v3 {
        expected.insert(1, ("PostgresV3", 1));
    }
    assert_eq!(counts, expected);
    assert_eq!(
        loaded.unserved_notes()[0],
        "2 Mongo mocks: not served by recplay"
    );
    assert_eq!(
        unserved_notes(&[("gRPC".to_string(), 1)].into_iter().collect())[0],
        "1 gRPC mock: not served by recplay"
    );
}

#[test]
fn a_keploy_document_without_a_kind_is_named() {
    let text = "---\nversion: api.keploy.io/v1beta1\nname: mock-0\nspec: {}\n";
    let (mocks, problems) = parse_mock_bytes(text.as_bytes(), Path::new("mocks.yaml"));
    assert!(mocks.is_empty());
    assert_eq!(problems.len(), 1);
    assert_eq!(problems[0].location, "mocks.yaml#1");
    assert!(problems[0].message.contains("kind"), "{problems:?}");
}

fn at(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("time")
        .with_timezone(&Utc)
}

fn test_case(name: &str, from: &str, to: &str) -> HttpTestCase {
    let mut case = HttpTestCase::new(name, HttpSpec::default());
    case.spec.req.timestamp = at(from);
    case.spec.resp.timestamp = at(to);
    case
}

#[test]
fn a_mock_belongs_to_the_test_whose_window_holds_it() {
    let tests = [
        test_case("test-1", "2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z"),
        test_case("test-2", "2026-01-01T00:00:03Z", "2026-01-01T00:00:06Z"),
        // Inside test-2's window: the innermost wins.
        test_case("test-3", "2026-01-01T00:00:04Z", "2026-01-01T00:00:05Z"),
    ];
    let windows = Windows::of_tests(&tests);
    assert_eq!(
        windows.test_at(at("2026-01-01T00:00:01.5Z")),
        Some("test-1")
    );
    assert_eq!(
        windows.test_at(at("2026-01-01T00:00:03.5Z")),
        Some("test-2")
    );
    assert_eq!(
        windows.test_at(at("2026-01-01T00:00:04.5Z")),
        Some("test-3")
    );
    assert_eq!(
        windows.test_at(at("2026-01-01T00:00:05.5Z")),
        Some("test-2")
    );
    assert_eq!(windows.test_at(at("2026-01-01T00:00:02.5Z")), None);
    assert_eq!(windows.test_at(at("2026-01-01T00:00:00Z")), None);

    let (mut mocks, _) = parse_mock_bytes(RECPLAY_MOCK.as_bytes(), Path::new("mocks.yaml"));
    let mut mock = mocks.remove(0);
    mock.spec.request_timestamp = at("2026-01-01T00:00:01.5Z");
    windows.attribute(&mut mock);
    // Session mocks stay session.
    assert_eq!(mock.spec.lifetime, Lifetime::Session);
    mock.spec.lifetime = Lifetime::Unattributed;
    windows.attribute(&mut mock);
    assert_eq!(mock.spec.lifetime, Lifetime::Test("test-1".into()));
}
