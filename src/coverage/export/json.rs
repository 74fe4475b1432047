//! coverage.py's JSON report (format 3, `--show-contexts`): tests are the
//! contexts, lines run outside any test carry the empty context, as
//! coverage.py labels code run with no dynamic context.

use std::collections::{BTreeMap, BTreeSet};

use anyhow::{Context, Result};
use serde_json::{json, Map, Value};

use super::super::model::{percent, FileDetail, RunCoverage};

pub fn render(run: &RunCoverage, timestamp_ms: i64) -> Result<String> {
    let mut files = Map::new();
    let mut totals = Counts::default();
    for path in run.files.keys() {
        let detail = run.file_detail(path);
        let (entry, counts) = file_entry(run, &detail);
        totals.add(&counts);
        files.insert(run.display_path(path).to_string(), entry);
    }
    let timestamp = chrono::DateTime::from_timestamp_millis(timestamp_ms)
        .unwrap_or_default()
        .format("%Y-%m-%dT%H:%M:%S%.6f")
        .to_string();
    let report = json!({
        "meta": {
            "format": 3,
            "version": format!("recplay {}", env!("CARGO_PKG_VERSION")),
            "timestamp": timestamp,
            "branch_coverage": run.branch,
            "show_contexts": true,
        },
        "files": files,
        "totals": totals.summary(run.branch),
    });
    serde_json::to_string_pretty(&report).context("could not serialise the JSON coverage report")
}

#[derive(Default)]
struct Counts {
    statements: usize,
    covered: usize,
    branches: usize,
    covered_branches: usize,
    partial_branches: usize,
}

impl Counts {
    fn add(&mut self, other: &Counts) {
        self.statements += other.statements;
        self.covered += other.covered;
        self.branches += other.branches;
        self.covered_branches += other.covered_branches;
        self.partial_branches += other.partial_branches;
    }

    fn summary(&self, branch: bool) -> Value {
        let (num, den) = if branch {
            (
                self.covered + self.covered_branches,
                self.statements + self.branches,
            )
        } else {
            (self.covered, self.statements)
        };
        let pct = percent(num, den);
        let mut summary = json!({
            "covered_lines": self.covered,
            "num_statements": self.statements,
            "percent_covered": pct,
            "percent_covered_display": format!("{}", pct.round() as i64),
            "missing_lines": self.statements - self.covered,
            "excluded_lines": 0,
            "percent_statements_covered": percent(self.covered, self.statements),
            "percent_statements_covered_display":
                format!("{}", percent(self.covered, self.statements).round() as i64),
        });
        if branch {
            if let Some(map) = summary.as_object_mut() {
                map.insert("num_branches".into(), json!(self.branches));
                map.insert("num_partial_branches".into(), json!(self.partial_branches));
                map.insert("covered_branches".into(), json!(self.covered_branches));
                map.insert(
                    "missing_branches".into(),
                    json!(self.branches - self.covered_branches),
                );
                map.insert(
                    "percent_branches_covered".into(),
                    json!(percent(self.covered_branches, self.branches)),
                );
            }
        }
        summary
    }
}

fn file_entry(run: &RunCoverage, detail: &FileDetail) -> (Value, Counts) {
    let covered = detail.covered_lines();
    let missing: Vec<u32> = detail.statements.difference(&covered).copied().collect();
    let mut contexts: BTreeMap<u32, BTreeSet<&str>> = BTreeMap::new();
    for &line in &covered {
        let labels = contexts.entry(line).or_default();
        if detail.startup_lines.contains(&line) {
            labels.insert("");
        }
        for (test, (lines, _)) in run.tests.iter().zip(&detail.per_test) {
            if lines.contains(&line) {
                labels.insert(test.test.as_str());
            }
        }
    }
    let contexts: Map<String, Value> = contexts
        .into_iter()
        .map(|(line, labels)| (line.to_string(), json!(labels)))
        .collect();

    let executed_arcs = detail.executed_arcs();
    let possible = detail.possible_branches();
    let executed_branches: Vec<(i32, i32)> = possible
        .iter()
        .copied()
        .filter(|a| executed_arcs.contains(a))
        .collect();
    let missing_branches: Vec<(i32, i32)> = possible
        .iter()
        .copied()
        .filter(|a| !executed_arcs.contains(a))
        .collect();
    let partial = detail
        .branches
        .iter()
        .filter(|(&line, dests)| {
            let from = i32::try_from(line).unwrap_or(i32::MAX);
            let taken = dests
                .iter()
                .filter(|&&d| executed_arcs.contains(&(from, d)))
                .count();
            taken > 0 && taken < dests.len()
        })
        .count();
    let counts = Counts {
        statements: detail.statements.len(),
        covered: covered.len(),
        branches: possible.len(),
        covered_branches: executed_branches.len(),
        partial_branches: partial,
    };
    let mut entry = json!({
        "executed_lines": covered,
        "summary": counts.summary(run.branch),
        "missing_lines": missing,
        "excluded_lines": [],
        "contexts": contexts,
    });
    if run.branch {
        if let Some(map) = entry.as_object_mut() {
            map.insert("executed_branches".into(), json!(executed_branches));
            map.insert("missing_branches".into(), json!(missing_branches));
        }
    }
    (entry, counts)
}
