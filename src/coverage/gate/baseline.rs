//! The ratchet baseline: the best line coverage a passing gate has seen.
//! It only moves up, starts from the first passing run (bootstrap), and is
//! replaced atomically so a crash never leaves half a file.

use std::path::Path;

use anyhow::{Context, Result};
use serde::{Deserialize, Serialize};

use super::super::store::write_atomically;
use super::report::{parse_coverage_status, read_measured_coverage};

#[derive(Debug, Serialize, Deserialize)]
struct BaselineFile {
    format_version: u32,
    line_percent: f64,
    #[serde(default)]
    run: Option<String>,
    #[serde(default)]
    updated_at: Option<String>,
}

/// The baseline, or None before the first passing run.
pub fn read_baseline(path: &Path) -> Result<Option<f64>> {
    let body = match std::fs::read(path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(e).with_context(|| {
                format!("could not read the coverage baseline {}", path.display())
            })
        }
    };
    let file: BaselineFile = serde_json::from_slice(&body).with_context(|| {
        format!(
            "the coverage baseline {} is corrupt; fix it or delete it to bootstrap again",
            path.display()
        )
    })?;
    if !file.line_percent.is_finite() {
        anyhow::bail!("the coverage baseline {} holds no number", path.display());
    }
    // Out of range it would fail (above 100) or wave through (below 0)
    // every run from now on, for a reason no run could fix.
    if !(0.0..=100.0).contains(&file.line_percent) {
        anyhow::bail!(
            "the coverage baseline {} holds {}, not a percentage; fix it or delete it to bootstrap again",
            path.display(),
            file.line_percent
        );
    }
    Ok(Some(file.line_percent))
}

/// Raises the baseline to `measured` when that is higher (or when there is
/// none yet). Returns whether the file changed; it never goes down.
pub fn ratchet(path: &Path, measured: f64, run: Option<&str>) -> Result<bool> {
    if !measured.is_finite() {
        return Ok(false);
    }
    if let Some(current) = read_baseline(path)? {
        if measured <= current {
            return Ok(false);
        }
    }
    let file = BaselineFile {
        format_version: 1,
        line_percent: measured,
        run: run.map(str::to_string),
        updated_at: Some(chrono::Utc::now().to_rfc3339()),
    };
    let body = serde_json::to_vec_pretty(&file).context("could not serialise the baseline")?;
    write_atomically(path, &body)?;
    Ok(true)
}

/// Ratchets from a gate report: only a PASS report with a measured value
/// moves the baseline. Never fails: a missing or unreadable report, or a
/// baseline that cannot be written, is `false` with a warning.
pub fn ratchet_from_report(baseline: &Path, report: &Path, run: Option<&str>) -> bool {
    let content = match std::fs::read_to_string(report) {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(
                "baseline not updated: cannot read {}: {e}",
                report.display()
            );
            return false;
        }
    };
    if !parse_coverage_status(&content).0 {
        return false;
    }
    let Some(measured) = read_measured_coverage(&content) else {
        return false;
    };
    match ratchet(baseline, measured, run) {
        Ok(changed) => changed,
        Err(e) => {
            tracing::warn!("baseline not updated: {e:#}");
            false
        }
    }
}
