//! What replaying produced, test by test, for the reports to render.

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
}

/// What a finished test leaves behind once its report entry is written:
/// its name and times for JUnit, and a failed test's whole outcome for the
/// terminal and JUnit's failure text. A passed test keeps a few dozen bytes
/// here instead of its request, responses and comparison.
#[derive(Debug)]
pub struct TestSummary {
    name: Box<str>,
    pub started: DateTime<Utc>,
    pub completed: DateTime<Utc>,
    failure: Option<Box<TestOutcome>>,
}

impl TestSummary {
    pub fn of(outcome: TestOutcome) -> TestSummary {
        TestSummary {
            name: outcome.case.name.as_str().into(),
            started: outcome.started,
            completed: outcome.completed,
            failure: (!outcome.passed()).then(|| Box::new(outcome)),
        }
    }

    pub fn passed(&self) -> bool {
        self.failure.is_none()
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    /// The whole outcome of a failed test; None when it passed.
    pub fn failure(&self) -> Option<&TestOutcome> {
        self.failure.as_deref()
    }
}

/// One replayed test set.
#[derive(Debug)]
pub struct SetOutcome {
    pub name: String,
    pub tests: Vec<TestSummary>,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::{BodyKind, Difference};
    use recplay_proxy::testset::HttpSpec;

    fn outcome(differences: Vec<Difference>) -> TestOutcome {
        let mut spec = HttpSpec::default();
        spec.req.body.body = "x".repeat(10_000);
        TestOutcome {
            case: HttpTestCase::new("test-7", spec),
            started: Utc::now(),
            completed: Utc::now(),
            actual: None,
            error: None,
            comparison: Some(Comparison {
                body_kind: BodyKind::Text,
                differences,
            }),
            noise: Default::default(),
            extras: Default::default(),
        }
    }

    #[test]
    fn a_passed_test_keeps_its_name_and_times_and_a_failed_one_everything() {
        let passed = TestSummary::of(outcome(Vec::new()));
        assert!(passed.passed());
        assert_eq!(passed.name(), "test-7");
        assert!(passed.failure().is_none());
        // What a passed test costs the run: this struct and its name.
        assert!(std::mem::size_of::<TestSummary>() <= 48);

        let failed = TestSummary::of(outcome(vec![Difference::Status {
            expected: 200,
            actual: 500,
        }]));
        assert!(!failed.passed());
        let kept = failed.failure().expect("a failed test keeps its outcome");
        assert_eq!(kept.case.spec.req.body.body.len(), 10_000);
    }
}
