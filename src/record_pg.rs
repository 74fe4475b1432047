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
    let recorder = PgRecorder::bind(PgRecorderConfig {
        listen: args.pg_listen,
        upstream: upstream.clone(),
        client_tls,
        upstream_tls,
    })
    .await
    .context("starting the PostgreSQL recorder")?;
    tracing::info!(
        "recording PostgreSQL on {} -> {upstream} into {}",
        recorder.local_addr(),
        test_set.root().display()
    );
    Ok(Some(tokio::spawn(async move {
        let summary = recorder
            .run(test_set, windows, shutdown)
            .await
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
