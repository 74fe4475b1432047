//! Weights for the plan from the previous run's timings.
//!
//! Only a complete, unsharded run counts (a merged run is one): a shard's
//! own run covers part of the suite, and shards running at the same time
//! on one checkout must not see each other's reports, or they would plan
//! differently. Without timings, a set weighs its test count.

use std::path::Path;

use serde::Deserialize;

use super::SetWeight;

#[derive(Deserialize)]
struct RunHeader {
    #[serde(default)]
    shard: Option<serde_yaml::Value>,
}

#[derive(Deserialize)]
struct SetTimes {
    #[serde(default)]
    tests: Vec<TestTime>,
}

#[derive(Deserialize)]
struct TestTime {
    #[serde(default)]
    time_taken: String,
}

/// `12ms` as milliseconds.
fn millis(s: &str) -> Option<f64> {
    s.trim().strip_suffix("ms")?.trim().parse().ok()
}

/// The newest `reports/test-run-N` whose run report exists and is not a
/// shard's.
fn previous_run(keploy_dir: &Path) -> Option<std::path::PathBuf> {
    let reports = keploy_dir.join("reports");
    let mut runs: Vec<(u64, std::path::PathBuf)> = std::fs::read_dir(&reports)
        .ok()?
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = recplay_proxy::testset::store::numbered(&name, "test-run")?;
            Some((n, e.path()))
        })
        .collect();
    runs.sort();
    runs.into_iter().rev().map(|(_, p)| p).find(|dir| {
        std::fs::read(dir.join("run-report.yaml"))
            .ok()
            .and_then(|bytes| serde_yaml::from_slice::<RunHeader>(&bytes).ok())
            .is_some_and(|h| h.shard.is_none())
    })
}

/// Mean milliseconds per test of each set that the previous run timed.
fn mean_times(run: &Path, sets: &[(String, usize)]) -> Vec<Option<f64>> {
    sets.iter()
        .map(|(name, _)| {
            let bytes = std::fs::read(run.join(format!("{name}-report.yaml"))).ok()?;
            let report: SetTimes = serde_yaml::from_slice(&bytes).ok()?;
            let times: Vec<f64> = report
                .tests
                .iter()
                .filter_map(|t| millis(&t.time_taken))
                .collect();
            (!times.is_empty()).then(|| times.iter().sum::<f64>() / times.len() as f64)
        })
        .collect()
}

/// Each set's weight: its expected time in microseconds (its own mean per
/// test, else the run's, times its test count) plus its count, so sets of
/// sub-millisecond tests still weigh by count; or the count alone when no
/// previous run timed anything.
pub fn weights(keploy_dir: &Path, sets: &[(String, usize)]) -> Vec<SetWeight> {
    let means = previous_run(keploy_dir)
        .map(|run| mean_times(&run, sets))
        .unwrap_or_else(|| vec![None; sets.len()]);
    weigh(sets, &means)
}

/// The arithmetic of [`weights`], given the timings.
pub fn weigh(sets: &[(String, usize)], means: &[Option<f64>]) -> Vec<SetWeight> {
    let known: Vec<f64> = means.iter().flatten().copied().collect();
    let overall = (!known.is_empty()).then(|| known.iter().sum::<f64>() / known.len() as f64);
    sets.iter()
        .zip(means.iter().chain(std::iter::repeat(&None)))
        .map(|((name, tests), mean)| {
            let per_test_us = match (*mean, overall) {
                (Some(m), _) | (None, Some(m)) => (m.max(0.0) * 1000.0).round() as u64,
                (None, None) => 0,
            };
            SetWeight {
                name: name.clone(),
                tests: *tests,
                weight: per_test_us.saturating_mul(*tests as u64) + *tests as u64,
            }
        })
        .collect()
}
