//! Test sets as Keploy writes them: its mocks.yaml loads as it is, kinds
//! recplay does not serve are counted and never fail a test, and its v1
//! Postgres mocks are served to real clients by the mock server.
//!
//! The v1 mocks are written from real traffic: a relay in front of a real
//! PostgreSQL keeps every read, and the test support writes them in
//! Keploy's v1 layout (see `support::keploy_v1`).

mod app;
mod clients;
mod run;

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use recplay_proxy::testset::{HttpSpec, HttpTestCase, LoadedTestSet, TestSetDir};

const SEED: &str = "CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price float8);
INSERT INTO items VALUES (1, 'alpha', 1.25), (2, 'beta', 2.5), (3, 'gamma', NULL),
  (4, 'delta', 4.0), (5, 'epsilon', 5.5);";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/keploy-mocks")
        .join(name)
}

/// Test windows as `(test, opened, closed)`.
type Window = (&'static str, DateTime<Utc>, DateTime<Utc>);

/// A test set in `dir` with `mocks` as its mocks.yaml and an empty test
/// case per window (only the windows matter to the mocks).
fn write_set(dir: &Path, mocks: &str, windows: &[Window]) -> TestSetDir {
    let set = TestSetDir::create_next(dir).expect("test set");
    std::fs::write(set.mocks_path(), mocks).expect("mocks.yaml");
    for (name, opened, closed) in windows {
        let mut case = HttpTestCase::new(*name, HttpSpec::default());
        case.spec.req.method = "GET".into();
        case.spec.req.url = "http://app/".into();
        case.spec.req.timestamp = *opened;
        case.spec.resp.status_code = 200;
        case.spec.resp.timestamp = *closed;
        set.write_test(&case).expect("test case");
    }
    set
}

fn load(set: &TestSetDir) -> LoadedTestSet {
    let loaded = set.load().expect("loads");
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    loaded
}

#[test]
fn every_kind_keploy_writes_loads_and_the_unserved_are_counted() {
    let set = TestSetDir::open(fixture("other-kinds/test-set-0"));
    let loaded = load(&set);
    assert!(loaded.mocks.is_empty());
    let urls: Vec<&str> = loaded
        .http_mocks
        .iter()
        .map(|m| m.spec.req.url.as_str())
        .collect();
    assert_eq!(
        urls,
        [
            "http://rates.internal:8080/v1/rates?base=EUR",
            "http://mailer.internal:9000/send"
        ]
    );
    assert_eq!(loaded.http_mocks[1].spec.resp.status_code, 202);
    assert_eq!(loaded.http_mocks[1].spec.req.method, "POST");
    let counts: Vec<(&str, u64)> = loaded
        .unserved
        .iter()
        .map(|(k, n)| (k.as_str(), *n))
        .collect();
    assert_eq!(
        counts,
        [
            ("DNS", 1),
            ("Generic", 2),
            ("Mongo", 2),
            ("MySQL", 2),
            ("Redis", 2),
            ("gRPC", 1)
        ]
    );
    assert!(loaded
        .unserved_notes()
        .contains(&"2 Mongo mocks: not served by recplay".to_string()));
}
