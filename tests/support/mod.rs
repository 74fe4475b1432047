//! Shared helpers for the integration tests: real servers on free ports.

#![allow(dead_code)]

pub mod pg;
pub mod python;
