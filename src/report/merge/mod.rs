//! `recplay report merge DIR...`: the reports of the shards of one CI run
//! (`recplay test --shard I/N` on each runner) joined into one run, as if
//! one runner had replayed everything: per-set YAML reports and
//! `run-report.yaml` under `reports/test-run-N/`, JUnit, and per-test
//! coverage (`coverage.json`, which `coverage export` and `coverage gate`
//! read like any run's).
//!
//! Each shard's run report records its number and the whole plan, so a
//! missing shard, a shard given twice, or shards planned from different
//! test sets are errors (exit 2) and nothing is written: a merged report
//! that silently lacks a shard would pass a build it should fail. Exit 1
//! when any test of any shard failed.
//!
//! - `junit`: reading back a shard's JUnit file.

mod junit;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use serde::Deserialize;
use serde_yaml::{Mapping, Value};

use super::yaml::{status_word, write_run_summary, SetSummary};
use crate::cli::MergeArgs;
use crate::coverage::{merge::merge_runs, model::RunCoverage, session, store};
use crate::replay::observer::ExtraFields;
use crate::shard::ShardRecord;

const RUN_REPORT: &str = "run-report.yaml";
/// How deep below each DIR run reports are looked for (artifact folders
/// nest `keploy/reports/test-run-N` a few levels down).
const SEARCH_DEPTH: usize = 6;

#[derive(Deserialize)]
struct RunHeader {
    #[serde(default)]
    shard: Option<ShardRecord>,
}

/// One shard's run directory.
struct ShardRun {
    dir: PathBuf,
    record: ShardRecord,
}

pub fn run(args: MergeArgs) -> Result<ExitCode> {
    let shards = find_shards(&args.dirs)?;
    let first = &shards[0].record;
    let run_dir = super::next_run_dir(&args.path)?;
    let merged = merge_into(&shards, &run_dir);
    if merged.is_err() {
        // Nothing half-written is left to be mistaken for a run.
        let _ = std::fs::remove_dir_all(&run_dir);
    }
    let passed = merged?;
    if let Some(junit) = &args.junit {
        let text = std::fs::read(run_dir.join(super::junit::FILE_NAME))
            .with_context(|| format!("could not read back {}", run_dir.display()))?;
        if let Some(dir) = junit.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("could not create {}", dir.display()))?;
        }
        recplay_proxy::testset::store::write_atomically(junit, &text)
            .with_context(|| format!("could not write the JUnit report {}", junit.display()))?;
    }
    println!(
        "merged {} shards ({} test sets): {}",
        first.total,
        first.sets.len(),
        if passed { "PASSED" } else { "FAILED" }
    );
    println!("reports: {}", run_dir.display());
    Ok(if passed {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Every shard's run under `dirs`, checked to be exactly shards 1..=N of
/// one plan, sorted by shard number.
fn find_shards(dirs: &[PathBuf]) -> Result<Vec<ShardRun>> {
    let mut found = Vec::new();
    for dir in dirs {
        if !dir.is_dir() {
            bail!(
                "{} is not a directory; pass the folders holding the shards' reports",
                dir.display()
            );
        }
        let before = found.len();
        collect(dir, SEARCH_DEPTH, &mut found)?;
        if found.len() == before {
            bail!(
                "no shard's run report ({RUN_REPORT} with a `shard` entry) under {}; was it written by `recplay test --shard I/N`?",
                dir.display()
            );
        }
    }
    found.sort_by(|a, b| a.record.index.cmp(&b.record.index).then(a.dir.cmp(&b.dir)));
    let first = &found[0];
    for other in &found[1..] {
        let (a, b) = (&first.record, &other.record);
        if a.total != b.total || a.sets != b.sets || a.plan != b.plan {
            bail!(
                "{} (shard {}/{}) and {} (shard {}/{}) were planned from different test sets or shard counts; merge the shards of one CI run only",
                first.dir.display(),
                a.index,
                a.total,
                other.dir.display(),
                b.index,
                b.total
            );
        }
    }
    for pair in found.windows(2) {
        if pair[0].record.index == pair[1].record.index {
            bail!(
                "shard {}/{} appears twice ({} and {}); pass each shard's report once",
                pair[0].record.index,
                pair[0].record.total,
                pair[0].dir.display(),
                pair[1].dir.display()
            );
        }
    }
    let total = first.record.total;
    let missing: Vec<String> = (1..=total)
        .filter(|i| !found.iter().any(|s| s.record.index == *i))
        .map(|i| format!("{i}/{total}"))
        .collect();
    if !missing.is_empty() {
        let present: Vec<String> = found.iter().map(|s| s.dir.display().to_string()).collect();
        bail!(
            "shard {} missing (found {}); did its job fail before writing its report? A merged report without it would leave its tests out",
            missing.join(", "),
            present.join(", ")
        );
    }
    Ok(found)
}

fn collect(dir: &Path, depth: usize, found: &mut Vec<ShardRun>) -> Result<()> {
    let report = dir.join(RUN_REPORT);
    if report.is_file() {
        let bytes = std::fs::read(&report)
            .with_context(|| format!("could not read {}", report.display()))?;
        let header: RunHeader = serde_yaml::from_slice(&bytes).with_context(|| {
            format!("{} is not a run report recplay can read", report.display())
        })?;
        match header.shard {
            Some(record) => found.push(ShardRun {
                dir: dir.to_path_buf(),
                record,
            }),
            None => tracing::info!("{} is not a shard's run; left out", dir.display()),
        }
        return Ok(());
    }
    if depth == 0 {
        return Ok(());
    }
    let mut children: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("could not list {}", dir.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    children.sort();
    for child in children {
        collect(&child, depth - 1, found)?;
    }
    Ok(())
}

/// Where each part of a set was replayed: (shard run, part), in part order.
fn parts_of<'a>(shards: &'a [ShardRun], set: &str) -> Vec<(&'a ShardRun, usize)> {
    let mut parts: Vec<(&ShardRun, usize)> = shards
        .iter()
        .filter_map(|s| s.record.piece_of(set).map(|p| (s, p.part)))
        .collect();
    parts.sort_by_key(|(_, part)| *part);
    parts
}

/// Writes the merged run into `run_dir`; true when it passed.
fn merge_into(shards: &[ShardRun], run_dir: &Path) -> Result<bool> {
    let sets = shards[0].record.sets.clone();
    let mut reports: Vec<(String, Mapping)> = Vec::new();
    let mut junit_suites = Vec::new();
    let mut junit_files = BTreeMap::new();
    for shard in shards {
        let path = shard.dir.join(super::junit::FILE_NAME);
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("could not read the shard's JUnit file {}", path.display()))?;
        junit_files.insert(
            shard.record.index,
            junit::parse(&text, &path.display().to_string())?,
        );
    }
    for set in &sets {
        let parts = parts_of(shards, set);
        if parts.is_empty() {
            bail!("no shard was planned to replay {set}; the shards' plans are damaged");
        }
        let mut docs = Vec::new();
        for (shard, _) in &parts {
            let path = shard.dir.join(format!("{set}-report.yaml"));
            let bytes = std::fs::read(&path).with_context(|| {
                format!(
                    "could not read {}, which shard {}/{} should have written",
                    path.display(),
                    shard.record.index,
                    shard.record.total
                )
            })?;
            let doc: Mapping = serde_yaml::from_slice(&bytes)
                .with_context(|| format!("{} is not a test-set report", path.display()))?;
            docs.push(doc);
        }
        reports.push((set.clone(), merge_set(docs)));
        let suites: Vec<&junit::Suite> = parts
            .iter()
            .filter_map(|(s, _)| junit_files.get(&s.record.index)?.get(set))
            .collect();
        if suites.len() != parts.len() {
            bail!("a shard's JUnit file has no suite for {set}, though its YAML report does");
        }
        junit_suites.push((set.clone(), suites));
    }

    let coverage = merge_coverage(shards, &reports)?;
    if let Some(run) = &coverage {
        recount_new_lines(&mut reports, run);
    }
    let mut summaries = Vec::new();
    for (set, doc) in &reports {
        let path = run_dir.join(format!("{set}-report.yaml"));
        let text = serde_yaml::to_string(doc)
            .with_context(|| format!("could not render the merged report of {set}"))?;
        recplay_proxy::testset::store::write_atomically(&path, text.as_bytes())
            .with_context(|| format!("could not write {}", path.display()))?;
        summaries.push((set.as_str(), summary(doc)));
    }
    let mut extra = ExtraFields::new();
    if let Some(run) = &coverage {
        let file = store::write_run(run_dir, run)?;
        let name = run_dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        extra.insert("coverage".into(), session::run_fields(run, &name, &file)?);
    }
    extra.insert("merged_shards".into(), Value::from(shards.len() as u64));
    let passed = summaries.iter().all(|(_, s)| s.status == status_word(true));
    write_run_summary(run_dir, summaries, &extra)?;
    let xml = render_junit(&junit_suites);
    recplay_proxy::testset::store::write_atomically(
        &run_dir.join(super::junit::FILE_NAME),
        xml.as_bytes(),
    )
    .with_context(|| {
        format!(
            "could not write the merged JUnit file in {}",
            run_dir.display()
        )
    })?;
    Ok(passed)
}

fn count(doc: &Mapping, key: &str) -> usize {
    doc.get(key).and_then(Value::as_u64).unwrap_or(0) as usize
}

fn list_len(doc: &Mapping, key: &str) -> usize {
    doc.get(key)
        .and_then(Value::as_sequence)
        .map_or(0, Vec::len)
}

fn millis(v: Option<&Value>) -> u64 {
    v.and_then(Value::as_str)
        .and_then(|s| s.strip_suffix("ms"))
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

fn summary(doc: &Mapping) -> SetSummary {
    SetSummary::new(
        count(doc, "success"),
        count(doc, "failure"),
        count(doc, "total"),
        doc.get("failure_reason").is_some(),
    )
}

/// One set's report from its parts' (in part order): the first part's
/// document, with every part's tests in order and the counts redone. Load
/// problems, skipped tests and unserved mocks are the set's, the same in
/// every part, so the first part's stand.
fn merge_set(docs: Vec<Mapping>) -> Mapping {
    let mut docs = docs.into_iter();
    let mut merged = docs.next().unwrap_or_default();
    let mut tests = merged
        .get("tests")
        .and_then(Value::as_sequence)
        .cloned()
        .unwrap_or_default();
    let mut created = merged.get("created_at").and_then(Value::as_i64);
    let mut time = millis(merged.get("time_taken"));
    for doc in docs {
        if let Some(more) = doc.get("tests").and_then(Value::as_sequence) {
            tests.extend(more.iter().cloned());
        }
        if let Some(c) = doc.get("created_at").and_then(Value::as_i64) {
            created = Some(created.map_or(c, |m| m.min(c)));
        }
        time += millis(doc.get("time_taken"));
        if merged.get("failure_reason").is_none() {
            if let Some(reason) = doc.get("failure_reason") {
                merged.insert("failure_reason".into(), reason.clone());
            }
        }
    }
    let passed = tests
        .iter()
        .filter(|t| t.get("status").and_then(Value::as_str) == Some(status_word(true)))
        .count();
    let problems = list_len(&merged, "load_problems");
    let failure = tests.len() - passed + problems;
    let errored = merged.get("failure_reason").is_some();
    merged.insert(
        "status".into(),
        status_word(failure == 0 && !errored).into(),
    );
    merged.insert("success".into(), (passed as u64).into());
    merged.insert("failure".into(), (failure as u64).into());
    merged.insert("total".into(), ((tests.len() + problems) as u64).into());
    merged.insert("tests".into(), Value::Sequence(tests));
    if let Some(c) = created {
        merged.insert("created_at".into(), c.into());
    }
    merged.insert("time_taken".into(), format!("{time}ms").into());
    merged
}

/// The shards' coverage as one run, when any shard measured coverage.
fn merge_coverage(
    shards: &[ShardRun],
    reports: &[(String, Mapping)],
) -> Result<Option<RunCoverage>> {
    let mut runs = Vec::new();
    let mut without = Vec::new();
    for shard in shards {
        let path = shard.dir.join(store::COVERAGE_FILE);
        if !path.is_file() {
            without.push(format!("{}/{}", shard.record.index, shard.record.total));
            continue;
        }
        let bytes =
            std::fs::read(&path).with_context(|| format!("could not read {}", path.display()))?;
        let run: RunCoverage = serde_json::from_slice(&bytes)
            .with_context(|| format!("{} is not coverage data recplay can read", path.display()))?;
        runs.push(run);
    }
    if runs.is_empty() {
        return Ok(None);
    }
    if !without.is_empty() {
        bail!(
            "shard {} measured no coverage while others did; replay every shard with --coverage, or none",
            without.join(", ")
        );
    }
    let mut order = BTreeMap::new();
    for (set, doc) in reports {
        for t in doc
            .get("tests")
            .and_then(Value::as_sequence)
            .into_iter()
            .flatten()
        {
            if let Some(name) = t.get("name").and_then(Value::as_str) {
                let next = order.len();
                order.insert(format!("{set}/{name}"), next);
            }
        }
    }
    Ok(Some(merge_runs(runs, &|test| order.get(test).copied())))
}

/// Each test's `coverage.new_lines` in the YAML reports, as the merged
/// coverage counts it.
fn recount_new_lines(reports: &mut [(String, Mapping)], run: &RunCoverage) {
    let counts: BTreeMap<&str, usize> = run
        .tests
        .iter()
        .map(|t| (t.test.as_str(), t.new_lines))
        .collect();
    for (set, doc) in reports {
        let Some(tests) = doc.get_mut("tests").and_then(Value::as_sequence_mut) else {
            continue;
        };
        for t in tests {
            let Some(name) = t.get("name").and_then(Value::as_str) else {
                continue;
            };
            let Some(n) = counts.get(format!("{set}/{name}").as_str()).copied() else {
                continue;
            };
            if let Some(cov) = t.get_mut("coverage").and_then(Value::as_mapping_mut) {
                cov.insert("new_lines".into(), (n as u64).into());
            }
        }
    }
}

/// The merged JUnit file: each set's cases from its parts in order, then
/// its load problems once.
fn render_junit(sets: &[(String, Vec<&junit::Suite>)]) -> String {
    let mut body = String::new();
    let (mut all_tests, mut all_failures) = (0, 0);
    for (name, parts) in sets {
        let mut cases: Vec<&String> = parts.iter().flat_map(|p| p.cases.iter()).collect();
        if let Some(first) = parts.first() {
            cases.extend(first.load_problems.iter());
        }
        let failures = cases.iter().filter(|c| junit::failed(c)).count();
        let time: f64 = parts.iter().map(|p| p.time).sum();
        let timestamp = parts
            .iter()
            .map(|p| p.timestamp.as_str())
            .filter(|t| !t.is_empty())
            .min()
            .unwrap_or("");
        body.push_str(&super::junit::open_suite(
            name,
            cases.len(),
            failures,
            &format!("{time:.3}"),
            timestamp,
        ));
        for case in &cases {
            body.push_str("    ");
            body.push_str(case);
            body.push('\n');
        }
        body.push_str(super::junit::CLOSE_SUITE);
        all_tests += cases.len();
        all_failures += failures;
    }
    let mut xml = super::junit::open_run(all_tests, all_failures);
    xml.push_str(&body);
    xml.push_str(super::junit::CLOSE_RUN);
    xml
}
