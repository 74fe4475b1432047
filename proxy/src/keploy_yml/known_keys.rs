//! The keys a keploy.yml may hold, and the check that names any other.
//!
//! serde skips keys it does not know, which is what lets a Keploy config
//! load as it is; it also lets a misspelled key (`globalnoise`, `headers`)
//! pass without a word while the noise it meant is not applied. So every
//! key is looked up here: recplay's own, and Keploy's (its config model's
//! yaml tags and every key its default keploy.yml has had), which pass
//! quietly; anything else is named with the nearest known key.

use serde_yaml::Value;

/// Known key paths. `*` stands for any one key (a test-set name, a header
/// name, a protocol); `**` for anything below (sections whose shape only
/// Keploy reads). A key below a known path that has no listed children
/// (a list, a scalar, a free-form map) is not looked at.
const KNOWN: &[&str] = &[
    // Read by recplay.
    "path",
    "command",
    "test.delay",
    "test.apiTimeout",
    "test.healthUrl",
    "test.mocking",
    "test.globalNoise.global.header.*",
    "test.globalNoise.global.body.*",
    "test.globalNoise.test-sets.*.header.*",
    "test.globalNoise.test-sets.*.body.*",
    "test.globalNoise.global.path.*",
    "test.globalNoise.global.query.*",
    "test.globalNoise.test-sets.*.path.*",
    "test.globalNoise.test-sets.*.query.*",
    "record.redact.headers",
    "record.redact.body",
    "record.redact.patterns.*",
    "record.redact.disable",
    "record.redact.secretsFile",
    // Keploy's, top level.
    "storageFormat",
    "appName",
    "appId",
    "templatize.testSets",
    "port",
    "e2e",
    "dnsPort",
    "proxyPort",
    "incomingProxyPort",
    "debug",
    "disableTele",
    "disableANSI",
    "DisableANSI",
    "jsonOutput",
    "inDocker",
    "containerName",
    "networkName",
    "buildDelay",
    "normalize.**",
    "disableMapping",
    "retryPassing",
    "configPath",
    "bypassRules",
    "mysqlPorts",
    "disableMysqlAutoDetect",
    "disableMysqlEndpointDrift",
    "enableTesting",
    "generateGithubActions",
    "keployContainer",
    "keployNetwork",
    "cmdType",
    "agent.**",
    "async.lanes",
    "inCi",
    "serverPort",
    "fallbackOnMiss",
    // Keploy's `test:`.
    "test.selectedTests.*",
    "test.ignoredTests.*",
    "test.replaceWith.global.url.*",
    "test.replaceWith.global.port.*",
    "test.replaceWith.test-sets.*.url.*",
    "test.replaceWith.test-sets.*.port.*",
    "test.healthPollTimeout",
    "test.appReadyProbeAddr",
    "test.host",
    "test.port",
    "test.grpcPort",
    "test.ssePort",
    "test.protocol.*.port",
    "test.skipCoverage",
    "test.coverageReportPath",
    "test.ignoreOrdering",
    "test.mongoPassword",
    "test.language",
    "test.removeUnusedMocks",
    "test.preserveFailedMocks",
    "test.fallBackOnMiss",
    "test.fallbackOnMiss",
    "test.jacocoAgentPath",
    "test.basePath",
    "test.disableLineCoverage",
    "test.updateTemplate",
    "test.mustPass",
    "test.maxFailAttempts",
    "test.maxFlakyChecks",
    "test.protoFile",
    "test.protoDir",
    "test.protoInclude",
    "test.compareAll",
    "test.schemaMatch",
    "test.updateTestMapping",
    "test.disableAutoHeaderNoise",
    "test.schemaNoiseDetection",
    "test.schemaNoiseStrict",
    "test.strictFailure",
    "test.strictMockWindow",
    "test.keepAppAlive",
    "test.connectionPoolIdleRetention",
    "test.coverage",
    "test.goCoverage",
    "test.disableMockUpload",
    "test.useLocalMock",
    // Keploy's `record:`.
    "record.filters",
    "record.basePath",
    "record.recordTimer",
    "record.metadata",
    "record.testCaseNaming",
    "record.sync",
    "record.enableSampling",
    "record.channelBindingShim",
    "record.memoryLimit",
    "record.maxBufferMemoryMB",
    "record.globalPassthrough",
    "record.tlsPrivateKeyPath",
    "record.upstreamTls.verify",
    "record.upstreamTls.caCert",
    "record.mockFormat",
    "record.capturePackets",
    "record.opportunisticTlsIntercept",
    "record.recordBuffer.maxMemoryPerConnection",
    "record.recordBuffer.queueSize",
    "record.recordBuffer.consumerStallGrace",
    "record.passThroughPorts",
    "record.passThroughHosts",
    // Keploy's `report:`, `mock:`, `contract:`.
    "report.selectedTestSets.*",
    "report.showFullBody",
    "report.reportPath",
    "report.summary",
    "report.testCaseIDs",
    "report.format",
    "mock.name",
    "mock.onMiss",
    "mock.strict",
    "mock.local",
    "mock.recordTimer",
    "contract.services",
    "contract.tests",
    "contract.path",
    "contract.download",
    "contract.generate",
    "contract.driven",
    "contract.self",
    "contract.servicesMapping.*",
    "contract.mappings.self",
    "contract.mappings.servicesMapping.*",
];

/// A key no known path allows.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownKey {
    /// Dotted, from the top of the file: `test.globalNoise.global.headers`.
    pub path: String,
    /// The known key at that place closest in spelling, as a path too:
    /// `test.globalNoise.global.header`.
    pub nearest: Option<String>,
}

impl std::fmt::Display for UnknownKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown key `{}`", self.path)?;
        if let Some(nearest) = &self.nearest {
            write!(f, " (did you mean `{nearest}`?)")?;
        }
        write!(f, "; it is ignored")
    }
}

/// Every key of `doc` that is neither recplay's nor Keploy's, in file order.
pub fn unknown_keys(doc: &Value) -> Vec<UnknownKey> {
    let mut found = Vec::new();
    walk(doc, &mut Vec::new(), &mut Vec::new(), &mut found);
    found
}

/// `at` is where `value` sits in the file; `pattern` the known path it
/// matched (with `*` where any key was allowed).
fn walk(
    value: &Value,
    at: &mut Vec<String>,
    pattern: &mut Vec<&'static str>,
    found: &mut Vec<UnknownKey>,
) {
    let Value::Mapping(map) = value else {
        return;
    };
    let children = children_of(pattern);
    if children.is_empty() || children.contains(&"**") {
        return;
    }
    for (key, child) in map {
        let Some(key) = key_text(key) else { continue };
        let matched = children
            .iter()
            .find(|c| **c == key)
            .or_else(|| children.iter().find(|c| **c == "*"));
        at.push(key.clone());
        match matched {
            Some(segment) => {
                pattern.push(segment);
                walk(child, at, pattern, found);
                pattern.pop();
            }
            None => {
                let path = at.join(".");
                let nearest = nearest(&key, &children).map(|n| {
                    at.pop();
                    at.push(n.to_string());
                    at.join(".")
                });
                found.push(UnknownKey { path, nearest });
            }
        }
        at.pop();
    }
}

/// The next segments of every known path that starts with `pattern`.
fn children_of(pattern: &[&str]) -> Vec<&'static str> {
    let mut children: Vec<&'static str> = Vec::new();
    for known in KNOWN {
        let mut segments = known.split('.');
        let prefix_matches = pattern
            .iter()
            .all(|p| segments.next().is_some_and(|s| s == *p));
        if let (true, Some(next)) = (prefix_matches, segments.next()) {
            if !children.contains(&next) {
                children.push(next);
            }
        }
    }
    children
}

fn key_text(key: &Value) -> Option<String> {
    match key {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// The candidate with the fewest edits (ignoring case) from `key`.
fn nearest(key: &str, candidates: &[&'static str]) -> Option<&'static str> {
    let key = key.to_lowercase();
    candidates
        .iter()
        .filter(|c| !c.starts_with('*'))
        .min_by_key(|c| edit_distance(&key, &c.to_lowercase()))
        .copied()
}

/// Levenshtein distance over chars.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unknown(text: &str) -> Vec<(String, Option<String>)> {
        let doc: Value = serde_yaml::from_str(text).expect("yaml");
        unknown_keys(&doc)
            .into_iter()
            .map(|u| (u.path, u.nearest))
            .collect()
    }

    fn named(path: &str, nearest: &str) -> (String, Option<String>) {
        (path.to_string(), Some(nearest.to_string()))
    }

    #[test]
    fn misspelled_noise_keys_are_named_with_the_nearest_known_one() {
        let found = unknown(
            "test:\n  globalnoise:\n    global: {}\n  globalNoise:\n    global:\n      headers: {Date: []}\n    test-sets:\n      test-set-0:\n        bdy: {id: []}\n",
        );
        assert_eq!(
            found,
            [
                named("test.globalnoise", "test.globalNoise"),
                named(
                    "test.globalNoise.global.headers",
                    "test.globalNoise.global.header"
                ),
                named(
                    "test.globalNoise.test-sets.test-set-0.bdy",
                    "test.globalNoise.test-sets.test-set-0.body"
                ),
            ]
        );
    }

    #[test]
    fn header_names_test_set_names_and_opaque_sections_are_free() {
        let text = "test:\n  globalNoise:\n    global:\n      header: {X-Anything: []}\n      body: {a.b: []}\n    test-sets:\n      my-flow: {header: {Date: []}}\n  selectedTests: {test-set-3: [test-1]}\n  protocol: {http: {port: 0}}\nagent: {whatever: {deep: 1}}\n";
        assert_eq!(unknown(text), []);
    }

    #[test]
    fn record_redact_keys_are_known_and_a_misspelled_one_is_named() {
        let text = "record:\n  redact:\n    headers: [X-A]\n    body: [ssn]\n    patterns: {mine: 'x+'}\n    disable: [cookie]\n    secretsFile: s.yaml\n";
        assert_eq!(unknown(text), []);
        assert_eq!(
            unknown("record:\n  redact:\n    secretFile: s.yaml\n"),
            [named(
                "record.redact.secretFile",
                "record.redact.secretsFile"
            )]
        );
    }

    #[test]
    fn the_template_and_keploys_default_shape_pass_quietly() {
        assert_eq!(unknown(include_str!("../../../keploy.yml.template")), []);
        let keploy_default = "path: \"\"\nappId: 0\nappName: \"\"\ncommand: \"\"\ntemplatize:\n  testSets: []\nport: 0\nproxyPort: 16789\nincomingProxyPort: 36789\ndnsPort: 26789\ndebug: false\ndisableANSI: false\ndisableTele: false\ngenerateGithubActions: false\ncontainerName: \"\"\nnetworkName: \"\"\nbuildDelay: 30\ntest:\n  selectedTests: {}\n  ignoredTests: {}\n  globalNoise:\n    global: {}\n    test-sets: {}\n  replaceWith:\n    global: {}\n    test-sets: {}\n  delay: 5\n  healthUrl: \"\"\n  host: localhost\n  protocol:\n    http:\n      port: 0\n  apiTimeout: 5\n  strictMockWindow: true\nrecord:\n  recordTimer: 0s\n  filters: []\n  upstreamTls:\n    verify: false\n    caCert: \"\"\n  recordBuffer:\n    queueSize: 1024\nasync:\n  lanes: []\nconfigPath: \"\"\nbypassRules: []\nmock:\n  name: default\ncontract:\n  mappings:\n    servicesMapping: {}\n    self: s1\ninCi: false\n";
        assert_eq!(unknown(keploy_default), []);
    }

    #[test]
    fn a_key_nested_under_a_scalar_section_is_named_at_its_depth() {
        assert_eq!(
            unknown("record:\n  upstreamTls:\n    verfy: true\npaht: x\n"),
            [
                named("record.upstreamTls.verfy", "record.upstreamTls.verify"),
                named("paht", "path"),
            ]
        );
    }

    #[test]
    fn edit_distance_counts_edits() {
        assert_eq!(edit_distance("headers", "header"), 1);
        assert_eq!(edit_distance("globalnoise", "globalnoise"), 0);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
    }
}
