//! `recplay record`: proxies traffic into the next test set until SIGINT or
//! SIGTERM, then drains, flushes, stops the app and exits 0. A signal before
//! the app is ready stops it and exits 2; a second signal while finishing
//! kills it and exits 2. A test set that ends up with no test and no mock
//! is removed.
//!
//! Each recorder (HTTP today; PostgreSQL beside it) is a task that receives
//! the same [`Recording`] — the test-set directory, the test windows and
//! the shutdown signal — and returns a [`RecorderSummary`] once it has
//! drained. Adding one is a `spawn_*` function and a line in [`run`].
//!
//! - `recording`: what every recorder shares and reports;
//! - `http`: the HTTP proxy's recorder;
//! - `pg`: the PostgreSQL proxy's recorder;
//! - `egress`: the app's outgoing HTTP calls (`--egress`, `--egress-proxy`).

mod egress;
mod http;
mod pg;
mod recording;

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use recplay_proxy::http::Upstream;
use recplay_proxy::testset::redact::Redactor;
use recplay_proxy::testset::TestSetDir;
use recplay_proxy::window::TestWindows;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use recording::{RecorderSummary, RecorderTask, Recording, Shutdown};

use crate::app::{wait_ready, AppProcess, Readiness};
use crate::cli::RecordArgs;
use crate::config::resolve::RecordConfig;
use crate::config::GlobalNoise;
use crate::signals::StopSignals;

pub async fn run(args: RecordArgs) -> Result<ExitCode> {
    let mut signals = StopSignals::watch()?;
    let args = RecordConfig::resolve(args)?;
    log_noise(&args.global_noise);
    if args.http_upstream.is_none() && args.pg_upstream.is_none() && !args.records_egress() {
        bail!("nothing to record: give --http-upstream URL (and/or --pg-upstream HOST:PORT)");
    }
    crate::recover::recover(&args.path, &args.redact)?;
    let dir = TestSetDir::create_next(&args.path).with_context(|| {
        format!(
            "could not create a test set under {}; check that the directory is writable",
            args.path.display()
        )
    })?;
    let stop_tx = Arc::new(watch::channel(false).0);
    let stop_rx = stop_tx.subscribe();
    let (ready_tx, ready_rx) = watch::channel(false);
    let recording = Recording {
        dir: Arc::new(dir),
        windows: TestWindows::new(),
        shutdown: Shutdown(stop_rx),
        stop_all: stop_tx.clone(),
        grace: Duration::from_secs(args.grace),
        redactor: Arc::new(Redactor::new(&args.redact).context("keploy.yml record.redact")?),
    };

    let mut recorders: Vec<RecorderTask> = Vec::new();
    let mut app_addr = None;
    let mut app_env = Vec::new();
    let spawned = async {
        if let Some(upstream) = &args.http_upstream {
            app_addr = Some(Upstream::parse(upstream)?.authority());
            recorders.push(http::spawn_http(&args, upstream, recording.clone(), ready_rx).await?);
        }
        if let Some(task) = pg::spawn_pg(&args, recording.clone()).await? {
            recorders.push(task);
        }
        let (tasks, env) = egress::spawn_egress(&args, &recording).await?;
        recorders.extend(tasks);
        app_env = env;
        anyhow::Ok(())
    };
    if let Err(e) = spawned.await {
        abandon(&stop_tx, recorders, &recording).await;
        return Err(e);
    }

    let timeout = Duration::from_secs(args.delay);
    let started = tokio::select! {
        started = start_app(args.command.as_deref(), app_addr.as_deref(), &app_env, timeout) => started,
        // Dropping the start stops the app's group, if it was spawned.
        name = signals.next() => Err(anyhow::anyhow!(
            "interrupted by {name} before the app was ready; the app was stopped and nothing was recorded"
        )),
    };
    let mut app = match started {
        Ok(app) => app,
        Err(e) => {
            abandon(&stop_tx, recorders, &recording).await;
            return Err(e);
        }
    };
    let _ = ready_tx.send(true);
    println!(
        "recording into {}; stop with Ctrl-C",
        recording.dir.root().display()
    );

    let reason = wait_for_stop(&mut app, &mut signals, recording.shutdown.clone()).await;
    tracing::info!(
        "{reason}: finishing in-flight exchanges (up to {}s)",
        args.grace
    );
    let _ = stop_tx.send(true);

    let aborts: Vec<_> = recorders.iter().map(JoinHandle::abort_handle).collect();
    let finished = {
        let finishing = finish(recorders, &recording, &mut app);
        tokio::pin!(finishing);
        tokio::select! {
            done = &mut finishing => Ok(done),
            name = signals.next() => Err(name),
        }
    };
    let (summaries, failures) = match finished {
        Ok(done) => done?,
        Err(name) => {
            // Asked twice: stop at once.
            aborts.iter().for_each(tokio::task::AbortHandle::abort);
            if let Some(app) = app.as_mut() {
                app.kill().await?;
            }
            let _ = recording.dir.sync();
            remove_if_empty(recording.dir.root());
            bail!(
                "{name} while finishing the recording: the app was killed and exchanges still \
                 in flight were not recorded; what was recorded before is in {}",
                recording.dir.root().display()
            );
        }
    };

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
    if remove_if_empty(recording.dir.root()) {
        println!(
            "nothing was recorded; removed the empty {}",
            recording.dir.root().display()
        );
    }
    if !failures.is_empty() {
        bail!("recording ended with errors:\n  {}", failures.join("\n  "));
    }
    Ok(ExitCode::SUCCESS)
}

/// Starts the app when there is one and waits until it serves `addr`;
/// nothing is proxied before that, so no exchange meets an app that is
/// still starting. (Unlike `recplay test`, whose sets start one app after
/// another on the same address, a record has one start and does not
/// insist that `addr` is free first: the command may be a helper beside an
/// upstream that is already running.)
async fn start_app(
    command: Option<&str>,
    addr: Option<&str>,
    env: &[(String, String)],
    timeout: Duration,
) -> Result<Option<AppProcess>> {
    let Some(command) = command else {
        return Ok(None);
    };
    let mut app = Some(AppProcess::spawn(command, env, None).await?);
    if let Some(addr) = addr {
        wait_ready(&mut app, Readiness::Port(addr), timeout).await?;
    }
    Ok(app)
}

/// After the stop signal: the recorders drain, the test set is flushed,
/// the app is stopped. Returns the recorders' summaries and what failed.
async fn finish(
    recorders: Vec<RecorderTask>,
    recording: &Recording,
    app: &mut Option<AppProcess>,
) -> Result<(Vec<RecorderSummary>, Vec<String>)> {
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
    if let Some(app) = app.as_mut() {
        app.stop(recording.grace).await?;
    }
    Ok((summaries, failures))
}

/// Recording ends before it began (a recorder could not start, the app
/// never got ready, a signal): the recorders stop, and the test set goes
/// if nothing reached it.
async fn abandon(stop: &watch::Sender<bool>, recorders: Vec<RecorderTask>, recording: &Recording) {
    let _ = stop.send(true);
    for task in recorders {
        let _ = task.await;
    }
    let _ = recording.dir.sync();
    remove_if_empty(recording.dir.root());
}

/// Removes a test set that holds neither a test nor a mock (it would
/// replay nothing, and only shift the numbering); true when it did. Any
/// other file, or a directory that cannot be read, keeps the set.
fn remove_if_empty(root: &Path) -> bool {
    let empty_entry = |entry: std::fs::DirEntry| -> bool {
        let path = entry.path();
        match entry.file_name().to_str() {
            Some("tests") => std::fs::read_dir(&path).is_ok_and(|mut files| files.next().is_none()),
            Some("mocks.yaml") => {
                std::fs::read_to_string(&path).is_ok_and(|text| text.trim().is_empty())
            }
            _ => false,
        }
    };
    let empty = std::fs::read_dir(root).is_ok_and(|entries| {
        entries
            .into_iter()
            .all(|entry| entry.is_ok_and(empty_entry))
    });
    if !empty {
        return false;
    }
    match std::fs::remove_dir_all(root) {
        Ok(()) => true,
        Err(e) => {
            tracing::warn!("could not remove the empty {}: {e}", root.display());
            false
        }
    }
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
async fn wait_for_stop(
    app: &mut Option<AppProcess>,
    signals: &mut StopSignals,
    stopped: Shutdown,
) -> String {
    let stopped = stopped.wait();
    tokio::pin!(stopped);
    loop {
        tokio::select! {
            name = signals.next() => return format!("{name} received"),
            _ = &mut stopped => return "a recorder could not go on".to_string(),
            _ = tokio::time::sleep(Duration::from_millis(250)), if app.is_some() => {
                if let Some(running) = app.as_mut() {
                    if let Err(e) = running.check_running() {
                        tracing::warn!("{e:#}; stopping the recording");
                        return "the app exited".to_string();
                    }
                }
            }
        }
    }
}
