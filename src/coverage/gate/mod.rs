//! `recplay coverage gate`: pass or fail a build on its line coverage.
//!
//! - `verdict`: the pure decision (absolute | baseline | both, epsilon).
//! - `report`: the Markdown report whose front matter is the source of truth.
//! - `baseline`: the ratchet that only moves up.
//!
//! The gate never errors out: a coverage it cannot read is a tool error,
//! which passes with a warning (fail-open) unless `fail_closed` is set.
//! `RECPLAY_COVERAGE_GATE=off` turns it into a no-op that passes.

pub mod baseline;
pub mod report;
pub mod verdict;

#[cfg(test)]
mod tests;

use std::path::PathBuf;

use anyhow::Result;

use super::store;
use report::ReportFields;
pub use verdict::Policy;

/// Kill switch for CI: `off`, `0` or `false` makes the gate inert.
pub const KILL_SWITCH_ENV: &str = "RECPLAY_COVERAGE_GATE";

/// Everything the gate needs, as validated from the flags.
#[derive(Debug, Clone)]
pub struct GateConfig {
    pub path: PathBuf,
    pub run: Option<String>,
    pub policy: Policy,
    pub floor: f64,
    pub epsilon: f64,
    pub baseline_file: PathBuf,
    pub report_file: PathBuf,
    pub fail_closed: bool,
    /// The kill switch's value (read from the environment by the command).
    pub switch: Option<String>,
}

/// What the gate decided.
#[derive(Debug, Clone, PartialEq)]
pub struct GateOutcome {
    pub pass: bool,
    pub reason: String,
    pub measured: Option<f64>,
    /// Whether the ratchet raised (or bootstrapped) the baseline.
    pub baseline_raised: bool,
}

/// Whether the kill switch leaves the gate on.
pub fn gate_enabled(switch: Option<&str>) -> bool {
    !matches!(
        switch.map(|s| s.trim().to_ascii_lowercase()).as_deref(),
        Some("off" | "0" | "false" | "no" | "disabled")
    )
}

/// Runs the gate: measure, decide, write the report, ratchet on PASS.
pub fn run_gate(config: &GateConfig) -> GateOutcome {
    if !gate_enabled(config.switch.as_deref()) {
        return GateOutcome {
            pass: true,
            reason: format!("coverage gate disabled by {KILL_SWITCH_ENV}; nothing measured"),
            measured: None,
            baseline_raised: false,
        };
    }
    let measurement = measure(config);
    let (pass, reason, measured, baseline, run) = match measurement {
        Ok((run, measured, baseline)) => {
            let v = verdict::compute_verdict(
                measured,
                baseline,
                config.floor,
                config.policy,
                config.epsilon,
            );
            (v.pass, v.reason, Some(measured), baseline, Some(run))
        }
        Err(e) => {
            let (pass, mode) = if config.fail_closed {
                (false, "fail-closed: failing the build")
            } else {
                (true, "fail-open: passing with a warning")
            };
            let reason = format!("coverage could not be measured ({e:#}); {mode}");
            tracing::warn!("{reason}");
            (pass, reason, None, None, config.run.clone())
        }
    };
    let delta = measured
        .map(|m| {
            let floor = (config.policy != Policy::Baseline).then_some(config.floor);
            let base = if config.policy == Policy::Absolute {
                None
            } else {
                baseline
            };
            verdict::compute_delta(m, base, floor)
        })
        .unwrap_or(0.0);
    let fields = ReportFields {
        pass,
        measured,
        baseline,
        floor: config.floor,
        policy: config.policy.to_string(),
        epsilon: config.epsilon.max(0.0),
        delta,
        run: run.clone(),
        reason: reason.clone(),
    };
    let mut reason = reason;
    let written = store::write_atomically(
        &config.report_file,
        report::render_report(&fields).as_bytes(),
    );
    let mut baseline_raised = false;
    match written {
        Ok(()) if pass && measured.is_some() => {
            baseline_raised = baseline::ratchet_from_report(
                &config.baseline_file,
                &config.report_file,
                run.as_deref(),
            );
        }
        Ok(()) => {}
        Err(e) => {
            tracing::warn!("{e:#}");
            reason.push_str(&format!(" (the report could not be written: {e:#})"));
        }
    }
    GateOutcome {
        pass,
        reason,
        measured,
        baseline_raised,
    }
}

fn measure(config: &GateConfig) -> Result<(String, f64, Option<f64>)> {
    let (run, coverage) = store::load_run(&config.path, config.run.as_deref())?;
    let baseline = baseline::read_baseline(&config.baseline_file)?;
    Ok((run, coverage.totals.line_percent, baseline))
}
