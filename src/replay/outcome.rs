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

    /// A test of `case` compared as text with these differences (none:
    /// it passed), for the reports' unit tests.
    #[cfg(test)]
    pub fn compared(case: HttpTestCase, differences: Vec<crate::compare::Difference>) -> Self {
        TestOutcome {
            case,
            started: Utc::now(),
            completed: Utc::now(),
            actual: None,
            error: None,
            comparison: Some(Comparison {
                body_kind: crate::compare::BodyKind::Text,
                differences,
            }),
            noise: Default::default(),
            extras: Default::default(),
        }
    }
}

/// What a set's finished tests leave behind for the reports at the end:
/// how many passed, and each failed test's whole outcome (the terminal
/// shows its differences). Everything else a report needs of a test is
/// written as the test finishes (its YAML entry by `TestsWriter`, its
/// JUnit `<testcase>` by `junit::Rows`), so a passed test costs a count
/// here, whatever the number of tests.
#[derive(Debug, Default)]
pub struct TestTally {
    passed: usize,
    failed: Vec<TestOutcome>,
}

impl TestTally {
    pub fn add(&mut self, outcome: TestOutcome) {
        if outcome.passed() {
            self.passed += 1;
        } else {
            self.failed.push(outcome);
        }
    }

    pub fn passed(&self) -> usize {
        self.passed
    }

    /// The failed tests, in the order they ran.
    pub fn failures(&self) -> &[TestOutcome] {
        &self.failed
    }

    /// Every test replayed.
    pub fn len(&self) -> usize {
        self.passed + self.failed.len()
    }
}

/// One replayed test set.
#[derive(Debug)]
pub struct SetOutcome {
    pub name: String,
    pub tests: TestTally,
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
        self.tests.passed()
    }

    /// Failed tests plus files that could not be loaded.
    pub fn failed_count(&self) -> usize {
        self.tests.failures().len() + self.problems.len()
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
    use crate::compare::Difference;
    use recplay_proxy::testset::HttpSpec;

    fn outcome(differences: Vec<Difference>) -> TestOutcome {
        let mut spec = HttpSpec::default();
        spec.req.body.body = "x".repeat(10_000);
        TestOutcome::compared(HttpTestCase::new("test-7", spec), differences)
    }

    #[test]
    fn a_passed_test_is_counted_and_a_failed_one_kept_whole() {
        let mut tally = TestTally::default();
        tally.add(outcome(Vec::new()));
        tally.add(outcome(vec![Difference::Status {
            expected: 200,
            actual: 500,
        }]));
        tally.add(outcome(Vec::new()));
        assert_eq!((tally.passed(), tally.len()), (2, 3));
        let [failed] = tally.failures() else {
            panic!("one failure: {:?}", tally.failures());
        };
        assert_eq!(failed.name(), "test-7");
        assert_eq!(failed.case.spec.req.body.body.len(), 10_000);
    }
}
