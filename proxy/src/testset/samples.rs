//! Seeded test sets for the round-trip and corruption tests: mocks and
//! test cases with awkward strings in every string field and random bytes
//! wherever the format stores bytes.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, TimeZone, Utc};

use crate::testset::http_case::{Assertions, HttpRequest, HttpResponse, HttpSpec};
use crate::testset::http_form::store_body;
use crate::testset::pg_mock::*;
use crate::testset::test_rng::Rng;
use crate::testset::HttpTestCase;

fn when(rng: &mut Rng) -> DateTime<Utc> {
    let secs = (rng.next_u64() % 4_000_000_000) as i64;
    let nanos = (rng.next_u64() % 1_000_000_000) as u32;
    Utc.timestamp_opt(secs, nanos).single().unwrap_or_default()
}

fn string_map(rng: &mut Rng) -> BTreeMap<String, String> {
    (0..rng.below(4))
        .map(|_| (rng.awkward_string(), rng.awkward_string()))
        .collect()
}

fn value(rng: &mut Rng) -> PgValue {
    match rng.below(4) {
        0 => PgValue::Null,
        1 => PgValue::Text(rng.awkward_string()),
        _ => PgValue::from_bytes(Some(&rng.awkward_bytes())),
    }
}

fn values(rng: &mut Rng) -> Vec<PgValue> {
    (0..rng.below(5)).map(|_| value(rng)).collect()
}

fn fields(rng: &mut Rng) -> BTreeMap<char, String> {
    let mut fields: BTreeMap<char, String> = (0..rng.below(4))
        .filter_map(|_| rng.awkward_string().chars().next())
        .map(|c| (c, "x".to_string()))
        .collect();
    fields.insert('M', rng.awkward_string());
    fields
}

pub fn mock(rng: &mut Rng, n: u64) -> PgMock {
    let lifetime = match rng.below(3) {
        0 => Lifetime::Session,
        1 => Lifetime::Unattributed,
        _ => Lifetime::Test(rng.awkward_string()),
    };
    PgMock::new(
        format!("mock-{n}"),
        MockSpec {
            connection: rng.next_u64(),
            position: rng.next_u64() % 100,
            lifetime,
            startup: Arc::new(string_map(rng)),
            request_timestamp: when(rng),
            response_timestamp: when(rng),
            requests: vec![
                FrontendMsg::Query {
                    query: rng.awkward_string(),
                },
                FrontendMsg::Parse {
                    name: rng.awkward_string(),
                    query: rng.awkward_string(),
                    param_types: vec![rng.next_u64() as u32],
                },
                FrontendMsg::Bind {
                    portal: rng.awkward_string(),
                    statement: rng.awkward_string(),
                    statement_query: rng.chance(2).then(|| rng.awkward_string()),
                    param_formats: vec![Format::Binary],
                    params: values(rng),
                    result_formats: vec![],
                },
                FrontendMsg::CopyData { data: value(rng) },
                FrontendMsg::CopyFail {
                    message: rng.awkward_string(),
                },
                FrontendMsg::Sync,
            ],
            responses: vec![
                BackendMsg::ParameterStatus {
                    name: rng.awkward_string(),
                    value: rng.awkward_string(),
                },
                BackendMsg::RowDescription {
                    fields: vec![FieldDescription {
                        name: rng.awkward_string(),
                        table_oid: 0,
                        column_id: -1,
                        type_oid: 25,
                        type_size: -1,
                        type_modifier: -1,
                        format: Format::Text,
                    }],
                },
                BackendMsg::DataRow {
                    values: values(rng),
                },
                BackendMsg::CommandComplete {
                    tag: rng.awkward_string(),
                },
                BackendMsg::ErrorResponse {
                    fields: fields(rng),
                },
                BackendMsg::NotificationResponse {
                    process_id: rng.next_u64() as i32,
                    channel: rng.awkward_string(),
                    payload: rng.awkward_string(),
                },
                BackendMsg::ReadyForQuery { status: 'I' },
            ],
        },
    )
}

fn formats(rng: &mut Rng) -> Vec<Format> {
    (0..rng.below(3))
        .map(|_| {
            if rng.chance(2) {
                Format::Text
            } else {
                Format::Binary
            }
        })
        .collect()
}

fn target(rng: &mut Rng) -> Target {
    if rng.chance(2) {
        Target::Statement
    } else {
        Target::Portal
    }
}

/// A mock holding every kind of message, each with awkward contents, and
/// lists that are empty as often as not.
pub fn mock_with_every_message(rng: &mut Rng, n: u64) -> PgMock {
    let mut mock = mock(rng, n);
    let oids =
        |rng: &mut Rng| -> Vec<u32> { (0..rng.below(3)).map(|_| rng.next_u64() as u32).collect() };
    mock.spec.requests = vec![
        FrontendMsg::Startup {
            protocol: "3.0".into(),
            parameters: string_map(rng),
        },
        FrontendMsg::Query {
            query: rng.awkward_string(),
        },
        FrontendMsg::Parse {
            name: rng.awkward_string(),
            query: rng.awkward_string(),
            param_types: oids(rng),
        },
        FrontendMsg::Bind {
            portal: rng.awkward_string(),
            statement: rng.awkward_string(),
            statement_query: rng.chance(2).then(|| rng.awkward_string()),
            param_formats: formats(rng),
            params: values(rng),
            result_formats: formats(rng),
        },
        FrontendMsg::Describe {
            target: target(rng),
            name: rng.awkward_string(),
        },
        FrontendMsg::Execute {
            portal: rng.awkward_string(),
            max_rows: rng.next_u64() as i32,
        },
        FrontendMsg::Close {
            target: target(rng),
            name: rng.awkward_string(),
        },
        FrontendMsg::Sync,
        FrontendMsg::Flush,
        FrontendMsg::CopyData { data: value(rng) },
        FrontendMsg::CopyDone,
        FrontendMsg::CopyFail {
            message: rng.awkward_string(),
        },
        FrontendMsg::FunctionCall {
            function_oid: rng.next_u64() as u32,
            arg_formats: formats(rng),
            args: values(rng),
            result_format: Format::Binary,
        },
        FrontendMsg::Terminate,
    ];
    let copy_format = |rng: &mut Rng| formats(rng).first().copied().unwrap_or(Format::Text);
    mock.spec.responses = vec![
        BackendMsg::AuthenticationOk,
        BackendMsg::ParameterStatus {
            name: rng.awkward_string(),
            value: rng.awkward_string(),
        },
        BackendMsg::BackendKeyData {
            process_id: rng.next_u64() as i32,
            secret_key: rng.next_u64() as i32,
        },
        BackendMsg::ParseComplete,
        BackendMsg::BindComplete,
        BackendMsg::CloseComplete,
        BackendMsg::NoData,
        BackendMsg::PortalSuspended,
        BackendMsg::EmptyQueryResponse,
        BackendMsg::ParameterDescription { types: oids(rng) },
        BackendMsg::RowDescription {
            fields: (0..rng.below(3))
                .map(|_| FieldDescription {
                    name: rng.awkward_string(),
                    table_oid: rng.next_u64() as u32,
                    column_id: rng.next_u64() as i16,
                    type_oid: rng.next_u64() as u32,
                    type_size: rng.next_u64() as i16,
                    type_modifier: rng.next_u64() as i32,
                    format: copy_format(rng),
                })
                .collect(),
        },
        BackendMsg::DataRow {
            values: values(rng),
        },
        BackendMsg::CommandComplete {
            tag: rng.awkward_string(),
        },
        BackendMsg::ErrorResponse {
            fields: fields(rng),
        },
        BackendMsg::NoticeResponse {
            fields: if rng.chance(3) {
                BTreeMap::new()
            } else {
                fields(rng)
            },
        },
        BackendMsg::NotificationResponse {
            process_id: rng.next_u64() as i32,
            channel: rng.awkward_string(),
            payload: rng.awkward_string(),
        },
        BackendMsg::CopyInResponse {
            format: copy_format(rng),
            column_formats: formats(rng),
        },
        BackendMsg::CopyOutResponse {
            format: copy_format(rng),
            column_formats: formats(rng),
        },
        BackendMsg::CopyBothResponse {
            format: copy_format(rng),
            column_formats: formats(rng),
        },
        BackendMsg::CopyData { data: value(rng) },
        BackendMsg::CopyDone,
        BackendMsg::FunctionCallResponse { result: value(rng) },
        BackendMsg::ReadyForQuery {
            status: rng.awkward_string().chars().next().unwrap_or('T'),
        },
    ];
    if rng.chance(4) {
        mock.spec.requests.clear();
    }
    if rng.chance(4) {
        mock.spec.responses.clear();
    }
    mock
}

fn body(rng: &mut Rng) -> (Vec<u8>, crate::testset::http_case::StoredBody) {
    let bytes = rng.awkward_bytes();
    (bytes.clone(), store_body(bytes, None, None, 1 << 20))
}

pub fn test_case(rng: &mut Rng, n: u64) -> (HttpTestCase, Vec<u8>, Vec<u8>) {
    let (req_bytes, req_body) = body(rng);
    let (resp_bytes, resp_body) = body(rng);
    let noise = (0..rng.below(3))
        .map(|_| {
            let patterns = (0..rng.below(3)).map(|_| rng.awkward_string()).collect();
            (rng.awkward_string(), patterns)
        })
        .collect();
    let spec = HttpSpec {
        metadata: string_map(rng),
        req: HttpRequest {
            method: rng.awkward_string(),
            proto_major: 1,
            proto_minor: 1,
            url: rng.awkward_string(),
            url_params: string_map(rng),
            header: string_map(rng).into_iter().collect(),
            body: req_body,
            timestamp: when(rng),
        },
        resp: HttpResponse {
            status_code: rng.next_u64() as u16,
            header: string_map(rng).into_iter().collect(),
            body: resp_body,
            status_message: rng.awkward_string(),
            proto_major: 1,
            proto_minor: 1,
            timestamp: when(rng),
        },
        objects: vec![],
        assertions: Assertions {
            noise,
            other: BTreeMap::new(),
        },
        created: rng.next_u64() as i64,
    };
    let mut case = HttpTestCase::new(format!("test-{n}"), spec);
    case.curl = rng.awkward_string();
    case.spec.resp.body.header_repeated = (0..rng.below(3))
        .map(|_| {
            let values = (0..rng.below(3)).map(|_| rng.awkward_string()).collect();
            (rng.awkward_string(), values)
        })
        .collect();
    (case, req_bytes, resp_bytes)
}
