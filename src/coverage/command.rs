//! `recplay coverage export|gate`: flags in, files out, an exit code.

use std::process::ExitCode;

use anyhow::Result;

use super::export::{self, Format};
use super::gate::{self, GateConfig, Policy};
use crate::cli::{CoverageCommand, ExportArgs, ExportFormat, GateArgs, GatePolicy};

pub fn run(command: CoverageCommand) -> Result<ExitCode> {
    let path = match &command {
        CoverageCommand::Export(args) => &args.path,
        CoverageCommand::Gate(args) => &args.path,
    };
    // These commands read no keploy.yml: a journal found here is redacted
    // by the default rules.
    crate::recover::recover(path, &Default::default())?;
    match command {
        CoverageCommand::Export(args) => run_export(args),
        CoverageCommand::Gate(args) => Ok(run_gate(args)),
    }
}

fn run_export(args: ExportArgs) -> Result<ExitCode> {
    let format = match args.format {
        ExportFormat::Cobertura => Format::Cobertura,
        ExportFormat::Lcov => Format::Lcov,
        ExportFormat::Json => Format::Json,
    };
    let run = export::export(&args.path, args.run.as_deref(), format, &args.output)?;
    eprintln!(
        "recplay: wrote {run}'s coverage ({:?}) to {}",
        args.format,
        args.output.display()
    );
    Ok(ExitCode::SUCCESS)
}

fn run_gate(args: GateArgs) -> ExitCode {
    let config = GateConfig {
        path: args.path,
        run: args.run,
        policy: match args.policy {
            GatePolicy::Absolute => Policy::Absolute,
            GatePolicy::Baseline => Policy::Baseline,
            GatePolicy::Both => Policy::Both,
        },
        floor: args.floor,
        epsilon: args.epsilon,
        baseline_file: args.baseline,
        report_file: args.report.clone(),
        fail_closed: args.fail_closed,
        switch: std::env::var(gate::KILL_SWITCH_ENV).ok(),
    };
    let outcome = gate::run_gate(&config);
    let status = if outcome.pass { "PASS" } else { "FAIL" };
    println!("coverage gate: {status}: {}", outcome.reason);
    if outcome.baseline_raised {
        println!(
            "coverage gate: baseline raised in {}",
            config.baseline_file.display()
        );
    }
    if outcome.pass {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
