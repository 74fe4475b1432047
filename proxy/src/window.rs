//! Which HTTP test is in flight.
//!
//! The HTTP recorder opens a window when a request arrives and closes it when
//! the response is complete; the PostgreSQL recorder asks which window holds
//! the moment an exchange started, so each mock names the test it belongs
//! to. At replay the same registry tells the mock server which test is being
//! replayed, so it prefers that test's mocks.
//!
//! Every request of a recording passes through here twice, so opening and
//! closing cost the same at the millionth request as at the first: open
//! windows sit in a map (there are only as many as requests in flight), and
//! closed ones in a bounded ring in the order they closed.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};

use chrono::{DateTime, Duration, Utc};

#[derive(Debug, Clone)]
struct ClosedWindow {
    test: String,
    opened: DateTime<Utc>,
    closed: DateTime<Utc>,
}

#[derive(Debug, Default)]
struct Windows {
    /// Test name → when its request arrived.
    open: HashMap<String, DateTime<Utc>>,
    /// Oldest first, in the order `close` was called.
    closed: VecDeque<ClosedWindow>,
}

/// Shared, cheap to clone.
#[derive(Debug, Clone, Default)]
pub struct TestWindows {
    inner: Arc<Mutex<Windows>>,
}

/// Closed windows older than this many entries are forgotten: lookups only
/// ever ask about recent moments, and the list must not grow without bound.
const KEPT_WINDOWS: usize = 4096;

/// Close times are taken just before the registry's lock, so the ring is in
/// close-time order only up to the time a thread waits for that lock; a
/// look-up keeps scanning back this far past the moment it asks about.
const CLOSE_ORDER_SLACK: Duration = Duration::milliseconds(100);

impl TestWindows {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Windows> {
        self.inner.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A test's request arrived at `at`.
    pub fn open(&self, test: &str, at: DateTime<Utc>) {
        self.lock().open.insert(test.to_string(), at);
    }

    /// A test's response completed at `at`.
    pub fn close(&self, test: &str, at: DateTime<Utc>) {
        let mut windows = self.lock();
        let Some((test, opened)) = windows.open.remove_entry(test) else {
            return;
        };
        if windows.closed.len() >= KEPT_WINDOWS {
            windows.closed.pop_front();
        }
        windows.closed.push_back(ClosedWindow {
            test,
            opened,
            closed: at,
        });
    }

    /// The test whose window contains `at`; when several overlap, the one
    /// opened most recently (the innermost).
    pub fn test_at(&self, at: DateTime<Utc>) -> Option<String> {
        let windows = self.lock();
        let still_open = windows
            .open
            .iter()
            .filter(|(_, opened)| **opened <= at)
            .map(|(test, opened)| (*opened, test));
        let closed_around = windows
            .closed
            .iter()
            .rev()
            .take_while(|w| w.closed + CLOSE_ORDER_SLACK >= at)
            .filter(|w| w.opened <= at && at <= w.closed)
            .map(|w| (w.opened, &w.test));
        still_open
            .chain(closed_around)
            .max_by_key(|(opened, _)| *opened)
            .map(|(_, test)| test.clone())
    }

    /// The test currently open (most recently opened, not yet closed).
    pub fn current(&self) -> Option<String> {
        let windows = self.lock();
        windows
            .open
            .iter()
            .max_by_key(|(_, opened)| **opened)
            .map(|(test, _)| test.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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

    #[test]
    fn overlapping_windows_answer_the_innermost() {
        let windows = TestWindows::new();
        let t0 = Utc::now();
        let ms = Duration::milliseconds;
        windows.open("outer", t0);
        windows.open("inner", t0 + ms(5));
        windows.close("inner", t0 + ms(10));
        assert_eq!(windows.test_at(t0 + ms(7)).as_deref(), Some("inner"));
        assert_eq!(windows.test_at(t0 + ms(12)).as_deref(), Some("outer"));
        windows.close("outer", t0 + ms(20));
        assert_eq!(windows.test_at(t0 + ms(7)).as_deref(), Some("inner"));
        assert_eq!(windows.test_at(t0 + ms(3)).as_deref(), Some("outer"));
        assert_eq!(windows.current(), None);
    }

    #[test]
    fn the_ring_forgets_the_oldest_windows_and_keeps_long_open_ones() {
        let windows = TestWindows::new();
        let t0 = Utc::now();
        let ms = Duration::milliseconds;
        windows.open("long-poll", t0);
        for n in 0..(KEPT_WINDOWS as i64 + 10) {
            let name = format!("test-{n}");
            windows.open(&name, t0 + ms(2 * n + 1));
            windows.close(&name, t0 + ms(2 * n + 2));
        }
        assert_eq!(windows.lock().closed.len(), KEPT_WINDOWS);
        // test-0 fell out of the ring; the long-open window still holds that moment.
        assert_eq!(windows.test_at(t0 + ms(1)).as_deref(), Some("long-poll"));
        let last = KEPT_WINDOWS as i64 + 9;
        assert_eq!(
            windows.test_at(t0 + ms(2 * last + 1)).as_deref(),
            Some(format!("test-{last}").as_str())
        );
    }
}
