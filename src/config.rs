//! keploy.yml: the settings file users share with Keploy.
//!
//! Only the parts recplay uses are modelled; unknown keys are accepted so a
//! Keploy config works as it is. Flags given on the command line override
//! what is read here.

use std::collections::BTreeMap;
use std::path::Path;

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
    #[allow(dead_code)] // `recplay test`
    pub api_timeout: Option<u64>,
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
    /// Reads `path`; a missing file is an error (the user named it).
    pub fn load(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("could not read the config file {}", path.display()))?;
        serde_yaml::from_str(&text).with_context(|| {
            format!(
                "{} is not a valid keploy.yml (see keploy.yml.template)",
                path.display()
            )
        })
    }

    /// Reads `path` when given, otherwise `keploy.yml` in the working
    /// directory when present, otherwise the defaults.
    pub fn load_or_default(path: Option<&Path>) -> Result<Self> {
        match path {
            Some(p) => Self::load(p),
            None if Path::new("keploy.yml").is_file() => Self::load(Path::new("keploy.yml")),
            None => Ok(Self::default()),
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
}
