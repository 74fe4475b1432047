//! The PostgreSQL half of `recplay record`: builds the recorder from the
//! `--pg-*` flags and runs it beside the HTTP recorder, writing into the same
//! test set and attributing exchanges through the same test windows.

use anyhow::{Context, Result};
use recplay_proxy::pg::record::{PgRecorder, PgRecorderConfig};
use recplay_proxy::tls;

use super::recording::{RecorderSummary, RecorderTask, Recording};
use crate::config::resolve::RecordConfig;

/// Binds `--pg-listen` now (so a bad address fails before the app starts)
/// and records in the background, or returns `None` when no
/// `--pg-upstream` was given. After the shutdown signal the task lets
/// in-flight exchanges finish, for the grace period at most.
pub async fn spawn_pg(args: &RecordConfig, recording: Recording) -> Result<Option<RecorderTask>> {
    let Some(upstream) = args.pg_upstream.clone() else {
        return Ok(None);
    };
    let client_tls = match (&args.pg_tls_cert, &args.pg_tls_key) {
        (Some(cert), Some(key)) => Some(
            tls::server_config(cert, key, tls::NO_ALPN)
                .context("loading --pg-tls-cert/--pg-tls-key for PostgreSQL clients")?,
        ),
        _ => None,
    };
    let upstream_tls = if args.pg_upstream_tls {
        Some(
            tls::client_config(args.upstream_ca.as_deref(), tls::NO_ALPN)
                .context("setting up TLS to the PostgreSQL server (--pg-upstream-tls)")?,
        )
    } else {
        None
    };
    let recorder = PgRecorder::bind(PgRecorderConfig {
        listen: args.pg_listen,
        allow_remote: args.allow_remote,
        max_connections: args.pg_max_connections,
        upstream: upstream.clone(),
        client_tls,
        upstream_tls,
    })
    .await
    .context("starting the PostgreSQL recorder")?;
    println!(
        "PostgreSQL: recording {} -> {upstream}",
        recorder.local_addr()
    );
    Ok(Some(tokio::spawn(async move {
        let grace = recording.grace;
        let shutdown = recording.shutdown.clone();
        let run = recorder.run(recording.dir, recording.windows, recording.shutdown.wait());
        let bounded = async {
            shutdown.wait().await;
            tokio::time::sleep(grace).await;
        };
        tokio::pin!(run);
        let summary = tokio::select! {
            done = &mut run => done.context("recording PostgreSQL")?,
            _ = bounded => {
                tracing::warn!(
                    "PostgreSQL exchanges still in flight {}s after the stop signal were not recorded",
                    grace.as_secs()
                );
                return Ok(RecorderSummary {
                    kind: "PostgreSQL",
                    recorded: 0,
                    not_recorded: 1,
                    noun: ("mock", "mocks"),
                });
            }
        };
        tracing::info!("PostgreSQL: {} connections", summary.connections);
        if summary.unrecorded_connections > 0 {
            tracing::warn!(
                "PostgreSQL: {} of {} connections were forwarded without being recorded to the end \
                 (see the warnings above); replaying them will find exchanges missing",
                summary.unrecorded_connections,
                summary.connections
            );
        }
        Ok(RecorderSummary {
            kind: "PostgreSQL",
            recorded: summary.mocks,
            not_recorded: summary.write_failures,
            noun: ("mock", "mocks"),
        })
    })))
}
