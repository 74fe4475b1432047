//! Per-test coverage against a real WSGI app under gunicorn (2 workers),
//! with the agent injected, compared line for line with `coverage run` +
//! `coverage combine`; exports checked by real consumers; the gate run
//! through the binary; the agent's sys.monitoring engine in a real
//! interpreter; and the collector's tolerance of broken agents.

// The coverage modules are compiled straight from the binary crate's
// sources: they depend only on each other.
#[path = "../../src/coverage"]
#[allow(dead_code, unused_imports)]
mod recplay_coverage {
    pub mod agent;
    pub mod collector;
    pub mod export;
    pub mod model;
    pub mod protocol;
    pub mod session;
    pub mod store;
}

mod agents;
mod monitor;
mod wsgi;
