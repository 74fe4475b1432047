//! A body noise path as a user writes it in keploy.yml or a test's
//! assertions: parsed or refused with an error naming it, and a parsed one
//! matches any field path without a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recplay_proxy::testset::noise_path::{BodySelector, PathStep};

fuzz_target!(|data: &[u8]| {
    let key = String::from_utf8_lossy(data);
    match BodySelector::parse(&key) {
        Ok(selector) => {
            let path = [
                PathStep::Key("items".into()),
                PathStep::Index(1),
                PathStep::Key("id".into()),
            ];
            let _ = selector.selects(&path);
            let _ = selector.selects(&[]);
        }
        Err(e) => assert!(e.to_string().contains(&format!("{:?}", key.trim()))),
    }
});
