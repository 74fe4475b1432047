//! A keploy.yml as a user or a repository writes it, through the loader
//! the CLI runs (the serde model and the unknown-key check): it loads or
//! is an error, never a panic; its unknown keys render; its noise paths
//! go through the parser `globalNoise` goes through at replay.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recplay_proxy::keploy_yml::{KeployConfig, NoiseFields};
use recplay_proxy::testset::noise_path::BodySelector;

fn body_paths(fields: &NoiseFields) {
    for key in fields.body.keys() {
        let _ = BodySelector::parse(key);
    }
}

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    match KeployConfig::parse(&text) {
        Ok((config, unknown)) => {
            for key in &unknown {
                assert!(key.to_string().contains(&key.path));
            }
            let noise = &config.test.global_noise;
            body_paths(&noise.global);
            for fields in noise.test_sets.values() {
                body_paths(fields);
            }
        }
        Err(e) => {
            let _ = e.to_string();
        }
    }
});
