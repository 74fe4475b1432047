//! recplay's side of coverage: listens for agents on a Unix socket, asks
//! every connected agent for a snapshot after each test, and unions the
//! answers into per-test and per-run coverage.
//!
//! Call order for a replay (the app must still be running for `finish`):
//! `start` → spawn the app with `app_env()` → readiness → one warm-up
//! request → `warm_up` → per test: request, response, `snapshot_all` →
//! `finish` → stop the app → `store::write_run`.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use futures_util::future::join_all;
use tokio::io::{AsyncWriteExt, BufReader};
use tokio::net::unix::OwnedWriteHalf;
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{oneshot, Notify};
use tokio::task::JoinHandle;

use super::agent;
use super::model::{merge_delta, merge_map, CoverageMap, RunCoverage, TestCoverage};
use super::protocol::{
    read_message, AgentMessage, Hello, Request, StaticFile, BRANCH_ENV, MAX_MESSAGE_BYTES,
    PROTOCOL_VERSION, ROOT_ENV, SOCKET_ENV,
};

/// How the collector and the agents it serves behave.
#[derive(Debug, Clone)]
pub struct CollectorOptions {
    /// Source tree the agents measure; `None`: the app's working directory.
    pub root: Option<PathBuf>,
    /// Record arcs for branch coverage.
    pub branch: bool,
    /// How long one agent gets to answer a snapshot.
    pub snapshot_timeout: Duration,
    /// How long the static description (a walk of the tree) may take.
    pub static_timeout: Duration,
}

impl Default for CollectorOptions {
    fn default() -> Self {
        CollectorOptions {
            root: None,
            branch: true,
            snapshot_timeout: Duration::from_secs(10),
            static_timeout: Duration::from_secs(120),
        }
    }
}

impl CollectorOptions {
    /// The defaults, with what the user's environment asks for:
    /// `RECPLAY_COVERAGE_BRANCH=0` (or `false`, `no`, `off`) for lines only,
    /// as the agent reads it. The collector hands the app its own value of
    /// the variable, so it must start from the user's.
    pub fn from_env() -> Self {
        let branch = std::env::var(BRANCH_ENV).map_or(true, |v| branch_wanted(&v));
        CollectorOptions {
            branch,
            ..CollectorOptions::default()
        }
    }
}

/// How a `RECPLAY_COVERAGE_BRANCH` value reads (the agent reads it alike).
fn branch_wanted(value: &str) -> bool {
    !matches!(
        value.trim().to_ascii_lowercase().as_str(),
        "0" | "false" | "no" | "off"
    )
}

/// Listens for agents and keeps what they reported during one run.
pub struct CoverageCollector {
    options: CollectorOptions,
    // Holds the socket and the agent files; removed on drop.
    _dir: tempfile::TempDir,
    socket_path: PathBuf,
    agent_dir: PathBuf,
    shared: Arc<Shared>,
    accept_task: JoinHandle<()>,
    startup: CoverageMap,
    tests: Vec<TestCoverage>,
    seen_by_tests: HashMap<String, BTreeSet<u32>>,
    warned_no_agents: bool,
}

impl CoverageCollector {
    /// Writes the agent, binds the socket and starts accepting agents.
    /// Call from within a Tokio runtime (it spawns the accept loop).
    pub fn start(options: CollectorOptions) -> Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("recplay-cov-")
            .tempdir()
            .context("could not create a private directory for the coverage socket")?;
        let agent_dir = agent::install_python_agent(dir.path())?;
        let socket_path = dir.path().join("agents.sock");
        // sun_path holds 108 bytes on Linux; say so rather than fail obscurely.
        if socket_path.as_os_str().len() > 100 {
            bail!(
                "the coverage socket path {} is too long for a Unix socket; \
                 point TMPDIR at a shorter directory",
                socket_path.display()
            );
        }
        let listener = UnixListener::bind(&socket_path).with_context(|| {
            format!(
                "could not listen for coverage agents on {}",
                socket_path.display()
            )
        })?;
        let shared = Arc::new(Shared::new(options.static_timeout));
        let accept_task = tokio::spawn(accept_agents(listener, shared.clone()));
        tracing::debug!(socket = %socket_path.display(), "listening for coverage agents");
        Ok(CoverageCollector {
            options,
            _dir: dir,
            socket_path,
            agent_dir,
            shared,
            accept_task,
            startup: CoverageMap::new(),
            tests: Vec::new(),
            seen_by_tests: HashMap::new(),
            warned_no_agents: false,
        })
    }

    /// Environment variables to give the app process.
    pub fn app_env(&self) -> Result<Vec<(String, String)>> {
        let socket = path_str(&self.socket_path)?;
        let mut env = vec![
            (SOCKET_ENV.to_string(), socket),
            (
                "PYTHONPATH".to_string(),
                agent::pythonpath_with(&self.agent_dir, std::env::var_os("PYTHONPATH"))?,
            ),
            (
                BRANCH_ENV.to_string(),
                if self.options.branch { "1" } else { "0" }.to_string(),
            ),
        ];
        if let Some(root) = &self.options.root {
            env.push((ROOT_ENV.to_string(), path_str(root)?));
        }
        Ok(env)
    }

    /// The source root the agents reported (for relative paths).
    pub fn root(&self) -> Option<String> {
        lock(&self.shared.hellos)
            .iter()
            .find_map(|h| h.root.clone())
            .or_else(|| self.options.root.as_ref().map(|r| r.display().to_string()))
    }

    /// The socket agents connect to.
    #[allow(dead_code)] // The integration tests compile this module and use it.
    pub fn socket_path(&self) -> &Path {
        &self.socket_path
    }

    /// Agents connected now.
    pub fn agent_count(&self) -> usize {
        lock(&self.shared.agents).len()
    }

    /// Waits until at least `n` agents are connected; returns how many are.
    pub async fn wait_for_agents(&self, n: usize, timeout: Duration) -> usize {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let notified = self.shared.changed.notified();
            let count = self.agent_count();
            if count >= n {
                return count;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.agent_count();
            }
        }
    }

    /// Call after the warm-up request and before the first test: what ran
    /// so far (start-up, lazy imports) is kept as outside-test coverage
    /// instead of being charged to the first test. Also waits for the
    /// one-time walk of the source tree, so that it neither competes with
    /// the tests for CPU nor delays the end of the run.
    pub async fn warm_up(&mut self) -> Result<()> {
        let round = self.snapshot_round(Moment::OutsideTests).await;
        merge_map(&mut self.startup, &round.files);
        let described = self.statics().await;
        tracing::debug!(files = described.len(), "coverage: source tree described");
        Ok(())
    }

    /// Call after each test's response is complete (no request in flight):
    /// asks every agent for what ran since the previous snapshot. An agent
    /// that died or did not answer is counted in `agents_failed`, not fatal.
    pub async fn snapshot_all(&mut self, test_name: &str) -> Result<TestCoverage> {
        let round = self.snapshot_round(Moment::AfterTest).await;
        if round.answered == 0 && round.failed == 0 && !self.warned_no_agents {
            self.warned_no_agents = true;
            tracing::warn!(
                "no coverage agent is connected: is coverage.py installed in the app's \
                 interpreter, and does the app keep PYTHONPATH and {SOCKET_ENV}?"
            );
        }
        let mut lines_covered = 0;
        let mut new_lines = 0;
        for (path, hits) in &round.files {
            lines_covered += hits.lines.len();
            let seen = self.seen_by_tests.entry(path.clone()).or_default();
            for line in &hits.lines {
                if seen.insert(*line) {
                    new_lines += 1;
                }
            }
        }
        let test = TestCoverage {
            test: test_name.to_string(),
            files: round.files,
            lines_covered,
            new_lines,
            agents_answered: round.answered,
            agents_failed: round.failed,
        };
        self.tests.push(test.clone());
        Ok(test)
    }

    /// Ends the run: a last snapshot (counted outside tests), the static
    /// description, and the per-file and total figures. Call while the app
    /// still runs.
    pub async fn finish(mut self) -> Result<RunCoverage> {
        let round = self.snapshot_round(Moment::OutsideTests).await;
        merge_map(&mut self.startup, &round.files);
        let statics = self.statics().await;
        let agents = lock(&self.shared.hellos).clone();
        let root = agents
            .iter()
            .find_map(|h| h.root.clone())
            .or_else(|| self.options.root.as_ref().map(|r| r.display().to_string()));
        self.accept_task.abort();
        lock(&self.shared.agents).clear();
        Ok(RunCoverage::build(
            root,
            self.options.branch,
            agents,
            statics,
            std::mem::take(&mut self.startup),
            std::mem::take(&mut self.tests),
        ))
    }

    async fn statics(&self) -> BTreeMap<String, StaticFile> {
        let deadline = tokio::time::Instant::now() + self.options.static_timeout;
        loop {
            let notified = self.shared.changed.notified();
            let claimed = {
                let mut state = lock(&self.shared.statics);
                match &*state {
                    StaticState::Done(files) => return files.clone(),
                    StaticState::Asking => false,
                    StaticState::NotAsked => {
                        *state = StaticState::Asking;
                        true
                    }
                }
            };
            if !claimed {
                if tokio::time::timeout_at(deadline, notified).await.is_err() {
                    tracing::warn!(
                        "no agent described the source tree in time; \
                         coverage percentages only count lines that ran"
                    );
                    return BTreeMap::new();
                }
                continue;
            }
            let agents: Vec<Arc<AgentConn>> = lock(&self.shared.agents).values().cloned().collect();
            for conn in agents {
                if let Some(files) = request_static(&self.shared, &conn).await {
                    *lock(&self.shared.statics) = StaticState::Done(files.clone());
                    return files;
                }
            }
            *lock(&self.shared.statics) = StaticState::NotAsked;
            tracing::warn!(
                "no connected agent could describe the source tree; \
                 coverage percentages only count lines that ran"
            );
            return BTreeMap::new();
        }
    }

    async fn snapshot_round(&self, moment: Moment) -> Round {
        let agents: Vec<Arc<AgentConn>> = lock(&self.shared.agents).values().cloned().collect();
        let timeout = self.options.snapshot_timeout;
        let calls = agents.iter().map(|conn| {
            let id = self.shared.next_id();
            conn.call(Request::Snapshot { id }, id, timeout)
        });
        let answers = join_all(calls).await;
        let mut round = Round::default();
        for (conn, answer) in agents.iter().zip(answers) {
            match answer {
                Ok(AgentMessage::Delta { files, .. }) => {
                    round.answered += 1;
                    merge_delta(&mut round.files, files);
                }
                Ok(AgentMessage::Error { message, .. }) => {
                    round.failed += 1;
                    tracing::warn!(
                        pid = conn.hello.pid,
                        "coverage snapshot failed in the agent: {message}"
                    );
                }
                Ok(other) => {
                    round.failed += 1;
                    tracing::warn!(
                        pid = conn.hello.pid,
                        "coverage agent answered a snapshot with {other:?}"
                    );
                }
                Err(e) if !e.loses_coverage(moment) => {
                    tracing::debug!(
                        pid = conn.hello.pid,
                        "coverage agent's process has exited; everything it ran in tests was reported"
                    );
                }
                Err(e) => {
                    round.failed += 1;
                    tracing::warn!(
                        pid = conn.hello.pid,
                        "no coverage snapshot from this process: {e}"
                    );
                }
            }
        }
        round
    }
}

impl Drop for CoverageCollector {
    fn drop(&mut self) {
        self.accept_task.abort();
    }
}

/// When a snapshot round is taken: after a test's response, whose lines
/// it carries, or outside tests (warm-up, the end of the run).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Moment {
    AfterTest,
    OutsideTests,
}

/// Why an agent gave no answer.
#[derive(Debug)]
enum NoAnswer {
    /// The request could not be written: the connection is closed.
    Closed(std::io::Error),
    /// The connection closed with the request unanswered.
    Disconnected,
    /// The process is there but did not answer in time.
    TimedOut(Duration),
}

impl NoAnswer {
    /// Whether going without this answer loses coverage. A process that
    /// exited outside tests (a worker at the end of the run, once the app
    /// was stopped, whose closed connection the collector had not noticed
    /// yet) answered every snapshot that carried a test's lines: its exit
    /// is normal. One that exited during a test, or is stuck, lost that
    /// test's lines.
    fn loses_coverage(&self, moment: Moment) -> bool {
        let exited = matches!(self, NoAnswer::Closed(_) | NoAnswer::Disconnected);
        moment == Moment::AfterTest || !exited
    }
}

impl std::fmt::Display for NoAnswer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoAnswer::Closed(e) => write!(
                f,
                "the agent's connection is closed (did the process exit?): {e}"
            ),
            NoAnswer::Disconnected => write!(
                f,
                "the agent disconnected before answering (did the process exit?)"
            ),
            NoAnswer::TimedOut(limit) => write!(f, "the agent did not answer within {limit:?}"),
        }
    }
}

#[derive(Default)]
struct Round {
    files: CoverageMap,
    answered: usize,
    failed: usize,
}

enum StaticState {
    NotAsked,
    Asking,
    Done(BTreeMap<String, StaticFile>),
}

struct Shared {
    agents: Mutex<BTreeMap<u64, Arc<AgentConn>>>,
    hellos: Mutex<Vec<Hello>>,
    statics: Mutex<StaticState>,
    next_request: AtomicU64,
    next_conn: AtomicU64,
    changed: Notify,
    static_timeout: Duration,
}

impl Shared {
    fn new(static_timeout: Duration) -> Self {
        Shared {
            agents: Mutex::new(BTreeMap::new()),
            hellos: Mutex::new(Vec::new()),
            statics: Mutex::new(StaticState::NotAsked),
            next_request: AtomicU64::new(1),
            next_conn: AtomicU64::new(1),
            changed: Notify::new(),
            static_timeout,
        }
    }

    fn next_id(&self) -> u64 {
        self.next_request.fetch_add(1, Ordering::Relaxed)
    }
}

/// A poisoned lock only means another task panicked mid-update of plain
/// collections; the data is still usable.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

fn path_str(path: &Path) -> Result<String> {
    path.to_str()
        .map(str::to_string)
        .with_context(|| format!("{} is not valid UTF-8; use a UTF-8 path", path.display()))
}

/// One connected agent.
struct AgentConn {
    hello: Hello,
    writer: tokio::sync::Mutex<OwnedWriteHalf>,
    pending: Mutex<HashMap<u64, oneshot::Sender<AgentMessage>>>,
}

impl AgentConn {
    async fn call(
        &self,
        request: Request,
        id: u64,
        timeout: Duration,
    ) -> Result<AgentMessage, NoAnswer> {
        let (tx, rx) = oneshot::channel();
        lock(&self.pending).insert(id, tx);
        let sent = {
            let mut writer = self.writer.lock().await;
            writer.write_all(&request.to_line()).await
        };
        if let Err(e) = sent {
            lock(&self.pending).remove(&id);
            return Err(NoAnswer::Closed(e));
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(message)) => Ok(message),
            Ok(Err(_)) => Err(NoAnswer::Disconnected),
            Err(_) => {
                lock(&self.pending).remove(&id);
                Err(NoAnswer::TimedOut(timeout))
            }
        }
    }
}

async fn accept_agents(listener: UnixListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                tokio::spawn(serve_agent(stream, shared.clone()));
            }
            Err(e) => {
                tracing::warn!("accepting a coverage agent failed: {e}");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn serve_agent(stream: UnixStream, shared: Arc<Shared>) {
    let (read_half, write_half) = stream.into_split();
    let mut reader = BufReader::new(read_half);
    let hello = match tokio::time::timeout(
        Duration::from_secs(10),
        read_message(&mut reader, MAX_MESSAGE_BYTES),
    )
    .await
    {
        Ok(Ok(Some(AgentMessage::Hello(hello)))) => hello,
        Ok(Ok(Some(other))) => {
            tracing::warn!("a coverage agent spoke before saying hello ({other:?}); closing it");
            return;
        }
        Ok(Ok(None)) => return,
        Ok(Err(e)) => {
            tracing::warn!("a coverage agent could not introduce itself: {e:#}");
            return;
        }
        Err(_) => {
            tracing::warn!("a coverage agent connected but sent no hello within 10 s; closing it");
            return;
        }
    };
    if hello.version != PROTOCOL_VERSION {
        tracing::warn!(
            pid = hello.pid,
            "a coverage agent speaks protocol version {}, recplay speaks {PROTOCOL_VERSION}; \
             ignoring that process (update the agent or recplay)",
            hello.version
        );
        return;
    }
    tracing::debug!(pid = hello.pid, engine = %hello.engine, mode = ?hello.mode, "coverage agent connected");
    let conn_id = shared.next_conn.fetch_add(1, Ordering::Relaxed);
    let conn = Arc::new(AgentConn {
        hello: hello.clone(),
        writer: tokio::sync::Mutex::new(write_half),
        pending: Mutex::new(HashMap::new()),
    });
    lock(&shared.hellos).push(hello);
    lock(&shared.agents).insert(conn_id, conn.clone());
    shared.changed.notify_waiters();
    maybe_describe_sources(&shared, &conn);

    loop {
        match read_message(&mut reader, MAX_MESSAGE_BYTES).await {
            Ok(Some(message)) => match message.id() {
                Some(id) => match lock(&conn.pending).remove(&id) {
                    Some(waiter) => {
                        let _ = waiter.send(message);
                    }
                    None => {
                        tracing::debug!(pid = conn.hello.pid, id, "late coverage answer dropped")
                    }
                },
                None => {
                    if let AgentMessage::Error { message, .. } = message {
                        tracing::warn!(pid = conn.hello.pid, "coverage agent: {message}");
                    }
                }
            },
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(pid = conn.hello.pid, "dropping a coverage agent: {e:#}");
                break;
            }
        }
    }
    lock(&shared.agents).remove(&conn_id);
    lock(&conn.pending).clear();
    shared.changed.notify_waiters();
    tracing::debug!(pid = conn.hello.pid, "coverage agent disconnected");
}

/// The first agent to connect is asked, once, to walk the source tree; the
/// walk runs while the app warms up, not when the run ends.
fn maybe_describe_sources(shared: &Arc<Shared>, conn: &Arc<AgentConn>) {
    {
        let mut state = lock(&shared.statics);
        if !matches!(*state, StaticState::NotAsked) {
            return;
        }
        *state = StaticState::Asking;
    }
    let shared = shared.clone();
    let conn = conn.clone();
    tokio::spawn(async move {
        let outcome = request_static(&shared, &conn).await;
        *lock(&shared.statics) = match outcome {
            Some(files) => StaticState::Done(files),
            None => StaticState::NotAsked,
        };
        shared.changed.notify_waiters();
    });
}

async fn request_static(shared: &Shared, conn: &AgentConn) -> Option<BTreeMap<String, StaticFile>> {
    let id = shared.next_id();
    match conn
        .call(Request::Static { id }, id, shared.static_timeout)
        .await
    {
        Ok(AgentMessage::Static { files, skipped, .. }) => {
            for (path, reason) in &skipped {
                tracing::warn!("coverage: {path} could not be parsed and is left out: {reason}");
            }
            Some(files)
        }
        Ok(AgentMessage::Error { message, .. }) => {
            tracing::warn!(
                pid = conn.hello.pid,
                "describing the sources failed: {message}"
            );
            None
        }
        Ok(other) => {
            tracing::warn!(
                pid = conn.hello.pid,
                "unexpected answer to a static request: {other:?}"
            );
            None
        }
        Err(e) => {
            tracing::warn!(pid = conn.hello.pid, "describing the sources failed: {e}");
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{branch_wanted, Moment, NoAnswer};

    #[test]
    fn an_exit_outside_tests_loses_nothing_an_exit_during_one_does() {
        let closed = || NoAnswer::Closed(std::io::ErrorKind::BrokenPipe.into());
        let stuck = NoAnswer::TimedOut(std::time::Duration::from_secs(1));
        assert!(!closed().loses_coverage(Moment::OutsideTests));
        assert!(!NoAnswer::Disconnected.loses_coverage(Moment::OutsideTests));
        assert!(closed().loses_coverage(Moment::AfterTest));
        assert!(NoAnswer::Disconnected.loses_coverage(Moment::AfterTest));
        assert!(stuck.loses_coverage(Moment::OutsideTests));
        assert!(stuck.loses_coverage(Moment::AfterTest));
    }

    #[test]
    fn branch_coverage_is_off_only_when_asked_for() {
        for off in ["0", "false", "No", " off "] {
            assert!(!branch_wanted(off), "{off:?}");
        }
        for on in ["1", "true", "yes", ""] {
            assert!(branch_wanted(on), "{on:?}");
        }
    }
}
