//! `recplay record`.

use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use recplay_proxy::testset::TestSetDir;
use recplay_proxy::window::TestWindows;

use crate::cli::RecordArgs;

pub async fn run(args: RecordArgs) -> anyhow::Result<ExitCode> {
    if args.pg_upstream.is_none() {
        anyhow::bail!("nothing to record: give --pg-upstream HOST:PORT");
    }
    let test_set = Arc::new(
        TestSetDir::create_next(&args.path)
            .with_context(|| format!("creating a test set under {}", args.path.display()))?,
    );
    let windows = TestWindows::new();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let stopped = async move {
        let mut rx = stop_rx;
        let _ = rx.wait_for(|s| *s).await;
    };
    let pg =
        crate::record_pg::start_pg_recorder(&args, Arc::clone(&test_set), windows, stopped).await?;
    wait_for_signal().await;
    tracing::info!(
        "stopping; in-flight exchanges get {} s to finish",
        args.grace
    );
    let _ = stop_tx.send(true);
    if let Some(task) = pg {
        match tokio::time::timeout(Duration::from_secs(args.grace), task).await {
            Ok(joined) => {
                joined.context("the PostgreSQL recorder stopped abnormally")??;
            }
            Err(_) => tracing::warn!(
                "PostgreSQL exchanges still in flight after the grace period were not recorded"
            ),
        }
    }
    Ok(ExitCode::SUCCESS)
}

async fn wait_for_signal() {
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = async {
            match term.as_mut() {
                Some(t) => { t.recv().await; }
                None => std::future::pending::<()>().await,
            }
        } => {}
    }
}
