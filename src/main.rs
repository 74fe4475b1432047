//! recplay: record HTTP traffic and PostgreSQL exchanges, replay them as tests.
//!
//! # Layout
//! - `cli`: flags as parsed; each command module validates them.
//! - `config`: keploy.yml, and the flags resolved over it.
//! - `app`: the app child process (start, readiness, stop).
//! - `http_client`: the client used to reach the app.
//! - `record`: `recplay record`.
//! - `record_pg`: the PostgreSQL recorder inside `recplay record`.
//! - `recover`: turning a crashed recording's journal into tests, first.
//! - `replay`: `recplay test` (the runner and its observer hooks).
//! - `compare`: noise-aware comparison of responses.
//! - `report`: YAML, JUnit and terminal reports of a replay run.
//! - `signals`: SIGINT/SIGTERM, watched for a command's whole life.
//! - `coverage`: per-test coverage, `recplay coverage export|gate`.
//! - `shard`: `--shard I/N`, the plan that splits a suite over CI runners.

use std::process::ExitCode;

use clap::Parser;

mod app;
mod cli;
mod compare;
mod config;
mod coverage;
mod http_client;
mod record;
mod recover;
mod replay;
mod report;
mod sanitize;
mod shard;
mod signals;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    init_logging(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("recplay: could not start the async runtime: {e}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("recplay: {e:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: cli::Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        cli::Command::Record(args) => record::run(args).await,
        cli::Command::Test(args) => replay::run(args).await,
        cli::Command::Coverage(command) => coverage::command::run(command),
        cli::Command::Report(cli::ReportCommand::Merge(args)) => report::merge::run(args),
        cli::Command::Sanitize(args) => sanitize::run(args),
    }
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "info",
        1 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: logs piped to a file or CI
        // stay plain text.
        .with_ansi(report::terminal::colour_wanted(
            std::io::IsTerminal::is_terminal(&std::io::stderr()),
        ))
        .with_target(false)
        .init();
}
