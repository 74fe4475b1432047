//! A streamed response body stored as its events.
//!
//! Keploy stores a streamed answer (Server-Sent Events, NDJSON, streamed
//! text) as a list instead of one string, so each event can be compared on
//! its own: `body: [{ts: <arrival time>, data: {event: ..., data: ...}}]`,
//! one item per SSE event (its fields in order, `comment` for a `:` line)
//! or per line (`data: {raw: <line>}`). The flat text is rebuilt from the
//! events for whatever reads a body as text.

use serde::{Deserialize, Serialize};

/// One event (or line) of a streamed body.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StreamEvent {
    /// When it arrived during recording, as written. Kept for the file;
    /// replay compares content, not timing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ts: Option<String>,
    #[serde(default)]
    pub data: EventFields,
}

/// An event's fields in order (`event`, `id`, `data`, `retry`,
/// `comment`, or `raw` for a line of a non-SSE stream), written as a map.
/// A scalar `data:` reads as one `raw` field, as Keploy reads it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct EventFields(pub Vec<(String, String)>);

/// The field holding a whole line of a non-SSE stream.
pub const RAW_FIELD: &str = "raw";

impl EventFields {
    /// The value of `key` (case-insensitive), if the event has it.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v.as_str())
    }
}

impl Serialize for EventFields {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap as _;
        let mut map = serializer.serialize_map(Some(self.0.len()))?;
        for (k, v) in &self.0 {
            map.serialize_entry(k, v)?;
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for EventFields {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = serde_yaml::Value::deserialize(deserializer)?;
        Ok(match value {
            serde_yaml::Value::Mapping(map) => EventFields(
                map.iter()
                    .map(|(k, v)| (scalar_text(k).trim().to_string(), scalar_text(v)))
                    .collect(),
            ),
            serde_yaml::Value::Null => EventFields::default(),
            other => EventFields(vec![(RAW_FIELD.to_string(), scalar_text(&other))]),
        })
    }
}

/// A YAML value as the text it stands for: strings as they are, numbers
/// and booleans as written, anything else as YAML.
fn scalar_text(v: &serde_yaml::Value) -> String {
    match v {
        serde_yaml::Value::String(s) => s.clone(),
        serde_yaml::Value::Number(n) => n.to_string(),
        serde_yaml::Value::Bool(b) => b.to_string(),
        serde_yaml::Value::Null => String::new(),
        other => serde_yaml::to_string(other)
            .map(|s| s.trim_end().to_string())
            .unwrap_or_default(),
    }
}

/// How a streamed body splits into its events.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamFraming {
    /// One record per line: NDJSON, JSON lines, JSON text sequences.
    Lines,
    /// Server-Sent Events, ending at a blank line.
    Sse,
}

/// Media types whose body is a stream of records, one per line.
const LINE_STREAM_TYPES: [&str; 6] = [
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/jsonlines",
    "application/json-seq",
];

/// The framing of a body sent with `Content-Type: content_type`, when the
/// type streams records; `None` for any other body.
pub fn stream_framing(content_type: &str) -> Option<StreamFraming> {
    let media = content_type.split(';').next().unwrap_or("").trim();
    if media.eq_ignore_ascii_case("text/event-stream") {
        return Some(StreamFraming::Sse);
    }
    LINE_STREAM_TYPES
        .iter()
        .any(|t| t.eq_ignore_ascii_case(media))
        .then_some(StreamFraming::Lines)
}

/// Whether every event is a bare line (`raw`), as Keploy stores NDJSON and
/// streamed text, rather than an SSE event.
pub fn are_lines(events: &[StreamEvent]) -> bool {
    events.iter().all(|e| {
        e.data
            .0
            .iter()
            .all(|(k, _)| k.eq_ignore_ascii_case(RAW_FIELD))
    })
}

/// The body's flat text: SSE events as `field:value` lines separated by a
/// blank line, bare lines joined by newlines.
pub fn flat_text(events: &[StreamEvent]) -> String {
    if are_lines(events) {
        let lines: Vec<&str> = events
            .iter()
            .filter_map(|e| e.data.0.first().map(|(_, v)| v.as_str()))
            .collect();
        return lines.join("\n");
    }
    let frames: Vec<String> = events
        .iter()
        .filter_map(|e| {
            let lines: Vec<String> = e
                .data
                .0
                .iter()
                .filter(|(k, _)| !k.is_empty())
                .map(|(k, v)| {
                    if k.eq_ignore_ascii_case("comment") {
                        format!(":{v}")
                    } else {
                        format!("{}:{v}", k.to_lowercase())
                    }
                })
                .collect();
            (!lines.is_empty()).then(|| lines.join("\n"))
        })
        .collect();
    frames.join("\n\n")
}

/// The events of an SSE body as it came over the wire (`text/event-stream`):
/// events end at a blank line; a `:` line is a `comment`; `field: value`
/// loses one space after the colon; consecutive `data` lines join with a
/// newline, as a browser's EventSource joins them.
pub fn parse_sse(text: &str) -> Vec<EventFields> {
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    let mut events = Vec::new();
    let mut fields: Vec<(String, String)> = Vec::new();
    for line in text.split('\n') {
        if line.trim().is_empty() {
            if !fields.is_empty() {
                events.push(EventFields(std::mem::take(&mut fields)));
            }
            continue;
        }
        if let Some(comment) = line.strip_prefix(':') {
            fields.push(("comment".to_string(), comment.to_string()));
            continue;
        }
        let (key, value) = match line.split_once(':') {
            Some((k, v)) => (k, v.strip_prefix(' ').unwrap_or(v)),
            None => (line, ""),
        };
        let key = key.trim().to_lowercase();
        if key.is_empty() {
            continue;
        }
        match fields.last_mut() {
            Some((last, joined)) if key == "data" && last == "data" => {
                joined.push('\n');
                joined.push_str(value);
            }
            _ => fields.push((key, value.to_string())),
        }
    }
    if !fields.is_empty() {
        events.push(EventFields(fields));
    }
    events
}

/// The lines of a non-SSE streamed body, blank ones left out.
pub fn parse_lines(text: &str) -> Vec<EventFields> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| EventFields(vec![(RAW_FIELD.to_string(), l.to_string())]))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn streaming_media_types_are_known_by_their_framing() {
        let lines = Some(StreamFraming::Lines);
        assert_eq!(stream_framing("application/x-ndjson"), lines);
        assert_eq!(stream_framing("application/jsonl; charset=utf-8"), lines);
        assert_eq!(stream_framing("Application/JSON-SEQ"), lines);
        let sse = stream_framing("text/event-stream;charset=UTF-8");
        assert_eq!(sse, Some(StreamFraming::Sse));
        assert_eq!(stream_framing("application/json"), None);
    }

    #[test]
    fn keploys_event_list_reads_in_order_and_flattens_as_sse() {
        let yaml = r#"
- ts: "2024-01-01T00:00:01Z"
  data:
    event: message
    id: "1"
    data: '{"id":1}'
- data:
    comment: keep-alive
- data: just a line
"#;
        let events: Vec<StreamEvent> = serde_yaml::from_str(yaml).expect("parse");
        assert_eq!(events[0].ts.as_deref(), Some("2024-01-01T00:00:01Z"));
        assert_eq!(
            events[0].data.0,
            [
                ("event".to_string(), "message".to_string()),
                ("id".to_string(), "1".to_string()),
                ("data".to_string(), "{\"id\":1}".to_string())
            ]
        );
        assert_eq!(events[2].data.get("RAW"), Some("just a line"));
        assert!(!are_lines(&events));
        assert_eq!(
            flat_text(&events),
            "event:message\nid:1\ndata:{\"id\":1}\n\n:keep-alive\n\nraw:just a line"
        );
        let back: Vec<StreamEvent> =
            serde_yaml::from_str(&serde_yaml::to_string(&events).expect("write")).expect("read");
        assert_eq!(back, events);
    }

    #[test]
    fn sse_text_parses_into_the_fields_keploy_stores() {
        let wire =
            ": hello\r\n\r\nevent: delta\r\ndata: {\"a\":1,\r\ndata: \"b\":2}\r\n\r\ndata:x\n\n\n";
        let events = parse_sse(wire);
        assert_eq!(events.len(), 3, "{events:?}");
        assert_eq!(events[0].get("comment"), Some(" hello"));
        assert_eq!(events[1].get("event"), Some("delta"));
        assert_eq!(events[1].get("data"), Some("{\"a\":1,\n\"b\":2}"));
        assert_eq!(events[2].get("data"), Some("x"));
        assert_eq!(parse_lines("{\"a\":1}\n\n{\"a\":2}\n").len(), 2);
    }
}
