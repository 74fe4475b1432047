//! A mocks.yaml in either layout: recplay's Postgres documents or
//! Keploy's (Postgres v1 packets, PostgresV2/V3, Http, kinds not served).
//! Every document becomes a mock or a named problem, never a panic.
#![no_main]

use std::path::Path;

use libfuzzer_sys::fuzz_target;
use recplay_proxy::testset::store::{parse_mock_bytes, render_mocks};

fuzz_target!(|data: &[u8]| {
    let (mocks, _problems) = parse_mock_bytes(data, Path::new("mocks.yaml"));
    if !mocks.is_empty() {
        let _ = parse_mock_bytes(render_mocks(&mocks).as_bytes(), Path::new("mocks.yaml"));
    }
});
