//! Keploy v1 Postgres mocks written from real traffic, served to real
//! clients with the database stopped; and `recplay test` on a Keploy set.

use std::process::Command;

use chrono::Utc;
use recplay_proxy::pg::matcher::MatchStrategy;
use recplay_proxy::testset::pg_mock::{BackendMsg, Lifetime};
use recplay_proxy::window::TestWindows;

use super::clients::{connect, extended, login, psql, psycopg2, simple_rows};
use super::{fixture, load, write_set, SEED};
use crate::support::demo_app::DemoApp;
use crate::support::keploy_v1::Capture;
use crate::support::pg::{PgCluster, TcpAuth};
use crate::support::pg_replay::Replay;

const SIMPLE: [&str; 3] = [
    "SELECT id, name, price FROM items ORDER BY id",
    "SELECT name FROM items WHERE name = 'gamma'",
    "SELECT * FROM no_such_table",
];

/// With `RECPLAY_WRITE_KEPLOY_FIXTURE` set, the mocks it writes become the
/// committed postgres-v1-simple fixture.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn psql_and_psycopg2_are_served_keploys_v1_mocks_in_the_simple_protocol() {
    let pg = PgCluster::start();
    pg.psql(SEED);
    let capture = Capture::start(&pg.addr()).await;
    let addr = capture.addr;
    let recorded_psql = tokio::task::spawn_blocking(move || psql(addr, SIMPLE[0]))
        .await
        .expect("psql");
    let recorded_py = tokio::task::spawn_blocking(move || psycopg2(addr, &SIMPLE))
        .await
        .expect("psycopg2");
    assert!(recorded_psql.contains("3|gamma|"), "{recorded_psql}");
    assert!(recorded_py.contains("'epsilon', 5.5"), "{recorded_py}");
    assert!(recorded_py.contains("error 42P01"), "{recorded_py}");
    let mocks_yaml = capture.keploy_v1();
    pg.stop();
    if std::env::var_os("RECPLAY_WRITE_KEPLOY_FIXTURE").is_some() {
        let path = fixture("postgres-v1-simple/test-set-0/mocks.yaml");
        std::fs::create_dir_all(path.parent().expect("dir")).expect("fixture dir");
        std::fs::write(&path, &mocks_yaml).expect("write fixture");
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let loaded = load(&write_set(dir.path(), &mocks_yaml, &[]));
    let replay = Replay::start(loaded.mocks, TestWindows::new(), MatchStrategy::Exact).await;
    let addr = replay.addr;
    let (replayed_psql, replayed_py, changed) = tokio::task::spawn_blocking(move || {
        (
            psql(addr, SIMPLE[0]),
            psycopg2(addr, &SIMPLE),
            psql(addr, "SELECT id, name, price FROM items ORDER BY id DESC"),
        )
    })
    .await
    .expect("clients");
    assert_eq!(replayed_psql, recorded_psql);
    assert_eq!(replayed_py, recorded_py);
    assert!(changed.contains("RP001"), "{changed}");
}

/// Keploy's v1 mocks of SCRAM and MD5 log-ins and extended-protocol
/// traffic. With `RECPLAY_WRITE_KEPLOY_FIXTURE` set, the mocks it writes
/// become the committed postgres-v1 fixture.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tokio_postgres_is_served_keploys_v1_mocks_after_scram_and_md5_log_ins() {
    let pg = PgCluster::start_with(TcpAuth::Passwords);
    pg.psql(SEED);
    pg.psql(
        "SET password_encryption = 'scram-sha-256'; CREATE ROLE alice LOGIN PASSWORD 'alice-pw'; \
         SET password_encryption = 'md5'; CREATE ROLE md5bob LOGIN PASSWORD 'bob-pw'; \
         GRANT SELECT ON items TO alice, md5bob",
    );
    let capture = Capture::start(&pg.addr()).await;
    let mut recorded = Vec::new();
    for (user, password) in [("alice", "alice-pw"), ("md5bob", "bob-pw")] {
        let client = connect(&login(capture.addr, user, password)).await;
        recorded.extend(extended(&client).await);
    }
    let mocks_yaml = capture.keploy_v1();
    pg.stop();
    assert!(
        recorded.contains(&"(2, beta, Some(2.5))".to_string()),
        "{recorded:?}"
    );
    assert!(recorded.iter().any(|r| r.contains("42P01")), "{recorded:?}");
    if std::env::var_os("RECPLAY_WRITE_KEPLOY_FIXTURE").is_some() {
        let path = fixture("postgres-v1/test-set-0/mocks.yaml");
        std::fs::create_dir_all(path.parent().expect("dir")).expect("fixture dir");
        std::fs::write(&path, &mocks_yaml).expect("write fixture");
    }
    for secret in ["alice-pw", "bob-pw", "SCRAM-SHA-256", "n,,n=", "c=biws"] {
        assert!(!mocks_yaml.contains(secret), "the mocks hold {secret:?}");
    }

    let dir = tempfile::tempdir().expect("tempdir");
    let loaded = load(&write_set(dir.path(), &mocks_yaml, &[]));
    let replay = Replay::start(loaded.mocks, TestWindows::new(), MatchStrategy::Exact).await;
    let mut replayed = Vec::new();
    for (user, password) in [("alice", "alice-pw"), ("md5bob", "bob-pw")] {
        let client = connect(&login(replay.addr, user, password)).await;
        replayed.extend(extended(&client).await);
    }
    assert_eq!(replayed, recorded);

    let client = connect(&login(replay.addr, "alice", "alice-pw")).await;
    let miss = client
        .query("SELECT id, name, price FROM items WHERE id < $1", &[&4i32])
        .await
        .expect_err("a query never recorded misses");
    let code = miss.as_db_error().map(|e| e.code().code().to_string());
    assert_eq!(code.as_deref(), Some("RP001"), "{miss:?}");
}

#[test]
fn the_committed_postgres_v1_fixture_loads_into_served_mocks() {
    let set = recplay_proxy::testset::TestSetDir::open(fixture("postgres-v1/test-set-0"));
    let loaded = load(&set);
    let text = std::fs::read_to_string(set.mocks_path()).expect("fixture");
    let documents = text.matches("kind: Postgres").count();
    assert!(documents > 20, "{documents} documents");
    // Two log-ins, each a connection of its own, each kept as a session
    // start-up without its password exchange.
    let startups: Vec<_> = loaded
        .mocks
        .iter()
        .filter(|m| m.spec.position == 0)
        .collect();
    assert_eq!(startups.len(), 2);
    for s in &startups {
        assert_eq!(s.spec.lifetime, Lifetime::Session);
        assert!(s.spec.responses.contains(&BackendMsg::AuthenticationOk));
        assert!(!s.spec.startup.is_empty());
    }
    let users: Vec<&str> = startups
        .iter()
        .filter_map(|s| s.spec.startup.get("user").map(String::as_str))
        .collect();
    assert_eq!(users, ["alice", "md5bob"]);
    let errors = loaded
        .mocks
        .iter()
        .filter(|m| {
            m.spec
                .responses
                .iter()
                .any(|r| matches!(r, BackendMsg::ErrorResponse { fields } if fields.get(&'C').map(String::as_str) == Some("42P01")))
        })
        .count();
    assert_eq!(errors, 2);
    // Every exchange has its place on its connection, in order.
    for conn in [startups[0].spec.connection, startups[1].spec.connection] {
        let positions: Vec<u64> = loaded
            .mocks
            .iter()
            .filter(|m| m.spec.connection == conn)
            .map(|m| m.spec.position)
            .collect();
        assert_eq!(positions, (0..positions.len() as u64).collect::<Vec<_>>());
    }
}

#[test]
fn the_committed_simple_protocol_fixtures_load_into_served_mocks() {
    // psql and psycopg2 (which asks for TLS first and is told no).
    let set = recplay_proxy::testset::TestSetDir::open(fixture("postgres-v1-simple/test-set-0"));
    let loaded = load(&set);
    let queries: Vec<&str> = loaded
        .mocks
        .iter()
        .flat_map(|m| &m.spec.requests)
        .filter_map(|r| match r {
            recplay_proxy::testset::FrontendMsg::Query { query } => Some(query.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(queries, [SIMPLE[0], SIMPLE[0], SIMPLE[1], SIMPLE[2]]);
    let startups = loaded.mocks.iter().filter(|m| m.spec.position == 0).count();
    assert_eq!(startups, 2);
    // Keploy's decoded fields alone: an MD5 start-up, a simple query and a
    // prepared statement.
    let set = recplay_proxy::testset::TestSetDir::open(fixture("postgres-v1-fields/test-set-0"));
    let loaded = load(&set);
    assert_eq!(loaded.mocks.len(), 4);
    assert_eq!(loaded.mocks[0].spec.lifetime, Lifetime::Session);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_query_repeated_in_two_tests_gets_each_tests_recorded_answer() {
    let pg = PgCluster::start();
    pg.psql(SEED);
    let capture = Capture::start(&pg.addr()).await;
    let count = "SELECT count(*) FROM items";
    let client = connect(&crate::support::pg_replay::conn_str(capture.addr)).await;
    client
        .simple_query("SET application_name = 'shop'")
        .await
        .expect("set");
    let t1 = Utc::now();
    let first = simple_rows(&client, count).await;
    let t1_end = Utc::now();
    client
        .simple_query("INSERT INTO items VALUES (6, 'zeta', 6.0)")
        .await
        .expect("insert");
    let t2 = Utc::now();
    let second = simple_rows(&client, count).await;
    let t2_end = Utc::now();
    assert_ne!(first, second);
    let mocks_yaml = capture.keploy_v1();
    pg.stop();

    let dir = tempfile::tempdir().expect("tempdir");
    let loaded = load(&write_set(
        dir.path(),
        &mocks_yaml,
        &[("test-1", t1, t1_end), ("test-2", t2, t2_end)],
    ));
    let lifetimes: Vec<&Lifetime> = loaded.mocks.iter().map(|m| &m.spec.lifetime).collect();
    assert_eq!(
        lifetimes,
        [
            &Lifetime::Session,
            &Lifetime::Session,
            &Lifetime::Test("test-1".into()),
            &Lifetime::Unattributed,
            &Lifetime::Test("test-2".into())
        ]
    );

    // The later test first: each gets its own window's answer.
    let windows = TestWindows::new();
    let replay = Replay::start(loaded.mocks, windows.clone(), MatchStrategy::Exact).await;
    let client = connect(&replay.conn_str()).await;
    client
        .simple_query("SET application_name = 'shop'")
        .await
        .expect("set");
    windows.open("test-2", Utc::now());
    assert_eq!(simple_rows(&client, count).await, second);
    windows.close("test-2", Utc::now());
    windows.open("test-1", Utc::now());
    assert_eq!(simple_rows(&client, count).await, first);
    windows.close("test-1", Utc::now());
}

#[test]
fn recplay_test_passes_a_keploy_set_whose_mongo_mocks_it_does_not_serve() {
    let app = DemoApp::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let set = dir.path().join("keploy/test-set-0");
    std::fs::create_dir_all(set.join("tests")).expect("dirs");
    let from = fixture("http-tests-mongo/test-set-0");
    for file in ["mocks.yaml", "tests/test-1.yaml", "tests/test-2.yaml"] {
        std::fs::copy(from.join(file), set.join(file)).expect("copy fixture");
    }
    let target = app.url();
    let out = Command::new(env!("CARGO_BIN_EXE_recplay"))
        .args(["test", "--http-target", target.as_str(), "--delay", "5"])
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .output()
        .expect("run recplay");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(0),
        "stdout:\n{stdout}\nstderr:\n{stderr}"
    );
    assert!(stdout.contains("2 passed, 0 failed"), "{stdout}");
    assert!(
        stdout.contains("test-set-0: 3 Mongo mocks: not served by recplay"),
        "{stdout}"
    );
    let report = std::fs::read_to_string(
        dir.path()
            .join("keploy/reports/test-run-0/test-set-0-report.yaml"),
    )
    .expect("report");
    let report: serde_yaml::Value = serde_yaml::from_str(&report).expect("report parses");
    let notes: Vec<&str> = report["unserved_mocks"]
        .as_sequence()
        .expect("unserved_mocks")
        .iter()
        .filter_map(|n| n.as_str())
        .collect();
    assert_eq!(
        notes,
        [
            "3 Mongo mocks: not served by recplay",
            "2 Redis mocks: not served by recplay"
        ]
    );
    assert_eq!(report["status"].as_str(), Some("PASSED"));
}

/// The committed fixture needs no database: both users get the seed's rows.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_committed_postgres_v1_fixture_is_served_to_tokio_postgres() {
    let set = recplay_proxy::testset::TestSetDir::open(fixture("postgres-v1/test-set-0"));
    let loaded = load(&set);
    let replay = Replay::start(loaded.mocks, TestWindows::new(), MatchStrategy::Exact).await;
    let mut transcripts = Vec::new();
    for (user, password) in [("alice", "alice-pw"), ("md5bob", "bob-pw")] {
        let client = connect(&login(replay.addr, user, password)).await;
        transcripts.push(extended(&client).await);
    }
    assert_eq!(transcripts[0], transcripts[1]);
    assert_eq!(
        transcripts[0][..3],
        [
            "(2, beta, Some(2.5))",
            "(2, beta, Some(2.5)) (4, delta, Some(4.0)) (5, epsilon, Some(5.5))",
            "(5, epsilon, Some(5.5))"
        ]
    );
    assert_eq!(
        transcripts[0][4..],
        [
            "(1, alpha, Some(1.25))",
            "(3, gamma, None)",
            "(5, epsilon, Some(5.5))"
        ]
    );
}

/// Keploy's decoded fields alone (no payloads) are enough to serve a
/// client: the rows, a value Keploy wrote as `b64:` (it was not ASCII), and the prepared
/// statement whose Sync Keploy's fields lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keploys_decoded_fields_alone_are_served_to_tokio_postgres() {
    let set = recplay_proxy::testset::TestSetDir::open(fixture("postgres-v1-fields/test-set-0"));
    let loaded = load(&set);
    let replay = Replay::start(loaded.mocks, TestWindows::new(), MatchStrategy::Exact).await;
    let client = connect(&login(replay.addr, "app", "any")).await;
    let rows = simple_rows(&client, "SELECT id, name, data FROM items ORDER BY id").await;
    assert_eq!(
        rows,
        [
            vec![Some("1".into()), Some("alpha".into()), Some("café".into())],
            vec![Some("2".into()), Some("beta".into()), Some("x".into())]
        ]
    );
}
