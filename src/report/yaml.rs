//! The YAML reports, in the shape of Keploy's `TestReport`/`TestResult`
//! so tools that read Keploy reports read ours.
//!
//! Where Keploy puts one `body_result` with the whole bodies, we put one
//! per differing body path (the extra `path` field says which), since a
//! reviewer wants the field, not two 40 kB documents.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use recplay_proxy::testset::http_case::KEPLOY_API_VERSION;
use recplay_proxy::testset::http_form::{header_fields, store_body};
use recplay_proxy::testset::store::write_atomically;
use recplay_proxy::testset::{HttpRequest, HttpResponse};
use serde::Serialize;

use crate::compare::{ActualResponse, Difference};
use crate::replay::observer::ExtraFields;
use crate::replay::outcome::{SetOutcome, TestOutcome};

#[derive(Debug, Serialize)]
pub struct SetReport<'a> {
    pub version: &'static str,
    pub name: String,
    pub status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<String>,
    pub success: usize,
    pub failure: usize,
    pub ignored: usize,
    pub total: usize,
    pub tests: Vec<TestResult<'a>>,
    pub test_set: &'a str,
    pub created_at: i64,
    pub time_taken: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub load_problems: Vec<LoadProblemDoc>,
    /// Test files of kinds recplay does not replay; `ignored` counts them.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub skipped_tests: Vec<SkippedTestDoc>,
    /// Keploy mocks recplay does not serve, a line per kind.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub unserved_mocks: Vec<String>,
    #[serde(flatten)]
    pub extra: &'a ExtraFields,
}

#[derive(Debug, Serialize)]
pub struct SkippedTestDoc {
    pub name: String,
    pub kind: String,
}

#[derive(Debug, Serialize)]
pub struct LoadProblemDoc {
    pub location: String,
    pub message: String,
}

#[derive(Debug, Serialize)]
pub struct TestResult<'a> {
    pub kind: &'static str,
    pub name: &'a str,
    pub status: &'static str,
    pub started: i64,
    pub completed: i64,
    pub test_case_path: String,
    pub mock_path: String,
    pub test_case_id: &'a str,
    pub req: &'a HttpRequest,
    /// The actual response (the recorded one is in the test file).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub resp: Option<HttpResponse>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub noise: &'a BTreeMap<String, Vec<String>>,
    pub result: ResultDoc,
    pub time_taken: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failure_reason: Option<&'a str>,
    #[serde(flatten)]
    pub extra: &'a ExtraFields,
}

#[derive(Debug, Serialize)]
pub struct ResultDoc {
    pub status_code: IntResult,
    pub headers_result: Vec<HeaderResult>,
    pub body_result: Vec<BodyResult>,
    pub dep_result: Vec<serde_yaml::Value>,
}

#[derive(Debug, Serialize)]
pub struct IntResult {
    pub normal: bool,
    pub expected: u16,
    pub actual: u16,
}

#[derive(Debug, Serialize)]
pub struct HeaderResult {
    pub normal: bool,
    pub expected: HeaderDoc,
    pub actual: HeaderDoc,
}

#[derive(Debug, Serialize)]
pub struct HeaderDoc {
    pub key: String,
    pub value: Vec<String>,
}

#[derive(Debug, Serialize)]
pub struct BodyResult {
    pub normal: bool,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub path: String,
    /// None: the field is absent on this side.
    pub expected: Option<String>,
    pub actual: Option<String>,
}

pub fn status_word(passed: bool) -> &'static str {
    if passed {
        "PASSED"
    } else {
        "FAILED"
    }
}

/// The actual response in the same stored form as a recording.
pub fn stored_response(actual: &ActualResponse) -> HttpResponse {
    let mut resp = HttpResponse {
        status_code: actual.status,
        status_message: actual.status_message.clone(),
        proto_major: 1,
        proto_minor: 1,
        timestamp: chrono::Utc::now(),
        ..Default::default()
    };
    let (header, header_repeated) =
        header_fields(actual.headers.iter().map(|(n, v)| (n, v.as_bytes())));
    resp.header = header;
    resp.body = store_body(actual.body.clone(), None, None, 0);
    resp.body.header_repeated = header_repeated;
    if actual.body != actual.wire_body {
        resp.body.content_encoding = actual.header("content-encoding");
    }
    resp
}

fn result_doc(outcome: &TestOutcome) -> ResultDoc {
    let expected_status = outcome.case.spec.resp.status_code;
    let actual_status = outcome.actual.as_ref().map_or(0, |a| a.status);
    let mut doc = ResultDoc {
        status_code: IntResult {
            normal: expected_status == actual_status,
            expected: expected_status,
            actual: actual_status,
        },
        headers_result: Vec::new(),
        body_result: Vec::new(),
        dep_result: Vec::new(),
    };
    let Some(cmp) = &outcome.comparison else {
        return doc;
    };
    for d in &cmp.differences {
        match d {
            Difference::Status { .. } => {}
            Difference::Header {
                name,
                expected,
                actual,
            } => doc.headers_result.push(HeaderResult {
                normal: false,
                expected: HeaderDoc {
                    key: name.clone(),
                    value: expected.iter().cloned().collect(),
                },
                actual: HeaderDoc {
                    key: name.clone(),
                    value: actual.iter().cloned().collect(),
                },
            }),
            Difference::Body {
                path,
                expected,
                actual,
            } => doc.body_result.push(BodyResult {
                normal: false,
                kind: cmp.body_kind.keploy_name(),
                path: path.clone(),
                expected: expected.clone(),
                actual: actual.clone(),
            }),
        }
    }
    doc
}

fn millis(d: chrono::TimeDelta) -> String {
    format!("{}ms", d.num_milliseconds())
}

/// Builds the report document of one test set.
pub fn set_report(set: &SetOutcome) -> SetReport<'_> {
    let tests_dir = set.dir.join("tests").display().to_string();
    let mock_path = set.dir.join("mocks.yaml").display().to_string();
    let tests = set
        .tests
        .iter()
        .map(|t| TestResult {
            kind: "Http",
            name: t.name(),
            status: status_word(t.passed()),
            started: t.started.timestamp(),
            completed: t.completed.timestamp(),
            test_case_path: tests_dir.clone(),
            mock_path: mock_path.clone(),
            test_case_id: t.name(),
            req: &t.case.spec.req,
            resp: t.actual.as_ref().map(stored_response),
            noise: &t.noise,
            result: result_doc(t),
            time_taken: millis(t.completed - t.started),
            failure_reason: t.error.as_deref(),
            extra: &t.extras,
        })
        .collect();
    SetReport {
        version: KEPLOY_API_VERSION,
        name: format!("{}-report", set.name),
        status: status_word(set.passed()),
        failure_reason: set.error.clone(),
        success: set.passed_count(),
        failure: set.failed_count(),
        ignored: set.skipped.len(),
        total: set.total(),
        tests,
        test_set: &set.name,
        created_at: set.started.timestamp(),
        time_taken: millis(set.completed - set.started),
        load_problems: set
            .problems
            .iter()
            .map(|p| LoadProblemDoc {
                location: p.location.clone(),
                message: p.message.clone(),
            })
            .collect(),
        skipped_tests: set
            .skipped
            .iter()
            .map(|t| SkippedTestDoc {
                name: t.name.clone(),
                kind: t.kind.clone(),
            })
            .collect(),
        unserved_mocks: set.unserved.clone(),
        extra: &set.extras,
    }
}

/// Writes `test-set-M-report.yaml` into the run directory, atomically.
pub fn write_set_report(run_dir: &Path, set: &SetOutcome) -> Result<std::path::PathBuf> {
    let path = run_dir.join(format!("{}-report.yaml", set.name));
    let text = serde_yaml::to_string(&set_report(set))
        .with_context(|| format!("could not render the report of {}", set.name))?;
    write_atomically(&path, text.as_bytes())
        .with_context(|| format!("could not write the report {}", path.display()))?;
    Ok(path)
}

#[derive(Debug, Serialize)]
struct RunReport<'a> {
    version: &'static str,
    name: String,
    status: &'static str,
    success: usize,
    failure: usize,
    total: usize,
    test_sets: BTreeMap<&'a str, SetSummary>,
    #[serde(flatten)]
    extra: &'a ExtraFields,
}

/// A set's line in `run-report.yaml`.
#[derive(Debug, Serialize)]
pub struct SetSummary {
    pub status: &'static str,
    pub success: usize,
    pub failure: usize,
    pub total: usize,
}

impl SetSummary {
    pub fn new(success: usize, failure: usize, total: usize, errored: bool) -> Self {
        SetSummary {
            status: status_word(failure == 0 && !errored),
            success,
            failure,
            total,
        }
    }
}

/// Writes `run-report.yaml`: totals per set and the run-level fields the
/// observers returned.
pub fn write_run_report(run_dir: &Path, sets: &[SetOutcome], extra: &ExtraFields) -> Result<()> {
    let summaries: Vec<(&str, SetSummary)> = sets
        .iter()
        .map(|s| {
            (
                s.name.as_str(),
                SetSummary::new(
                    s.passed_count(),
                    s.failed_count(),
                    s.total(),
                    s.error.is_some(),
                ),
            )
        })
        .collect();
    write_run_summary(run_dir, summaries, extra)
}

/// Writes `run-report.yaml` from each set's summary (the replay run and
/// `report merge` both end here). Passes when every set passed.
pub fn write_run_summary(
    run_dir: &Path,
    sets: Vec<(&str, SetSummary)>,
    extra: &ExtraFields,
) -> Result<()> {
    let name = run_dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let report = RunReport {
        version: KEPLOY_API_VERSION,
        name,
        status: status_word(sets.iter().all(|(_, s)| s.status == status_word(true))),
        success: sets.iter().map(|(_, s)| s.success).sum(),
        failure: sets.iter().map(|(_, s)| s.failure).sum(),
        total: sets.iter().map(|(_, s)| s.total).sum(),
        test_sets: sets.into_iter().collect(),
        extra,
    };
    let path = run_dir.join("run-report.yaml");
    let text = serde_yaml::to_string(&report).context("could not render the run report")?;
    write_atomically(&path, text.as_bytes())
        .with_context(|| format!("could not write the report {}", path.display()))?;
    Ok(())
}
