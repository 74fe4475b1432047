//! Which test a mock converted from Keploy's recording belongs to.
//!
//! Keploy marks its v1 Postgres mocks `metadata.type: config` whatever they
//! hold, so its own marking says nothing. recplay's rule applies instead:
//! session-level exchanges stay `session` (the converter decides those);
//! every other one belongs to the test whose request/response window holds
//! the moment it started, and is unattributed outside every window. Data
//! mocks tied to their test are what lets a query repeated in a later test
//! get that test's answer.

use chrono::{DateTime, Utc};

use crate::testset::{HttpTestCase, Lifetime, PgMock};

/// The tests' windows, from their recorded request and response times.
#[derive(Debug, Default)]
pub struct Windows {
    /// `(opened, closed, test)`, sorted by opening.
    windows: Vec<(DateTime<Utc>, DateTime<Utc>, String)>,
}

impl Windows {
    /// The windows of `tests`; a test whose times are missing or reversed
    /// has none.
    pub fn of_tests(tests: &[HttpTestCase]) -> Self {
        let mut windows: Vec<_> = tests
            .iter()
            .map(|t| (t.spec.req.timestamp, t.spec.resp.timestamp, t.name.clone()))
            .filter(|(opened, closed, _)| opened <= closed && opened.timestamp() > 0)
            .collect();
        windows.sort();
        Windows { windows }
    }

    /// The test whose window holds `at`; when windows overlap, the one
    /// opened last (the innermost), as at recording.
    pub fn test_at(&self, at: DateTime<Utc>) -> Option<&str> {
        let opened_before = self.windows.partition_point(|(opened, _, _)| *opened <= at);
        self.windows[..opened_before]
            .iter()
            .rev()
            .find(|(_, closed, _)| at <= *closed)
            .map(|(_, _, test)| test.as_str())
    }

    /// Gives an unattributed `mock` the test its start falls in, if any.
    pub fn attribute(&self, mock: &mut PgMock) {
        if mock.spec.lifetime != Lifetime::Unattributed {
            return;
        }
        if let Some(test) = self.test_at(mock.spec.request_timestamp) {
            mock.spec.lifetime = Lifetime::Test(test.to_string());
        }
    }
}
