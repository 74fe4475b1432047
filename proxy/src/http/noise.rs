//! Record-time noise: response values that look like timestamps will differ
//! on every replay, so — as Keploy does — they are listed in the test's
//! `spec.assertions.noise` when it is recorded.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDateTime};

use crate::testset::Headers;

/// Layouts without a zone that applications commonly emit.
const NAIVE_LAYOUTS: [&str; 4] = [
    "%Y-%m-%dT%H:%M:%S%.f",
    "%Y-%m-%d %H:%M:%S%.f",
    "%Y-%m-%dT%H:%M:%S%.f%#z",
    "%Y-%m-%d %H:%M:%S%.f%#z",
];

/// True when `value` is a date with a time of day in a common layout
/// (RFC 3339, RFC 2822 / HTTP-date, ISO-like with or without a zone). Bare
/// dates and numbers are not: they are usually data, not clocks.
pub fn looks_like_timestamp(value: &str) -> bool {
    let v = value.trim();
    // Every accepted layout has a time of day, so a colon: most values
    // (ids, sizes, media types) are turned away before any parsing.
    if !(10..=64).contains(&v.len()) || !v.contains(':') || !v.bytes().any(|b| b.is_ascii_digit()) {
        return false;
    }
    DateTime::parse_from_rfc3339(v).is_ok()
        || DateTime::parse_from_rfc2822(v).is_ok()
        || NAIVE_LAYOUTS
            .iter()
            .any(|layout| NaiveDateTime::parse_from_str(v, layout).is_ok())
        || NAIVE_LAYOUTS
            .iter()
            .any(|layout| DateTime::parse_from_str(v, layout).is_ok())
}

/// Noise entries for a response: `header.<Name>` for timestamp headers and
/// `body.<path>` for timestamp leaves of a JSON body (`a.b`, arrays as
/// `items[].created_at`, the whole body as `body`).
pub fn record_time_noise(headers: &Headers, body: Option<&str>) -> BTreeMap<String, Vec<String>> {
    let mut noise = BTreeMap::new();
    for (name, value) in headers {
        if looks_like_timestamp(value) {
            noise.insert(format!("header.{name}"), Vec::new());
        }
    }
    if let Some(json) = body.and_then(|b| serde_json::from_str::<serde_json::Value>(b).ok()) {
        let mut paths = Vec::new();
        timestamp_leaves(&json, String::new(), &mut paths);
        for path in paths {
            let key = if path.is_empty() {
                "body".to_string()
            } else {
                format!("body.{path}")
            };
            noise.insert(key, Vec::new());
        }
    }
    noise
}

fn timestamp_leaves(value: &serde_json::Value, path: String, out: &mut Vec<String>) {
    match value {
        serde_json::Value::String(s) if looks_like_timestamp(s) => out.push(path),
        serde_json::Value::Object(map) => {
            for (key, child) in map {
                let child_path = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                timestamp_leaves(child, child_path, out);
            }
        }
        serde_json::Value::Array(items) => {
            for item in items {
                timestamp_leaves(item, format!("{path}[]"), out);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps_are_told_from_data() {
        for yes in [
            "Tue, 14 Nov 2023 09:26:25 GMT",
            "2023-12-15T10:31:57.291484259Z",
            "2024-01-02 03:04:05",
            "2024-01-02T03:04:05.123456",
            "2024-01-02 03:04:05.5+00",
        ] {
            assert!(looks_like_timestamp(yes), "{yes}");
        }
        for no in [
            "2024-01-02",
            "12345678901",
            "hello world",
            "",
            "v1.2.3-beta",
        ] {
            assert!(!looks_like_timestamp(no), "{no}");
        }
    }

    #[test]
    fn json_leaves_and_headers_become_noise_keys() {
        let headers = Headers::from([
            (
                "Date".to_string(),
                "Tue, 14 Nov 2023 09:26:25 GMT".to_string(),
            ),
            ("Content-Type".to_string(), "application/json".to_string()),
        ]);
        let body = r#"{"id":1,"meta":{"created_at":"2024-01-02T03:04:05Z"},"items":[{"at":"2024-01-02 03:04:05"}]}"#;
        let noise = record_time_noise(&headers, Some(body));
        let keys: Vec<&str> = noise.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            ["body.items[].at", "body.meta.created_at", "header.Date"]
        );
    }
}
