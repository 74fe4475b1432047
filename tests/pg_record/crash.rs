//! kill -9 of a real `recplay record` while clients query through its
//! PostgreSQL proxy, then the next `recplay record` on the same directory
//! recovers the journal: every query whose answer a client received ends
//! up in mocks.yaml exactly once.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use recplay_proxy::testset::pg_mock::FrontendMsg;
use recplay_proxy::testset::TestSetDir;

use super::connect;
use crate::support::pg::PgCluster;
use crate::support::recplay::RecplayRecord;
use crate::support::upstream::Upstream;

const CLIENTS: usize = 6;
const ANSWERS_BEFORE_THE_KILL: usize = 600;

fn start_recording(
    keploy: &std::path::Path,
    http: &Upstream,
    pg: &PgCluster,
) -> (RecplayRecord, String) {
    let recplay = RecplayRecord::start(
        keploy,
        &http.url(),
        &["--pg-listen", "127.0.0.1:0", "--pg-upstream", &pg.addr()],
    );
    let line = recplay.wait_for_line("PostgreSQL: recording ", Duration::from_secs(30));
    let addr = line
        .trim_start_matches("PostgreSQL: recording ")
        .split(" -> ")
        .next()
        .expect("an address")
        .to_string();
    (recplay, addr)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_loses_no_query_a_client_got_its_answer_to() {
    let pg = PgCluster::start();
    let http = Upstream::start();
    let keploy = tempfile::tempdir().expect("tempdir");
    let (recplay, addr) = start_recording(keploy.path(), &http, &pg);
    let port = addr.rsplit(':').next().expect("port").to_string();
    let conn_str = format!("host=127.0.0.1 port={port} user=postgres dbname=postgres");

    let answered: Arc<Mutex<Vec<String>>> = Arc::default();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|c| {
            let (conn_str, answered) = (conn_str.clone(), answered.clone());
            tokio::spawn(async move {
                let client = connect(&conn_str).await;
                for n in 0.. {
                    let query = format!("SELECT 'c{c}-{n}' AS tag, repeat('x', {})", n % 300);
                    if client.simple_query(&query).await.is_err() {
                        return;
                    }
                    answered.lock().expect("lock").push(query);
                }
            })
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(60);
    while answered.lock().expect("lock").len() < ANSWERS_BEFORE_THE_KILL
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    // Killed while every client has a query in flight.
    recplay.signal(Signal::SIGKILL);
    for client in clients {
        let _ = tokio::time::timeout(Duration::from_secs(10), client).await;
    }
    let (status, _, _) = recplay.wait(Duration::from_secs(10));
    assert!(!status.success());
    let answered = answered.lock().expect("lock").clone();
    assert!(
        answered.len() >= ANSWERS_BEFORE_THE_KILL,
        "only {} answers",
        answered.len()
    );
    let root = keploy.path().join("test-set-0");
    assert!(
        root.join(".recplay-pg-journal").exists(),
        "no journal left by the crash"
    );

    // The next recording on the directory recovers the crashed one first.
    let (next, _) = start_recording(keploy.path(), &http, &pg);
    next.wait_for_line("recording into", Duration::from_secs(30));
    next.signal(Signal::SIGINT);
    let (status, _, stderr) = next.wait(Duration::from_secs(30));
    assert!(status.success(), "{stderr}");
    assert!(
        stderr.contains("recovered test-set-0 from an unfinished PostgreSQL recording"),
        "{stderr}"
    );
    assert!(!root.join(".recplay-pg-journal").exists(), "journal left");

    let set = TestSetDir::open(root).load().expect("load");
    assert!(set.problems.is_empty(), "half-written: {:?}", set.problems);
    let mut mocks_per_query: BTreeMap<String, usize> = BTreeMap::new();
    for mock in &set.mocks {
        for request in &mock.spec.requests {
            if let FrontendMsg::Query { query } = request {
                *mocks_per_query.entry(query.clone()).or_default() += 1;
            }
        }
    }
    let duplicated: Vec<_> = mocks_per_query.iter().filter(|(_, n)| **n > 1).collect();
    assert!(duplicated.is_empty(), "recorded twice: {duplicated:?}");
    let missing: Vec<_> = answered
        .iter()
        .filter(|q| !mocks_per_query.contains_key(*q))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of {} answered queries have no mock: {:?}",
        missing.len(),
        answered.len(),
        &missing[..missing.len().min(10)]
    );
}
