//! `--detect-noise`: each test is replayed twice and whatever differs
//! between the two answers of the same build is proposed as noise, as
//! keploy.yml lines to paste under `test.globalNoise.test-sets`.
//!
//! Two passes that happen to agree prove little about a field that holds a
//! time or a fresh id (an epoch-seconds field does not change within a
//! second), so values that look volatile are proposed as well, marked as
//! such. Proposals name leaf paths: a container is proposed only when its
//! shape changed, since ignoring it stops comparing everything inside.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde_json::Value;

use crate::compare::json::{diff, noise_key};
use crate::compare::noise::{NoiseRules, PathStep};
use recplay_proxy::testset::http_form::is_transfer_header;

use crate::compare::ActualResponse;

mod volatile;

pub use volatile::looks_volatile;

/// Why a field is proposed. Ordered by weight: what one test saw change
/// outranks what another only saw look volatile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Reason {
    /// The same in both passes, but shaped like a time or a generated id.
    LooksVolatile(&'static str),
    /// The value differed between the two passes.
    Changed,
    /// A container whose shape differed (an element or a key came or went,
    /// or a value turned into another type).
    ShapeChanged,
}

/// What varied in one test set.
#[derive(Debug, Default, Clone)]
pub struct SetProposal {
    pub header: BTreeMap<String, Reason>,
    pub body: BTreeMap<String, Reason>,
    /// Tests whose whole body or status varied: no field-level entry can
    /// describe that.
    pub notes: Vec<String>,
}

impl SetProposal {
    /// Adds what differs between two answers to the same request, and what
    /// looks volatile in the first.
    pub fn learn(&mut self, test: &str, first: &ActualResponse, second: &ActualResponse) {
        if first.status != second.status {
            self.notes.push(format!(
                "{test}: the status changed between two replays ({} then {})",
                first.status, second.status
            ));
        }
        for (name, value) in &first.headers {
            if is_transfer_header(name) {
                continue;
            }
            let reason = if second.header(name).as_deref() != Some(value.as_str()) {
                Some(Reason::Changed)
            } else {
                looks_volatile(&Value::String(value.clone())).map(Reason::LooksVolatile)
            };
            if let Some(reason) = reason {
                note(&mut self.header, name.clone(), reason);
            }
        }
        match (
            serde_json::from_slice::<Value>(&first.body),
            serde_json::from_slice::<Value>(&second.body),
        ) {
            (Ok(a), Ok(b)) => self.learn_json(test, &a, &b),
            _ if first.body != second.body => self.notes.push(format!(
                "{test}: the body is not JSON and changed between two replays; add `body: []` to its spec.assertions.noise"
            )),
            _ => {}
        }
    }

    fn learn_json(&mut self, test: &str, first: &Value, second: &Value) {
        for d in diff(first, second, &NoiseRules::default()) {
            if d.path.is_empty() {
                self.notes.push(format!(
                    "{test}: the whole body changed; add `body: []` to its spec.assertions.noise"
                ));
                continue;
            }
            let reason = match (&d.expected, &d.actual) {
                (Some(a), Some(b)) if is_scalar(a) && is_scalar(b) => Reason::Changed,
                _ => Reason::ShapeChanged,
            };
            note(&mut self.body, noise_key(&d.path), reason);
        }
        let mut path = Vec::new();
        volatile_leaves(first, &mut path, &mut |path, kind| {
            note(&mut self.body, noise_key(path), Reason::LooksVolatile(kind));
        });
    }

    fn is_empty(&self) -> bool {
        self.header.is_empty() && self.body.is_empty()
    }
}

/// Keeps the weightier reason for `key`.
fn note(map: &mut BTreeMap<String, Reason>, key: String, reason: Reason) {
    let entry = map.entry(key).or_insert(reason);
    *entry = (*entry).max(reason);
}

fn is_scalar(v: &Value) -> bool {
    !matches!(v, Value::Array(_) | Value::Object(_))
}

/// Calls `found` for every leaf of `value` that looks volatile.
fn volatile_leaves(
    value: &Value,
    path: &mut Vec<PathStep>,
    found: &mut impl FnMut(&[PathStep], &'static str),
) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                path.push(PathStep::Key(k.clone()));
                volatile_leaves(v, path, found);
                path.pop();
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                path.push(PathStep::Index(i));
                volatile_leaves(v, path, found);
                path.pop();
            }
        }
        leaf => {
            if let Some(kind) = looks_volatile(leaf) {
                found(path, kind);
            }
        }
    }
}

/// The proposal as keploy.yml text, or None when nothing varied. Each entry
/// that did not simply change says why it is there, in a comment.
pub fn render(proposals: &BTreeMap<String, SetProposal>) -> Option<String> {
    let mut text = String::new();
    let sets: Vec<_> = proposals.iter().filter(|(_, p)| !p.is_empty()).collect();
    if !sets.is_empty() {
        text.push_str("test:\n  globalNoise:\n    test-sets:\n");
        for (name, proposal) in sets {
            let _ = writeln!(text, "      {}:", yaml_key(name));
            for (section, entries) in [("header", &proposal.header), ("body", &proposal.body)] {
                if entries.is_empty() {
                    continue;
                }
                let _ = writeln!(text, "        {section}:");
                for (key, reason) in entries {
                    let _ = write!(text, "          {}: []", yaml_key(key));
                    match reason {
                        Reason::Changed => {}
                        Reason::LooksVolatile(kind) => {
                            let _ = write!(text, "  # looks like {kind}; the same in both replays");
                        }
                        Reason::ShapeChanged => {
                            text.push_str(
                                "  # its shape changed between two replays; this ignores all of it",
                            );
                        }
                    }
                    text.push('\n');
                }
            }
        }
    }
    for p in proposals.values() {
        for line in &p.notes {
            let _ = writeln!(text, "# {line}");
        }
    }
    (!text.is_empty()).then_some(text)
}

/// `key` as a YAML mapping key, quoted when a plain scalar would read as
/// something else.
fn yaml_key(key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '_' | '-' | '.' | '[' | ']' | '/'))
        && !key.starts_with(['[', '-', '.'])
        && serde_yaml::from_str::<Value>(key).ok() == Some(Value::String(key.to_string()));
    if plain {
        key.to_string()
    } else {
        serde_json::to_string(key).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
