//! What replaying produced, test by test, for the reports to render.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use recplay_proxy::testset::{HttpTestCase, LoadProblem, SkippedTest};

use super::observer::ExtraFields;
use crate::compare::{ActualResponse, Comparison};

/// One replayed test.
#[derive(Debug)]
pub struct TestOutcome {
    pub case: HttpTestCase,
    pub started: DateTime<Utc>,
    pub completed: DateTime<Utc>,
    /// None when no response came back (see `error`).
    pub actual: Option<ActualResponse>,
    /// Why the test could not be replayed or compared.
    pub error: Option<String>,
    pub comparison: Option<Comparison>,
    /// The test's effective noise as keploy.yml-style keys, for the report.
    pub noise: std::collections::BTreeMap<String, Vec<String>>,
    pub extras: ExtraFields,
}

impl TestOutcome {
    pub fn passed(&self) -> bool {
        self.error.is_none() && self.comparison.as_ref().is_some_and(Comparison::passed)
    }

    pub fn name(&self) -> &str {
        &self.case.name
    }

    /// Once the test's report entry is written, a passed test keeps only
    /// what the summary, JUnit and the terminal need (its name, times and
    /// verdict): a run's memory then does not grow with its tests' bodies.
    pub fn keep_summary(&mut self) {
        if self.passed() {
            self.case.spec = Default::default();
            self.actual = None;
            self.noise = Default::default();
            self.extras = Default::default();
        }
    }
}

/// One replayed test set.
#[derive(Debug)]
pub struct SetOutcome {
    pub name: String,
    pub dir: PathBuf,
    pub tests: Vec<TestOutcome>,
    /// Files that did not load; each counts as a failure.
    pub problems: Vec<LoadProblem>,
    /// Test files of kinds recplay does not replay (Keploy's gRPC and
    /// Http2 tests): named in the summary and the report, neither passed
    /// nor failed.
    pub skipped: Vec<SkippedTest>,
    /// Keploy mocks of kinds recplay does not serve, a line per kind
    /// (`14 Mongo mocks: not served by recplay`); never a failure.
    pub unserved: Vec<String>,
    /// Why the set could not run at all (the app did not start).
    pub error: Option<String>,
    pub started: DateTime<Utc>,
    pub completed: DateTime<Utc>,
    pub extras: ExtraFields,
}

impl SetOutcome {
    pub fn passed_count(&self) -> usize {
        self.tests.iter().filter(|t| t.passed()).count()
    }

    /// Failed tests plus files that could not be loaded.
    pub fn failed_count(&self) -> usize {
        self.tests.len() - self.passed_count() + self.problems.len()
    }

    pub fn total(&self) -> usize {
        self.tests.len() + self.problems.len()
    }

    pub fn passed(&self) -> bool {
        self.failed_count() == 0 && self.error.is_none()
    }
}
