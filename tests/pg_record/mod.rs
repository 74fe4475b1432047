//! The PostgreSQL recording proxy, driven in-process against a real cluster
//! and real clients: every client must get exactly what it gets without the
//! proxy, and mocks.yaml must describe each exchange faithfully.

mod auth;
mod bad_input;
mod copy;
mod crash;
mod extended;
mod pgbench;
mod plain_yaml;
mod simple;
mod tls;
mod writer;

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
            allow_remote: false,
            max_connections: recplay_proxy::pg::record::DEFAULT_MAX_CONNECTIONS,
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

    /// The PostgreSQL journal as written so far.
    pub fn journal(&self) -> Vec<u8> {
        std::fs::read(self.test_set.root().join(".recplay-pg-journal")).expect("journal")
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

mod binary {
    //! `recplay record` with the `--pg-*` flags, as a user runs it.

    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    use recplay_proxy::testset::TestSetDir;

    use super::connect;
    use crate::support::pg::{free_port, PgCluster};

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn recplay_record_records_postgres_until_sigterm() {
        let pg = PgCluster::start();
        let dir = tempfile::tempdir().expect("temp dir");
        let port = free_port();
        let mut child = Command::new(env!("CARGO_BIN_EXE_recplay"))
            .args(["record", "--path"])
            .arg(dir.path())
            .args([
                "--pg-listen",
                &format!("127.0.0.1:{port}"),
                "--pg-upstream",
                &pg.addr(),
            ])
            .stderr(Stdio::piped())
            .spawn()
            .expect("start recplay");
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "recplay did not listen");
            std::thread::sleep(Duration::from_millis(50));
        }
        let client = connect(&format!(
            "host=127.0.0.1 port={port} user=postgres dbname=postgres"
        ))
        .await;
        let n: i32 = client
            .query_one("SELECT 6 * 7", &[])
            .await
            .expect("query")
            .get(0);
        assert_eq!(n, 42);
        nix_kill_term(child.id());
        let status = child.wait().expect("recplay exits");
        assert!(status.success(), "{status:?}");
        let loaded = TestSetDir::open(dir.path().join("test-set-0"))
            .load()
            .expect("load");
        assert!(loaded.problems.is_empty());
        assert_eq!(loaded.mocks[0].spec.position, 0);
        assert!(loaded.mocks.iter().any(|m| m.spec.requests.iter().any(|r| matches!(
            r,
            recplay_proxy::testset::pg_mock::FrontendMsg::Bind { statement_query: Some(q), .. } if q == "SELECT 6 * 7"
        ))));
    }

    #[test]
    fn a_busy_listen_port_is_named_with_its_reason_once() {
        let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = taken.local_addr().expect("addr");
        let out = Command::new(env!("CARGO_BIN_EXE_recplay"))
            .args(["record", "--path"])
            .arg(tempfile::tempdir().expect("temp dir").path())
            .args([
                "--pg-listen",
                &addr.to_string(),
                "--pg-upstream",
                "127.0.0.1:1",
            ])
            .output()
            .expect("run recplay");
        assert_eq!(out.status.code(), Some(2), "{out:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(
            stderr.contains(&format!(
                "could not listen on {addr} for PostgreSQL clients"
            )),
            "{stderr}"
        );
        // The operating system's reason, said once.
        assert_eq!(stderr.matches("os error").count(), 1, "{stderr}");
    }

    fn nix_kill_term(pid: u32) {
        let status = Command::new("kill")
            .args(["-TERM", &pid.to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
}
