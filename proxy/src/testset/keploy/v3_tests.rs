//! PostgresV2/V3: the converter per sub-type, per way of asking, and per kind of bad input.

use serde::Deserialize;
use serde_yaml::Value;

use super::postgres_v3::convert;
use crate::testset::pg_mock::{BackendMsg, Format, FrontendMsg, Lifetime, PgMock, PgValue};

const V3: &str = include_str!("../../../../tests/fixtures/keploy-v3/test-set-0/mocks.yaml");
const V2: &str = include_str!("../../../../tests/fixtures/keploy-v3/postgres-v2/mocks.yaml");

fn documents(text: &str) -> Vec<Value> {
    serde_yaml::Deserializer::from_str(text)
        .map(|d| Value::deserialize(d).expect("fixture parses"))
        .collect()
}

/// The fixture document named `name`, converted.
fn fixture(name: &str) -> Result<Vec<PgMock>, String> {
    let doc = documents(V3)
        .into_iter()
        .find(|d| d["name"].as_str() == Some(name))
        .expect("fixture document");
    convert("PostgresV3", &doc)
}

fn shape<'a>(mocks: &'a [PgMock], suffix: &str) -> &'a PgMock {
    mocks
        .iter()
        .find(|m| m.name.ends_with(&format!("-{suffix}")))
        .unwrap_or_else(|| panic!("no {suffix} mock among {:?}", names(mocks)))
}

fn names(mocks: &[PgMock]) -> Vec<&str> {
    mocks.iter().map(|m| m.name.as_str()).collect()
}

fn text(s: &str) -> PgValue {
    PgValue::Text(s.into())
}

/// A binary-format value, as the recorder writes one.
fn bytes(b: &[u8]) -> PgValue {
    use base64::Engine as _;
    PgValue::Bytes {
        base64: base64::engine::general_purpose::STANDARD.encode(b),
    }
}

fn rows(mock: &PgMock) -> Vec<Vec<PgValue>> {
    mock.spec
        .responses
        .iter()
        .filter_map(|m| match m {
            BackendMsg::DataRow { values } => Some(values.clone()),
            _ => None,
        })
        .collect()
}

/// A fixture document with one field replaced, for bad-input cases.
fn edited(name: &str, path: &[&str], value: Value) -> Value {
    let mut doc = documents(V3)
        .into_iter()
        .find(|d| d["name"].as_str() == Some(name))
        .expect("fixture document");
    let mut at = &mut doc;
    for key in &path[..path.len() - 1] {
        at = match key.parse::<usize>() {
            Ok(i) => &mut at[i],
            Err(_) => &mut at[*key],
        };
    }
    let last = path[path.len() - 1];
    match last.parse::<usize>() {
        Ok(i) => at[i] = value,
        Err(_) => match value {
            Value::Null => {
                at.as_mapping_mut().expect("mapping").remove(last);
            }
            v => at[last] = v,
        },
    }
    doc
}

const QUERY: [&str; 3] = ["spec", "postgresV3", "query"];

fn query_path<'a>(rest: &[&'a str]) -> Vec<&'a str> {
    QUERY.iter().copied().chain(rest.iter().copied()).collect()
}

#[test]
fn a_session_becomes_the_start_up_answer() {
    let mocks = fixture("mock-0").expect("converts");
    assert_eq!(mocks.len(), 1);
    let m = &mocks[0];
    assert_eq!(m.spec.lifetime, Lifetime::Session);
    assert!(matches!(m.spec.requests[..], [FrontendMsg::Startup { .. }]));
    let status: Vec<(&str, &str)> = m
        .spec
        .responses
        .iter()
        .filter_map(|r| match r {
            BackendMsg::ParameterStatus { name, value } => Some((name.as_str(), value.as_str())),
            _ => None,
        })
        .collect();
    assert!(status.contains(&("server_version", "15.17 (Debian 15.17-1.pgdg13+1)")));
    assert!(status.contains(&("TimeZone", "Etc/UTC")));
    assert!(m.spec.responses.contains(&BackendMsg::BackendKeyData {
        process_id: 573,
        secret_key: -271_483_429
    }));
    assert_eq!(
        m.spec.responses.last(),
        Some(&BackendMsg::ReadyForQuery { status: 'I' })
    );
}

#[test]
fn a_query_without_parameters_is_served_simple_and_extended_in_text() {
    let mocks = fixture("mock-2").expect("converts");
    assert_eq!(
        names(&mocks),
        [
            "mock-2-0:1-simple",
            "mock-2-0:1-prepare",
            "mock-2-0:1-execute",
            "mock-2-0:1-execute-described",
            "mock-2-0:1-unnamed",
            "mock-2-0:1-unnamed-typed-statement"
        ]
    );
    let simple = shape(&mocks, "simple");
    assert_eq!(simple.spec.lifetime, Lifetime::Unattributed);
    assert_eq!(
        simple.spec.request_timestamp.to_rfc3339(),
        "2026-04-22T10:00:01+00:00"
    );
    assert_eq!(
        (simple.spec.connection, simple.spec.position),
        (1, 2),
        "from invocationId 0:1"
    );
    let Some(BackendMsg::RowDescription { fields }) = simple.spec.responses.first() else {
        panic!("RowDescription first: {:?}", simple.spec.responses);
    };
    let described: Vec<(&str, u32, i16, i32)> = fields
        .iter()
        .map(|f| (f.name.as_str(), f.type_oid, f.type_size, f.type_modifier))
        .collect();
    assert_eq!(described[3], ("amount", 1700, -1, -1));
    assert!(fields.iter().all(|f| f.format == Format::Text));
    assert_eq!(
        rows(simple),
        vec![
            vec![
                text("1"),
                text("alpha"),
                text("1.25"),
                text("10.50"),
                text("t"),
                text("2026-04-22 10:11:12.5+00"),
                text("\\x00ff"),
                PgValue::Null,
            ],
            vec![
                text("2"),
                text("beta"),
                text("2.5"),
                text("-7"),
                text("f"),
                text("2026-04-23 00:00:00+00"),
                PgValue::Null,
                text("it's \"quoted\""),
            ],
            vec![
                text("3"),
                text(""),
                text("0.1"),
                text("0.001"),
                text("t"),
                text("2026-04-24 23:59:59.000001+00"),
                text("\\xdeadbeef"),
                text(""),
            ],
        ]
    );
    assert_eq!(
        simple.spec.responses[simple.spec.responses.len() - 2..],
        [
            BackendMsg::CommandComplete {
                tag: "SELECT 3".into()
            },
            BackendMsg::ReadyForQuery { status: 'I' }
        ]
    );
}

#[test]
fn session_statements_are_session_mocks() {
    let mocks = fixture("mock-1").expect("converts");
    assert!(mocks.iter().all(|m| m.spec.lifetime == Lifetime::Session));
    assert_eq!(
        shape(&mocks, "simple").spec.responses,
        [
            BackendMsg::CommandComplete { tag: "SET".into() },
            BackendMsg::ReadyForQuery { status: 'I' }
        ]
    );
}

#[test]
fn bound_values_are_re_encoded_as_the_client_sent_them() {
    let mocks = fixture("mock-3").expect("converts");
    assert!(
        !mocks.iter().any(|m| m.name.ends_with("-simple")),
        "a statement with parameters cannot come as a simple Query"
    );
    let execute = shape(&mocks, "execute");
    let FrontendMsg::Bind {
        params,
        param_formats,
        result_formats,
        statement_query,
        ..
    } = &execute.spec.requests[0]
    else {
        panic!("Bind first: {:?}", execute.spec.requests);
    };
    assert_eq!(params, &[bytes(&15i32.to_be_bytes())]);
    assert_eq!(param_formats, &[Format::Binary]);
    assert_eq!(result_formats, &[Format::Binary]);
    assert_eq!(
        statement_query.as_deref(),
        Some("SELECT id, name FROM items WHERE id = $1")
    );
    assert_eq!(
        rows(execute),
        vec![vec![bytes(&15i32.to_be_bytes()), bytes(b"fifteen")]]
    );
    let prepare = shape(&mocks, "prepare");
    assert!(prepare
        .spec
        .responses
        .contains(&BackendMsg::ParameterDescription { types: vec![23] }));
    let typed = shape(&mocks, "unnamed-typed");
    assert!(matches!(
        &typed.spec.requests[0],
        FrontendMsg::Parse { param_types, .. } if param_types == &[23]
    ));

    let other = fixture("mock-4").expect("converts");
    let FrontendMsg::Bind { params: other, .. } = &shape(&other, "execute").spec.requests[0] else {
        panic!("Bind first");
    };
    assert_ne!(
        params, other,
        "a different bound value is a different request"
    );
}

#[test]
fn binary_results_keep_every_type() {
    let mocks = fixture("mock-5").expect("converts");
    let execute = shape(&mocks, "execute");
    let micros = |secs: i64, frac: i64| ((secs - 946_684_800) * 1_000_000 + frac).to_be_bytes();
    assert_eq!(
        rows(execute)[0],
        vec![
            bytes(&1i32.to_be_bytes()),
            bytes(b"alpha"),
            bytes(&1.25f64.to_be_bytes()),
            bytes(&[1]),
            bytes(&micros(1_776_852_672, 500_000)),
            bytes(&[0, 0xff]),
            PgValue::Null,
            // numeric 10.50: 2 digits (10, 5000), weight 0, scale 2.
            bytes(&[0, 2, 0, 0, 0, 0, 0, 2, 0, 10, 0x13, 0x88]),
        ]
    );
    // numeric -7: 1 digit, weight 0, negative, scale 0.
    assert_eq!(
        rows(execute)[1][7],
        bytes(&[0, 1, 0, 0, 0x40, 0, 0, 0, 0, 7])
    );
    let FrontendMsg::Bind { params, .. } = &execute.spec.requests[0] else {
        panic!("Bind first");
    };
    assert_eq!(params, &[bytes(&2i64.to_be_bytes())], "int8 parameter");
}

#[test]
fn an_execution_error_follows_bind_and_a_parse_error_answers_parse() {
    let mocks = fixture("mock-6").expect("converts");
    let execute = shape(&mocks, "execute");
    let [BackendMsg::BindComplete, BackendMsg::ErrorResponse { fields }, BackendMsg::ReadyForQuery { status: 'I' }] =
        &execute.spec.responses[..]
    else {
        panic!("{:?}", execute.spec.responses);
    };
    assert_eq!(fields.get(&'C').map(String::as_str), Some("23505"));
    assert_eq!(
        fields.get(&'D').map(String::as_str),
        Some("Key (id)=(1) already exists.")
    );
    assert!(shape(&mocks, "prepare")
        .spec
        .responses
        .starts_with(&[BackendMsg::ParseComplete]));

    let mocks = fixture("mock-7").expect("converts");
    assert!(!mocks.iter().any(|m| m.name.ends_with("-execute")));
    for m in &mocks {
        assert!(
            matches!(
                &m.spec.responses[..],
                [BackendMsg::ErrorResponse { fields }, BackendMsg::ReadyForQuery { .. }]
                    if fields.get(&'C').map(String::as_str) == Some("42P01")
            ),
            "{}: {:?}",
            m.name,
            m.spec.responses
        );
    }
}

#[test]
fn catalog_data_and_generator_are_refused_by_name() {
    for (name, sub_type) in [
        ("mock-8", "catalog"),
        ("mock-9", "data"),
        ("mock-10", "generator"),
    ] {
        let err = fixture(name).expect_err("not served");
        assert!(err.contains(&format!("`{sub_type}`")), "{err}");
    }
}

#[test]
fn a_statement_with_literals_normalised_away_is_refused() {
    let err = fixture("mock-11").expect_err("not recoverable");
    assert!(
        err.contains("placeholder $2 but only 1 bind values"),
        "{err}"
    );
}

#[test]
fn postgres_v2_is_refused_with_the_reason() {
    let docs = documents(V2);
    assert_eq!(docs.len(), 1);
    let err = convert("PostgresV2", &docs[0]).expect_err("not served");
    assert!(err.contains("PostgresV2"), "{err}");
    let err = convert("PostgresV2", &Value::Null).expect_err("bad input");
    assert!(err.contains("mapping"), "{err}");
}

#[test]
fn bad_input_names_the_field() {
    let cases: Vec<(Value, &str)> = vec![
        (
            edited("mock-3", &query_path(&["sqlNormalized"]), Value::Null),
            "spec.postgresV3.query.sqlNormalized` is missing",
        ),
        (
            edited("mock-3", &query_path(&["sqlNormalized"]), Value::from(7)),
            "spec.postgresV3.query.sqlNormalized` should be a string",
        ),
        (
            edited(
                "mock-3",
                &query_path(&["response", "rowDescription", "0", "typeOid"]),
                Value::from("int4"),
            ),
            "rowDescription[0].typeOid` should be an integer",
        ),
        (
            edited(
                "mock-5",
                &query_path(&["response", "rows", "0", "5"]),
                serde_yaml::from_str("!!binary 'not*base64'").expect("yaml"),
            ),
            "rows[0][5]` is not valid base64",
        ),
        (
            edited("mock-3", &query_path(&["paramOids"]), Value::Null),
            "paramOids` has 0 entries for 1 bind values",
        ),
        (
            edited("mock-3", &query_path(&["bindValues"]), Value::Null),
            "placeholder $1 but only 0 bind values",
        ),
        (
            edited("mock-3", &query_path(&["bindFormats", "0"]), Value::from(7)),
            "bindFormats[0]` is not a format code",
        ),
        (
            edited("mock-3", &["spec", "reqTimestampMock"], Value::Null),
            "spec.reqTimestampMock` is missing",
        ),
        (
            edited(
                "mock-3",
                &["spec", "reqTimestampMock"],
                Value::from("yesterday"),
            ),
            "spec.reqTimestampMock` is not an RFC 3339 timestamp",
        ),
        (
            edited("mock-3", &query_path(&["response"]), Value::Null),
            "spec.postgresV3.query.response` is missing",
        ),
        (
            edited(
                "mock-3",
                &["spec", "postgresV3", "type"],
                Value::from("stream"),
            ),
            "`spec.postgresV3.type` is `stream`",
        ),
        (
            edited("mock-3", &["spec"], Value::Null),
            "`spec` is missing",
        ),
        (
            edited(
                "mock-3",
                &query_path(&["response", "rowDescription", "1", "typeOid"]),
                Value::from(1186),
            ),
            "rows[0][1]`: cannot re-create the binary bytes of a value of type OID 1186",
        ),
    ];
    for (doc, want) in cases {
        match convert("PostgresV3", &doc) {
            Ok(m) => panic!(
                "expected an error containing {want:?}, got {} mocks",
                m.len()
            ),
            Err(e) => assert!(e.contains(want), "{e:?} does not contain {want:?}"),
        }
    }
}

#[test]
fn a_row_with_a_missing_cell_is_refused() {
    let doc = edited(
        "mock-3",
        &query_path(&["response", "rows", "0"]),
        serde_yaml::from_str("[15]").expect("yaml"),
    );
    let err = convert("PostgresV3", &doc).expect_err("bad row");
    assert!(err.contains("rows[0]` has 1 cells for 2 columns"), "{err}");
}

#[test]
fn numbers_are_printed_as_postgresql_prints_them() {
    let doc = |cell: &str, oid: u32, format: &str| {
        let yaml = format!(
            "version: api.keploy.io/v1beta1\nkind: PostgresV3\nname: m\nspec:\n  postgresV3:\n    type: query\n    query:\n      sqlNormalized: SELECT x\n      resultFormats: [{format}]\n      response:\n        rowDescription: [{{name: x, typeOid: {oid}}}]\n        rows: [[{cell}]]\n        commandComplete: SELECT 1\n  reqTimestampMock: 2026-04-22T10:00:00Z\n  resTimestampMock: 2026-04-22T10:00:00Z\n"
        );
        let mocks =
            convert("PostgresV3", &serde_yaml::from_str(&yaml).expect("yaml")).expect("converts");
        rows(shape(&mocks, "execute"))[0][0].clone()
    };
    assert_eq!(doc("1.0e+20", 701, "0"), text("1e+20"));
    assert_eq!(doc("0.000015", 701, "0"), text("1.5e-05"));
    assert_eq!(doc("0.1", 700, "0"), text("0.1"));
    assert_eq!(doc(".nan", 701, "0"), text("NaN"));
    // numeric 10.50 in binary: 2 digits (10, 5000), weight 0, scale 2.
    assert_eq!(
        doc(
            "{int: \"1050\", exp: -2, nan: false, infinitymodifier: 0, valid: true}",
            1700,
            "1"
        ),
        bytes(&[0, 2, 0, 0, 0, 0, 0, 2, 0, 10, 0x13, 0x88])
    );
    assert_eq!(
        doc("{a: 1, bb: [true, null], c: x}", 3802, "0"),
        text("{\"a\": 1, \"c\": \"x\", \"bb\": [true, null]}")
    );
    assert_eq!(
        doc("2026-04-22T10:11:12+05:30", 1114, "0"),
        text("2026-04-22 10:11:12")
    );
    assert_eq!(
        doc("2026-04-22T00:00:00Z", 1082, "1"),
        bytes(&9608i32.to_be_bytes())
    );
    assert_eq!(
        doc("{uuid: !!binary AAECAwQFBgcICQoLDA0ODw==}", 2950, "0"),
        text("00010203-0405-0607-0809-0a0b0c0d0e0f")
    );
}

#[test]
fn copy_output_notices_and_notifications_are_replayed_in_order() {
    let yaml = r#"
version: api.keploy.io/v1beta1
kind: PostgresV3
name: mock-copy
spec:
    postgresV3:
        type: query
        query:
            sqlNormalized: COPY items (id) TO STDOUT
            invocationId: "2:0"
            response:
                commandComplete: COPY 2
                copyOut:
                    overallFormat: 0
                    columnFormatCodes: [0]
                    data:
                        - !!binary MQo=
                        - !!binary Mgo=
                notices:
                    - severity: NOTICE
                      code: "00000"
                      message: copying
                notifications:
                    - backendPID: 42
                      channel: items
                      payload: copied
    reqTimestampMock: 2026-04-22T10:00:00Z
    resTimestampMock: 2026-04-22T10:00:00.5Z
"#;
    let doc: Value = serde_yaml::from_str(yaml).expect("yaml");
    let mocks = convert("PostgresV3", &doc).expect("converts");
    let simple = shape(&mocks, "simple");
    assert_eq!(
        simple.spec.responses,
        [
            BackendMsg::CopyOutResponse {
                format: Format::Text,
                column_formats: vec![Format::Text]
            },
            BackendMsg::CopyData { data: text("1\n") },
            BackendMsg::CopyData { data: text("2\n") },
            BackendMsg::CopyDone,
            BackendMsg::NoticeResponse {
                fields: [
                    ('S', "NOTICE"),
                    ('V', "NOTICE"),
                    ('C', "00000"),
                    ('M', "copying")
                ]
                .into_iter()
                .map(|(k, v)| (k, v.to_string()))
                .collect()
            },
            BackendMsg::NotificationResponse {
                process_id: 42,
                channel: "items".into(),
                payload: "copied".into()
            },
            BackendMsg::CommandComplete {
                tag: "COPY 2".into()
            },
            BackendMsg::ReadyForQuery { status: 'I' },
        ]
    );
    let doc = edited_value(&doc, "!!binary not*base64");
    let err = convert("PostgresV3", &doc).expect_err("corrupt");
    assert!(
        err.contains("copyOut.data[0]` is not valid base64"),
        "{err}"
    );
}

/// `doc` with its first COPY chunk replaced by `chunk` (YAML text).
fn edited_value(doc: &Value, chunk: &str) -> Value {
    let mut doc = doc.clone();
    doc["spec"]["postgresV3"]["query"]["response"]["copyOut"]["data"][0] =
        serde_yaml::from_str(chunk).expect("yaml");
    doc
}

/// Where a value sits in a document.
#[derive(Clone)]
enum Step {
    Key(Value),
    Index(usize),
}

fn paths(value: &Value, at: &mut Vec<Step>, out: &mut Vec<Vec<Step>>) {
    out.push(at.clone());
    match value {
        Value::Mapping(map) => {
            for (k, v) in map {
                at.push(Step::Key(k.clone()));
                paths(v, at, out);
                at.pop();
            }
        }
        Value::Sequence(items) => {
            for (i, v) in items.iter().enumerate() {
                at.push(Step::Index(i));
                paths(v, at, out);
                at.pop();
            }
        }
        _ => {}
    }
}

fn replaced(doc: &Value, path: &[Step], with: &Value) -> Value {
    let mut doc = doc.clone();
    let mut at = &mut doc;
    for step in path {
        at = match (step, at) {
            (Step::Key(k), Value::Mapping(m)) => m.get_mut(k).expect("key from the walk"),
            (Step::Index(i), Value::Sequence(s)) => &mut s[*i],
            _ => unreachable!("the walk only records existing steps"),
        };
    }
    *at = with.clone();
    doc
}

/// Every node of every fixture document replaced by values of the wrong
/// type, out of range or corrupt: the converter answers, never panics.
#[test]
fn no_damage_to_a_document_makes_the_converter_panic() {
    let junk: Vec<Value> = [
        "null",
        "-1",
        "18446744073709551615",
        "1.5e300",
        "''",
        "'$9'",
        "'not*base64'",
        "'-'",
        "[1, [2]]",
        "{int: x, exp: 99999, nan: false, infinitymodifier: 0, valid: true}",
        "{format: 1, bytes: '%%'}",
        "{uuid: 'AAEC'}",
    ]
    .iter()
    .map(|y| serde_yaml::from_str(y).expect("yaml"))
    .collect();
    let mut tried = 0;
    for doc in documents(V3).iter().chain(documents(V2).iter()) {
        let kind = doc["kind"].as_str().expect("kind").to_string();
        let mut all = Vec::new();
        paths(doc, &mut Vec::new(), &mut all);
        for path in &all {
            for with in &junk {
                let damaged = replaced(doc, path, with);
                let _ = convert(&kind, &damaged);
                tried += 1;
            }
        }
    }
    assert!(tried > 1000, "only {tried} damaged documents tried");
}
