//! A streamed body recorded as a list of events, compared event by event.
//!
//! The actual body is split the way the recording was (SSE events, or
//! lines for NDJSON and streamed text) and the n-th event is held to the
//! n-th recorded one, field by field. A field whose value parses as JSON on
//! both sides (an event's `data`, typically) is compared as JSON, with the
//! body noise applied from the root of that JSON, so object key order never
//! matters; any other field must be equal unless a body noise key of its
//! name excuses it (`body.id` ignores SSE event ids as well). Arrival times
//! are not compared.

use recplay_proxy::testset::stream_body::{
    are_lines, parse_lines, parse_sse, EventFields, StreamEvent,
};
use serde_json::Value;

use super::json;
use super::noise::{NoiseRules, PathStep};
use super::{BodyKind, Difference};

/// Compares the `recorded` events with the `actual` body's.
pub fn compare(
    recorded: &[StreamEvent],
    actual: &[u8],
    noise: &NoiseRules,
) -> (BodyKind, Vec<Difference>) {
    let Ok(text) = std::str::from_utf8(actual) else {
        return (
            BodyKind::Binary,
            vec![Difference::Body {
                path: "(body)".to_string(),
                expected: Some(format!("{} streamed events", recorded.len())),
                actual: Some(format!("{} bytes that are not text", actual.len())),
            }],
        );
    };
    let expected: Vec<&EventFields> = recorded
        .iter()
        .map(|e| &e.data)
        .filter(|d| !d.0.is_empty())
        .collect();
    let got = if are_lines(recorded) {
        parse_lines(text)
    } else {
        parse_sse(text)
    };
    let mut kind = BodyKind::Text;
    let mut diffs = Vec::new();
    for i in 0..expected.len().max(got.len()) {
        let path = format!("events[{i}]");
        match (expected.get(i), got.get(i)) {
            (Some(e), Some(a)) => compare_event(&path, e, a, noise, &mut kind, &mut diffs),
            (e, a) => diffs.push(Difference::Body {
                path,
                expected: e.map(|e| event_text(e)),
                actual: a.map(event_text),
            }),
        }
    }
    (kind, diffs)
}

fn compare_event(
    path: &str,
    expected: &EventFields,
    actual: &EventFields,
    noise: &NoiseRules,
    kind: &mut BodyKind,
    diffs: &mut Vec<Difference>,
) {
    for (key, e) in &expected.0 {
        let at = format!("{path}.{key}");
        compare_field(&at, key, Some(e), actual.get(key), noise, kind, diffs);
    }
    for (key, a) in &actual.0 {
        if expected.get(key).is_none() {
            let at = format!("{path}.{key}");
            compare_field(&at, key, None, Some(a), noise, kind, diffs);
        }
    }
}

fn compare_field(
    path: &str,
    key: &str,
    expected: Option<&str>,
    actual: Option<&str>,
    noise: &NoiseRules,
    kind: &mut BodyKind,
    diffs: &mut Vec<Difference>,
) {
    if let (Some(e), Some(a)) = (expected, actual) {
        if let (Ok(e), Ok(a)) = (
            serde_json::from_str::<Value>(e),
            serde_json::from_str::<Value>(a),
        ) {
            *kind = BodyKind::Json;
            for d in json::diff(&e, &a, noise) {
                let inner = json::display_path(&d.path);
                let at = if d.path.is_empty() {
                    path.to_string()
                } else if inner.starts_with('[') {
                    format!("{path}{inner}")
                } else {
                    format!("{path}.{inner}")
                };
                diffs.push(Difference::Body {
                    path: at,
                    expected: d.expected.map(|v| v.to_string()),
                    actual: d.actual.map(|v| v.to_string()),
                });
            }
            return;
        }
    }
    if expected == actual {
        return;
    }
    let field = [PathStep::Key(key.to_string())];
    if noise.body_rules(&field).any(|rule| rule.ignores(actual)) {
        return;
    }
    diffs.push(Difference::Body {
        path: path.to_string(),
        expected: expected.map(str::to_string),
        actual: actual.map(str::to_string),
    });
}

/// An event as `field: value` lines, for a report.
fn event_text(e: &EventFields) -> String {
    e.0.iter()
        .map(|(k, v)| format!("{k}: {v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::noise::{BodySelector, ValueRule};

    fn recorded(yaml: &str) -> Vec<StreamEvent> {
        serde_yaml::from_str(yaml).expect("events")
    }

    const EVENTS: &str = r#"
- ts: "2024-01-01T00:00:01Z"
  data:
    event: delta
    data: '{"id":"a1","delta":{"content":"Hel"},"created":1}'
- ts: "2024-01-01T00:00:02Z"
  data:
    event: delta
    data: '{"id":"a1","delta":{"content":"lo"},"created":2}'
- data:
    event: done
    data: '[DONE]'
"#;

    #[test]
    fn events_compare_as_json_in_any_key_order_and_name_the_field() {
        let events = recorded(EVENTS);
        let same = "event: delta\ndata: {\"created\":1,\"delta\":{\"content\":\"Hel\"},\"id\":\"a1\"}\n\n\
                    event: delta\ndata: {\"delta\":{\"content\":\"lo\"},\"id\":\"a1\",\"created\":2}\n\n\
                    event: done\ndata: [DONE]\n\n";
        let (kind, diffs) = compare(&events, same.as_bytes(), &NoiseRules::default());
        assert_eq!(kind, BodyKind::Json);
        assert!(diffs.is_empty(), "{diffs:?}");

        let changed = same.replace("\"lo\"", "\"LO\"").replace("[DONE]", "[END]");
        let (_, diffs) = compare(&events, changed.as_bytes(), &NoiseRules::default());
        assert_eq!(
            diffs,
            vec![
                Difference::Body {
                    path: "events[1].data.delta.content".into(),
                    expected: Some("\"lo\"".into()),
                    actual: Some("\"LO\"".into()),
                },
                Difference::Body {
                    path: "events[2].data".into(),
                    expected: Some("[DONE]".into()),
                    actual: Some("[END]".into()),
                },
            ]
        );

        let short = same.split("event: done").next().unwrap_or_default();
        let (_, diffs) = compare(&events, short.as_bytes(), &NoiseRules::default());
        assert_eq!(diffs.len(), 1, "{diffs:?}");
        assert!(
            matches!(&diffs[0], Difference::Body { path, actual: None, .. } if path == "events[2]")
        );
    }

    #[test]
    fn body_noise_applies_inside_each_events_json() {
        let events = recorded(EVENTS);
        let actual = "event: delta\ndata: {\"id\":\"zz\",\"delta\":{\"content\":\"Hel\"},\"created\":9}\n\n\
                      event: delta\ndata: {\"id\":\"zz\",\"delta\":{\"content\":\"lo\"},\"created\":8}\n\n\
                      event: done\ndata: [DONE]\n\n";
        let (_, diffs) = compare(&events, actual.as_bytes(), &NoiseRules::default());
        assert_eq!(diffs.len(), 4, "{diffs:?}");
        let mut noise = NoiseRules::default();
        for key in ["id", "created"] {
            noise
                .body
                .push((BodySelector::parse(key).expect("selector"), ValueRule::Any));
        }
        let (_, diffs) = compare(&events, actual.as_bytes(), &noise);
        assert!(diffs.is_empty(), "{diffs:?}");
    }
}
