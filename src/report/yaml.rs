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

/// Builds the report document of one test set, its `tests` left empty:
/// their entries were written as each test finished (`TestsWriter`).
pub fn set_report(set: &SetOutcome) -> SetReport<'_> {
    SetReport {
        version: KEPLOY_API_VERSION,
        name: format!("{}-report", set.name),
        status: status_word(set.passed()),
        failure_reason: set.error.clone(),
        success: set.passed_count(),
        failure: set.failed_count(),
        ignored: set.skipped.len(),
        total: set.total(),
        tests: Vec::new(),
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

/// One entry of a set report's `tests`.
fn test_result<'a>(t: &'a TestOutcome, tests_dir: &str, mock_path: &str) -> TestResult<'a> {
    TestResult {
        kind: "Http",
        name: t.name(),
        status: status_word(t.passed()),
        started: t.started.timestamp(),
        completed: t.completed.timestamp(),
        test_case_path: tests_dir.to_string(),
        mock_path: mock_path.to_string(),
        test_case_id: t.name(),
        req: &t.case.spec.req,
        resp: t.actual.as_ref().map(stored_response),
        noise: &t.noise,
        result: result_doc(t),
        time_taken: millis(t.completed - t.started),
        failure_reason: t.error.as_deref(),
        extra: &t.extras,
    }
}

/// A set report's `tests` entries, written to a file beside the report as
/// each test finishes, so replaying 100,000 tests does not hold 100,000
/// requests and responses until the report is written (see
/// [`write_streamed_set_report`]).
pub struct TestsWriter {
    path: std::path::PathBuf,
    out: std::io::BufWriter<std::fs::File>,
    tests_dir: String,
    mock_path: String,
}

impl TestsWriter {
    /// Starts the entries of `set`'s report (its folder is `set_dir`).
    pub fn create(run_dir: &Path, set: &str, set_dir: &Path) -> Result<TestsWriter> {
        std::fs::create_dir_all(run_dir)
            .with_context(|| format!("could not create {}", run_dir.display()))?;
        let path = run_dir.join(format!(".{set}-report.tests.tmp"));
        let file = std::fs::File::create(&path)
            .with_context(|| format!("could not create {}", path.display()))?;
        Ok(TestsWriter {
            path,
            out: std::io::BufWriter::new(file),
            tests_dir: set_dir.join("tests").display().to_string(),
            mock_path: set_dir.join("mocks.yaml").display().to_string(),
        })
    }

    /// Writes `t`'s entry.
    pub fn add(&mut self, t: &TestOutcome) -> Result<()> {
        use std::io::Write;
        let entry = [test_result(t, &self.tests_dir, &self.mock_path)];
        let text = serde_yaml::to_string(&entry)
            .with_context(|| format!("could not render the report entry of {}", t.name()))?;
        self.out
            .write_all(text.as_bytes())
            .with_context(|| format!("could not write {}", self.path.display()))
    }
}

/// Writes `test-set-M-report.yaml` into the run directory, atomically,
/// with the `tests` entries `tests` wrote (not `set.tests`) copied in.
pub fn write_streamed_set_report(
    run_dir: &Path,
    set: &SetOutcome,
    tests: TestsWriter,
) -> Result<std::path::PathBuf> {
    use std::io::Write;
    let TestsWriter {
        path: entries, out, ..
    } = tests;
    out.into_inner()
        .map_err(|e| e.into_error())
        .with_context(|| format!("could not write {}", entries.display()))?;
    let path = run_dir.join(format!("{}-report.yaml", set.name));
    let report = set_report(set);
    let text = serde_yaml::to_string(&report)
        .with_context(|| format!("could not render the report of {}", set.name))?;
    // `tests` is a top-level key, so its empty list is on a line of its own.
    let (head, tail) = match text.split_once("\ntests: []\n") {
        Some((head, tail)) => (format!("{head}\n"), tail),
        None => anyhow::bail!("the report of {} has no `tests` key", set.name),
    };
    let tmp = run_dir.join(format!(".{}-report.yaml.tmp", set.name));
    let written = (|| -> std::io::Result<()> {
        let mut out = std::io::BufWriter::new(std::fs::File::create(&tmp)?);
        out.write_all(head.as_bytes())?;
        let mut copied = std::fs::File::open(&entries)?;
        let has_entries = copied.metadata()?.len() > 0;
        out.write_all(if has_entries {
            b"tests:\n"
        } else {
            b"tests: []\n"
        })?;
        std::io::copy(&mut copied, &mut out)?;
        out.write_all(tail.as_bytes())?;
        out.into_inner().map_err(|e| e.into_error())?.sync_data()?;
        std::fs::rename(&tmp, &path)
    })();
    let _ = std::fs::remove_file(&entries);
    written.with_context(|| format!("could not write the report {}", path.display()))?;
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
