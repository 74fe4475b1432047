//! Reports of a replay run.
//!
//! - `yaml`: `reports/test-run-N/test-set-M-report.yaml` in Keploy's
//!   TestReport shape, plus a run-level `run-report.yaml`.
//! - `junit`: JUnit XML for CI systems.
//! - `terminal`: progress, the diff of every failure, the summary lines.
//! - `merge`: `recplay report merge`, the shards of a CI run joined into one.

pub mod junit;
pub mod merge;
pub mod terminal;
pub mod yaml;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use recplay_proxy::testset::store::numbered;

/// Creates the next free `reports/test-run-N` under the keploy directory.
pub fn next_run_dir(keploy_dir: &Path) -> Result<PathBuf> {
    let reports = keploy_dir.join("reports");
    fs::create_dir_all(&reports).with_context(|| {
        format!(
            "could not create the reports directory {}",
            reports.display()
        )
    })?;
    let mut next = 0;
    for entry in
        fs::read_dir(&reports).with_context(|| format!("could not list {}", reports.display()))?
    {
        let entry = entry.with_context(|| format!("could not list {}", reports.display()))?;
        if let Some(n) = numbered(&entry.file_name().to_string_lossy(), "test-run") {
            next = next.max(n + 1);
        }
    }
    // create_dir (not _all) fails when a concurrent run took the number.
    loop {
        let dir = reports.join(format!("test-run-{next}"));
        match fs::create_dir(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => next += 1,
            Err(e) => return Err(e).with_context(|| format!("could not create {}", dir.display())),
        }
    }
}
