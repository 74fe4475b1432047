//! pgbench through the proxy in every query mode, without errors.

use std::process::Command;

use recplay_proxy::testset::pg_mock::FrontendMsg;

use super::Recording;
use crate::support::pg::{pg_bin, PgCluster};

fn pgbench(port: u16, args: &[&str]) -> String {
    let out = Command::new(pg_bin("pgbench"))
        .args(["-h", "127.0.0.1", "-p"])
        .arg(port.to_string())
        .args(["-U", "postgres"])
        .args(args)
        .arg("postgres")
        .env("PGSSLMODE", "disable")
        .output()
        .expect("run pgbench");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "pgbench {args:?} failed:\n{stdout}\n{stderr}"
    );
    stdout
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pgbench_runs_clean_in_every_query_mode() {
    let pg = PgCluster::start();
    pgbench(pg.port, &["-i", "-q", "-s", "1"]);
    let rec = Recording::start(&pg.addr()).await;
    for mode in ["simple", "extended", "prepared"] {
        let out = pgbench(
            rec.addr.port(),
            &["-c", "4", "-j", "2", "-T", "2", "-M", mode],
        );
        assert!(out.contains(&format!("query mode: {mode}")), "{out}");
        assert!(out.contains("number of failed transactions: 0"), "{out}");
        let processed = out
            .lines()
            .find_map(|l| l.strip_prefix("number of transactions actually processed: "))
            .and_then(|n| n.split('/').next()?.trim().parse::<u64>().ok())
            .expect("a transaction count");
        assert!(processed > 0, "{out}");
    }
    let recorded = rec.finish().await;
    assert!(recorded.summary.mocks > 100, "{:?}", recorded.summary);
    // In prepared mode every Bind names a statement prepared earlier on its
    // connection, and the recording still knows its text.
    let binds: Vec<_> = recorded
        .mocks
        .iter()
        .flat_map(|m| &m.spec.requests)
        .filter_map(|r| match r {
            FrontendMsg::Bind {
                statement,
                statement_query,
                ..
            } => Some((statement, statement_query)),
            _ => None,
        })
        .collect();
    assert!(
        binds.iter().any(|(s, _)| !s.is_empty()),
        "prepared mode names its statements"
    );
    assert!(
        binds.iter().all(|(_, q)| q.is_some()),
        "every Bind knows its statement text"
    );
}
