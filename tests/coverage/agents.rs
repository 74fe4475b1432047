//! The collector against hand-written agents on the real socket: one that
//! answers, one that dies after saying hello, one that sends garbage, one
//! from a future protocol version.

use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::UnixStream;

use super::recplay_coverage::collector::{CollectorOptions, CoverageCollector};

fn hello(pid: u32, version: u32) -> String {
    format!(
        "{{\"type\":\"hello\",\"version\":{version},\"pid\":{pid},\"language\":\"test\",\"engine\":\"scripted\",\"root\":\"/srv\"}}\n"
    )
}

/// Answers every snapshot with one line of /srv/a.py (the request id
/// echoed), and the static request with two statements.
async fn answering_agent(socket: std::path::PathBuf, pid: u32, line: u32) {
    let stream = UnixStream::connect(&socket).await.expect("connect");
    let (read, mut write) = stream.into_split();
    write
        .write_all(hello(pid, 1).as_bytes())
        .await
        .expect("hello");
    let mut lines = BufReader::new(read).lines();
    while let Ok(Some(request)) = lines.next_line().await {
        let request: serde_json::Value = serde_json::from_str(&request).expect("request is JSON");
        let id = request["id"].as_u64().expect("request id");
        let reply = match request["type"].as_str() {
            Some("snapshot") => format!(
                "{{\"type\":\"delta\",\"id\":{id},\"files\":{{\"/srv/a.py\":{{\"lines\":[{line}]}}}}}}\n"
            ),
            _ => format!(
                "{{\"type\":\"static\",\"id\":{id},\"files\":{{\"/srv/a.py\":{{\"lines\":[1,2,3,4]}}}}}}\n"
            ),
        };
        if write.write_all(reply.as_bytes()).await.is_err() {
            return;
        }
    }
}

#[test]
fn snapshots_survive_agents_that_die_or_misbehave() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let options = CollectorOptions {
            snapshot_timeout: Duration::from_secs(2),
            ..Default::default()
        };
        let mut collector = CoverageCollector::start(options).expect("start");
        let socket = collector.socket_path().to_path_buf();
        let env = collector.app_env().expect("env");
        assert!(env
            .iter()
            .any(|(k, v)| k == "RECPLAY_COVERAGE_SOCKET" && v == &socket.display().to_string()));
        assert!(env
            .iter()
            .any(|(k, v)| k == "PYTHONPATH" && v.contains("python")));

        tokio::spawn(answering_agent(socket.clone(), 100, 1));
        tokio::spawn(answering_agent(socket.clone(), 101, 2));
        // Dies once a snapshot is asked for.
        let dying = UnixStream::connect(&socket).await.expect("connect");
        let (dying_read, mut dying_write) = dying.into_split();
        dying_write
            .write_all(hello(102, 1).as_bytes())
            .await
            .expect("hello");
        // Speaks a protocol version this collector does not know: ignored.
        let mut future = UnixStream::connect(&socket).await.expect("connect");
        future
            .write_all(hello(103, 99).as_bytes())
            .await
            .expect("hello");
        assert_eq!(
            collector.wait_for_agents(3, Duration::from_secs(5)).await,
            3
        );

        // Dies at the snapshot request itself: if it was the first agent to
        // connect it is also asked to describe the sources, which it
        // ignores.
        let killer = tokio::spawn(async move {
            let mut lines = BufReader::new(dying_read).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if line.contains(r#""type":"snapshot""#) {
                    break;
                }
            }
            drop(dying_write);
        });
        let first = collector
            .snapshot_all("test-set-0/test-1")
            .await
            .expect("snapshot");
        killer.await.expect("killer");
        assert_eq!(first.agents_answered, 2);
        assert_eq!(
            first.agents_failed, 1,
            "the dead agent is counted, not fatal"
        );
        assert_eq!(
            first.files["/srv/a.py"]
                .lines
                .iter()
                .copied()
                .collect::<Vec<_>>(),
            vec![1, 2],
            "the deltas of both live agents are unioned"
        );
        assert_eq!(first.new_lines, 2);

        // Garbage on a connection drops that agent only.
        let mut garbage = UnixStream::connect(&socket).await.expect("connect");
        garbage
            .write_all(hello(104, 1).as_bytes())
            .await
            .expect("hello");
        assert_eq!(
            collector.wait_for_agents(3, Duration::from_secs(5)).await,
            3
        );
        garbage
            .write_all(b"\x00\x01 this is not json\n")
            .await
            .expect("garbage");
        tokio::time::sleep(Duration::from_millis(200)).await;
        assert_eq!(collector.agent_count(), 2);

        let second = collector
            .snapshot_all("test-set-0/test-2")
            .await
            .expect("snapshot");
        assert_eq!((second.agents_answered, second.agents_failed), (2, 0));
        assert_eq!(second.lines_covered, 2);
        assert_eq!(
            second.new_lines, 0,
            "lines 1 and 2 were covered by an earlier test"
        );

        let run = collector.finish().await.expect("finish");
        assert_eq!(run.tests.len(), 2);
        let file = &run.files["/srv/a.py"];
        assert!(file.described);
        assert_eq!(
            (file.summary.statements, file.summary.covered_lines),
            (4, 2)
        );
        assert_eq!(file.missing_lines, vec![3, 4]);
        drop(future);
    });
}

#[test]
fn a_session_reports_per_test_fields_and_writes_the_run_file() {
    use super::recplay_coverage::session::CoverageSession;
    use super::recplay_coverage::store;

    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    rt.block_on(async {
        let keploy = tempfile::tempdir().expect("tempdir");
        // The runner creates the run directory before the tests.
        let run_dir = store::reports_dir(keploy.path()).join("test-run-3");
        std::fs::create_dir_all(&run_dir).expect("mkdir");
        let session =
            CoverageSession::start(keploy.path(), CollectorOptions::default()).expect("start");
        let socket = session
            .app_env()
            .into_iter()
            .find(|(k, _)| k == "RECPLAY_COVERAGE_SOCKET")
            .map(|(_, v)| std::path::PathBuf::from(v))
            .expect("socket variable");
        tokio::spawn(answering_agent(socket, 200, 3));
        assert_eq!(session.wait_for_agents(1, Duration::from_secs(5)).await, 1);
        session.warm_up().await.expect("warm-up");
        let fields = session
            .after_test("test-set-0", "test-1")
            .await
            .expect("after_test");
        let yaml = serde_yaml::to_string(&fields).expect("yaml");
        assert!(yaml.contains("lines_covered: 1"), "{yaml}");
        assert!(
            yaml.contains("a.py:"),
            "paths are relative to the agent's root: {yaml}"
        );
        let run = session.after_run().await.expect("after_run");
        let yaml = serde_yaml::to_string(&run).expect("yaml");
        assert!(
            yaml.contains("line_percent: 25.0") && yaml.contains("data: test-run-3/coverage.json"),
            "{yaml}"
        );
        let (name, stored) = store::load_run(keploy.path(), None).expect("coverage.json");
        assert_eq!(name, "test-run-3");
        assert_eq!(stored.tests[0].test, "test-set-0/test-1");
    });
}
