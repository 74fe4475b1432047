//! Shared helpers for the integration tests: real servers on free ports.

#![allow(dead_code)]

pub mod demo_app;
pub mod http;
pub mod keploy_v1;
pub mod keploy_v3;
pub mod lifecycle_app;
pub mod pg;
pub mod pg_replay;
pub mod python;
pub mod recplay;
pub mod serve;
pub mod upstream;
