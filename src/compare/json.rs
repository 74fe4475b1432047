//! Structural comparison of two JSON bodies: object key order never
//! matters, arrays compare in order, and every difference is reported
//! under the path where it occurs.

use serde_json::Value;

use super::noise::{NoiseRules, PathStep};
use super::secret::secret_shape_matches;

/// One field that differs. `None` means the side lacks the field.
#[derive(Debug, Clone, PartialEq)]
pub struct JsonDiff {
    pub path: Vec<PathStep>,
    pub expected: Option<Value>,
    pub actual: Option<Value>,
}

/// Every difference between `expected` and `actual` that noise does not
/// excuse.
pub fn diff(expected: &Value, actual: &Value, noise: &NoiseRules) -> Vec<JsonDiff> {
    diff_within(&[], expected, actual, noise)
}

/// [`diff`] for a JSON value found at `base` inside the body, such as one
/// record of a stream (`events[2].data`). A noise path selects a field by
/// its path from the body's root (`events[].data.created_at`) or from the
/// value's own root (`created_at`, `user.created_at`), so a rule written
/// for one record covers them all. Differences are named by the full path.
pub fn diff_within(
    base: &[PathStep],
    expected: &Value,
    actual: &Value,
    noise: &NoiseRules,
) -> Vec<JsonDiff> {
    let mut out = Vec::new();
    let mut path = base.to_vec();
    let walker = Walker {
        noise,
        root: base.len(),
    };
    walker.walk(Some(expected), Some(actual), &mut path, &mut out);
    out
}

/// How a value is shown to a noise regex: strings without quotes, anything
/// else as compact JSON.
pub fn value_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

struct Walker<'a> {
    noise: &'a NoiseRules,
    /// Where the compared value starts in the path.
    root: usize,
}

impl Walker<'_> {
    fn is_noise(&self, path: &[PathStep], actual: Option<&Value>) -> bool {
        let text = actual.map(value_text);
        let ignored = |at: &[PathStep]| {
            self.noise
                .body_rules(at)
                .any(|rule| rule.ignores(text.as_deref()))
        };
        ignored(&path[self.root..]) || (self.root > 0 && ignored(path))
    }

    fn walk(
        &self,
        expected: Option<&Value>,
        actual: Option<&Value>,
        path: &mut Vec<PathStep>,
        out: &mut Vec<JsonDiff>,
    ) {
        if self.is_noise(path, actual) {
            return;
        }
        match (expected, actual) {
            (Some(Value::Object(e)), Some(Value::Object(a))) => {
                for (k, ev) in e {
                    path.push(PathStep::Key(k.clone()));
                    self.walk(Some(ev), a.get(k), path, out);
                    path.pop();
                }
                for (k, av) in a {
                    if !e.contains_key(k) {
                        path.push(PathStep::Key(k.clone()));
                        self.walk(None, Some(av), path, out);
                        path.pop();
                    }
                }
            }
            (Some(Value::Array(e)), Some(Value::Array(a))) => {
                for i in 0..e.len().max(a.len()) {
                    path.push(PathStep::Index(i));
                    self.walk(e.get(i), a.get(i), path, out);
                    path.pop();
                }
            }
            (e, a) if e == a => {}
            (Some(Value::String(e)), Some(a)) if secret_shape_matches(e, &value_text(a)) => {}
            (e, a) => out.push(JsonDiff {
                path: path.clone(),
                expected: e.cloned(),
                actual: a.cloned(),
            }),
        }
    }
}

/// `items[2].created_at`; the root is `(body)`.
pub fn display_path(path: &[PathStep]) -> String {
    let mut s = String::new();
    for step in path {
        match step {
            PathStep::Key(k) => {
                let plain = !k.is_empty()
                    && k.chars()
                        .all(|c| c.is_alphanumeric() || c == '_' || c == '-' || c == '$');
                if plain {
                    if !s.is_empty() {
                        s.push('.');
                    }
                    s.push_str(k);
                } else {
                    s.push_str(&format!("[{}]", serde_json::Value::String(k.clone())));
                }
            }
            PathStep::Index(i) => s.push_str(&format!("[{i}]")),
        }
    }
    if s.is_empty() {
        s.push_str("(body)");
    }
    s
}

/// The noise key that selects this path in every array element
/// (`items[].created_at`), as a user would write it in keploy.yml.
pub fn noise_key(path: &[PathStep]) -> String {
    let mut s = String::new();
    for step in path {
        match step {
            PathStep::Key(k) => {
                if !s.is_empty() {
                    s.push('.');
                }
                s.push_str(k);
            }
            PathStep::Index(_) => s.push_str("[]"),
        }
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::noise::{BodySelector, ValueRule};
    use serde_json::json;

    fn paths(d: &[JsonDiff]) -> Vec<String> {
        d.iter().map(|x| display_path(&x.path)).collect()
    }

    #[test]
    fn key_order_never_matters_and_arrays_compare_in_order() {
        let noise = NoiseRules::default();
        let a = json!({"a": 1, "b": [1, 2]});
        let b: Value = serde_json::from_str(r#"{"b": [1, 2], "a": 1}"#).expect("json");
        assert!(diff(&a, &b, &noise).is_empty());
        let c = json!({"a": 1, "b": [2, 1]});
        assert_eq!(paths(&diff(&a, &c, &noise)), ["b[0]", "b[1]"]);
    }

    #[test]
    fn missing_and_extra_keys_are_named() {
        let noise = NoiseRules::default();
        let e = json!({"user": {"name": "Ada", "city": "London"}});
        let a = json!({"user": {"name": "Ada", "zip": "N1"}});
        assert_eq!(paths(&diff(&e, &a, &noise)), ["user.city", "user.zip"]);
    }

    #[test]
    fn noise_at_any_depth_covers_array_elements() {
        let mut noise = NoiseRules::default();
        noise.body.push((
            BodySelector::parse("created_at").expect("parse"),
            ValueRule::Any,
        ));
        let e = json!({"created_at": 1, "items": [{"created_at": 1, "n": 1}]});
        let a = json!({"created_at": 2, "items": [{"created_at": 2, "n": 2}]});
        assert_eq!(paths(&diff(&e, &a, &noise)), ["items[0].n"]);
    }

    #[test]
    fn noise_keys_replace_indices_with_brackets() {
        let path = [
            PathStep::Key("items".into()),
            PathStep::Index(3),
            PathStep::Key("id".into()),
        ];
        assert_eq!(noise_key(&path), "items[].id");
        assert_eq!(display_path(&path), "items[3].id");
    }
}
