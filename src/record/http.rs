//! The HTTP half of `recplay record`: builds the proxy from the `--http-*`
//! flags and records every exchange into the test set once the app is
//! ready.

use std::sync::Arc;

use anyhow::{Context, Result};
use recplay_proxy::http::{ExchangeSink, HttpProxy, HttpProxyConfig, TestSetRecorder, Upstream};
use recplay_proxy::tls;
use tokio::sync::watch;

use super::recording::{RecorderSummary, RecorderTask, Recording};
use crate::config::resolve::RecordConfig;

/// Binds the HTTP proxy now (so a bad address fails before the app starts)
/// and serves until the shutdown signal.
pub async fn spawn_http(
    args: &RecordConfig,
    upstream: &str,
    recording: Recording,
    mut ready: watch::Receiver<bool>,
) -> Result<RecorderTask> {
    let upstream = Upstream::parse(upstream)?;
    let mut config = HttpProxyConfig::new(upstream.clone());
    config.body_cap = args.body_cap;
    config.limits = args.http_limits;
    if let (Some(cert), Some(key)) = (&args.http_tls_cert, &args.http_tls_key) {
        config.server_tls = Some(tls::server_config(cert, key, tls::HTTP_1_1)?);
    }
    if upstream.is_https() {
        config.upstream_tls = Some(tls::client_config(
            args.upstream_ca.as_deref(),
            tls::HTTP_1_1,
        )?);
    } else if args.upstream_ca.is_some() {
        tracing::warn!("--upstream-ca is ignored: the upstream is not https://");
    }
    let recorder = Arc::new(
        TestSetRecorder::new(
            recording.dir.clone(),
            recording.windows.clone(),
            args.body_cap,
            recording.redactor.clone(),
        )
        .context("could not start the HTTP recording's journal")?,
    );
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
        // Bound but not accepting until the app is ready: a client that
        // connects early waits in the listen backlog and is then served by
        // the ready app, instead of recording a 502 from one still starting.
        let start = tokio::select! {
            ready = ready.wait_for(|ready| *ready) => ready.is_ok(),
            _ = recording.shutdown.clone().wait() => false,
        };
        if !start {
            recorder.flush().await;
            return Ok(RecorderSummary {
                kind: "HTTP",
                recorded: 0,
                not_recorded: 0,
                noun: ("test", "tests"),
            });
        }
        // A journal that cannot be written (a full disk) stops the whole
        // recording, cleanly: what was journaled is kept.
        let stopped = recorder.stopped();
        let shutdown = recording.shutdown.clone().wait();
        let stop_all = recording.stop_all.clone();
        let until = async move {
            tokio::select! {
                _ = shutdown => {}
                _ = stopped => { let _ = stop_all.send(true); }
            }
        };
        let drained = proxy.run(until, recording.grace).await;
        if drained.refused > 0 {
            tracing::warn!(
                "HTTP: {} connections refused with 503 at the limit of --http-max-connections",
                drained.refused
            );
        }
        if let Some(why) = recorder.stop_reason() {
            anyhow::bail!("HTTP recording stopped early: {why}");
        }
        let counts = recorder.counts();
        Ok(RecorderSummary {
            kind: "HTTP",
            recorded: counts.recorded,
            not_recorded: counts.failed + drained.cut_at_deadline as u64,
            noun: ("test", "tests"),
        })
    }))
}
