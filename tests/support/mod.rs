//! Shared helpers for the integration tests: real servers on free ports.
