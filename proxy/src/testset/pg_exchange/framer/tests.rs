//! Grouping rules, fed with decoded messages as a connection would.

use super::*;
use crate::pgwire::backend::BackendMessage as B;
use crate::pgwire::frontend::FrontendMessage as F;
use crate::pgwire::recorded::PgValue;

fn rec() -> ConnFramer {
    ConnFramer::new(1, TestWindows::new())
}

fn feed(r: &mut ConnFramer, front: &[F], back: &[B]) -> Vec<MockSpec> {
    let now = Utc::now();
    for f in front {
        r.on_frontend(f.clone(), now);
    }
    back.iter()
        .flat_map(|b| r.on_backend(b.clone(), now))
        .collect()
}

fn parse(name: &str, q: &str) -> F {
    F::Parse {
        name: name.into(),
        query: q.into(),
        param_types: vec![],
    }
}

fn bind(stmt: &str, params: Vec<Option<Vec<u8>>>, result_formats: Vec<Format>) -> F {
    F::Bind {
        portal: String::new(),
        statement: stmt.into(),
        param_formats: vec![],
        params,
        result_formats,
    }
}

fn exec() -> F {
    F::Execute {
        portal: String::new(),
        max_rows: 0,
    }
}

fn cc(tag: &str) -> B {
    B::CommandComplete { tag: tag.into() }
}

fn rfq() -> B {
    B::ReadyForQuery { status: b'I' }
}

#[test]
fn a_prepared_statement_is_resolved_in_a_later_exchange_and_binary_rows_stay_base64() {
    let mut r = rec();
    let done = feed(
        &mut r,
        &[parse("s1", "SELECT id FROM t WHERE id = $1"), F::Sync],
        &[B::ParseComplete, rfq()],
    );
    assert_eq!(done.len(), 1);
    let done = feed(
        &mut r,
        &[
            bind("s1", vec![Some(b"7".to_vec())], vec![Format::Binary]),
            exec(),
            F::Sync,
        ],
        &[
            B::BindComplete,
            B::DataRow {
                values: vec![Some(vec![0, 0, 0, 7])],
            },
            cc("SELECT 1"),
            rfq(),
        ],
    );
    assert_eq!(done.len(), 1);
    let m = &done[0];
    assert_eq!(m.position, 1);
    assert_eq!(m.lifetime, Lifetime::Unattributed);
    let FrontendMsg::Bind {
        statement_query,
        params,
        ..
    } = &m.requests[0]
    else {
        panic!("a Bind first");
    };
    assert_eq!(
        statement_query.as_deref(),
        Some("SELECT id FROM t WHERE id = $1")
    );
    assert_eq!(params, &vec![PgValue::Text("7".into())]);
    assert_eq!(
        m.responses[1],
        BackendMsg::DataRow {
            values: vec![PgValue::Bytes {
                base64: "AAAABw==".into()
            }]
        }
    );
    assert!(r.idle());
}

#[test]
fn pipelined_exchanges_get_their_own_answers() {
    let mut r = rec();
    let done = feed(
        &mut r,
        &[F::Query("SELECT 1".into()), F::Query("SET x = 1".into())],
        &[cc("SELECT 1"), rfq(), cc("SET"), rfq()],
    );
    assert_eq!(done.len(), 2);
    assert_eq!(
        done[0].requests,
        vec![FrontendMsg::Query {
            query: "SELECT 1".into()
        }]
    );
    assert_eq!(done[0].responses.len(), 2);
    assert_eq!(done[1].lifetime, Lifetime::Session);
}

#[test]
fn an_extended_copy_in_keeps_its_data_and_second_sync() {
    let mut r = rec();
    let mut done = feed(
        &mut r,
        &[bind("", vec![], vec![]), exec(), F::Sync],
        &[
            B::BindComplete,
            B::CopyInResponse {
                format: Format::Text,
                column_formats: vec![Format::Text],
            },
        ],
    );
    done.extend(feed(
        &mut r,
        &[F::CopyData(b"1\n".to_vec()), F::CopyDone, F::Sync],
        &[cc("COPY 1"), rfq()],
    ));
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].requests.len(), 6);
    assert!(r.idle());
}

#[test]
fn a_flush_ends_a_batch_once_everything_is_answered() {
    let mut r = rec();
    let done = feed(
        &mut r,
        &[
            parse("", "SELECT 1"),
            F::Describe {
                target: Target::Statement,
                name: String::new(),
            },
            F::Flush,
        ],
        &[
            B::ParseComplete,
            B::ParameterDescription { types: vec![] },
            B::RowDescription { fields: vec![] },
        ],
    );
    assert_eq!(done.len(), 1);
    assert_eq!(done[0].requests.last(), Some(&FrontendMsg::Flush));
    assert!(r.idle());
}

#[test]
fn an_error_ends_the_batch_at_ready_for_query() {
    let mut r = rec();
    let err = B::ErrorResponse {
        fields: [('C', "22012".to_string())].into_iter().collect(),
    };
    let done = feed(
        &mut r,
        &[
            parse("", "SELECT 1/0"),
            bind("", vec![], vec![]),
            exec(),
            F::Sync,
        ],
        &[
            B::ParseComplete,
            B::BindComplete,
            err,
            B::ReadyForQuery { status: b'E' },
        ],
    );
    assert_eq!(done.len(), 1);
    assert_eq!(
        done[0].responses.last(),
        Some(&BackendMsg::ReadyForQuery { status: 'E' })
    );
}
