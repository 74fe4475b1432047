//! Redaction of secrets before a test set reaches the disk.
//!
//! Test sets are made to be committed and shared, so a recording must not
//! carry credentials. Headers and body fields named like credentials
//! (`rules`), and values shaped like known secrets (gitleaks' patterns),
//! are replaced by placeholders (`placeholder`) that stay stable across a
//! test set; `walk` visits the parts of a message. Replay fills request
//! placeholders from the environment or a secrets file and lets response
//! placeholders match any value of the same shape.
//!
//! One [`Redactor`] serves one test set: its placeholder numbering is that
//! set's.

mod placeholder;
pub mod rules;
#[cfg(test)]
mod tests;
mod walk;

use thiserror::Error;

pub use placeholder::{contains as has_placeholder, env_var, fill, find as find_placeholders};
pub use placeholder::{shape_matches, Placeholders};
pub use rules::{default_rule_names, GITLEAKS_VERSION};
pub use walk::Tally;

use super::http_case::{Headers, StoredBody};
use super::HttpTestCase;
use rules::{NameRules, PatternRule};
use walk::Walk;

/// A configuration the redactor cannot use.
#[derive(Debug, Error)]
pub enum RedactError {
    #[error("redact pattern {name:?} is not a valid regex: {reason}")]
    Pattern { name: String, reason: String },
}

/// keploy.yml `record.redact`, as the redactor needs it.
#[derive(Debug, Clone, Default)]
pub struct RedactConfig {
    /// Extra header names redacted whatever their value.
    pub headers: Vec<String>,
    /// Extra JSON/form field names (any depth) or dotted JSON paths.
    pub body: Vec<String>,
    /// Extra value patterns: `(name, regex)`.
    pub patterns: Vec<(String, String)>,
    /// Default rules turned off, by name (`all` for every one).
    pub disable: Vec<String>,
}

impl RedactConfig {
    /// Names in `disable` that are no default rule (likely typos).
    pub fn unknown_disabled(&self) -> Vec<String> {
        let known = default_rule_names();
        self.disable
            .iter()
            .filter(|d| {
                !d.eq_ignore_ascii_case("all") && !known.iter().any(|k| k.eq_ignore_ascii_case(d))
            })
            .cloned()
            .collect()
    }
}

/// Redacts the messages of one test set.
#[derive(Debug)]
pub struct Redactor {
    names: NameRules,
    patterns: Vec<PatternRule>,
    places: Placeholders,
}

impl Default for Redactor {
    /// The default rules, all on.
    fn default() -> Self {
        Redactor {
            names: NameRules::new(&[], &[], &[]),
            patterns: rules::default_patterns(&[]),
            places: Placeholders::default(),
        }
    }
}

impl Redactor {
    /// The default rules minus `config.disable`, plus the user's own.
    pub fn new(config: &RedactConfig) -> Result<Self, RedactError> {
        let mut patterns = rules::default_patterns(&config.disable);
        for (name, regex) in &config.patterns {
            patterns.push(PatternRule::new(name, regex)?);
        }
        Ok(Redactor {
            names: NameRules::new(&config.headers, &config.body, &config.disable),
            patterns,
            places: Placeholders::default(),
        })
    }

    fn walk<'a>(&'a self, tally: &'a mut Tally) -> Walk<'a> {
        Walk {
            names: &self.names,
            patterns: &self.patterns,
            places: &self.places,
            tally,
        }
    }

    /// Placeholder numbers already used in `text` are not handed out again.
    pub fn reserve_existing(&self, text: &str) {
        self.places.reserve_existing(text);
    }

    /// One header value.
    pub fn header(&self, name: &str, value: &str, tally: &mut Tally) -> String {
        self.walk(tally).header(name, value)
    }

    /// A URL (path patterns, query values).
    pub fn url(&self, url: &str, tally: &mut Tally) -> String {
        self.walk(tally).url(url)
    }

    /// A text body; `content_type` tells a form from plain text.
    pub fn body(&self, text: &str, content_type: Option<&str>, tally: &mut Tally) -> String {
        self.walk(tally).body(text, content_type)
    }

    /// Decoded query parameters.
    pub fn params(
        &self,
        params: &mut std::collections::BTreeMap<String, String>,
        tally: &mut Tally,
    ) {
        self.walk(tally).params(params)
    }

    /// Redacts a whole test case in place: URL, query parameters, headers
    /// (repeated ones too), text bodies, and the curl line (where each
    /// redacted request value is replaced as text).
    pub fn redact_case(&self, case: &mut HttpTestCase) -> Tally {
        let mut tally = Tally::default();
        let req = &mut case.spec.req;
        req.url = self.url(&req.url, &mut tally);
        self.params(&mut req.url_params, &mut tally);
        self.message(&mut req.header, &mut req.body, &mut tally);
        // The curl line repeats the request only: scrubbed with what the
        // request gave up, not with (possibly short) response values.
        if !case.curl.is_empty() {
            case.curl = tally.scrub(&case.curl);
        }
        let resp = &mut case.spec.resp;
        self.message(&mut resp.header, &mut resp.body, &mut tally);
        tally
    }

    fn message(&self, header: &mut Headers, body: &mut StoredBody, tally: &mut Tally) {
        let content_type = header
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case("content-type"))
            .map(|(_, v)| v.clone());
        for (name, values) in body.header_repeated.iter_mut() {
            for v in values.iter_mut() {
                *v = self.header(name, v, tally);
            }
        }
        for (name, value) in header.iter_mut() {
            *value = match body.header_repeated.get(name) {
                Some(values) => values.join(", "),
                None => self.header(name, value, tally),
            };
        }
        if body.body_encoding.is_none() && body.events.is_none() && !body.body.is_empty() {
            body.body = self.body(&body.body, content_type.as_deref(), tally);
        }
    }
}
