//! `recplay record`.

use std::process::ExitCode;

use crate::cli::RecordArgs;

pub async fn run(args: RecordArgs) -> anyhow::Result<ExitCode> {
    let _ = args;
    anyhow::bail!("recording is not available in this build")
}
