//! Writes a synthetic mocks.yaml of a given size for the memory benchmark
//! (`bench/memory/run.sh`), with recplay's own writer: pgbench's TPC-B
//! transactions over the simple protocol, one test per transaction, after
//! one recorded start-up.
//!
//! Usage: memory_bench mocks DIR MEGABYTES
//! Writes DIR/test-set-0/mocks.yaml and prints the number of mocks.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use chrono::{TimeZone, Utc};
use recplay_proxy::testset::pg_mock::{FieldDescription, Format};
use recplay_proxy::testset::store::render_mocks_into;
use recplay_proxy::testset::{BackendMsg, FrontendMsg, Lifetime, PgMock, PgValue};

/// A small, seeded generator: the same file for the same size.
struct Rng(u64);

impl Rng {
    fn below(&mut self, n: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % n
    }
}

fn mock(
    n: u64,
    lifetime: Lifetime,
    requests: Vec<FrontendMsg>,
    responses: Vec<BackendMsg>,
) -> PgMock {
    let at = Utc
        .timestamp_opt(
            1_780_000_000 + (n / 1000) as i64,
            (n % 1000) as u32 * 1_000_000,
        )
        .single()
        .unwrap_or_default();
    PgMock::new(
        format!("mock-{n}"),
        recplay_proxy::testset::MockSpec {
            connection: 1,
            position: n,
            lifetime,
            startup: Arc::new(BTreeMap::new()),
            request_timestamp: at,
            response_timestamp: at,
            requests,
            responses,
        },
    )
}

fn query(text: String) -> Vec<FrontendMsg> {
    vec![FrontendMsg::Query { query: text }]
}

fn done(tag: &str) -> Vec<BackendMsg> {
    vec![
        BackendMsg::CommandComplete { tag: tag.into() },
        BackendMsg::ReadyForQuery { status: 'T' },
    ]
}

fn startup() -> PgMock {
    let parameters: BTreeMap<String, String> = [("user", "postgres"), ("database", "pgbench")]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut m = mock(
        0,
        Lifetime::Session,
        vec![FrontendMsg::Startup {
            protocol: "3.0".into(),
            parameters: parameters.clone(),
        }],
        vec![
            BackendMsg::ParameterStatus {
                name: "server_version".into(),
                value: "15.0".into(),
            },
            BackendMsg::BackendKeyData {
                process_id: 42,
                secret_key: 7,
            },
            BackendMsg::ReadyForQuery { status: 'I' },
        ],
    );
    m.spec.startup = Arc::new(parameters);
    m
}

/// One pgbench TPC-B transaction as seven mocks of test `test-N`.
fn transaction(test: u64, first: u64, rng: &mut Rng) -> Vec<PgMock> {
    let (aid, bid, tid) = (
        1 + rng.below(100_000),
        1 + rng.below(10),
        1 + rng.below(100),
    );
    let delta = rng.below(10_001) as i64 - 5_000;
    let life = || Lifetime::Test(format!("test-{test}"));
    let mut row = vec![BackendMsg::RowDescription {
        fields: vec![FieldDescription {
            name: "abalance".into(),
            table_oid: 16_400,
            column_id: 3,
            type_oid: 23,
            type_size: 4,
            type_modifier: -1,
            format: Format::Text,
        }],
    }];
    row.push(BackendMsg::DataRow {
        values: vec![PgValue::Text((delta * 3).to_string())],
    });
    row.extend(done("SELECT 1"));
    let steps: [(String, Vec<BackendMsg>); 7] = [
        ("BEGIN;".into(), done("BEGIN")),
        (
            format!("UPDATE pgbench_accounts SET abalance = abalance + {delta} WHERE aid = {aid};"),
            done("UPDATE 1"),
        ),
        (format!("SELECT abalance FROM pgbench_accounts WHERE aid = {aid};"), row),
        (
            format!("UPDATE pgbench_tellers SET tbalance = tbalance + {delta} WHERE tid = {tid};"),
            done("UPDATE 1"),
        ),
        (
            format!("UPDATE pgbench_branches SET bbalance = bbalance + {delta} WHERE bid = {bid};"),
            done("UPDATE 1"),
        ),
        (
            format!("INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES ({tid}, {bid}, {aid}, {delta}, CURRENT_TIMESTAMP);"),
            done("INSERT 0 1"),
        ),
        ("END;".into(), done("COMMIT")),
    ];
    steps
        .into_iter()
        .zip(first..)
        .map(|((text, responses), n)| mock(n, life(), query(text), responses))
        .collect()
}

fn write_mocks(dir: &str, megabytes: u64) -> Result<u64> {
    let set = std::path::Path::new(dir).join("test-set-0");
    std::fs::create_dir_all(set.join("tests"))
        .with_context(|| format!("creating {}", set.display()))?;
    let path = set.join("mocks.yaml");
    let file =
        std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let target = megabytes * 1_000_000;
    let mut text = String::new();
    render_mocks_into(&[startup()], &mut text);
    let (mut written, mut mocks, mut test) = (0u64, 1u64, 1u64);
    let mut rng = Rng(0x9e37_79b9_7f4a_7c15);
    while written < target {
        let batch = transaction(test, mocks, &mut rng);
        mocks += batch.len() as u64;
        test += 1;
        render_mocks_into(&batch, &mut text);
        written += text.len() as u64;
        out.write_all(text.as_bytes())?;
        text.clear();
    }
    out.flush()?;
    Ok(mocks)
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["mocks", dir, megabytes] => {
            let megabytes: u64 = megabytes.parse().context("MEGABYTES must be a number")?;
            println!("{}", write_mocks(dir, megabytes)?);
            Ok(())
        }
        _ => bail!("usage: memory_bench mocks DIR MEGABYTES"),
    }
}
