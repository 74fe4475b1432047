//! Noise: the response fields that are known to vary between runs.
//!
//! Three sources feed one [`NoiseRules`] per test: keploy.yml
//! `test.globalNoise.global`, the entry for the test's set under
//! `test.globalNoise.test-sets` (merged over the global one, field by
//! field), and the test's own `spec.assertions.noise`.
//!
//! A field with an empty list is ignored whatever its value; a field with
//! regexes is ignored only when the actual value matches one of them, so a
//! value that changes shape (a timestamp turning into `null`) still fails.

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use regex::Regex;

use crate::config::NoiseFields;

/// What to do with a noisy field's value.
#[derive(Debug, Clone)]
pub enum ValueRule {
    /// Ignore whatever the value.
    Any,
    /// Ignore only when the actual value matches one of these.
    Matching(Vec<Regex>),
}

impl ValueRule {
    fn compile(patterns: &[String], origin: &str, key: &str) -> Result<Self> {
        if patterns.is_empty() {
            return Ok(ValueRule::Any);
        }
        let mut compiled = Vec::with_capacity(patterns.len());
        for p in patterns {
            let re = Regex::new(p).with_context(|| {
                format!("{origin}: noise entry {key:?} has an invalid regex {p:?}; fix it or use [] to ignore every value")
            })?;
            compiled.push(re);
        }
        Ok(ValueRule::Matching(compiled))
    }

    /// Whether a field whose actual value is `actual` (None: absent) is noise.
    pub fn ignores(&self, actual: Option<&str>) -> bool {
        match self {
            ValueRule::Any => true,
            ValueRule::Matching(res) => actual.is_some_and(|v| res.iter().any(|re| re.is_match(v))),
        }
    }
}

pub use recplay_proxy::testset::noise_path::{BodySelector, PathStep};

/// The noise that applies to one test.
#[derive(Debug, Clone, Default)]
pub struct NoiseRules {
    /// Lower-cased header name → rule.
    pub headers: BTreeMap<String, ValueRule>,
    pub body: Vec<(BodySelector, ValueRule)>,
}

impl NoiseRules {
    /// The rule for a header, matched case-insensitively and exactly.
    pub fn header(&self, name: &str) -> Option<&ValueRule> {
        self.headers.get(&name.to_ascii_lowercase())
    }

    /// The rules whose selector picks the body field at `path`.
    pub fn body_rules<'a>(&'a self, path: &'a [PathStep]) -> impl Iterator<Item = &'a ValueRule> {
        self.body
            .iter()
            .filter(move |(sel, _)| sel.selects(path))
            .map(|(_, rule)| rule)
    }

    fn add_fields(&mut self, fields: &NoiseFields, origin: &str) -> Result<()> {
        for (name, patterns) in &fields.header {
            let rule = ValueRule::compile(patterns, origin, &format!("header.{name}"))?;
            self.headers.insert(name.to_ascii_lowercase(), rule);
        }
        for (key, patterns) in &fields.body {
            let selector = BodySelector::parse(key)
                .with_context(|| format!("{origin}: noise entry \"body.{key}\""))?;
            let rule = ValueRule::compile(patterns, origin, &format!("body.{key}"))?;
            // A later source replaces an earlier entry for the same key.
            self.body.retain(|(s, _)| s != &selector);
            self.body.push((selector, rule));
        }
        Ok(())
    }
}

/// keploy.yml noise, validated once at start-up.
#[derive(Debug, Clone, Default)]
pub struct ConfigNoise {
    global: NoiseRules,
    per_set: BTreeMap<String, NoiseRules>,
}

impl ConfigNoise {
    /// Compiles every regex now, so a typo stops the run before any test
    /// rather than silently matching nothing. `origin` names the file.
    pub fn from_config(noise: &crate::config::GlobalNoise, origin: &str) -> Result<Self> {
        let mut global = NoiseRules::default();
        global.add_fields(&noise.global, &format!("{origin} test.globalNoise.global"))?;
        let mut per_set = BTreeMap::new();
        for (set, fields) in &noise.test_sets {
            let mut rules = global.clone();
            rules.add_fields(
                fields,
                &format!("{origin} test.globalNoise.test-sets.{set}"),
            )?;
            per_set.insert(set.clone(), rules);
        }
        Ok(ConfigNoise { global, per_set })
    }

    /// The noise for one test set: its own entries merged over global.
    pub fn for_set(&self, set: &str) -> &NoiseRules {
        self.per_set.get(set).unwrap_or(&self.global)
    }
}

/// Adds a test's `spec.assertions.noise` (`header.Date`, `body.a.b`,
/// `body`) to the set's rules. `origin` names the test file for errors.
pub fn with_test_noise(
    base: &NoiseRules,
    assertions: &BTreeMap<String, Vec<String>>,
    origin: &str,
) -> Result<NoiseRules> {
    if assertions.is_empty() {
        return Ok(base.clone());
    }
    let mut fields = NoiseFields::default();
    for (key, patterns) in assertions {
        if let Some(name) = key.strip_prefix("header.") {
            fields.header.insert(name.to_string(), patterns.clone());
        } else if let Some(path) = key.strip_prefix("body.") {
            fields.body.insert(path.to_string(), patterns.clone());
        } else if key == "body" {
            fields.body.insert(String::new(), patterns.clone());
        } else {
            tracing::warn!(
                "{origin}: noise entry {key:?} is neither header.<Name> nor body.<path>; it is ignored"
            );
        }
    }
    let mut rules = base.clone();
    rules.add_fields(&fields, &format!("{origin} spec.assertions.noise"))?;
    Ok(rules)
}

/// Names a config file for error messages.
pub fn origin_of(path: Option<&Path>) -> String {
    match path {
        Some(p) => p.display().to_string(),
        None => "keploy.yml".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> PathStep {
        PathStep::Key(k.to_string())
    }

    #[test]
    fn a_key_without_dots_matches_at_any_depth_inside_arrays_too() {
        let sel = BodySelector::parse("created_at").expect("parse");
        assert!(sel.selects(&[key("created_at")]));
        assert!(sel.selects(&[key("items"), PathStep::Index(3), key("created_at")]));
        assert!(!sel.selects(&[key("created_at_ms")]));
        assert!(!sel.selects(&[key("created_at"), key("x")]));
    }

    #[test]
    fn a_dotted_path_matches_only_that_path() {
        let sel = BodySelector::parse("results.created_at").expect("parse");
        assert!(sel.selects(&[key("results"), key("created_at")]));
        assert!(!sel.selects(&[key("created_at")]));
        assert!(!sel.selects(&[key("other"), key("results"), key("created_at")]));
        let arr = BodySelector::parse("items[].id").expect("parse");
        assert!(arr.selects(&[key("items"), PathStep::Index(0), key("id")]));
        assert!(!arr.selects(&[key("id")]));
        assert!(!arr.selects(&[key("items"), PathStep::Index(0), key("tags"), key("id")]));
        let one = BodySelector::parse("items[1].id").expect("parse");
        assert!(one.selects(&[key("items"), PathStep::Index(1), key("id")]));
        assert!(!one.selects(&[key("items"), PathStep::Index(0), key("id")]));
    }

    #[test]
    fn regex_rules_ignore_only_matching_values() {
        let rule = ValueRule::compile(&["^v1\\.".to_string()], "f", "k").expect("compile");
        assert!(rule.ignores(Some("v1.2")));
        assert!(!rule.ignores(Some("v2.0")));
        assert!(!rule.ignores(None));
        assert!(ValueRule::Any.ignores(None));
    }

    #[test]
    fn an_invalid_regex_names_the_file_and_the_key() {
        let mut noise = crate::config::GlobalNoise::default();
        noise
            .global
            .header
            .insert("X-Id".to_string(), vec!["(".to_string()]);
        let err = ConfigNoise::from_config(&noise, "conf/keploy.yml").expect_err("invalid");
        let text = format!("{err:#}");
        assert!(text.contains("conf/keploy.yml"), "{text}");
        assert!(text.contains("header.X-Id"), "{text}");
    }

    #[test]
    fn test_set_entries_merge_over_global_ones() {
        let mut noise = crate::config::GlobalNoise::default();
        noise.global.header.insert("Date".into(), vec![]);
        noise.global.body.insert("id".into(), vec!["^\\d+$".into()]);
        let mut set = NoiseFields::default();
        set.body.insert("id".into(), vec![]);
        noise.test_sets.insert("test-set-1".into(), set);
        let cfg = ConfigNoise::from_config(&noise, "keploy.yml").expect("valid");
        let s0 = cfg.for_set("test-set-0");
        let s1 = cfg.for_set("test-set-1");
        assert!(s1.header("date").is_some());
        let path = [key("id")];
        assert!(s1.body_rules(&path).all(|r| r.ignores(Some("abc"))));
        assert!(!s0.body_rules(&path).all(|r| r.ignores(Some("abc"))));
    }

    #[test]
    fn header_names_match_case_insensitively_and_exactly() {
        let mut rules = NoiseRules::default();
        rules.headers.insert("date".into(), ValueRule::Any);
        assert!(rules.header("DATE").is_some());
        assert!(rules.header("X-Date").is_none());
        assert!(rules.header("Dat").is_none());
    }

    /// Any key either parses or fails naming itself; none panics.
    #[test]
    fn any_body_selector_parses_or_names_itself() {
        let alphabet = [
            "a",
            "id",
            ".",
            "..",
            "[",
            "]",
            "[]",
            "[*]",
            "[0]",
            "[ 1 ]",
            "[-1]",
            "[x]",
            "[99999999999999999999999]",
            " ",
            "*",
            "é",
            "\n",
            "\u{0}",
        ];
        let mut rng = recplay_proxy::test_rng::Rng::new(7);
        let path = [key("a"), PathStep::Index(0), key("id")];
        for _ in 0..20_000 {
            let text = rng.string_of(&alphabet, 8);
            match BodySelector::parse(&text) {
                Ok(selector) => {
                    let _ = selector.selects(&path);
                    let _ = selector.selects(&[]);
                }
                Err(e) => {
                    let message = format!("{e:#}");
                    assert!(message.contains(&format!("{:?}", text.trim())), "{message}");
                }
            }
        }
        for bad in ["a..b", "items[", ".", "a.", ".a", "a[]b", "a[x]", "a[-1]"] {
            let e = BodySelector::parse(bad).expect_err(bad);
            assert!(format!("{e:#}").contains(&format!("{bad:?}")), "{e:#}");
        }
    }

    /// Any regex either compiles or fails naming the file and the key.
    #[test]
    fn any_noise_regex_compiles_or_names_its_entry() {
        let alphabet = [
            "a",
            "(",
            ")",
            "[",
            "]",
            "{",
            "}",
            "{2}",
            "{1000}",
            "{99999999999}",
            "*",
            "+",
            "?",
            "\\",
            "\\d",
            "\\p{Foo}",
            "|",
            "^",
            "$",
            ".",
            "(?P<n>",
            "(?i)",
            "é",
        ];
        let mut rng = recplay_proxy::test_rng::Rng::new(8);
        for _ in 0..3000 {
            let pattern = rng.string_of(&alphabet, 10);
            match ValueRule::compile(std::slice::from_ref(&pattern), "conf/keploy.yml", "body.id") {
                Ok(rule) => {
                    let _ = rule.ignores(Some("value 123"));
                }
                Err(e) => {
                    let message = format!("{e:#}");
                    assert!(message.contains("conf/keploy.yml"), "{message}");
                    assert!(message.contains("body.id"), "{message}");
                }
            }
        }
    }
}
