//! Values shaped like times or generated ids: fields holding them change
//! from one request to the next, even when two replays within the same
//! second happen to agree.

use std::sync::LazyLock;
use std::time::{SystemTime, UNIX_EPOCH};

use regex::Regex;
use serde_json::Value;

/// How far from now a number may lie and still read as an epoch time.
const EPOCH_WINDOW_SECS: f64 = 366.0 * 24.0 * 3600.0;

static ISO_TIME: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}(:?\d{2})?)?$")
        .expect("a valid regex")
});
static HTTP_DATE: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(
        r"^(Mon|Tue|Wed|Thu|Fri|Sat|Sun), \d{2} (Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec) \d{4} \d{2}:\d{2}:\d{2} GMT$",
    )
    .expect("a valid regex")
});
static UUID: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
        .expect("a valid regex")
});
static LONG_HEX: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[0-9a-fA-F]{16,}$").expect("a valid regex"));
static TOKEN: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^[A-Za-z0-9_+/-]{20,}={0,2}$").expect("a valid regex"));

/// What `value` looks like when it looks volatile (for the proposal's
/// comment), else None.
pub fn looks_volatile(value: &Value) -> Option<&'static str> {
    match value {
        Value::Number(n) => n.as_f64().and_then(epoch_kind),
        Value::String(s) => string_kind(s),
        _ => None,
    }
}

fn string_kind(s: &str) -> Option<&'static str> {
    // ETags come quoted, weak ones behind `W/`.
    let s = s.strip_prefix("W/").unwrap_or(s);
    let s = s
        .strip_prefix('"')
        .and_then(|s| s.strip_suffix('"'))
        .unwrap_or(s);
    if ISO_TIME.is_match(s) {
        return Some("an ISO 8601 time");
    }
    if HTTP_DATE.is_match(s) {
        return Some("an HTTP date");
    }
    if UUID.is_match(s) {
        return Some("a UUID");
    }
    if (s.len() == 10 || s.len() == 13) && s.bytes().all(|b| b.is_ascii_digit()) {
        return s.parse::<f64>().ok().and_then(epoch_kind);
    }
    if LONG_HEX.is_match(s) && s.bytes().any(|b| b.is_ascii_digit()) {
        return Some("a hex id");
    }
    // Mixed case and digits: a token, not a word or a slug.
    let has = |f: fn(&u8) -> bool| s.as_bytes().iter().any(f);
    if TOKEN.is_match(s)
        && has(u8::is_ascii_digit)
        && has(u8::is_ascii_uppercase)
        && has(u8::is_ascii_lowercase)
    {
        return Some("a base64 id");
    }
    None
}

fn epoch_kind(n: f64) -> Option<&'static str> {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default();
    if (n - now).abs() <= EPOCH_WINDOW_SECS {
        Some("epoch seconds")
    } else if (n - now * 1000.0).abs() <= EPOCH_WINDOW_SECS * 1000.0 {
        Some("epoch milliseconds")
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn times_and_ids_look_volatile() {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_secs();
        for (value, kind) in [
            (json!("2026-12-04T10:11:12.123456Z"), "an ISO 8601 time"),
            (json!("2026-12-04 10:11:12+01:00"), "an ISO 8601 time"),
            (json!("Fri, 04 Dec 2026 10:11:12 GMT"), "an HTTP date"),
            (json!("0f8fad5b-d9cb-469f-a165-70867728950e"), "a UUID"),
            (json!(now), "epoch seconds"),
            (json!(now as f64 + 0.25), "epoch seconds"),
            (json!(now * 1000 + 17), "epoch milliseconds"),
            (json!(now.to_string()), "epoch seconds"),
            (json!("9f86d081884c7d659a2feaa0c55ad015"), "a hex id"),
            (
                json!("\"33a64df551425fcc55e4d42a148795d9f25f89d4\""),
                "a hex id",
            ),
            (json!("W/\"0815c7a1b2e3f4d5\""), "a hex id"),
            (json!("eyJhbGciOiJIUzI1NiJ9abcDEF123"), "a base64 id"),
        ] {
            assert_eq!(looks_volatile(&value), Some(kind), "{value}");
        }
    }

    #[test]
    fn ordinary_values_do_not() {
        for value in [
            json!("widget"),
            json!("a-long-article-slug-from-2024"),
            json!("2026-12-04"),
            json!(42),
            json!(1.5),
            json!(100_000),
            json!(true),
            json!(null),
            json!("deadbeefcafebabe"),
            json!("UPPERCASE_CONSTANT_NAME_LONG"),
            json!("text/html; charset=utf-8"),
        ] {
            assert_eq!(looks_volatile(&value), None, "{value}");
        }
    }
}
