//! mocks.yaml is plain YAML: a reader that knows nothing of recplay (PyYAML's
//! `safe_load_all`, which refuses any custom tag) loads every document a
//! real recording wrote, and reads each one's lifetime as recplay does.

use std::io::Write;
use std::process::{Command, Stdio};

use chrono::Utc;
use recplay_proxy::testset::pg_mock::{Lifetime, MOCK_KIND};
use recplay_proxy::testset::FORMAT_VERSION;

use super::{connect, Recording};
use crate::support::pg::PgCluster;
use crate::support::python::test_venv;

/// Prints, for each document, its version, kind, name and lifetime as
/// JSON (`{"test": ...}` stays a map, `session` a string).
const LOAD_ALL: &str = r#"
import json, sys, yaml
docs = list(yaml.safe_load_all(sys.stdin))
print(json.dumps([[d["version"], d["kind"], d["name"], d["spec"]["lifetime"]] for d in docs]))
"#;

fn lifetime_json(lifetime: &Lifetime) -> serde_json::Value {
    match lifetime {
        Lifetime::Session => serde_json::json!("session"),
        Lifetime::Unattributed => serde_json::json!("unattributed"),
        Lifetime::Test(test) => serde_json::json!({ "test": test }),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pyyaml_safe_load_all_reads_every_recorded_mock() {
    let venv = test_venv();
    let pg = PgCluster::start();
    pg.psql("CREATE TABLE notes (id int PRIMARY KEY, body text, raw bytea)");

    let rec = Recording::start(&pg.addr()).await;
    let client = connect(&rec.conn_str("postgres")).await;
    client
        .simple_query("SET TIME ZONE 'UTC'")
        .await
        .expect("set");
    client
        .simple_query("SELECT 1 AS before_any_test")
        .await
        .expect("select");
    rec.windows.open("test-1", Utc::now());
    let insert = client
        .prepare("INSERT INTO notes VALUES ($1, $2, $3)")
        .await
        .expect("prepare");
    for (id, body) in [
        (1i32, "plain"),
        (2, "two\nlines: \"quoted\" # not a comment"),
    ] {
        let raw: &[u8] = &[0x00, 0xff, id as u8];
        client
            .execute(&insert, &[&id, &body, &raw])
            .await
            .expect("insert");
    }
    rec.windows.close("test-1", Utc::now());
    rec.windows.open("test-2", Utc::now());
    let rows = client
        .query("SELECT body, raw FROM notes ORDER BY id", &[])
        .await
        .expect("select");
    assert_eq!(rows.len(), 2);
    let err = client.simple_query("SELECT 1/0").await;
    assert!(err.is_err());
    rec.windows.close("test-2", Utc::now());
    drop(client);
    let recorded = rec.finish().await;
    assert!(recorded.mocks.len() >= 6, "{}", recorded.mocks.len());
    assert!(recorded.raw.contains("\n    test: test-1\n"));

    let mut python = Command::new(venv.join("bin/python"))
        .args(["-c", LOAD_ALL])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("run the venv's python");
    python
        .stdin
        .take()
        .expect("stdin is piped")
        .write_all(recorded.raw.as_bytes())
        .expect("feed mocks.yaml to python");
    let out = python.wait_with_output().expect("python finishes");
    assert!(
        out.status.success(),
        "PyYAML could not load mocks.yaml: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let loaded: Vec<(u32, String, String, serde_json::Value)> =
        serde_json::from_slice(&out.stdout).expect("python printed JSON");

    assert_eq!(loaded.len(), recorded.mocks.len());
    assert_eq!(loaded.len() as u64, recorded.summary.mocks);
    for ((version, kind, name, lifetime), mock) in loaded.iter().zip(&recorded.mocks) {
        assert_eq!((*version, kind.as_str()), (FORMAT_VERSION, MOCK_KIND));
        assert_eq!(name, &mock.name);
        assert_eq!(lifetime, &lifetime_json(&mock.spec.lifetime), "{name}");
    }
    let tests: Vec<&serde_json::Value> = loaded.iter().map(|d| &d.3).collect();
    for wanted in ["test-1", "test-2"] {
        assert!(
            tests.contains(&&serde_json::json!({ "test": wanted })),
            "{tests:?}"
        );
    }
    assert!(tests.contains(&&serde_json::json!("session")));
}
