//! The collector behind the replay runner's observer hooks: `&self`
//! methods (the runner shares observers), report fields as YAML values, and
//! `coverage.json` written into the run's report directory at the end.
//!
//! Hook to call: `before_app_start` → `app_env`, `warm_up` → `warm_up`,
//! `after_test` → `after_test`, `after_run` → `after_run`. One session
//! serves every test set of a run: agents of a restarted app reconnect.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde_yaml::Value;
use tokio::sync::Mutex;

use super::collector::{CollectorOptions, CoverageCollector};
use super::model::{RunCoverage, TestCoverage};
use super::store;

/// Report fields keyed by name, as the runner stores them.
pub type Fields = BTreeMap<String, Value>;

pub struct CoverageSession {
    keploy_dir: PathBuf,
    env: Vec<(String, String)>,
    collector: Mutex<Option<CoverageCollector>>,
}

impl CoverageSession {
    /// Starts listening; `keploy_dir` is the `--path` whose `reports/`
    /// receives `coverage.json`. Call from within a Tokio runtime.
    pub fn start(keploy_dir: &Path, options: CollectorOptions) -> Result<Self> {
        let collector = CoverageCollector::start(options)?;
        let env = collector.app_env()?;
        Ok(CoverageSession {
            keploy_dir: keploy_dir.to_path_buf(),
            env,
            collector: Mutex::new(Some(collector)),
        })
    }

    /// Environment variables for the app process.
    pub fn app_env(&self) -> Vec<(String, String)> {
        self.env.clone()
    }

    /// Waits until `n` agents are connected (the app's processes); returns
    /// how many are.
    pub async fn wait_for_agents(&self, n: usize, timeout: std::time::Duration) -> usize {
        match self.collector.lock().await.as_ref() {
            Some(c) => c.wait_for_agents(n, timeout).await,
            None => 0,
        }
    }

    /// After the runner's warm-up request, before the set's first test.
    pub async fn warm_up(&self) -> Result<()> {
        match self.collector.lock().await.as_mut() {
            Some(c) => c.warm_up().await,
            None => Ok(()),
        }
    }

    /// Once a test's response is complete: its coverage as report fields
    /// (`coverage`: lines covered, new lines, files and their lines).
    pub async fn after_test(&self, set: &str, test: &str) -> Result<Fields> {
        let mut guard = self.collector.lock().await;
        let Some(collector) = guard.as_mut() else {
            return Ok(Fields::new());
        };
        let root = collector.root();
        let coverage = collector.snapshot_all(&format!("{set}/{test}")).await?;
        Ok(Fields::from([(
            "coverage".to_string(),
            test_fields(&coverage, root.as_deref())?,
        )]))
    }

    /// At the end of the run: figures for the run report, and the full data
    /// in `reports/test-run-N/coverage.json` (the newest run directory).
    pub async fn after_run(&self) -> Result<Fields> {
        let Some(collector) = self.collector.lock().await.take() else {
            return Ok(Fields::new());
        };
        let run = collector.finish().await?;
        let (name, dir) = store::resolve_run(&self.keploy_dir, None)?;
        let file = store::write_run(&dir, &run)?;
        Ok(Fields::from([(
            "coverage".to_string(),
            run_fields(&run, &name, &file)?,
        )]))
    }
}

fn test_fields(coverage: &TestCoverage, root: Option<&str>) -> Result<Value> {
    let files: BTreeMap<String, Vec<u32>> = coverage
        .files
        .iter()
        .map(|(path, hits)| {
            let shown = root
                .and_then(|r| path.strip_prefix(r))
                .map(|p| p.trim_start_matches('/').to_string())
                .unwrap_or_else(|| path.clone());
            (shown, hits.lines.iter().copied().collect())
        })
        .collect();
    let mut map = serde_yaml::Mapping::new();
    map.insert("lines_covered".into(), coverage.lines_covered.into());
    map.insert("new_lines".into(), coverage.new_lines.into());
    if coverage.agents_failed > 0 {
        map.insert("agents_failed".into(), coverage.agents_failed.into());
    }
    map.insert(
        "files".into(),
        serde_yaml::to_value(files).context("could not encode a test's coverage")?,
    );
    Ok(Value::Mapping(map))
}

pub fn run_fields(run: &RunCoverage, name: &str, file: &Path) -> Result<Value> {
    let mut map = serde_yaml::Mapping::new();
    map.insert(
        "line_percent".into(),
        round2(run.totals.line_percent).into(),
    );
    if let Some(b) = run.totals.branch_percent {
        map.insert("branch_percent".into(), round2(b).into());
    }
    map.insert("statements".into(), run.totals.statements.into());
    map.insert("covered_lines".into(), run.totals.covered_lines.into());
    let per_file: BTreeMap<String, f64> = run
        .files
        .iter()
        .map(|(p, f)| {
            (
                run.display_path(p).to_string(),
                round2(f.summary.line_percent),
            )
        })
        .collect();
    map.insert(
        "files".into(),
        serde_yaml::to_value(per_file).context("could not encode the run's coverage")?,
    );
    map.insert(
        "data".into(),
        format!("{name}/{}", store::COVERAGE_FILE).into(),
    );
    tracing::info!("coverage data written to {}", file.display());
    Ok(Value::Mapping(map))
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}
