//! What counts as a secret: header and field names, and value patterns.
//!
//! The value patterns are gitleaks' published rules, copied from
//! `config/gitleaks.toml` of gitleaks [`GITLEAKS_VERSION`] (rule ids kept,
//! regexes unchanged except `bearer`, which is the `Bearer` branch of
//! gitleaks' `curl-auth-header` rule lifted out of its curl context; the
//! `Token` branch is left to the header rules, since "token <word>" is
//! common prose in bodies).
//! To update: take the new release's `config/gitleaks.toml`, copy the
//! `regex` and `entropy` of each id listed in [`DEFAULT_PATTERNS`], bump
//! [`GITLEAKS_VERSION`] and run the redaction tests. gitleaks marks the
//! secret with the first capture group; so does this module.

use regex::Regex;

use super::RedactError;

/// The gitleaks release the value patterns come from.
pub const GITLEAKS_VERSION: &str = "v8.30.1";

/// `(id, regex, minimum Shannon entropy of the secret)`, as gitleaks has
/// them. An entropy of 0 means "no check".
const DEFAULT_PATTERNS: &[(&str, &str, f64)] = &[
    (
        "jwt",
        r#"\b(ey[a-zA-Z0-9]{17,}\.ey[a-zA-Z0-9\/\\_-]{17,}\.(?:[a-zA-Z0-9\/\\_-]{10,}={0,2})?)(?:[\x60'"\s;]|\\[nr]|$)"#,
        3.0,
    ),
    ("bearer", r"(?i)\bBearer[ \t]+([\w=~@.+/-]{8,})", 2.75),
    (
        "aws-access-token",
        r"\b((?:A3T[A-Z0-9]|AKIA|ASIA|ABIA|ACCA)[A-Z2-7]{16})\b",
        3.0,
    ),
    (
        "gcp-api-key",
        r#"\b(AIza[\w-]{35})(?:[\x60'"\s;]|\\[nr]|$)"#,
        4.0,
    ),
    (
        "stripe-access-token",
        r#"\b((?:sk|rk)_(?:test|live|prod)_[a-zA-Z0-9]{10,99})(?:[\x60'"\s;]|\\[nr]|$)"#,
        2.0,
    ),
    ("github-pat", r"ghp_[0-9a-zA-Z]{36}", 3.0),
    ("github-fine-grained-pat", r"github_pat_\w{82}", 3.0),
    ("github-oauth", r"gho_[0-9a-zA-Z]{36}", 3.0),
    ("github-app-token", r"(?:ghu|ghs)_[0-9a-zA-Z]{36}", 3.0),
    ("github-refresh-token", r"ghr_[0-9a-zA-Z]{36}", 3.0),
    (
        "openai-api-key",
        r#"\b(sk-(?:proj|svcacct|admin)-(?:[A-Za-z0-9_-]{74}|[A-Za-z0-9_-]{58})T3BlbkFJ(?:[A-Za-z0-9_-]{74}|[A-Za-z0-9_-]{58})\b|sk-[a-zA-Z0-9]{20}T3BlbkFJ[a-zA-Z0-9]{20})(?:[\x60'"\s;]|\\[nr]|$)"#,
        3.0,
    ),
    (
        "private-key",
        r"(?i)-----BEGIN[ A-Z0-9_-]{0,100}PRIVATE KEY(?: BLOCK)?-----[\s\S-]{64,}?KEY(?: BLOCK)?-----",
        0.0,
    ),
];

/// Header names redacted whatever their value (compared case-insensitively).
const DEFAULT_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
];

/// Name rules by part: a header, JSON key, form field or query parameter
/// whose name contains one of the parts (case-insensitive, `_` read as
/// `-`) is redacted whatever its value. `(rule name, parts)`.
const DEFAULT_NAME_PARTS: &[(&str, &[&str])] = &[
    ("token", &["token"]),
    ("secret", &["secret"]),
    ("api-key", &["api-key", "apikey"]),
    ("password", &["password", "passwd"]),
];

/// Every default rule's name, for `disable:` and its check.
pub fn default_rule_names() -> Vec<&'static str> {
    DEFAULT_HEADERS
        .iter()
        .copied()
        .chain(DEFAULT_NAME_PARTS.iter().map(|(n, _)| *n))
        .chain(DEFAULT_PATTERNS.iter().map(|(n, _, _)| *n))
        .collect()
}

/// A value pattern.
#[derive(Debug, Clone)]
pub struct PatternRule {
    pub name: String,
    regex: Regex,
    entropy: f64,
}

impl PatternRule {
    /// A user's pattern: no entropy floor, the first group (or the whole
    /// match) is the secret.
    pub fn new(name: &str, regex: &str) -> Result<Self, RedactError> {
        let regex = Regex::new(regex).map_err(|e| RedactError::Pattern {
            name: name.to_string(),
            reason: e.to_string(),
        })?;
        Ok(PatternRule {
            name: name.to_string(),
            regex,
            entropy: 0.0,
        })
    }

    /// Byte ranges of the secrets in `text`, in order, not overlapping.
    pub fn find(&self, text: &str) -> Vec<(usize, usize)> {
        let mut out = Vec::new();
        for caps in self.regex.captures_iter(text) {
            let Some(m) = caps.get(1).or_else(|| caps.get(0)) else {
                continue;
            };
            if m.as_str().is_empty() || shannon_entropy(m.as_str()) < self.entropy {
                continue;
            }
            out.push((m.start(), m.end()));
        }
        out
    }
}

/// The default patterns minus `disabled`.
pub fn default_patterns(disabled: &[String]) -> Vec<PatternRule> {
    DEFAULT_PATTERNS
        .iter()
        .filter(|(name, _, _)| !is_disabled(disabled, name))
        .filter_map(|(name, regex, entropy)| {
            // The table is fixed and covered by tests; a pattern the regex
            // engine refuses is left out rather than stopping a recording.
            match Regex::new(regex) {
                Ok(regex) => Some(PatternRule {
                    name: (*name).to_string(),
                    regex,
                    entropy: *entropy,
                }),
                Err(e) => {
                    tracing::error!("secret pattern {name} does not compile: {e}");
                    None
                }
            }
        })
        .collect()
}

fn is_disabled(disabled: &[String], name: &str) -> bool {
    disabled
        .iter()
        .any(|d| d.eq_ignore_ascii_case(name) || d.eq_ignore_ascii_case("all"))
}

/// Which names are secret: the defaults left on, plus the user's own.
#[derive(Debug, Clone, Default)]
pub struct NameRules {
    exact: Vec<String>,
    parts: Vec<String>,
    /// Dotted JSON paths (`user.card.number`, `items[].pin`) from config.
    paths: Vec<String>,
}

impl NameRules {
    pub fn new(extra_headers: &[String], extra_body: &[String], disabled: &[String]) -> Self {
        let mut exact: Vec<String> = DEFAULT_HEADERS
            .iter()
            .filter(|n| !is_disabled(disabled, n))
            .map(|n| n.to_string())
            .collect();
        exact.extend(extra_headers.iter().map(|h| normalise(h)));
        let parts = DEFAULT_NAME_PARTS
            .iter()
            .filter(|(n, _)| !is_disabled(disabled, n))
            .flat_map(|(_, parts)| parts.iter().map(|p| p.to_string()))
            .collect();
        let mut paths = Vec::new();
        for b in extra_body {
            if b.contains('.') || b.contains('[') {
                paths.push(b.clone());
            } else {
                exact.push(normalise(b));
            }
        }
        NameRules {
            exact,
            parts,
            paths,
        }
    }

    /// Whether a header, JSON key, form field or query parameter named
    /// `name` holds a secret.
    pub fn is_secret_name(&self, name: &str) -> bool {
        let n = normalise(name);
        self.exact.contains(&n) || self.parts.iter().any(|p| n.contains(p.as_str()))
    }

    /// Whether the JSON value at `path` (`a.b`, `items[].pin`) was named
    /// secret in the configuration.
    pub fn is_secret_path(&self, path: &str) -> bool {
        self.paths.iter().any(|p| p == path)
    }
}

/// `X_Api_Key` → `x-api-key`.
fn normalise(name: &str) -> String {
    name.trim().to_ascii_lowercase().replace('_', "-")
}

/// Bits per character, as gitleaks computes it.
fn shannon_entropy(s: &str) -> f64 {
    let mut counts = std::collections::HashMap::new();
    let mut total = 0usize;
    for c in s.chars() {
        *counts.entry(c).or_insert(0usize) += 1;
        total += 1;
    }
    if total == 0 {
        return 0.0;
    }
    counts
        .values()
        .map(|&c| {
            let p = c as f64 / total as f64;
            -p * p.log2()
        })
        .sum()
}
