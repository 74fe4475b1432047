//! The PostgreSQL half of `recplay record`: builds the recorder from the
//! `--pg-*` flags and runs it beside the HTTP recorder, writing into the same
//! test set and attributing exchanges through the same test windows.

use std::future::Future;
use std::sync::Arc;

use anyhow::Context;
use recplay_proxy::pg::record::{tls, PgRecorder, PgRecorderConfig, RecordSummary};
use recplay_proxy::testset::TestSetDir;
use recplay_proxy::window::TestWindows;
use tokio::task::JoinHandle;

use crate::cli::RecordArgs;

/// Binds `--pg-listen` and starts recording in the background, or returns
/// `None` when no `--pg-upstream` was given. The task ends after `shutdown`
/// once in-flight exchanges are complete.
pub async fn start_pg_recorder(
    args: &RecordArgs,
    test_set: Arc<TestSetDir>,
    windows: TestWindows,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<Option<JoinHandle<anyhow::Result<RecordSummary>>>> {
    let Some(upstream) = args.pg_upstream.clone() else {
        return Ok(None);
    };
    let client_tls = match (&args.pg_tls_cert, &args.pg_tls_key) {
        (Some(cert), Some(key)) => Some(
            tls::client_facing_config(cert, key)
                .context("loading --pg-tls-cert/--pg-tls-key for PostgreSQL clients")?,
        ),
        _ => None,
    };
    let upstream_tls = if args.pg_upstream_tls {
        Some(
            tls::upstream_config(args.upstream_ca.as_deref())
                .context("setting up TLS to the PostgreSQL server (--pg-upstream-tls)")?,
        )
    } else {
        None
    };
    let config = PgRecorderConfig {
        listen: args.pg_listen,
        upstream: upstream.clone(),
        client_tls,
        upstream_tls,
    };
    // The proxy runs on a thread of its own with a single-threaded runtime,
    // as pgbouncer does: every connection's two directions are served by one
    // event loop, which avoids handing wake-ups between worker threads on
    // every message (measured as the largest cost under pgbench). Sockets
    // are bound inside that runtime so their events are delivered there.
    let (bound_tx, bound_rx) = tokio::sync::oneshot::channel();
    let (done_tx, done_rx) = tokio::sync::oneshot::channel();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .context("starting the PostgreSQL recorder's runtime")?;
    let root = test_set.root().display().to_string();
    std::thread::Builder::new()
        .name("recplay-pg".into())
        .spawn(move || {
            runtime.block_on(async move {
                let recorder = match PgRecorder::bind(config).await {
                    Ok(recorder) => {
                        let _ = bound_tx.send(Ok(recorder.local_addr()));
                        recorder
                    }
                    Err(e) => {
                        let _ = bound_tx.send(Err(e));
                        return;
                    }
                };
                let result = recorder.run(test_set, windows, shutdown).await;
                let _ = done_tx.send(result);
            })
        })
        .context("starting the PostgreSQL recorder's thread")?;
    let local = bound_rx
        .await
        .context("the PostgreSQL recorder's thread stopped unexpectedly")?
        .context("starting the PostgreSQL recorder")?;
    tracing::info!("recording PostgreSQL on {local} -> {upstream} into {root}");
    Ok(Some(tokio::spawn(async move {
        let summary = done_rx
            .await
            .context("the PostgreSQL recorder's thread stopped unexpectedly")?
            .context("recording PostgreSQL")?;
        tracing::info!(
            "PostgreSQL: {} connections, {} mocks recorded",
            summary.connections,
            summary.mocks
        );
        if summary.write_failures > 0 {
            anyhow::bail!(
                "{} PostgreSQL exchanges could not be written to mocks.yaml (see the log)",
                summary.write_failures
            );
        }
        Ok(summary)
    })))
}
