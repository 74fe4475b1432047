//! The observers `recplay test` plugs into a replay run, chosen from its
//! settings: the PostgreSQL mock server (`--pg-listen`), the outgoing-HTTP
//! mock server (`--egress`, `--egress-proxy`) and per-test coverage
//! (`--coverage`).

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result};
use recplay_proxy::pg::matcher::{Checkpoint, MatchStrategy, TestUsage};
use recplay_proxy::pg::mock_server::{MockServer, MockServerHandle};
use recplay_proxy::window::TestWindows;
use tokio::sync::{oneshot, Mutex};
use tokio::task::JoinHandle;

use super::observer::{BoxFuture, ExtraFields, Repeat, ReplayObserver, ReplaySet};
use crate::config::resolve::TestConfig;
use crate::coverage::collector::CollectorOptions;
use crate::coverage::session::CoverageSession;

/// What the observers may use from the run: its settings and the registry of
/// which test is in flight (the runner opens a window named after each test
/// around its request and response).
pub struct ObserverContext<'a> {
    pub args: &'a TestConfig,
    /// The mock server reads this to know which test is in flight.
    pub windows: &'a TestWindows,
}

/// The observers for this run, chosen from the flags. Observers are added
/// here, one line each; the runner does not change.
pub async fn observers_for(ctx: &ObserverContext<'_>) -> Result<Vec<Box<dyn ReplayObserver>>> {
    let mut observers: Vec<Box<dyn ReplayObserver>> = Vec::new();
    match ctx.args.pg_listen {
        Some(listen) if ctx.args.mocking => observers.push(Box::new(PgMockObserver::new(
            listen,
            ctx.args.pg_matcher.into(),
            ctx.windows.clone(),
        ))),
        Some(_) => tracing::warn!(
            "mocking is off (--no-mocks or keploy.yml test.mocking: false): no PostgreSQL mock server, --pg-listen is not used"
        ),
        None => {}
    }
    if !ctx.args.egress.is_empty() || ctx.args.egress_proxy {
        observers.push(Box::new(super::egress::EgressObserver::new(
            ctx.args.egress.clone(),
            ctx.args.egress_proxy,
            ctx.args.path.clone(),
            ctx.args.mocking,
            ctx.windows.clone(),
            ctx.args.global_noise.clone(),
        )));
    }
    if ctx.args.coverage {
        observers.push(Box::new(CoverageObserver::start(
            &ctx.args.path,
            ctx.args.health_url.clone(),
        )?));
    }
    Ok(observers)
}

/// Serves each test set's database from its mocks.yaml while the set's app
/// runs, and reports per test which mocks answered, what missed and what
/// fell back to a same-shape answer.
pub struct PgMockObserver {
    listen: SocketAddr,
    strategy: MatchStrategy,
    windows: TestWindows,
    running: Mutex<Option<RunningServer>>,
    /// `--detect-noise`: consumption before a test's first pass, and after it.
    repeat: Mutex<RepeatCheckpoints>,
}

#[derive(Default)]
struct RepeatCheckpoints {
    before_first: Option<Checkpoint>,
    after_first: Option<Checkpoint>,
}

struct RunningServer {
    handle: MockServerHandle,
    stop: oneshot::Sender<()>,
    task: JoinHandle<()>,
}

impl PgMockObserver {
    pub fn new(listen: SocketAddr, strategy: MatchStrategy, windows: TestWindows) -> Self {
        PgMockObserver {
            listen,
            strategy,
            windows,
            running: Mutex::new(None),
            repeat: Mutex::new(RepeatCheckpoints::default()),
        }
    }

    async fn start(&self, set: &ReplaySet) -> Result<()> {
        let index = set
            .mocks
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
            .unwrap_or_default();
        let served = index.len();
        let server =
            MockServer::bind_index(self.listen, index, self.windows.clone(), self.strategy).await?;
        tracing::info!(
            "{}: serving {served} recorded PostgreSQL exchanges on {}",
            set.name,
            self.listen
        );
        let handle = server.handle();
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(server.run(async {
            let _ = stopped.await;
        }));
        *self.running.lock().await = Some(RunningServer { handle, stop, task });
        Ok(())
    }

    async fn usage(&self, test: Option<&str>) -> Option<TestUsage> {
        let running = self.running.lock().await;
        let handle = &running.as_ref()?.handle;
        Some(match test {
            Some(test) => handle.usage_for(test),
            None => handle.usage_outside_tests(),
        })
    }
}

/// `mocks` (names used), `pg_misses` and `pg_fallbacks`, the last two only
/// when there are any, so a clean test's report stays short.
fn usage_fields(usage: TestUsage) -> Result<ExtraFields> {
    let mut fields = ExtraFields::new();
    fields.insert("mocks".into(), serde_yaml::to_value(&usage.mocks)?);
    if !usage.misses.is_empty() {
        fields.insert("pg_misses".into(), serde_yaml::to_value(&usage.misses)?);
    }
    if !usage.fallbacks.is_empty() {
        fields.insert(
            "pg_fallbacks".into(),
            serde_yaml::to_value(&usage.fallbacks)?,
        );
    }
    Ok(fields)
}

impl ReplayObserver for PgMockObserver {
    fn name(&self) -> &str {
        "pg_mock"
    }

    fn before_app_start<'a>(
        &'a self,
        set: &'a ReplaySet,
    ) -> BoxFuture<'a, Result<Vec<(String, String)>>> {
        Box::pin(async move {
            self.start(set)
                .await
                .with_context(|| format!("starting the PostgreSQL mock server for {}", set.name))?;
            Ok(Vec::new())
        })
    }

    fn after_test<'a>(
        &'a self,
        _set: &'a str,
        test: &'a str,
    ) -> BoxFuture<'a, Result<ExtraFields>> {
        Box::pin(async move {
            match self.usage(Some(test)).await {
                Some(usage) => usage_fields(usage),
                None => Ok(ExtraFields::new()),
            }
        })
    }

    fn repeat<'a>(&'a self, _set: &'a str, _test: &'a str, phase: Repeat) -> BoxFuture<'a, ()> {
        Box::pin(async move {
            let running = self.running.lock().await;
            let Some(handle) = running.as_ref().map(|r| &r.handle) else {
                return;
            };
            let mut saved = self.repeat.lock().await;
            match phase {
                Repeat::BeforeFirst => {
                    saved.before_first = Some(handle.checkpoint());
                    saved.after_first = None;
                }
                Repeat::BeforeSecond => {
                    saved.after_first = Some(handle.checkpoint());
                    if let Some(before) = &saved.before_first {
                        handle.restore(before);
                    }
                }
                Repeat::AfterSecond => {
                    if let Some(after) = saved.after_first.take() {
                        handle.restore(&after);
                    }
                    saved.before_first = None;
                }
            }
        })
    }

    fn after_test_set<'a>(&'a self, _set: &'a str) -> BoxFuture<'a, Result<ExtraFields>> {
        Box::pin(async move {
            let outside = self.usage(None).await;
            if let Some(running) = self.running.lock().await.take() {
                let _ = running.stop.send(());
                let _ = running.task.await;
            }
            let mut fields = ExtraFields::new();
            if let Some(usage) = outside {
                // Start-up queries and others outside any test's window.
                fields.insert(
                    "pg_outside_tests".into(),
                    serde_yaml::to_value(usage_fields(usage)?)?,
                );
            }
            Ok(fields)
        })
    }
}

/// Per-test coverage: one collector for the whole run (the agents of an
/// app restarted for the next test set reconnect to it).
pub struct CoverageObserver {
    session: CoverageSession,
    health_url: Option<String>,
}

/// How long the app's processes get to connect their agents after the app
/// reports ready; workers forked after readiness connect a little later.
const AGENT_CONNECT_WAIT: Duration = Duration::from_secs(5);

impl CoverageObserver {
    pub fn start(keploy_dir: &std::path::Path, health_url: Option<String>) -> Result<Self> {
        let session = CoverageSession::start(keploy_dir, CollectorOptions::from_env())
            .context("starting the coverage collector (--coverage)")?;
        Ok(CoverageObserver {
            session,
            health_url,
        })
    }
}

impl ReplayObserver for CoverageObserver {
    fn name(&self) -> &str {
        "coverage"
    }

    fn before_app_start<'a>(
        &'a self,
        _set: &'a ReplaySet,
    ) -> BoxFuture<'a, Result<Vec<(String, String)>>> {
        Box::pin(async move { Ok(self.session.app_env()) })
    }

    fn warm_up<'a>(&'a self, _set: &'a str, target: &'a str) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let agents = self.session.wait_for_agents(1, AGENT_CONNECT_WAIT).await;
            if agents == 0 {
                tracing::warn!(
                    "no coverage agent connected within {}s: is `coverage` installed in the app's Python?",
                    AGENT_CONNECT_WAIT.as_secs()
                );
            }
            // One request loads the app's URL table, middleware and lazy
            // imports, so the first test is charged only with what it ran.
            let url = self
                .health_url
                .clone()
                .unwrap_or_else(|| format!("{target}/"));
            if let Err(e) = crate::http_client::get_status(&url, Duration::from_secs(30)).await {
                tracing::warn!("coverage warm-up request to {url} failed: {e:#}");
            }
            self.session.warm_up().await
        })
    }

    fn after_test<'a>(&'a self, set: &'a str, test: &'a str) -> BoxFuture<'a, Result<ExtraFields>> {
        Box::pin(async move {
            let snapshot = std::time::Instant::now();
            let fields = self.session.after_test(set, test).await;
            tracing::debug!(elapsed = ?snapshot.elapsed(), test, "coverage snapshot");
            fields
        })
    }

    fn after_run(&self) -> BoxFuture<'_, Result<ExtraFields>> {
        Box::pin(async move { self.session.after_run().await })
    }
}
