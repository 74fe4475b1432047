//! A test-*.yaml as it may sit in a repository: recplay's or Keploy's,
//! hand-edited, cut by a crash. Loading gives a test case or an error,
//! never a panic; a case that loads renders and loads again.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recplay_proxy::testset::store::{parse_test, render_test};

fuzz_target!(|data: &[u8]| {
    if let Ok(case) = parse_test(data) {
        if let Ok(text) = render_test(&case) {
            let _ = parse_test(text.as_bytes());
        }
    }
});
