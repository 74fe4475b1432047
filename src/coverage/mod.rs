//! Per-test coverage: agents in the app's processes report what ran, the
//! CLI snapshots them after each replayed test, stores the run, exports it,
//! and gates builds on it.
//!
//! # Layout
//! - `protocol`: the agent wire protocol (newline-delimited JSON, versioned).
//! - `agent`: the Python agent shipped inside the binary, and its injection.
//! - `collector`: the socket server the replayer drives (`CoverageCollector`).
//! - `session`: the collector behind the replay runner's observer hooks.
//! - `model`: per-test and per-run coverage, and the figures derived from it.
//! - `store`: `reports/test-run-N/coverage.json`.
//! - `export`: Cobertura XML, LCOV, coverage.py JSON.
//! - `gate`: the coverage gate (verdict, report, ratchet baseline).
//! - `merge`: one run's coverage from its shards' (`recplay report merge`).
//! - `command`: `recplay coverage export|gate`.
//!
//! Everything but `command` depends only on its siblings, never on the rest
//! of the crate, so the integration tests compile these modules directly.

pub mod agent;
pub mod collector;
pub mod command;
pub mod export;
pub mod gate;
pub mod merge;
pub mod model;
pub mod protocol;
pub mod session;
pub mod store;
