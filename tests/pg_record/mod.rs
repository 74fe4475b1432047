//! The PostgreSQL recording proxy, driven in-process against a real cluster
//! and real clients: every client must get exactly what it gets without the
//! proxy, and mocks.yaml must describe each exchange faithfully.

mod auth;
mod bad_input;
mod copy;
mod extended;
mod pgbench;
mod simple;
mod tls;

use std::net::SocketAddr;
use std::sync::Arc;

use recplay_proxy::pg::record::{PgRecorder, PgRecorderConfig, RecordSummary};
use recplay_proxy::testset::pg_mock::{BackendMsg, FrontendMsg, PgMock};
use recplay_proxy::testset::TestSetDir;
use recplay_proxy::window::TestWindows;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// A recorder running in this process, writing into a fresh test set.
pub struct Recording {
    pub addr: SocketAddr,
    pub windows: TestWindows,
    test_set: Arc<TestSetDir>,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<RecordSummary>,
    _dir: tempfile::TempDir,
}

/// What a finished recording left on disk.
pub struct Recorded {
    pub summary: RecordSummary,
    pub mocks: Vec<PgMock>,
    /// mocks.yaml as written, for checks on the raw text.
    pub raw: String,
}

impl Recording {
    pub async fn start(upstream: &str) -> Self {
        Self::start_with(PgRecorderConfig {
            listen: "127.0.0.1:0".parse().expect("addr"),
            upstream: upstream.to_string(),
            client_tls: None,
            upstream_tls: None,
        })
        .await
    }

    pub async fn start_with(config: PgRecorderConfig) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let test_set = Arc::new(TestSetDir::create_next(dir.path()).expect("test set"));
        let recorder = PgRecorder::bind(config).await.expect("recorder binds");
        let addr = recorder.local_addr();
        let windows = TestWindows::new();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn({
            let test_set = Arc::clone(&test_set);
            let windows = windows.clone();
            async move {
                recorder
                    .run(test_set, windows, async {
                        let _ = stopped.await;
                    })
                    .await
                    .expect("recorder runs")
            }
        });
        Recording {
            addr,
            windows,
            test_set,
            stop,
            task,
            _dir: dir,
        }
    }

    /// A libpq/tokio-postgres connection string through the proxy.
    pub fn conn_str(&self, user: &str) -> String {
        format!(
            "host=127.0.0.1 port={} user={user} dbname=postgres",
            self.addr.port()
        )
    }

    /// Stops the recorder (in-flight exchanges finish) and loads the mocks.
    pub async fn finish(self) -> Recorded {
        let _ = self.stop.send(());
        let summary = tokio::time::timeout(std::time::Duration::from_secs(20), self.task)
            .await
            .expect("recorder stops within 20 s")
            .expect("recorder task");
        let loaded = self.test_set.load().expect("load test set");
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        let raw = std::fs::read_to_string(self.test_set.mocks_path()).unwrap_or_default();
        assert_eq!(summary.mocks as usize, loaded.mocks.len());
        Recorded {
            summary,
            mocks: loaded.mocks,
            raw,
        }
    }
}

impl Recorded {
    /// The mocks of one connection, in position order.
    pub fn connection(&self, id: u64) -> Vec<&PgMock> {
        let mut v: Vec<&PgMock> = self
            .mocks
            .iter()
            .filter(|m| m.spec.connection == id)
            .collect();
        v.sort_by_key(|m| m.spec.position);
        v
    }

    /// The mock whose requests run `sql` (as a Query, a Parse, or a Bind of
    /// a statement prepared as `sql`).
    pub fn running(&self, sql: &str) -> Vec<&PgMock> {
        self.mocks
            .iter()
            .filter(|m| {
                m.spec.requests.iter().any(|r| match r {
                    FrontendMsg::Query { query } => query == sql,
                    FrontendMsg::Bind {
                        statement_query, ..
                    } => statement_query.as_deref() == Some(sql),
                    _ => false,
                })
            })
            .collect()
    }

    pub fn one_running(&self, sql: &str) -> &PgMock {
        let found = self.running(sql);
        assert_eq!(found.len(), 1, "exactly one mock runs {sql:?}: {found:#?}");
        found[0]
    }
}

/// Server messages of one kind in a mock.
pub fn data_rows(mock: &PgMock) -> Vec<&BackendMsg> {
    mock.spec
        .responses
        .iter()
        .filter(|r| matches!(r, BackendMsg::DataRow { .. }))
        .collect()
}

pub async fn connect(conn_str: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(conn_str, tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| panic!("connect {conn_str}: {e:?}"));
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

/// A client that speaks raw protocol bytes: for what drivers never send.
pub struct RawClient {
    pub stream: TcpStream,
}

impl RawClient {
    /// Connects and completes start-up as `postgres` (trust).
    pub async fn start(addr: &str) -> Self {
        let stream = TcpStream::connect(addr).await.expect("connect");
        let mut raw = RawClient { stream };
        let mut buf = bytes::BytesMut::new();
        postgres_protocol::message::frontend::startup_message(
            [("user", "postgres"), ("database", "postgres")],
            &mut buf,
        )
        .expect("startup");
        raw.send(&buf).await;
        let messages = raw.read_until_ready().await;
        assert_eq!(messages.first().map(|m| m.0), Some(b'R'));
        raw
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.expect("send");
    }

    /// One message, or `None` at end of stream.
    pub async fn read_message(&mut self) -> Option<(u8, Vec<u8>)> {
        let mut header = [0u8; 5];
        self.stream.read_exact(&mut header).await.ok()?;
        let len = i32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
        let mut body = vec![0; len - 4];
        self.stream.read_exact(&mut body).await.ok()?;
        Some((header[0], body))
    }

    /// Messages through the next ReadyForQuery.
    pub async fn read_until_ready(&mut self) -> Vec<(u8, Vec<u8>)> {
        let mut out = Vec::new();
        while let Some(m) = self.read_message().await {
            let done = m.0 == b'Z';
            out.push(m);
            if done {
                break;
            }
        }
        out
    }
}

/// The SQLSTATE of a failed client call.
pub fn sqlstate(e: &tokio_postgres::Error) -> String {
    e.code()
        .map(|c| c.code().to_string())
        .unwrap_or_else(|| format!("no code: {e}"))
}
