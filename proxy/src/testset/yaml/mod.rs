//! A fast block-style YAML writer for the test-set model.
//!
//! serde_yaml's emitter costs tens of microseconds per document, and the
//! recorders write one document per exchange: at pgbench rates that cost
//! alone throttled recording. Writing block YAML straight from serde (see
//! `emit`) is an order of magnitude cheaper and yields the same readable
//! layout. Strings that could be misread (numbers, booleans, nulls,
//! anything with YAML punctuation or non-printable characters) are
//! double-quoted with escapes (see `scalar`), so what serde_yaml reads back
//! is exactly what was written; the unit tests hold it to that.

use serde::Serialize;

mod emit;
mod mock_doc;
#[cfg(test)]
mod roundtrip_tests;
mod scalar;

pub use emit::YamlError;
pub(crate) use mock_doc::append_mock;

/// `value` as a block-style YAML document (no leading `---`).
pub fn to_yaml<T: Serialize + ?Sized>(value: &T) -> Result<String, YamlError> {
    let mut out = String::with_capacity(1024);
    append_yaml(value, &mut out)?;
    Ok(out)
}

/// Appends `value` as a block-style YAML document to `out`, so a batch of
/// documents is built in one buffer. On error `out` is left as it was.
pub fn append_yaml<T: Serialize + ?Sized>(value: &T, out: &mut String) -> Result<(), YamlError> {
    let start = out.len();
    let written = value.serialize(emit::Emitter {
        out: &mut *out,
        slot: emit::Slot::Top,
    });
    if written.is_err() {
        out.truncate(start);
    }
    written
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::testset::pg_mock::*;

    fn sample() -> PgMock {
        let mut fields = BTreeMap::new();
        for (k, v) in [
            ('S', "ERROR"),
            ('C', "22012"),
            ('M', "division: by #zero"),
            ('n', "y"),
        ] {
            fields.insert(k, v.to_string());
        }
        PgMock::new(
            "mock-1",
            MockSpec {
                connection: 1,
                position: 3,
                lifetime: Lifetime::Test("test-1".into()),
                startup: std::sync::Arc::new(
                    [("user".to_string(), "postgres".to_string())]
                        .into_iter()
                        .collect(),
                ),
                request_timestamp: chrono::Utc::now(),
                response_timestamp: chrono::Utc::now(),
                requests: vec![
                    FrontendMsg::Parse {
                        name: String::new(),
                        query: "SELECT $1::int\n  -- 'x': \"y\"".into(),
                        param_types: vec![23],
                    },
                    FrontendMsg::Bind {
                        portal: String::new(),
                        statement: "s0".into(),
                        statement_query: Some("SELECT 1".into()),
                        param_formats: vec![Format::Binary, Format::Text],
                        params: vec![
                            PgValue::Bytes {
                                base64: "AAAAAQ==".into(),
                            },
                            PgValue::Text("true".into()),
                            PgValue::Text("12".into()),
                            PgValue::Text("".into()),
                            PgValue::Text(" lead".into()),
                            PgValue::Text("- dash".into()),
                            PgValue::Text("tab\there \u{7f}\u{85} é ✓".into()),
                            PgValue::Null,
                            PgValue::Text("null".into()),
                            PgValue::Text("~".into()),
                        ],
                        result_formats: vec![],
                    },
                    FrontendMsg::Sync,
                ],
                responses: vec![
                    BackendMsg::ErrorResponse { fields },
                    BackendMsg::DataRow { values: vec![] },
                    BackendMsg::ReadyForQuery { status: 'E' },
                ],
            },
        )
    }

    #[test]
    fn serde_yaml_reads_back_exactly_what_was_written() {
        let mock = sample();
        let text = to_yaml(&mock).expect("emit");
        let back: PgMock = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back, mock, "\n{text}");
        assert!(text.contains("\nkind: recplay-Postgres\n"), "{text}");
        assert!(
            text.contains("    type: Sync\n") || text.contains("  - type: Sync\n"),
            "{text}"
        );
    }

    /// Text a type writes through `Display`, as chrono does timestamps.
    struct Shown(&'static str);

    impl Serialize for Shown {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            s.collect_str(self.0)
        }
    }

    /// Displayed text is written in place when it can be; whatever it
    /// holds, the document is the one its text as a string would make.
    #[test]
    fn displayed_values_are_written_as_their_text() {
        for text in [
            "2026-12-03T07:39:29.063433191Z",
            "plain words",
            "null",
            "",
            "  lead",
            "say \"hi\" \\ back",
            "two\nlines\n",
            "tab\there é ✓",
        ] {
            let shown = to_yaml(&BTreeMap::from([("k", Shown(text))])).expect("emit");
            let direct = to_yaml(&BTreeMap::from([("k", text)])).expect("emit");
            assert_eq!(shown, direct, "{text:?}");
            let shown = to_yaml(&[Shown(text), Shown(text)]).expect("emit");
            let direct = to_yaml(&[text, text]).expect("emit");
            assert_eq!(shown, direct, "{text:?}");
            assert_eq!(
                to_yaml(&Shown(text)).expect("emit"),
                to_yaml(text).expect("emit")
            );
        }
    }

    /// Past 1024 characters a YAML reader stops looking for an implicit
    /// key's colon; such keys are written as explicit `? key` entries.
    #[test]
    fn keys_longer_than_yaml_allows_implicitly_read_back() {
        let mut mock = sample();
        let long = "k".repeat(1025);
        mock.spec.startup = std::sync::Arc::new(
            [(long.clone(), "v".to_string()), ("a".into(), "b".into())]
                .into_iter()
                .collect(),
        );
        let text = to_yaml(&mock).expect("emit");
        assert!(text.contains(&format!("    ? {long}\n    : v\n")), "{text}");
        let back: PgMock = serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back, mock);
    }

    #[test]
    fn lifetimes_round_trip() {
        for (lifetime, spelled) in [
            (Lifetime::Session, "  lifetime: session\n"),
            (Lifetime::Unattributed, "  lifetime: unattributed\n"),
            (
                Lifetime::Test("test-7".into()),
                "  lifetime:\n    test: test-7\n",
            ),
        ] {
            let mut mock = sample();
            mock.spec.lifetime = lifetime.clone();
            let text = to_yaml(&mock).expect("emit");
            let back: PgMock =
                serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
            assert_eq!(back.spec.lifetime, lifetime);
            assert!(text.contains(spelled), "{text}");
            // Plain YAML, as serde_yaml itself writes it: no tag.
            let theirs = serde_yaml::to_string(&mock).expect("serde_yaml");
            assert!(theirs.contains(spelled), "{theirs}");
        }
    }

    #[test]
    fn http_test_cases_read_back_exactly() {
        let recorded = r#"
version: api.keploy.io/v1beta1
kind: Http
name: test-3
spec:
  metadata: {}
  req:
    method: POST
    proto_major: 1
    proto_minor: 1
    url: http://127.0.0.1:8000/v1/projects?limit=10
    url_params:
      limit: "10"
    header:
      Host: 127.0.0.1:8000
      User-Agent: client/1
      Content-Type: application/json
      X-Empty: ""
      Accept: "*/*"
    body: '{"name": "p", "n": 2}'
    timestamp: 2026-11-22T07:00:00.123456789Z
  resp:
    status_code: 201
    header:
      Date: Sun, 22 Nov 2026 07:00:00 GMT
    body: "<html>\n  <p>two\tlines: \"quoted\"</p>\n</html>\n"
    status_message: Created
    proto_major: 1
    proto_minor: 1
    timestamp: 2026-11-22T07:00:00.2Z
  objects: []
  assertions:
    noise:
      header.Date: []
      body.created_at: ["^\\d{4}-"]
  created: 1795330000
curl: "curl --request POST \\\n  --url http://127.0.0.1:8000/v1/projects"
"#;
        let case: crate::testset::HttpTestCase = serde_yaml::from_str(recorded).expect("parse");
        let text = to_yaml(&case).expect("emit");
        let back: crate::testset::HttpTestCase =
            serde_yaml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(back, case, "\n{text}");
        // Maps compare regardless of order; the order is held on its own.
        let order: Vec<&str> = back.spec.req.header.keys().map(String::as_str).collect();
        assert_eq!(
            order,
            ["Host", "User-Agent", "Content-Type", "X-Empty", "Accept"]
        );
        assert!(text.contains("    body: |\n      <html>\n"), "{text}");
        assert!(text.contains("      header.Date: []\n"), "{text}");
    }
}
