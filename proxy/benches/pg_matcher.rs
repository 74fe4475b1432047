//! Matcher look-up cost as the recording grows.
//!
//! Each measured exchange is what the mock server does per client exchange:
//! lex and identify the live query, then find its answer. Recordings of
//! 1,000, 10,000 and 100,000 mocks, each a Django-style content-type lookup
//! differing only in literals (the worst case for a matcher that keeps
//! literals: every mock shares one shape). The baseline, measured in the same
//! run, is identification alone — so `find` ratios show what the index adds.

use std::time::{Duration, Instant};

use chrono::Utc;
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use recplay_proxy::pg::matcher::{identify, MatchStrategy, Matcher, Outcome, Statements};
use recplay_proxy::testset::pg_mock::{
    BackendMsg, FrontendMsg, Lifetime, MockSpec, PgMock, PgValue,
};

fn query(i: usize) -> String {
    format!(
        r#"SELECT "django_content_type"."id", "django_content_type"."app_label", "django_content_type"."model" FROM "django_content_type" WHERE ("django_content_type"."app_label" = 'app{}' AND "django_content_type"."model" = 'model{i}') LIMIT 21"#,
        i % 50
    )
}

fn mocks(n: usize) -> Vec<PgMock> {
    (0..n)
        .map(|i| {
            PgMock::new(
                format!("mock-{i}"),
                MockSpec {
                    connection: 1 + (i % 8) as u64,
                    position: i as u64,
                    lifetime: Lifetime::Test(format!("test-{}", i / 10)),
                    startup: Default::default(),
                    request_timestamp: Utc::now(),
                    response_timestamp: Utc::now(),
                    requests: vec![FrontendMsg::Query { query: query(i) }],
                    responses: vec![
                        BackendMsg::DataRow {
                            values: vec![PgValue::Text(i.to_string())],
                        },
                        BackendMsg::CommandComplete {
                            tag: "SELECT 1".into(),
                        },
                        BackendMsg::ReadyForQuery { status: 'I' },
                    ],
                },
            )
        })
        .collect()
}

/// A pseudo-random walk over the recording, so look-ups do not follow
/// insertion order (a stride coprime with every size used).
fn order(n: usize) -> Vec<usize> {
    (0..n).map(|k| (k * 7919 + 13) % n).collect()
}

fn lookups(c: &mut Criterion) {
    let mut group = c.benchmark_group("pg_matcher");
    group.measurement_time(Duration::from_secs(3));
    group.sample_size(20);
    for n in [1_000usize, 10_000, 100_000] {
        let recorded = mocks(n);
        let walk = order(n);
        let live: Vec<FrontendMsg> = walk
            .iter()
            .map(|&i| FrontendMsg::Query { query: query(i) })
            .collect();

        group.bench_function(BenchmarkId::new("baseline_identify_only", n), |b| {
            let mut k = 0;
            b.iter(|| {
                k = (k + 1) % n;
                let id = identify(std::slice::from_ref(&live[k]), &mut Statements::new());
                std::hint::black_box(id.is_ok())
            })
        });

        group.bench_function(BenchmarkId::new("identify_and_find", n), |b| {
            let mut matcher = Matcher::new(recorded.clone(), MatchStrategy::Exact);
            b.iter_custom(|iters| {
                matcher.rewind();
                let mut spent = Duration::ZERO;
                let mut k = 0;
                for _ in 0..iters {
                    if k == n {
                        // Every data mock consumed: start over, untimed.
                        matcher.rewind();
                        k = 0;
                    }
                    let test = format!("test-{}", walk[k] / 10);
                    let start = Instant::now();
                    let id = identify(std::slice::from_ref(&live[k]), &mut Statements::new());
                    let hit = match id {
                        Ok(id) => matches!(
                            matcher.find(&id, Some(&test)),
                            Outcome::Answer { fallback: None, .. }
                        ),
                        Err(_) => false,
                    };
                    spent += start.elapsed();
                    assert!(hit, "every recorded query must hit exactly");
                    k += 1;
                }
                spent
            })
        });
    }
    group.finish();
}

criterion_group!(benches, lookups);
criterion_main!(benches);
