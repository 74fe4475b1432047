//! Which recorded call answers an outgoing call at replay.
//!
//! A call's identity is its method and its path; among the recorded calls
//! with that identity (an indexed look-up, never a scan of all mocks), a
//! call fits when its query parameters (in any order), its media type, and
//! its body (as JSON when both sides parse, object keys in any order, the
//! noise keys left out; as text otherwise) agree. Among the fitting ones
//! the preference is that of the PostgreSQL mocks: unconsumed in the
//! current test's window, then unconsumed and recorded outside any test,
//! then unconsumed anywhere; a call repeated more often than it was
//! recorded reuses the last answer of its test. Each answer is consumed.
//! A miss names the nearest recorded call.
//!
//! keploy.yml's URL noise widens the identity: a path matching a pattern
//! (`/v1/orders/*`, a `*` segment for any one segment) is looked up under
//! the pattern, so a recorded path fits any actual path matching the same
//! pattern; a noisy query parameter must be there, its value is not
//! compared.

use std::collections::{BTreeMap, HashMap};

use serde::Serialize;

use crate::testset::keploy::http::HttpMockSpec;
use crate::testset::keploy::HttpMock;
use crate::testset::redact::{has_placeholder, shape_matches};

use super::record::{header, TEST_KEY};

/// An outgoing call as it arrived.
#[derive(Debug, Clone)]
pub struct Call {
    pub method: String,
    /// Absolute URL (scheme, host, path, query).
    pub url: String,
    pub content_type: Option<String>,
    pub body: Vec<u8>,
}

impl Call {
    /// `POST http://host/path?q`.
    pub fn describe(&self) -> String {
        format!("{} {}", self.method, self.url)
    }
}

/// A call no recorded one fits, as the report lists it.
#[derive(Debug, Clone, PartialEq, Serialize, serde::Deserialize)]
pub struct HttpMiss {
    pub call: String,
    /// The nearest recorded call and what differs, or that none has its
    /// method and path.
    pub nearest: String,
}

/// What one test's outgoing calls used.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct CallUsage {
    /// `http-3 POST http://host/path`, in the order served.
    pub served: Vec<String>,
    pub misses: Vec<HttpMiss>,
}

struct Entry {
    name: String,
    test: Option<String>,
    spec: HttpMockSpec,
    consumed: bool,
}

/// What keploy.yml's noise leaves out of the comparison of outgoing calls.
#[derive(Debug, Clone, Default)]
pub struct EgressNoise {
    /// Body keys: a bare key at any depth, a dotted path from the top.
    pub body: Vec<String>,
    /// Path patterns; a `*` segment stands for any one segment.
    pub paths: Vec<String>,
    /// Query parameter names whose values are not compared.
    pub query: Vec<String>,
}

/// The set's Http mocks, indexed by method and path (or path pattern).
#[derive(Default)]
pub struct EgressMatcher {
    entries: Vec<Entry>,
    by_key: HashMap<(String, String), Vec<usize>>,
    noise: EgressNoise,
    usage: BTreeMap<String, CallUsage>,
}

/// A `*` segment of `pattern` stands for any one non-empty segment; the
/// other segments, and the count, agree.
fn path_matches(pattern: &str, path: &str) -> bool {
    let (mut p, mut a) = (pattern.split('/'), path.split('/'));
    loop {
        match (p.next(), a.next()) {
            (None, None) => return true,
            (Some("*"), Some(seg)) if !seg.is_empty() => {}
            (Some(ps), Some(seg)) if ps == seg => {}
            _ => return false,
        }
    }
}

impl EgressMatcher {
    /// The path a URL is looked up under: the first noise pattern it
    /// matches, else its own.
    fn path_key<'a>(&'a self, url: &'a str) -> &'a str {
        let (path, _) = split_url(url);
        self.noise
            .paths
            .iter()
            .find(|p| path_matches(p, path))
            .map_or(path, String::as_str)
    }

    /// `(METHOD, path or pattern)`, the look-up key.
    fn key(&self, method: &str, url: &str) -> (String, String) {
        (method.to_ascii_uppercase(), self.path_key(url).to_string())
    }

    /// Sorted query parameters, a noisy one's value replaced by `*`.
    fn query_params(&self, url: &str) -> Vec<String> {
        let mut params = query_params(url);
        for p in &mut params {
            let name = p.split_once('=').map_or(p.as_str(), |(k, _)| k);
            if self.noise.query.iter().any(|q| q == name) {
                *p = format!("{name}=*");
            }
        }
        params.sort();
        params
    }
}

/// The path and the query of an absolute (or origin-form) URL.
fn split_url(url: &str) -> (&str, &str) {
    let rest = match url.find("://") {
        Some(i) => {
            let after = &url[i + 3..];
            after.find('/').map_or("/", |j| &after[j..])
        }
        None => url,
    };
    let rest = rest.split('#').next().unwrap_or(rest);
    match rest.split_once('?') {
        Some((p, q)) => (p, q),
        None => (rest, ""),
    }
}

/// Query parameters sorted, so their order does not matter.
fn query_params(url: &str) -> Vec<String> {
    let (_, q) = split_url(url);
    let mut params: Vec<String> = q
        .split('&')
        .filter(|p| !p.is_empty())
        .map(str::to_string)
        .collect();
    params.sort();
    params
}

/// Sorted query parameters agree; a recorded value holding a secret
/// placeholder fits any value of its shape, since the app sends the real
/// secret at replay.
fn same_query(recorded: &[String], actual: &[String]) -> bool {
    recorded.len() == actual.len()
        && recorded.iter().zip(actual).all(|(r, a)| {
            r == a
                || match (r.split_once('='), a.split_once('=')) {
                    (Some((rk, rv)), Some((ak, av))) => {
                        rk == ak && has_placeholder(rv) && shape_matches(rv, av)
                    }
                    _ => false,
                }
        })
}

/// JSON equality, except that a recorded string holding a secret
/// placeholder fits any string of its shape.
fn json_fits(recorded: &serde_json::Value, actual: &serde_json::Value) -> bool {
    use serde_json::Value;
    match (recorded, actual) {
        (Value::String(r), Value::String(a)) if has_placeholder(r) => shape_matches(r, a),
        (Value::Object(r), Value::Object(a)) => {
            r.len() == a.len()
                && r.iter()
                    .all(|(k, rv)| a.get(k).is_some_and(|av| json_fits(rv, av)))
        }
        (Value::Array(r), Value::Array(a)) => {
            r.len() == a.len() && r.iter().zip(a).all(|(rv, av)| json_fits(rv, av))
        }
        _ => recorded == actual,
    }
}

fn media(content_type: Option<&str>) -> String {
    content_type
        .and_then(|c| c.split(';').next())
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

impl EgressMatcher {
    /// Indexes `mocks`, under the path patterns of `noise`.
    pub fn new(mocks: Vec<HttpMock>, noise: EgressNoise) -> Self {
        let mut m = EgressMatcher {
            noise,
            ..Default::default()
        };
        for mock in mocks {
            let i = m.entries.len();
            let key = m.key(&mock.spec.req.method, &mock.spec.req.url);
            m.by_key.entry(key).or_default().push(i);
            m.entries.push(Entry {
                name: mock.name,
                test: mock.spec.metadata.get(TEST_KEY).cloned(),
                spec: mock.spec,
                consumed: false,
            });
        }
        m
    }

    /// How many mocks it holds.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The recorded answer for `call` made during `test` (None: outside
    /// any test), or the miss. Usage is noted under the test.
    pub fn answer(
        &mut self,
        call: &Call,
        test: Option<&str>,
    ) -> Result<(String, HttpMockSpec), HttpMiss> {
        let usage_key = test.unwrap_or("").to_string();
        let found = self.find(call, test);
        let usage = self.usage.entry(usage_key).or_default();
        match found {
            Ok(i) => {
                let entry = &mut self.entries[i];
                entry.consumed = true;
                usage
                    .served
                    .push(format!("{} {}", entry.name, describe(&entry.spec)));
                Ok((entry.name.clone(), entry.spec.clone()))
            }
            Err(miss) => {
                usage.misses.push(miss.clone());
                Err(miss)
            }
        }
    }

    fn find(&self, call: &Call, test: Option<&str>) -> Result<usize, HttpMiss> {
        let candidates = self
            .by_key
            .get(&self.key(&call.method, &call.url))
            .map(Vec::as_slice)
            .unwrap_or_default();
        let fitting: Vec<usize> = candidates
            .iter()
            .copied()
            .filter(|&i| self.differences(&self.entries[i].spec, call).is_empty())
            .collect();
        let in_window = |i: &usize| test.is_some() && self.entries[*i].test.as_deref() == test;
        let free = |i: &usize| !self.entries[*i].consumed;
        let pick = fitting
            .iter()
            .find(|i| free(i) && in_window(i))
            .or_else(|| {
                fitting
                    .iter()
                    .find(|i| free(i) && self.entries[**i].test.is_none())
            })
            .or_else(|| fitting.iter().find(|i| free(i)))
            .or_else(|| fitting.iter().rev().find(|i| in_window(i)))
            .or_else(|| {
                fitting
                    .iter()
                    .rev()
                    .find(|i| self.entries[**i].test.is_none())
            });
        if let Some(&i) = pick {
            return Ok(i);
        }
        Err(self.miss(call, candidates))
    }

    /// What differs between a recorded call and `call` (same method and
    /// path): `query`, `content-type`, `body`.
    fn differences(&self, spec: &HttpMockSpec, call: &Call) -> Vec<&'static str> {
        let mut diffs = Vec::new();
        if !same_query(
            &self.query_params(&spec.req.url),
            &self.query_params(&call.url),
        ) {
            diffs.push("query");
        }
        if media(header(&spec.req.header, "content-type")) != media(call.content_type.as_deref()) {
            diffs.push("content-type");
        }
        let recorded = crate::testset::http_form::stored_bytes(&spec.req.body).unwrap_or_default();
        if !self.same_body(&recorded, &call.body) {
            diffs.push("body");
        }
        diffs
    }

    fn same_body(&self, recorded: &[u8], actual: &[u8]) -> bool {
        let json = |b: &[u8]| serde_json::from_slice::<serde_json::Value>(b).ok();
        match (json(recorded), json(actual)) {
            (Some(mut a), Some(mut b)) => {
                for path in &self.noise.body {
                    strip(&mut a, path);
                    strip(&mut b, path);
                }
                json_fits(&a, &b)
            }
            _ => recorded == actual,
        }
    }

    fn miss(&self, call: &Call, candidates: &[usize]) -> HttpMiss {
        let nearest = candidates
            .iter()
            .map(|&i| (i, self.differences(&self.entries[i].spec, call)))
            .min_by_key(|(i, d)| (d.len(), self.entries[*i].consumed));
        let nearest = match nearest {
            Some((i, d)) if d.is_empty() => format!(
                "{} {} (already used by this run: the app called it more often than recorded)",
                self.entries[i].name,
                describe(&self.entries[i].spec)
            ),
            Some((i, d)) => format!(
                "{} {} (differs in {})",
                self.entries[i].name,
                describe(&self.entries[i].spec),
                d.join(", ")
            ),
            None => {
                let (path, _) = split_url(&call.url);
                let wanted = self.path_key(&call.url);
                let same_path = self
                    .entries
                    .iter()
                    .find(|e| self.path_key(&e.spec.req.url) == wanted);
                match same_path {
                    Some(e) => format!("{} {} (differs in method)", e.name, describe(&e.spec)),
                    None => format!(
                        "none recorded for {} {path} ({} outgoing calls recorded in this set)",
                        call.method,
                        self.entries.len()
                    ),
                }
            }
        };
        HttpMiss {
            call: call.describe(),
            nearest,
        }
    }

    /// What the calls made during `test` used (empty when none).
    pub fn usage_for(&self, test: &str) -> CallUsage {
        self.usage.get(test).cloned().unwrap_or_default()
    }

    /// The calls made outside any test's window (the app's start-up).
    pub fn usage_outside_tests(&self) -> CallUsage {
        self.usage_for("")
    }
}

/// `POST http://host/path`.
fn describe(spec: &HttpMockSpec) -> String {
    format!("{} {}", spec.req.method, spec.req.url)
}

/// Removes `path` from `value`: a bare key at any depth, a dotted path
/// (`a.b`, `items[].id`) from the top.
fn strip(value: &mut serde_json::Value, path: &str) {
    if !path.contains('.') {
        strip_everywhere(value, path);
        return;
    }
    let parts: Vec<&str> = path.split('.').collect();
    strip_path(value, &parts);
}

fn strip_everywhere(value: &mut serde_json::Value, key: &str) {
    match value {
        serde_json::Value::Object(map) => {
            map.shift_remove(key);
            map.values_mut().for_each(|v| strip_everywhere(v, key));
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(|v| strip_everywhere(v, key)),
        _ => {}
    }
}

fn strip_path(value: &mut serde_json::Value, parts: &[&str]) {
    let Some((first, rest)) = parts.split_first() else {
        return;
    };
    let (name, each) = match first.strip_suffix("[]") {
        Some(n) => (n, true),
        None => (*first, false),
    };
    let serde_json::Value::Object(map) = value else {
        return;
    };
    if rest.is_empty() && !each {
        map.shift_remove(name);
        return;
    }
    let Some(child) = map.get_mut(name) else {
        return;
    };
    match (each, child) {
        (true, serde_json::Value::Array(items)) => {
            items.iter_mut().for_each(|v| strip_path(v, rest))
        }
        (false, child) => strip_path(child, rest),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
