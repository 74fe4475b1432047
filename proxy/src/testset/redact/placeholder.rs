//! Stable placeholders: `{{recplay.secret.<rule>_<n>}}`.
//!
//! The same secret value gets the same placeholder everywhere in a test
//! set, so a token handed out by one response and sent back by the next
//! request still reads as the same value. The value → placeholder map lives
//! in memory only; it is never written, or the secrets would be too.

use std::collections::HashMap;
use std::sync::Mutex;

use regex::Regex;

const OPEN: &str = "{{recplay.secret.";
const CLOSE: &str = "}}";

/// The environment variable replay reads a placeholder's value from:
/// `authorization_1` → `RECPLAY_SECRET_AUTHORIZATION_1`.
pub fn env_var(name: &str) -> String {
    format!("RECPLAY_SECRET_{}", name.to_ascii_uppercase())
}

/// `{{recplay.secret.<name>}}`.
pub fn placeholder(name: &str) -> String {
    format!("{OPEN}{name}{CLOSE}")
}

/// A rule or field name as it may appear in a placeholder and an
/// environment variable name: lower-case ASCII letters, digits and `_`.
pub fn label(rule: &str) -> String {
    let mut out: String = rule
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '_'
            }
        })
        .collect();
    if out.is_empty() {
        out.push_str("secret");
    }
    out
}

/// Every placeholder in `text`: `(start, end, name)` byte ranges.
pub fn find(text: &str) -> Vec<(usize, usize, &str)> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(at) = text[from..].find(OPEN) {
        let start = from + at;
        let name_start = start + OPEN.len();
        let Some(len) = text[name_start..].find(CLOSE) else {
            break;
        };
        let name = &text[name_start..name_start + len];
        if !name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            out.push((start, name_start + len + CLOSE.len(), name));
            from = name_start + len + CLOSE.len();
        } else {
            from = name_start;
        }
    }
    out
}

/// Whether `text` holds a placeholder.
pub fn contains(text: &str) -> bool {
    !find(text).is_empty()
}

/// `text` with every placeholder replaced by `value(name)`; the first name
/// `value` has nothing for is the error.
pub fn fill(text: &str, mut value: impl FnMut(&str) -> Option<String>) -> Result<String, String> {
    let found = find(text);
    if found.is_empty() {
        return Ok(text.to_string());
    }
    let mut out = String::with_capacity(text.len());
    let mut last = 0;
    for (start, end, name) in found {
        out.push_str(&text[last..start]);
        out.push_str(&value(name).ok_or_else(|| name.to_string())?);
        last = end;
    }
    out.push_str(&text[last..]);
    Ok(out)
}

/// Whether `actual` has the shape of `recorded`: the text around the
/// placeholders is equal, and each placeholder stands for a non-empty value
/// (for a JWT, three base64url parts).
pub fn shape_matches(recorded: &str, actual: &str) -> bool {
    let found = find(recorded);
    if found.is_empty() {
        return recorded == actual;
    }
    let mut pattern = String::from("(?s)^");
    let mut last = 0;
    for (start, end, name) in found {
        pattern.push_str(&regex::escape(&recorded[last..start]));
        if name.starts_with("jwt_") {
            pattern.push_str(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*");
        } else {
            pattern.push_str(".+");
        }
        last = end;
    }
    pattern.push_str(&regex::escape(&recorded[last..]));
    pattern.push('$');
    Regex::new(&pattern).is_ok_and(|re| re.is_match(actual))
}

#[derive(Debug, Default)]
struct State {
    by_value: HashMap<String, String>,
    counters: HashMap<String, u64>,
}

/// The value → placeholder map of one test set.
#[derive(Debug, Default)]
pub struct Placeholders {
    state: Mutex<State>,
}

impl Placeholders {
    /// The placeholder for `value`: the one it already has, or the next
    /// `<rule>_<n>`.
    pub fn for_value(&self, rule: &str, value: &str) -> String {
        let mut state = match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        if let Some(p) = state.by_value.get(value) {
            return p.clone();
        }
        let rule = label(rule);
        let n = state.counters.entry(rule.clone()).or_insert(0);
        *n += 1;
        let p = placeholder(&format!("{rule}_{n}"));
        state.by_value.insert(value.to_string(), p.clone());
        p
    }

    /// Numbers placeholders already in `text` use are not handed out again
    /// (a set sanitized twice, or recorded then sanitized).
    pub fn reserve_existing(&self, text: &str) {
        let mut state = match self.state.lock() {
            Ok(s) => s,
            Err(poisoned) => poisoned.into_inner(),
        };
        for (_, _, name) in find(text) {
            let Some((rule, n)) = name.rsplit_once('_') else {
                continue;
            };
            let Ok(n) = n.parse::<u64>() else { continue };
            let counter = state.counters.entry(rule.to_string()).or_insert(0);
            *counter = (*counter).max(n);
        }
    }
}
