//! Walking the parts of a message — header values, JSON, form and
//! query-string bodies, plain text — and replacing what the rules call
//! secret with its placeholder.

use std::collections::BTreeMap;

use serde_json::Value;

use super::placeholder::{self, Placeholders};
use super::rules::{NameRules, PatternRule};

/// What a redaction changed: how many values per rule, and each original
/// with its placeholder (to scrub copies of it, such as the curl line).
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub counts: BTreeMap<String, usize>,
    pub pairs: Vec<(String, String)>,
}

impl Tally {
    pub fn total(&self) -> usize {
        self.counts.values().sum()
    }

    pub fn merge(&mut self, other: Tally) {
        for (rule, n) in other.counts {
            *self.counts.entry(rule).or_insert(0) += n;
        }
        self.pairs.extend(other.pairs);
    }

    /// `text` with every original recorded here replaced by its
    /// placeholder, longest first so a secret inside another goes too.
    pub fn scrub(&self, text: &str) -> String {
        let mut pairs: Vec<&(String, String)> = self.pairs.iter().collect();
        pairs.sort_by_key(|(original, _)| std::cmp::Reverse(original.len()));
        let mut out = text.to_string();
        for (original, placeholder) in pairs {
            if !original.is_empty() && out.contains(original.as_str()) {
                out = out.replace(original.as_str(), placeholder);
            }
        }
        out
    }
}

/// Authorization schemes kept in clear before the redacted credentials, so
/// the value to provide at replay is the credential alone.
const SCHEMES: &[&str] = &["bearer", "basic", "token", "digest", "bot", "apikey"];

/// The rules and the set's placeholders, with the tally of one message.
pub struct Walk<'a> {
    pub names: &'a NameRules,
    pub patterns: &'a [PatternRule],
    pub places: &'a Placeholders,
    pub tally: &'a mut Tally,
}

impl Walk<'_> {
    /// The placeholder for `original`, counted under `rule`.
    fn secret(&mut self, rule: &str, original: &str) -> String {
        let p = self.places.for_value(rule, original);
        *self.tally.counts.entry(rule.to_string()).or_insert(0) += 1;
        self.tally.pairs.push((original.to_string(), p.clone()));
        p
    }

    /// A value named secret: replaced whole unless empty or already a
    /// placeholder.
    fn named(&mut self, rule: &str, value: &str) -> String {
        if value.is_empty() || placeholder::contains(value) {
            return value.to_string();
        }
        self.secret(rule, value)
    }

    /// Free text: every pattern match replaced.
    pub fn text(&mut self, text: &str) -> String {
        let mut out = text.to_string();
        for i in 0..self.patterns.len() {
            let found = self.patterns[i].find(&out);
            if found.is_empty() {
                continue;
            }
            let rule = self.patterns[i].name.clone();
            let mut next = String::with_capacity(out.len());
            let mut last = 0;
            for (start, end) in found {
                next.push_str(&out[last..start]);
                let original = out[start..end].to_string();
                next.push_str(&self.secret(&rule, &original));
                last = end;
            }
            next.push_str(&out[last..]);
            out = next;
        }
        out
    }

    /// One header value.
    pub fn header(&mut self, name: &str, value: &str) -> String {
        if !self.names.is_secret_name(name) {
            return self.text(value);
        }
        let lower = name.to_ascii_lowercase();
        if lower == "cookie" {
            return self.cookie_pairs(value, "; ", false);
        }
        if lower == "set-cookie" {
            return self.cookie_pairs(value, ";", true);
        }
        if let Some((scheme, credentials)) = value.split_once(' ') {
            if SCHEMES.iter().any(|s| s.eq_ignore_ascii_case(scheme)) {
                let credentials = credentials.trim_start();
                return format!("{scheme} {}", self.named(&lower, credentials));
            }
        }
        self.named(&lower, value)
    }

    /// `a=1; b=2` (Cookie) or `a=1; Path=/; HttpOnly` (Set-Cookie: only
    /// the first pair is the cookie). Each value gets a placeholder named
    /// after its cookie.
    fn cookie_pairs(&mut self, value: &str, sep: &str, first_only: bool) -> String {
        let mut parts = Vec::new();
        for (i, part) in value.split(sep).enumerate() {
            if first_only && i > 0 {
                parts.push(part.to_string());
                continue;
            }
            match part.split_once('=') {
                Some((k, v)) => {
                    let label = format!("cookie_{}", k.trim());
                    parts.push(format!("{k}={}", self.named(&label, v)));
                }
                None => parts.push(part.to_string()),
            }
        }
        parts.join(sep)
    }

    /// `k=v&k2=v2` (a form body or a query string): values of secret
    /// names replaced whole, the others scanned for patterns.
    pub fn form(&mut self, text: &str) -> String {
        text.split('&')
            .map(|pair| match pair.split_once('=') {
                Some((k, v)) => {
                    let v = if self.names.is_secret_name(&decode(k)) {
                        self.named(&decode(k), v)
                    } else {
                        self.text(v)
                    };
                    format!("{k}={v}")
                }
                None => self.text(pair),
            })
            .collect::<Vec<_>>()
            .join("&")
    }

    /// A URL: the path scanned for patterns, the query as a form.
    pub fn url(&mut self, url: &str) -> String {
        match url.split_once('?') {
            Some((path, query)) => {
                let path = self.text(path);
                let query = self.form(query);
                format!("{path}?{query}")
            }
            None => self.text(url),
        }
    }

    /// Decoded query parameters, as `url_params` holds them.
    pub fn params(&mut self, params: &mut BTreeMap<String, String>) {
        for (k, v) in params.iter_mut() {
            *v = if self.names.is_secret_name(k) {
                self.named(k, v)
            } else {
                self.text(v)
            };
        }
    }

    /// A stored text body: JSON when it parses as an object or array, a
    /// form when `content_type` says so, text otherwise.
    pub fn body(&mut self, text: &str, content_type: Option<&str>) -> String {
        let trimmed = text.trim_start();
        if trimmed.starts_with('{') || trimmed.starts_with('[') {
            if let Ok(mut value) = serde_json::from_str::<Value>(text) {
                let before = self.tally.total();
                self.json(&mut value, &mut String::new(), None);
                if self.tally.total() == before {
                    return text.to_string();
                }
                let written = if text.contains('\n') {
                    serde_json::to_string_pretty(&value)
                } else {
                    serde_json::to_string(&value)
                };
                return written.unwrap_or_else(|_| text.to_string());
            }
        }
        let is_form = content_type
            .is_some_and(|ct| ct.to_ascii_lowercase().contains("x-www-form-urlencoded"));
        if is_form {
            self.form(text)
        } else {
            self.text(text)
        }
    }

    /// `secret_as`: the name of the enclosing key that made everything
    /// below it secret.
    fn json(&mut self, value: &mut Value, path: &mut String, secret_as: Option<&str>) {
        match value {
            Value::Object(map) => {
                for (k, v) in map.iter_mut() {
                    let len = path.len();
                    if !path.is_empty() {
                        path.push('.');
                    }
                    path.push_str(k);
                    let named = secret_as.map(str::to_string).or_else(|| {
                        (self.names.is_secret_name(k) || self.names.is_secret_path(path))
                            .then(|| k.clone())
                    });
                    self.json(v, path, named.as_deref());
                    path.truncate(len);
                }
            }
            Value::Array(items) => {
                let len = path.len();
                path.push_str("[]");
                for item in items {
                    self.json(item, path, secret_as);
                }
                path.truncate(len);
            }
            Value::String(s) => {
                *s = match secret_as {
                    Some(rule) => self.named(rule, s),
                    None => self.text(s),
                };
            }
            Value::Number(n) => {
                if let Some(rule) = secret_as {
                    *value = Value::String(self.named(rule, &n.to_string()));
                }
            }
            Value::Bool(_) | Value::Null => {}
        }
    }
}

/// A form or query name, percent-decoded (`+` is a space).
fn decode(s: &str) -> String {
    percent_encoding::percent_decode_str(&s.replace('+', " "))
        .decode_utf8_lossy()
        .into_owned()
}
