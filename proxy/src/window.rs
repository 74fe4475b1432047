//! Which HTTP test is in flight.
//!
//! The HTTP recorder opens a window when a request arrives and closes it when
//! the response is complete; the PostgreSQL recorder asks which window holds
//! the moment an exchange started, so each mock names the test it belongs
//! to. At replay the same registry tells the mock server which test is being
//! replayed, so it prefers that test's mocks.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};

#[derive(Debug, Clone)]
struct Window {
    test: String,
    opened: DateTime<Utc>,
    closed: Option<DateTime<Utc>>,
}

/// Shared, cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct TestWindows {
    inner: Arc<Mutex<Vec<Window>>>,
}

/// Closed windows older than this many entries are forgotten: lookups only
/// ever ask about recent moments, and the list must not grow without bound.
const KEPT_WINDOWS: usize = 4096;

impl TestWindows {
    pub fn new() -> Self {
        Self::default()
    }

    /// A test's request arrived at `at`.
    pub fn open(&self, test: &str, at: DateTime<Utc>) {
        let mut windows = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= KEPT_WINDOWS {
            if let Some(pos) = windows.iter().position(|w| w.closed.is_some()) {
                windows.remove(pos);
            }
        }
        windows.push(Window {
            test: test.to_string(),
            opened: at,
            closed: None,
        });
    }

    /// A test's response completed at `at`.
    pub fn close(&self, test: &str, at: DateTime<Utc>) {
        let mut windows = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(w) = windows
            .iter_mut()
            .rev()
            .find(|w| w.test == test && w.closed.is_none())
        {
            w.closed = Some(at);
        }
    }

    /// The test whose window contains `at`; when several overlap, the one
    /// opened most recently (the innermost).
    pub fn test_at(&self, at: DateTime<Utc>) -> Option<String> {
        let windows = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        windows
            .iter()
            .rev()
            .find(|w| w.opened <= at && w.closed.map_or(true, |c| at <= c))
            .map(|w| w.test.clone())
    }

    /// The test currently open (most recently opened, not yet closed).
    pub fn current(&self) -> Option<String> {
        let windows = self.inner.lock().unwrap_or_else(|p| p.into_inner());
        windows
            .iter()
            .rev()
            .find(|w| w.closed.is_none())
            .map(|w| w.test.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::Duration;

    #[test]
    fn an_exchange_belongs_to_the_window_that_contains_it() {
        let windows = TestWindows::new();
        let t0 = Utc::now();
        windows.open("test-1", t0);
        windows.close("test-1", t0 + Duration::milliseconds(10));
        windows.open("test-2", t0 + Duration::milliseconds(20));
        assert_eq!(
            windows.test_at(t0 + Duration::milliseconds(5)).as_deref(),
            Some("test-1")
        );
        assert_eq!(windows.test_at(t0 + Duration::milliseconds(15)), None);
        assert_eq!(
            windows.test_at(t0 + Duration::milliseconds(25)).as_deref(),
            Some("test-2")
        );
        assert_eq!(windows.current().as_deref(), Some("test-2"));
    }
}
