//! User-space cost of recording one PostgreSQL exchange.
//!
//! The exchange is what `pgbench -S -M extended` sends and gets back
//! (Parse/Bind/Describe/Execute/Sync and six answers). Measured without any
//! I/O, in the same run:
//!
//! - `decode`: the baseline, decoding both directions' bytes — what any
//!   recorder that looks at the traffic pays;
//! - `group`: decoding plus grouping into an exchange ([`ConnFramer`]),
//!   which builds the mock;
//! - `record`: all of that plus naming the mock and rendering it as the
//!   `mocks.yaml` document the writer appends.
//!
//! The proxy's forwarding and the file write are not in these figures;
//! `bench/pg/run.sh` measures the whole proxy against pgbouncer.

use bytes::BytesMut;
use chrono::Utc;
use criterion::{criterion_group, criterion_main, Criterion};
use postgres_protocol::message::frontend;
use recplay_proxy::pgwire::backend::encode_backend;
use recplay_proxy::pgwire::backend::BackendMessage;
use recplay_proxy::pgwire::frontend::{DecodeContext, FrontendMessage};
use recplay_proxy::testset::pg_exchange::ConnFramer;
use recplay_proxy::testset::pg_mock::{BackendMsg, FieldDescription, Format, PgMock, PgValue};
use recplay_proxy::testset::store::render_mocks;
use recplay_proxy::window::TestWindows;

const QUERY: &str = "SELECT abalance FROM pgbench_accounts WHERE aid = $1;";

fn client_bytes() -> BytesMut {
    let mut buf = BytesMut::new();
    frontend::parse("", QUERY, [], &mut buf).expect("parse");
    frontend::bind(
        "",
        "",
        [0],
        ["44450"],
        |value, out| {
            out.extend_from_slice(value.as_bytes());
            Ok(postgres_protocol::IsNull::No)
        },
        [0],
        &mut buf,
    )
    .map_err(|_| "bind")
    .expect("bind");
    frontend::describe(b'P', "", &mut buf).expect("describe");
    frontend::execute("", 0, &mut buf).expect("execute");
    frontend::sync(&mut buf);
    buf
}

fn server_bytes() -> BytesMut {
    let mut buf = BytesMut::new();
    for msg in [
        BackendMsg::ParseComplete,
        BackendMsg::BindComplete,
        BackendMsg::RowDescription {
            fields: vec![FieldDescription {
                name: "abalance".into(),
                table_oid: 16390,
                column_id: 3,
                type_oid: 23,
                type_size: 4,
                type_modifier: -1,
                format: Format::Text,
            }],
        },
        BackendMsg::DataRow {
            values: vec![PgValue::Text("0".into())],
        },
        BackendMsg::CommandComplete {
            tag: "SELECT 1".into(),
        },
        BackendMsg::ReadyForQuery { status: 'I' },
    ] {
        encode_backend(&msg, &mut buf).expect("encode");
    }
    buf
}

/// Decodes every message in `bytes`, handing each to `each`.
fn decode_client(bytes: &[u8], mut each: impl FnMut(FrontendMessage)) {
    let ctx = DecodeContext::ready();
    let mut at = 0;
    while let Ok(Some((msg, used))) = FrontendMessage::decode(&bytes[at..], &ctx) {
        at += used;
        each(msg);
    }
}

fn decode_server(bytes: &[u8], mut each: impl FnMut(BackendMessage)) {
    let mut at = 0;
    while let Ok(Some((msg, used))) = BackendMessage::decode(&bytes[at..]) {
        at += used;
        each(msg);
    }
}

fn record_one_exchange(c: &mut Criterion) {
    let (client, server) = (client_bytes(), server_bytes());
    let mut group = c.benchmark_group("pg_record");
    group.bench_function("decode", |b| {
        b.iter(|| {
            let mut n = 0;
            decode_client(&client, |_| n += 1);
            decode_server(&server, |_| n += 1);
            n
        })
    });
    let mut recorder = ConnFramer::new(1, TestWindows::new());
    group.bench_function("group", |b| {
        b.iter(|| {
            let now = Utc::now();
            decode_client(&client, |msg| recorder.on_frontend(msg, now));
            let mut done = Vec::new();
            decode_server(&server, |msg| done.extend(recorder.on_backend(msg, now)));
            done
        })
    });
    let mut recorder = ConnFramer::new(1, TestWindows::new());
    let mut number = 0u64;
    group.bench_function("record", |b| {
        b.iter(|| {
            let now = Utc::now();
            decode_client(&client, |msg| recorder.on_frontend(msg, now));
            let mut mocks = Vec::new();
            decode_server(&server, |msg| {
                if let Some(spec) = recorder.on_backend(msg, now) {
                    number += 1;
                    mocks.push(PgMock::new(format!("mock-{number}"), spec));
                }
            });
            render_mocks(&mocks)
        })
    });
    group.finish();
}

criterion_group!(benches, record_one_exchange);
criterion_main!(benches);
