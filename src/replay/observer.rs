//! Hooks into a replay run for the parts that ride along with it (the
//! PostgreSQL mock server, per-test coverage) without the runner knowing
//! them.
//!
//! Order of calls for each test set:
//! `before_app_start` (all observers) → the app starts → `warm_up` →
//! for each test: `before_test` → request/response (inside a test window
//! named after the test) → `after_test` (with `--detect-noise`, `repeat`
//! around a second pass of the same) → the app stops → `after_test_set`;
//! after the last set: `after_run`.
//!
//! Errors from `before_app_start` stop the run (the app cannot work without
//! what the observer provides). Errors from the other hooks are logged and
//! stored in the report under `<observer>_error`, and the run goes on: a
//! coverage hiccup must not hide the test results.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;

use anyhow::Result;
use recplay_proxy::pg::matcher::Index;
use recplay_proxy::testset::LoadedTestSet;

/// A boxed future, so the trait stays dyn-compatible.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// A test set as replay holds it: its mocks are the matcher's index, built
/// while mocks.yaml was read a document at a time; the mock server takes it
/// once, when the set's app starts.
pub type ReplaySet = LoadedTestSet<std::sync::Mutex<Option<Index>>>;

/// Extra report fields: stored under the test (from `after_test`) or at the
/// top of the run report (from `after_run`), keyed by field name.
pub type ExtraFields = BTreeMap<String, serde_yaml::Value>;

/// Something that takes part in a replay run. Every hook has a default that
/// does nothing, so an observer implements only what it needs.
pub trait ReplayObserver: Send + Sync {
    /// Short name used in logs and in `<name>_error` report fields.
    fn name(&self) -> &str;

    /// Before the app starts for a test set: start whatever the app must
    /// reach (a mock database) and return extra environment variables for
    /// the app process.
    fn before_app_start<'a>(
        &'a self,
        set: &'a ReplaySet,
    ) -> BoxFuture<'a, Result<Vec<(String, String)>>> {
        let _ = set;
        Box::pin(async { Ok(Vec::new()) })
    }

    /// Once the app is ready, before the first test of the set (`target` is
    /// the app's base URL).
    fn warm_up<'a>(&'a self, set: &'a str, target: &'a str) -> BoxFuture<'a, Result<()>> {
        let _ = (set, target);
        Box::pin(async { Ok(()) })
    }

    /// Just before a test's request is sent.
    fn before_test<'a>(&'a self, set: &'a str, test: &'a str) -> BoxFuture<'a, Result<()>> {
        let _ = (set, test);
        Box::pin(async { Ok(()) })
    }

    /// Once the test's response is complete; the fields returned are stored
    /// under the test in the report.
    fn after_test<'a>(&'a self, set: &'a str, test: &'a str) -> BoxFuture<'a, Result<ExtraFields>> {
        let _ = (set, test);
        Box::pin(async { Ok(ExtraFields::new()) })
    }

    /// `--detect-noise` replays each test twice, and both passes must meet
    /// the same state: an observer that hands out recorded answers puts
    /// back, before the second pass, what the first consumed, and after it
    /// what the first left. Called only in that mode.
    fn repeat<'a>(&'a self, set: &'a str, test: &'a str, phase: Repeat) -> BoxFuture<'a, ()> {
        let _ = (set, test, phase);
        Box::pin(async {})
    }

    /// After the app of a test set has stopped.
    fn after_test_set<'a>(&'a self, set: &'a str) -> BoxFuture<'a, Result<ExtraFields>> {
        let _ = set;
        Box::pin(async { Ok(ExtraFields::new()) })
    }

    /// At the end of the run; the fields returned go into the run report.
    fn after_run(&self) -> BoxFuture<'_, Result<ExtraFields>> {
        Box::pin(async { Ok(ExtraFields::new()) })
    }
}

/// Where a test replayed twice (`--detect-noise`) stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Repeat {
    /// Before the first pass's request.
    BeforeFirst,
    /// The first pass is done; the second's request comes next.
    BeforeSecond,
    /// The second pass is done; the next test follows the first pass.
    AfterSecond,
}
