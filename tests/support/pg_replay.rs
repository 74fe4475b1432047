//! Record through the real recording proxy, replay through the mock server.
//!
//! `record` runs a client workload through `PgRecorder` in front of a real
//! cluster and returns the mocks it wrote (loaded back from mocks.yaml, as
//! `recplay test` will); `Replay` serves them with `MockServer`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use recplay_proxy::pg::matcher::MatchStrategy;
use recplay_proxy::pg::mock_server::{MockServer, MockServerHandle};
use recplay_proxy::pg::record::{PgRecorder, PgRecorderConfig};
use recplay_proxy::testset::pg_mock::PgMock;
use recplay_proxy::testset::TestSetDir;
use recplay_proxy::window::TestWindows;
use tokio::sync::oneshot;

use super::pg::PgCluster;

/// Runs `work` against a recording proxy in front of `pg`; returns the
/// mocks as loaded back from the test set's mocks.yaml.
pub async fn record<F, Fut>(pg: &PgCluster, windows: TestWindows, work: F) -> Vec<PgMock>
where
    F: FnOnce(SocketAddr) -> Fut,
    Fut: Future<Output = ()>,
{
    let dir = tempfile::tempdir().expect("temp dir");
    let set = Arc::new(TestSetDir::create_next(dir.path()).expect("test set"));
    let recorder = PgRecorder::bind(PgRecorderConfig {
        listen: "127.0.0.1:0".parse().expect("addr"),
        allow_remote: false,
        max_connections: recplay_proxy::pg::record::DEFAULT_MAX_CONNECTIONS,
        upstream: pg.addr(),
        client_tls: None,
        upstream_tls: None,
    })
    .await
    .expect("recorder binds");
    let addr = recorder.local_addr();
    let (stop, stopped) = oneshot::channel::<()>();
    let running = tokio::spawn(recorder.run(set.clone(), windows, async {
        let _ = stopped.await;
    }));
    work(addr).await;
    let _ = stop.send(());
    running
        .await
        .expect("recorder task")
        .expect("recorder finishes cleanly");
    let loaded = set.load().expect("test set loads");
    assert!(
        loaded.problems.is_empty(),
        "mocks.yaml loads cleanly: {:?}",
        loaded.problems
    );
    assert!(!loaded.mocks.is_empty(), "something was recorded");
    if std::env::var_os("RECPLAY_TEST_DUMP_MOCKS").is_some() {
        eprintln!(
            "{}",
            std::fs::read_to_string(set.mocks_path()).unwrap_or_default()
        );
    }
    loaded.mocks
}

/// A running mock server; stops when dropped.
pub struct Replay {
    pub addr: SocketAddr,
    pub handle: MockServerHandle,
    stop: Option<oneshot::Sender<()>>,
}

impl Replay {
    pub async fn start(mocks: Vec<PgMock>, windows: TestWindows, strategy: MatchStrategy) -> Self {
        let server = MockServer::bind(
            "127.0.0.1:0".parse().expect("addr"),
            mocks,
            windows,
            strategy,
        )
        .await
        .expect("mock server binds");
        let addr = server.local_addr().expect("local addr");
        let handle = server.handle();
        let (stop, stopped) = oneshot::channel::<()>();
        tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        Replay {
            addr,
            handle,
            stop: Some(stop),
        }
    }

    /// A tokio-postgres connection string for the mock server.
    pub fn conn_str(&self) -> String {
        conn_str(self.addr)
    }
}

impl Drop for Replay {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// `host=127.0.0.1 port=N user=postgres dbname=postgres`.
pub fn conn_str(addr: SocketAddr) -> String {
    format!(
        "host={} port={} user=postgres dbname=postgres",
        addr.ip(),
        addr.port()
    )
}

/// Connects tokio-postgres (no TLS) and drives the connection in a task.
pub async fn connect(addr: SocketAddr) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&conn_str(addr), tokio_postgres::NoTls)
        .await
        .expect("connects");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// The data rows of simple-Query messages, each value as text (None for
/// NULL).
pub fn simple_rows(messages: &[tokio_postgres::SimpleQueryMessage]) -> Vec<Vec<Option<String>>> {
    messages
        .iter()
        .filter_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(row) => Some(
                (0..row.len())
                    .map(|i| row.get(i).map(str::to_string))
                    .collect(),
            ),
            _ => None,
        })
        .collect()
}
