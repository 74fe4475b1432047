//! A streamed body compared event by event: one recorded as a list of
//! events, or one recorded as text whose media type streams records
//! (NDJSON, JSON lines, JSON text sequences, Server-Sent Events).
//!
//! The actual body is split the way the recording was (SSE events, or
//! lines for NDJSON and streamed text) and the n-th event is held to the
//! n-th recorded one, field by field (a line is the one field `raw`). A
//! field whose value parses as JSON on both sides (an event's `data`, a
//! line of NDJSON) is compared as JSON, so object key order never matters,
//! and differences are named `events[2].data.delta.content` or
//! `events[2].raw.id`. Body noise applies inside each record, by a path
//! from the record's root (`id`, `delta.content`) or by the path a
//! difference is named with (`events[].raw.id`, `events[2].data.id`). Any
//! other field must be equal unless a body noise key of its name excuses
//! it (`body.id` ignores SSE event ids as well). Arrival times are not
//! compared.

use recplay_proxy::testset::stream_body::{
    are_lines, parse_lines, parse_sse, EventFields, StreamEvent, StreamFraming,
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
    let expected: Vec<&EventFields> = recorded
        .iter()
        .map(|e| &e.data)
        .filter(|d| !d.0.is_empty())
        .collect();
    let framing = if are_lines(recorded) {
        StreamFraming::Lines
    } else {
        StreamFraming::Sse
    };
    compare_events(&expected, framing, actual, noise)
}

/// Compares a streamed body recorded as text, split by its `framing`, with
/// the actual body's events.
pub fn compare_text(
    recorded: &str,
    framing: StreamFraming,
    actual: &[u8],
    noise: &NoiseRules,
) -> (BodyKind, Vec<Difference>) {
    let events = split(recorded, framing);
    let expected: Vec<&EventFields> = events.iter().collect();
    compare_events(&expected, framing, actual, noise)
}

fn split(text: &str, framing: StreamFraming) -> Vec<EventFields> {
    match framing {
        StreamFraming::Lines => parse_lines(text),
        StreamFraming::Sse => parse_sse(text),
    }
}

fn compare_events(
    expected: &[&EventFields],
    framing: StreamFraming,
    actual: &[u8],
    noise: &NoiseRules,
) -> (BodyKind, Vec<Difference>) {
    let Ok(text) = std::str::from_utf8(actual) else {
        return (
            BodyKind::Binary,
            vec![Difference::Body {
                path: "(body)".to_string(),
                expected: Some(format!("{} streamed events", expected.len())),
                actual: Some(format!("{} bytes that are not text", actual.len())),
            }],
        );
    };
    let got = split(text, framing);
    let mut kind = BodyKind::Text;
    let mut diffs = Vec::new();
    for i in 0..expected.len().max(got.len()) {
        let path = format!("events[{i}]");
        match (expected.get(i), got.get(i)) {
            (Some(e), Some(a)) => compare_event(i, e, a, noise, &mut kind, &mut diffs),
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
    index: usize,
    expected: &EventFields,
    actual: &EventFields,
    noise: &NoiseRules,
    kind: &mut BodyKind,
    diffs: &mut Vec<Difference>,
) {
    for (key, e) in &expected.0 {
        compare_field(index, key, Some(e), actual.get(key), noise, kind, diffs);
    }
    for (key, a) in &actual.0 {
        if expected.get(key).is_none() {
            compare_field(index, key, None, Some(a), noise, kind, diffs);
        }
    }
}

/// A field's value as JSON, if it is: a JSON text sequence
/// (`application/json-seq`) opens each record with RS.
fn as_json(value: &str) -> Option<Value> {
    serde_json::from_str(value.trim_start_matches('\u{1e}')).ok()
}

fn compare_field(
    index: usize,
    key: &str,
    expected: Option<&str>,
    actual: Option<&str>,
    noise: &NoiseRules,
    kind: &mut BodyKind,
    diffs: &mut Vec<Difference>,
) {
    let at = [
        PathStep::Key("events".to_string()),
        PathStep::Index(index),
        PathStep::Key(key.to_string()),
    ];
    if let (Some(Some(e)), Some(Some(a))) = (expected.map(as_json), actual.map(as_json)) {
        *kind = BodyKind::Json;
        for d in json::diff_within(&at, &e, &a, noise) {
            diffs.push(Difference::Body {
                path: json::display_path(&d.path),
                expected: d.expected.map(|v| v.to_string()),
                actual: d.actual.map(|v| v.to_string()),
            });
        }
        return;
    }
    if expected == actual {
        return;
    }
    let excused = |path: &[PathStep]| noise.body_rules(path).any(|rule| rule.ignores(actual));
    if excused(&at[2..]) || excused(&at) {
        return;
    }
    diffs.push(Difference::Body {
        path: json::display_path(&at),
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

    const NDJSON: &str = "{\"id\":1,\"name\":\"a\",\"created_at\":\"t1\"}\n\
                          {\"id\":2,\"name\":\"b\",\"created_at\":\"t2\"}\n";

    #[test]
    fn ndjson_text_compares_record_by_record_as_json() {
        let shuffled = "{\"name\":\"a\",\"created_at\":\"t1\",\"id\":1}\n\n\
                        {\"created_at\":\"t2\",\"id\":2,\"name\":\"b\"}\n";
        let none = NoiseRules::default();
        let (kind, diffs) = compare_text(NDJSON, StreamFraming::Lines, shuffled.as_bytes(), &none);
        assert_eq!(kind, BodyKind::Json);
        assert!(diffs.is_empty(), "{diffs:?}");

        let changed = shuffled.replace("\"b\"", "\"B\"").replace("t1", "t9");
        let (_, diffs) = compare_text(NDJSON, StreamFraming::Lines, changed.as_bytes(), &none);
        let paths: Vec<_> = diffs
            .iter()
            .map(|d| match d {
                Difference::Body { path, .. } => path.as_str(),
                _ => "",
            })
            .collect();
        assert_eq!(paths, ["events[0].raw.created_at", "events[1].raw.name"]);
    }

    #[test]
    fn record_noise_works_from_the_record_and_from_the_body() {
        let actual = NDJSON.replace("t1", "t8").replace("t2", "t9");
        for (key, left) in [
            ("created_at", 0),
            ("events[].raw.created_at", 0),
            ("events[1].raw.created_at", 1),
        ] {
            let mut noise = NoiseRules::default();
            let selector = BodySelector::parse(key).expect("selector");
            noise.body.push((selector, ValueRule::Any));
            let (_, diffs) = compare_text(NDJSON, StreamFraming::Lines, actual.as_bytes(), &noise);
            assert_eq!(diffs.len(), left, "{key}: {diffs:?}");
        }
    }

    #[test]
    fn json_text_sequences_drop_the_record_separator() {
        let recorded = "\u{1e}{\"a\":1,\"b\":2}\n";
        let actual = "\u{1e}{\"b\":2,\"a\":1}\n";
        let (kind, diffs) = compare_text(
            recorded,
            StreamFraming::Lines,
            actual.as_bytes(),
            &NoiseRules::default(),
        );
        assert_eq!(kind, BodyKind::Json);
        assert!(diffs.is_empty(), "{diffs:?}");
    }
}
