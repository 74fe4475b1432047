//! keploy.yml: the settings file users share with Keploy.
//!
//! Only the parts recplay uses are modelled; Keploy's other keys are
//! accepted so a Keploy config works as it is, and any key neither knows is
//! named in a warning (`known_keys`). `resolve` puts flags over what is
//! read here, once per command.

mod known_keys;
pub mod resolve;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use serde::Deserialize;

/// The whole file.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct KeployConfig {
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub command: Option<String>,
    #[serde(default)]
    pub test: TestSection,
    #[serde(default)]
    pub record: RecordSection,
}

/// `record:`; only `redact` is recplay's.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordSection {
    #[serde(default)]
    pub redact: RedactSection,
}

/// `record.redact`: what is kept out of recordings, on top of the default
/// rules, and where replay finds the values.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RedactSection {
    /// Extra header names.
    #[serde(default)]
    pub headers: Vec<String>,
    /// Extra body field names (any depth) or dotted JSON paths.
    #[serde(default)]
    pub body: Vec<String>,
    /// Extra value patterns, by name.
    #[serde(default)]
    pub patterns: BTreeMap<String, String>,
    /// Default rules turned off (`all` for every one).
    #[serde(default)]
    pub disable: Vec<String>,
    /// A YAML map placeholder name -> value, read by `recplay test`;
    /// relative to keploy.yml's directory.
    #[serde(default)]
    pub secrets_file: Option<String>,
}

/// `test:`.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TestSection {
    #[serde(default)]
    pub global_noise: GlobalNoise,
    #[serde(default)]
    pub delay: Option<u64>,
    #[serde(default)]
    pub api_timeout: Option<u64>,
    /// Keploy writes `""` for "none".
    #[serde(default)]
    pub health_url: Option<String>,
    /// `false`: no mock servers, the app reaches the real services.
    #[serde(default)]
    pub mocking: Option<bool>,
}

/// `test.globalNoise`: noise for every test set, and per test set.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct GlobalNoise {
    #[serde(default)]
    pub global: NoiseFields,
    #[serde(default, rename = "test-sets")]
    pub test_sets: BTreeMap<String, NoiseFields>,
}

/// Header names and body keys/paths, each with a (possibly empty) list of
/// regexes: empty ignores the field, otherwise only matching values are ignored.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct NoiseFields {
    #[serde(default, deserialize_with = "nullable_map")]
    pub header: BTreeMap<String, Vec<String>>,
    #[serde(default, deserialize_with = "nullable_map")]
    pub body: BTreeMap<String, Vec<String>>,
}

/// `header:` with no value, and `Date:` with no list, both mean "empty".
fn nullable_map<'de, D>(d: D) -> Result<BTreeMap<String, Vec<String>>, D::Error>
where
    D: serde::Deserializer<'de>,
{
    let raw: Option<BTreeMap<String, Option<Vec<String>>>> = Option::deserialize(d)?;
    Ok(raw
        .unwrap_or_default()
        .into_iter()
        .map(|(k, v)| (k, v.unwrap_or_default()))
        .collect())
}

impl KeployConfig {
    /// Reads `path`; a missing file is an error (the user named it). Keys
    /// that neither recplay nor Keploy knows are warned about, by path.
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("could not read the config file {}", path.display()))?;
        let config = serde_yaml::from_str(&text).with_context(|| {
            format!(
                "{} is not a valid keploy.yml (see keploy.yml.template)",
                path.display()
            )
        })?;
        // It parsed as a config, so it parses as a document.
        if let Ok(doc) = serde_yaml::from_str::<serde_yaml::Value>(&text) {
            for unknown in known_keys::unknown_keys(&doc) {
                tracing::warn!("{}: {unknown}", path.display());
            }
        }
        Ok(config)
    }

    /// The keploy.yml to read: `explicit` when given, otherwise
    /// `keploy.yml` in the working directory when present.
    pub fn locate(explicit: Option<&Path>) -> Option<PathBuf> {
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
