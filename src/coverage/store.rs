//! `coverage.json` in a run's report directory
//! (`<path>/reports/test-run-N/coverage.json`, next to the replay report):
//! written atomically by the run, read by `coverage export` and `gate`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};

use super::model::{RunCoverage, FORMAT_VERSION};

pub const COVERAGE_FILE: &str = "coverage.json";
const RUN_PREFIX: &str = "test-run-";

/// `<path>/reports`, shared with the replay report writer.
pub fn reports_dir(path: &Path) -> PathBuf {
    path.join("reports")
}

/// Writes `coverage.json` into a run directory (temp file + rename, so a
/// reader never sees half a file).
pub fn write_run(run_dir: &Path, coverage: &RunCoverage) -> Result<PathBuf> {
    fs::create_dir_all(run_dir).with_context(|| {
        format!(
            "could not create the report directory {}",
            run_dir.display()
        )
    })?;
    let target = run_dir.join(COVERAGE_FILE);
    let body = serde_json::to_vec(coverage).context("could not serialise the coverage data")?;
    write_atomically(&target, &body)?;
    Ok(target)
}

/// Replaces `target` with `body` in one rename (the test-set store's
/// writer: temp file in the same directory, fsync, rename).
pub fn write_atomically(target: &Path, body: &[u8]) -> Result<()> {
    if let Some(dir) = target.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).with_context(|| format!("could not create {}", dir.display()))?;
    }
    recplay_proxy::testset::store::write_atomically(target, body)
        .with_context(|| format!("could not write {}", target.display()))
}

/// The run to read: `run` when given, else the highest-numbered
/// `test-run-N` under `<path>/reports`.
pub fn resolve_run(path: &Path, run: Option<&str>) -> Result<(String, PathBuf)> {
    let reports = reports_dir(path);
    if let Some(name) = run {
        let dir = reports.join(name);
        if !dir.is_dir() {
            bail!(
                "there is no run {name} in {}; list the directory to see the runs",
                reports.display()
            );
        }
        return Ok((name.to_string(), dir));
    }
    let entries = fs::read_dir(&reports).with_context(|| {
        format!(
            "could not read {}: replay with `recplay test --coverage --path {}` first",
            reports.display(),
            path.display()
        )
    })?;
    let mut latest: Option<(u64, String)> = None;
    for entry in entries.flatten() {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(number) = name
            .strip_prefix(RUN_PREFIX)
            .and_then(|n| n.parse::<u64>().ok())
        else {
            continue;
        };
        let newer = match &latest {
            Some((best, _)) => number > *best,
            None => true,
        };
        if newer && entry.path().is_dir() {
            latest = Some((number, name));
        }
    }
    match latest {
        Some((_, name)) => {
            let dir = reports.join(&name);
            Ok((name, dir))
        }
        None => bail!(
            "no test-run-N directory in {}: replay with `recplay test --coverage` first",
            reports.display()
        ),
    }
}

/// Loads a run's coverage, naming the file and what to do when it is
/// missing or unreadable.
pub fn load_run(path: &Path, run: Option<&str>) -> Result<(String, RunCoverage)> {
    let (name, dir) = resolve_run(path, run)?;
    let file = dir.join(COVERAGE_FILE);
    let body = fs::read(&file).with_context(|| {
        format!(
            "{} has no coverage data ({}): replay with `recplay test --coverage`",
            name,
            file.display()
        )
    })?;
    let mut coverage: RunCoverage = serde_json::from_slice(&body)
        .with_context(|| format!("{} is not a recplay coverage file", file.display()))?;
    if coverage.format_version > FORMAT_VERSION {
        bail!(
            "{} was written by a newer recplay (format {}, this one reads up to {FORMAT_VERSION}); \
             upgrade recplay",
            file.display(),
            coverage.format_version
        );
    }
    coverage.summarise();
    Ok((name, coverage))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn picks_the_highest_numbered_run_and_round_trips() {
        let dir = tempfile::tempdir().expect("tempdir");
        let reports = reports_dir(dir.path());
        for n in [2, 10, 9] {
            fs::create_dir_all(reports.join(format!("test-run-{n}"))).expect("mkdir");
        }
        fs::create_dir_all(reports.join("notes")).expect("mkdir");
        let (name, run_dir) = resolve_run(dir.path(), None).expect("latest");
        assert_eq!(name, "test-run-10");
        let cov = RunCoverage::build(
            None,
            false,
            vec![],
            Default::default(),
            Default::default(),
            vec![],
        );
        write_run(&run_dir, &cov).expect("write");
        let (_, back) = load_run(dir.path(), None).expect("load");
        assert_eq!(back, cov);
        let err = load_run(dir.path(), Some("test-run-2")).expect_err("no coverage there");
        assert!(
            format!("{err:#}").contains("recplay test --coverage"),
            "{err:#}"
        );
    }

    #[test]
    fn a_corrupt_file_is_named() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run_dir = reports_dir(dir.path()).join("test-run-0");
        fs::create_dir_all(&run_dir).expect("mkdir");
        fs::write(run_dir.join(COVERAGE_FILE), b"{not json").expect("write");
        let err = load_run(dir.path(), None).expect_err("corrupt");
        assert!(
            format!("{err:#}").contains("not a recplay coverage file"),
            "{err:#}"
        );
    }

    /// A damaged coverage.json is an error naming the file, or loads: the
    /// figures are recomputed from the raw data, never taken on trust.
    #[test]
    fn a_damaged_coverage_file_is_named_or_loads_consistently() {
        let dir = tempfile::tempdir().expect("tempdir");
        let run_dir = reports_dir(dir.path()).join("test-run-0");
        let statics = [(
            "/a.py".to_string(),
            super::super::protocol::StaticFile {
                lines: vec![1, 2, 3],
                branches: [(2, vec![3, -1])].into_iter().collect(),
                multiline: [(4, 3)].into_iter().collect(),
            },
        )]
        .into_iter()
        .collect();
        let cov = RunCoverage::build(None, true, vec![], statics, Default::default(), vec![]);
        let file = write_run(&run_dir, &cov).expect("write");
        let original = fs::read(&file).expect("read");
        let mut rng = recplay_proxy::test_rng::Rng::new(11);
        for _ in 0..1000 {
            fs::write(&file, rng.damage(&original)).expect("write");
            match load_run(dir.path(), None) {
                Ok((_, loaded)) => {
                    let mut again = loaded.clone();
                    again.summarise();
                    assert_eq!(again, loaded);
                }
                Err(e) => {
                    let message = format!("{e:#}");
                    assert!(message.contains(&file.display().to_string()), "{message}");
                }
            }
        }
    }
}
