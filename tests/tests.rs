//! Integration tests: one binary, a module per flow.

mod support;
