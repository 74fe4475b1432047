//! `--detect-noise`: each test is replayed twice and whatever differs
//! between the two answers of the same build is proposed as noise, as
//! keploy.yml lines to paste under `test.globalNoise.test-sets`.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::compare::json::{diff, noise_key};
use crate::compare::noise::NoiseRules;
use crate::compare::{is_transfer_header, ActualResponse};

/// What varied in one test set.
#[derive(Debug, Default, Clone, Serialize)]
pub struct SetProposal {
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub header: BTreeMap<String, Vec<String>>,
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub body: BTreeMap<String, Vec<String>>,
    /// Tests whose whole body or status varied: no field-level entry can
    /// describe that.
    #[serde(skip)]
    pub notes: Vec<String>,
}

impl SetProposal {
    /// Adds what differs between two answers to the same request.
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
            if second.header(name).as_deref() != Some(value.as_str()) {
                self.header.entry(name.clone()).or_default();
            }
        }
        match (
            serde_json::from_slice::<serde_json::Value>(&first.body),
            serde_json::from_slice::<serde_json::Value>(&second.body),
        ) {
            (Ok(a), Ok(b)) => {
                for d in diff(&a, &b, &NoiseRules::default()) {
                    if d.path.is_empty() {
                        self.notes.push(format!(
                            "{test}: the whole body changed; add `body: []` to its spec.assertions.noise"
                        ));
                    } else {
                        self.body.entry(noise_key(&d.path)).or_default();
                    }
                }
            }
            _ if first.body != second.body => self.notes.push(format!(
                "{test}: the body is not JSON and changed between two replays; add `body: []` to its spec.assertions.noise"
            )),
            _ => {}
        }
    }
}

#[derive(Serialize)]
struct Root<'a> {
    test: Test<'a>,
}

#[derive(Serialize)]
struct Test<'a> {
    #[serde(rename = "globalNoise")]
    global_noise: GlobalNoise<'a>,
}

#[derive(Serialize)]
struct GlobalNoise<'a> {
    #[serde(rename = "test-sets")]
    test_sets: BTreeMap<&'a str, &'a SetProposal>,
}

/// The proposal as keploy.yml text, or None when nothing varied.
pub fn render(proposals: &BTreeMap<String, SetProposal>) -> Option<String> {
    let test_sets: BTreeMap<&str, &SetProposal> = proposals
        .iter()
        .filter(|(_, p)| !p.header.is_empty() || !p.body.is_empty())
        .map(|(k, v)| (k.as_str(), v))
        .collect();
    let mut text = String::new();
    if !test_sets.is_empty() {
        let root = Root {
            test: Test {
                global_noise: GlobalNoise { test_sets },
            },
        };
        text = serde_yaml::to_string(&root).unwrap_or_default();
    }
    for p in proposals.values() {
        for note in &p.notes {
            text.push_str(&format!("# {note}\n"));
        }
    }
    (!text.is_empty()).then_some(text)
}
