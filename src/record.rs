//! `recplay record`: proxies traffic into the next test set until SIGINT or
//! SIGTERM, then drains, flushes, stops the app and exits 0.
//!
//! Each recorder (HTTP today; PostgreSQL beside it) is a task that receives
//! the same [`Recording`] — the test-set directory, the test windows and
//! the shutdown signal — and returns a [`RecorderSummary`] once it has
//! drained. Adding one is a `spawn_*` function and a line in [`run`].

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use recplay_proxy::http::{tls, HttpProxy, HttpProxyConfig, TestSetRecorder, Upstream};
use recplay_proxy::testset::TestSetDir;
use recplay_proxy::window::TestWindows;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::app::{wait_ready, AppProcess, Readiness};
use crate::cli::RecordArgs;
use crate::config::resolve::RecordConfig;
use crate::config::GlobalNoise;

/// What every recorder shares.
#[derive(Clone)]
pub struct Recording {
    pub dir: Arc<TestSetDir>,
    pub windows: TestWindows,
    pub shutdown: Shutdown,
    pub grace: Duration,
}

/// Resolves once recording should stop; cheap to clone.
#[derive(Clone)]
pub struct Shutdown(watch::Receiver<bool>);

impl Shutdown {
    /// Waits for the stop signal (also when its sender is gone).
    pub async fn wait(mut self) {
        let _ = self.0.wait_for(|stop| *stop).await;
    }
}

/// What one recorder reports after draining.
pub struct RecorderSummary {
    /// "HTTP", "PostgreSQL".
    pub kind: &'static str,
    /// Tests or mocks written.
    pub recorded: u64,
    /// Exchanges not recorded (failed upstream, cut at the deadline, write errors).
    pub not_recorded: u64,
    /// Singular and plural noun for `recorded`.
    pub noun: (&'static str, &'static str),
}

pub type RecorderTask = JoinHandle<Result<RecorderSummary>>;

pub async fn run(args: RecordArgs) -> Result<ExitCode> {
    let args = RecordConfig::resolve(args)?;
    log_noise(&args.global_noise);
    if args.http_upstream.is_none() && args.pg_upstream.is_none() {
        bail!("nothing to record: give --http-upstream URL (and/or --pg-upstream HOST:PORT)");
    }
    let dir = TestSetDir::create_next(&args.path).with_context(|| {
        format!(
            "could not create a test set under {}; check that the directory is writable",
            args.path.display()
        )
    })?;
    let (stop_tx, stop_rx) = watch::channel(false);
    let recording = Recording {
        dir: Arc::new(dir),
        windows: TestWindows::new(),
        shutdown: Shutdown(stop_rx),
        grace: Duration::from_secs(args.grace),
    };

    let mut recorders: Vec<RecorderTask> = Vec::new();
    if let Some(upstream) = &args.http_upstream {
        match spawn_http(&args, upstream, recording.clone()).await {
            Ok(task) => recorders.push(task),
            Err(e) => {
                // Nothing was recorded: do not leave an empty test set behind.
                let _ = std::fs::remove_dir_all(recording.dir.root());
                return Err(e);
            }
        }
    }
    if let Some(task) = crate::record_pg::spawn_pg(&args, recording.clone()).await? {
        recorders.push(task);
    }

    let mut app = match &args.command {
        Some(command) => Some(AppProcess::spawn(command, &[])?),
        None => None,
    };
    if let (Some(_), Some(upstream)) = (&app, &args.http_upstream) {
        // Requests sent before the app listens would only record 502s.
        let authority = Upstream::parse(upstream)?.authority();
        let timeout = Duration::from_secs(args.delay);
        wait_ready(&mut app, Readiness::Port(&authority), timeout).await?;
    }
    println!(
        "recording into {}; stop with Ctrl-C",
        recording.dir.root().display()
    );

    let reason = wait_for_stop(&mut app).await?;
    tracing::info!(
        "{reason}: finishing in-flight exchanges (up to {}s)",
        args.grace
    );
    let _ = stop_tx.send(true);

    let mut summaries = Vec::new();
    let mut failures = Vec::new();
    for task in recorders {
        match task.await {
            Ok(Ok(summary)) => summaries.push(summary),
            Ok(Err(e)) => failures.push(format!("{e:#}")),
            Err(e) => failures.push(format!("a recorder stopped unexpectedly: {e}")),
        }
    }
    if let Err(e) = recording.dir.sync() {
        failures.push(format!("could not flush mocks.yaml: {e}"));
    }
    if let Some(app) = app.take() {
        app.stop(recording.grace).await?;
    }

    for s in &summaries {
        let noun = if s.recorded == 1 { s.noun.0 } else { s.noun.1 };
        let skipped = if s.not_recorded > 0 {
            format!(" ({} exchanges not recorded; see the log)", s.not_recorded)
        } else {
            String::new()
        };
        println!(
            "{}: recorded {} {noun} in {}{skipped}",
            s.kind,
            s.recorded,
            recording.dir.root().display()
        );
    }
    if !failures.is_empty() {
        bail!("recording ended with errors:\n  {}", failures.join("\n  "));
    }
    Ok(ExitCode::SUCCESS)
}

/// keploy.yml's noise is applied at replay; saying what was read now lets a
/// user catch a mistyped file before recording a whole session.
fn log_noise(noise: &GlobalNoise) {
    tracing::info!(
        headers = noise.global.header.len(),
        body_fields = noise.global.body.len(),
        test_sets = noise.test_sets.len(),
        "keploy.yml global noise read (applied by recplay test)"
    );
}

/// Waits for SIGINT/SIGTERM, or for the app to exit on its own.
async fn wait_for_stop(app: &mut Option<AppProcess>) -> Result<String> {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = signal(SignalKind::terminate()).context("could not watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("could not watch SIGINT")?;
    loop {
        tokio::select! {
            _ = term.recv() => return Ok("SIGTERM received".to_string()),
            _ = int.recv() => return Ok("SIGINT received".to_string()),
            _ = tokio::time::sleep(Duration::from_millis(250)), if app.is_some() => {
                if let Some(running) = app.as_mut() {
                    if let Err(e) = running.check_running() {
                        tracing::warn!("{e:#}; stopping the recording");
                        return Ok("the app exited".to_string());
                    }
                }
            }
        }
    }
}

/// Binds the HTTP proxy now (so a bad address fails before the app starts)
/// and serves until the shutdown signal.
async fn spawn_http(
    args: &RecordConfig,
    upstream: &str,
    recording: Recording,
) -> Result<RecorderTask> {
    let upstream = Upstream::parse(upstream)?;
    let mut config = HttpProxyConfig::new(upstream.clone());
    config.body_cap = args.body_cap;
    if let (Some(cert), Some(key)) = (&args.http_tls_cert, &args.http_tls_key) {
        config.server_tls = Some(tls::server_config(cert, key)?);
    }
    if upstream.is_https() {
        config.upstream_tls = Some(tls::client_config(args.upstream_ca.as_deref())?);
    } else if args.upstream_ca.is_some() {
        tracing::warn!("--upstream-ca is ignored: the upstream is not https://");
    }
    let recorder = Arc::new(TestSetRecorder::new(
        recording.dir.clone(),
        recording.windows.clone(),
        args.body_cap,
    ));
    let proxy = HttpProxy::bind(args.http_listen, config, recorder.clone()).await?;
    let addr = proxy.local_addr()?;
    let scheme = if args.http_tls_cert.is_some() {
        "https"
    } else {
        "http"
    };
    println!(
        "HTTP: recording {scheme}://{addr} -> {}",
        upstream.base_url()
    );
    Ok(tokio::spawn(async move {
        let drained = proxy.run(recording.shutdown.wait(), recording.grace).await;
        let counts = recorder.counts();
        Ok(RecorderSummary {
            kind: "HTTP",
            recorded: counts.recorded,
            not_recorded: counts.failed + drained.cut_at_deadline as u64,
            noun: ("test", "tests"),
        })
    }))
}
