//! keploy.yml: the settings file users share with Keploy, from its text.
//!
//! Only the parts recplay uses are modelled; Keploy's other keys are
//! accepted so a Keploy config works as it is, and any key neither knows is
//! returned by [`KeployConfig::parse`] to be warned about (`known_keys`).
//! No file I/O and no logging here, so the loader is reachable from a fuzz
//! target; the CLI reads the file, reports, and puts flags over it.

mod known_keys;

pub use known_keys::UnknownKey;

use std::collections::BTreeMap;

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
///
/// `path` and `query` are recplay's and apply only to the app's outgoing
/// calls at replay; they are maps like Keploy's own noise sections so a
/// Keploy reading the same file still sees the type it expects. Their
/// lists are not read.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct NoiseFields {
    #[serde(default, deserialize_with = "nullable_map")]
    pub header: BTreeMap<String, Vec<String>>,
    #[serde(default, deserialize_with = "nullable_map")]
    pub body: BTreeMap<String, Vec<String>>,
    /// Outgoing-call path patterns: a `*` segment stands for any one segment.
    #[serde(default, deserialize_with = "nullable_map")]
    pub path: BTreeMap<String, Vec<String>>,
    /// Outgoing-call query parameters whose values are ignored (the
    /// parameter must still be there).
    #[serde(default, deserialize_with = "nullable_map")]
    pub query: BTreeMap<String, Vec<String>>,
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

/// Why a keploy.yml's text is not a config.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// Not YAML, or a known key holds the wrong type; says where.
    #[error(transparent)]
    Yaml(#[from] serde_yaml::Error),
}

impl KeployConfig {
    /// The config in `text`, and every key in it that neither recplay nor
    /// Keploy knows, in file order.
    pub fn parse(text: &str) -> Result<(Self, Vec<UnknownKey>), ConfigError> {
        let config = serde_yaml::from_str(text)?;
        // It parsed as a config, so it parses as a document.
        let unknown = match serde_yaml::from_str::<serde_yaml::Value>(text) {
            Ok(doc) => known_keys::unknown_keys(&doc),
            Err(_) => Vec::new(),
        };
        Ok((config, unknown))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_returns_the_config_and_its_unknown_keys_in_file_order() {
        let (config, unknown) =
            KeployConfig::parse("paht: x\ntest:\n  delay: 3\n  globalnoise: {}\n").expect("parses");
        assert_eq!(config.test.delay, Some(3));
        let paths: Vec<_> = unknown.iter().map(|u| u.path.as_str()).collect();
        assert_eq!(paths, ["paht", "test.globalnoise"]);
    }

    #[test]
    fn url_noise_for_outgoing_calls_is_read_globally_and_per_test_set() {
        let text = "test:\n  globalNoise:\n    global:\n      path: {\"/v1/orders/*\": []}\n      query:\n        ts:\n    test-sets:\n      test-set-1: {query: {nonce: []}}\n";
        let (config, unknown) = KeployConfig::parse(text).expect("parses");
        assert!(unknown.is_empty(), "{unknown:?}");
        let noise = &config.test.global_noise;
        assert!(noise.global.path.contains_key("/v1/orders/*"));
        assert!(noise.global.query.contains_key("ts"));
        assert!(noise.test_sets["test-set-1"].query.contains_key("nonce"));
    }

    #[test]
    fn a_wrong_type_is_an_error_that_says_where() {
        let e = KeployConfig::parse("test:\n  delay: -1\n").expect_err("negative delay");
        assert!(e.to_string().contains("line 2"), "{e}");
    }
}
