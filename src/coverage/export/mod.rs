//! `recplay coverage export`: a run's coverage in the formats CI tools read.
//!
//! - Cobertura XML: line hits are the number of tests that ran the line (a
//!   line run only outside tests, at start-up, counts 1), branches carry
//!   condition-coverage.
//! - LCOV: one `TN:` section per test (plus `startup`), for genhtml and the
//!   many LCOV consumers.
//! - coverage.py JSON (format 3) with `show_contexts`: each line lists the
//!   tests that ran it.

mod cobertura;
mod json;
mod lcov;

use std::path::Path;

use anyhow::Result;

use super::model::RunCoverage;
use super::store;

/// The export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Cobertura,
    Lcov,
    Json,
}

/// Renders a run in one format.
pub fn render(run: &RunCoverage, format: Format, timestamp_ms: i64) -> Result<String> {
    match format {
        Format::Cobertura => Ok(cobertura::render(run, timestamp_ms)),
        Format::Lcov => Ok(lcov::render(run)),
        Format::Json => json::render(run, timestamp_ms),
    }
}

/// Loads a run (default: the latest) and writes it to `output`.
pub fn export(path: &Path, run: Option<&str>, format: Format, output: &Path) -> Result<String> {
    let (name, coverage) = store::load_run(path, run)?;
    let body = render(&coverage, format, chrono::Utc::now().timestamp_millis())?;
    store::write_atomically(output, body.as_bytes())?;
    Ok(name)
}
