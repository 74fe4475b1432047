//! keploy.yml: the settings file users share with Keploy.
//!
//! The model and the parsing live in `recplay_proxy::keploy_yml` (pure, so
//! it can be fuzzed); here the file is read and its unknown keys are
//! warned about. `resolve` puts flags over what is read here, once per
//! command.

pub mod resolve;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
pub use recplay_proxy::keploy_yml::{GlobalNoise, KeployConfig, NoiseFields, RedactSection};

/// Reading keploy.yml from disk: the CLI's half of the loader.
pub trait ConfigFile: Sized {
    /// Reads `path`; a missing file is an error (the user named it). Keys
    /// that neither recplay nor Keploy knows are warned about, by path.
    fn load(path: &Path) -> Result<Self>;

    /// The keploy.yml to read: `explicit` when given, otherwise
    /// `keploy.yml` in the working directory when present.
    fn locate(explicit: Option<&Path>) -> Option<PathBuf>;
}

impl ConfigFile for KeployConfig {
    fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("could not read the config file {}", path.display()))?;
        let (config, unknown) = KeployConfig::parse(&text).with_context(|| {
            format!(
                "{} is not a valid keploy.yml (see keploy.yml.template)",
                path.display()
            )
        })?;
        for unknown in unknown {
            tracing::warn!("{}: {unknown}", path.display());
        }
        Ok(config)
    }

    fn locate(explicit: Option<&Path>) -> Option<PathBuf> {
        match explicit {
            Some(p) => Some(p.to_path_buf()),
            None => {
                let default = Path::new("keploy.yml");
                default.is_file().then(|| default.to_path_buf())
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_template_parses() {
        let text = include_str!("../keploy.yml.template");
        let cfg: KeployConfig = serde_yaml::from_str(text).expect("template parses");
        let global = &cfg.test.global_noise.global;
        assert!(global.header.contains_key("Date"));
        assert!(global.body.contains_key("created_at"));
    }

    /// Every damaged keploy.yml either loads or is an error naming the
    /// file; what loads also validates its noise or names the entry.
    #[test]
    fn a_damaged_config_is_an_error_naming_the_file() {
        let template = include_str!("../keploy.yml.template").as_bytes();
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("keploy.yml");
        let mut rng = recplay_proxy::test_rng::Rng::new(9);
        for round in 0..1000 {
            let text = if round % 10 == 0 {
                rng.bytes(200)
            } else {
                let once = rng.damage(template);
                rng.damage(&once)
            };
            std::fs::write(&path, &text).expect("write");
            match KeployConfig::load(&path) {
                Ok(cfg) => {
                    let origin = path.display().to_string();
                    if let Err(e) = crate::compare::noise::ConfigNoise::from_config(
                        &cfg.test.global_noise,
                        &origin,
                    ) {
                        assert!(format!("{e:#}").contains(&origin), "{e:#}");
                    }
                }
                Err(e) => {
                    let message = format!("{e:#}");
                    assert!(message.contains(&path.display().to_string()), "{message}");
                }
            }
        }
    }

    /// Inputs built to exhaust a parser: deep nesting, and an alias bomb
    /// reached from a field recplay reads.
    #[test]
    fn adversarial_configs_are_refused_not_expanded() {
        let deep = format!("test: {}{}", "[".repeat(5_000), "]".repeat(5_000));
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for n in 1..12 {
            let prev = n - 1;
            let refs = vec![format!("*a{prev}"); 10].join(", ");
            bomb.push_str(&format!("a{n}: &a{n} [{refs}]\n"));
        }
        bomb.push_str("test:\n  globalNoise:\n    global:\n      body: {id: *a11}\n");
        for text in [deep, bomb] {
            let result = serde_yaml::from_str::<KeployConfig>(&text);
            assert!(result.is_err(), "accepted {} bytes", text.len());
        }
    }

    #[test]
    fn wrong_types_say_where() {
        for (text, place) in [
            ("test:\n  delay: -1\n", "line 2"),
            (
                "test:\n  globalNoise:\n    global:\n      header: [Date]\n",
                "line 4",
            ),
            (
                "test:\n  globalNoise:\n    global:\n      body: {id: 5}\n",
                "line 4",
            ),
            ("path: {a: b}\n", "line 1"),
        ] {
            let e = serde_yaml::from_str::<KeployConfig>(text).expect_err(text);
            assert!(e.to_string().contains(place), "{text:?}: {e}");
        }
    }
}
