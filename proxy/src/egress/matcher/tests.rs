use super::*;

fn mock(name: &str, test: Option<&str>, url: &str, body: &str, answer: &str) -> HttpMock {
    let yaml = format!(
        "metadata: {{{}}}\nreq: {{method: POST, url: '{url}', header: {{Content-Type: application/json}}, body: '{body}'}}\nresp: {{status_code: 200, body: '{answer}'}}\n",
        test.map(|t| format!("recplay_test: {t}")).unwrap_or_default()
    );
    HttpMock::from_document(name, serde_yaml::from_str(&yaml).expect("yaml")).expect("mock")
}

fn call(url: &str, body: &str) -> Call {
    Call {
        method: "POST".into(),
        url: url.into(),
        content_type: Some("application/json; charset=utf-8".into()),
        body: body.as_bytes().to_vec(),
    }
}

#[test]
fn the_current_tests_call_is_preferred_and_consumed() {
    let mut m = EgressMatcher::new(
        vec![
            mock(
                "http-1",
                Some("test-1"),
                "http://a/x?b=2&a=1",
                r#"{"q":1,"r":2}"#,
                "one",
            ),
            mock(
                "http-2",
                Some("test-2"),
                "http://a/x?a=1&b=2",
                r#"{"q":1,"r":2}"#,
                "two",
            ),
        ],
        EgressNoise::default(),
    );
    let c = call("http://other/x?a=1&b=2", r#"{"r":2,"q":1}"#);
    let (name, spec) = m.answer(&c, Some("test-2")).expect("hit");
    assert_eq!(
        (name.as_str(), spec.resp.body.body.as_str()),
        ("http-2", "two")
    );
    let (name, _) = m.answer(&c, Some("test-1")).expect("hit");
    assert_eq!(name, "http-1");
    assert_eq!(
        m.usage_for("test-2").served,
        ["http-2 POST http://a/x?a=1&b=2"]
    );
}

#[test]
fn a_miss_names_the_nearest_call_and_noise_keys_are_ignored() {
    let mut m = EgressMatcher::new(
        vec![mock(
            "http-1",
            None,
            "http://a/x",
            r#"{"q":1,"id":7}"#,
            "one",
        )],
        EgressNoise {
            body: vec!["id".into()],
            ..Default::default()
        },
    );
    assert!(m
        .answer(&call("http://a/x", r#"{"q":1,"id":8}"#), None)
        .is_ok());
    let miss = m
        .answer(&call("http://a/x", r#"{"q":2}"#), Some("test-1"))
        .expect_err("miss");
    assert!(
        miss.nearest
            .starts_with("http-1 POST http://a/x (differs in body)"),
        "{miss:?}"
    );
    let none = m.answer(&call("http://a/y", "{}"), None).expect_err("miss");
    assert!(
        none.nearest.starts_with("none recorded for POST /y"),
        "{none:?}"
    );
    assert_eq!(m.usage_for("test-1").misses.len(), 1);
}

#[test]
fn a_recorded_secret_placeholder_fits_the_real_value_sent_at_replay() {
    let recorded = mock(
        "http-1",
        Some("test-1"),
        "http://api/v1/charge?key={{recplay.secret.key_1}}",
        r#"{"token":"{{recplay.secret.token_1}}","amount":5}"#,
        "{}",
    );
    let matcher = EgressMatcher::new(vec![recorded], EgressNoise::default());
    let fits = call(
        "http://api/v1/charge?key=k-live-123",
        r#"{"amount":5,"token":"t-live-456"}"#,
    );
    assert!(matcher.find(&fits, Some("test-1")).is_ok());
    let other = call(
        "http://api/v1/charge?key=k-live-123",
        r#"{"amount":6,"token":"t-live-456"}"#,
    );
    assert!(matcher.find(&other, Some("test-1")).is_err());
}

fn get(url: &str) -> Call {
    Call {
        method: "GET".into(),
        url: url.into(),
        content_type: None,
        body: Vec::new(),
    }
}

fn get_mock(name: &str, url: &str) -> HttpMock {
    let yaml = format!(
        "metadata: {{}}\nreq: {{method: GET, url: '{url}'}}\nresp: {{status_code: 200, body: ok}}\n"
    );
    HttpMock::from_document(name, serde_yaml::from_str(&yaml).expect("yaml")).expect("mock")
}

fn url_noise() -> EgressNoise {
    EgressNoise {
        paths: vec!["/v1/orders/*/items".into()],
        query: vec!["ts".into()],
        ..Default::default()
    }
}

#[test]
fn a_path_pattern_and_a_noisy_query_value_fit_other_values() {
    let recorded = get_mock("http-1", "http://api/v1/orders/run-1/items?ts=100&n=2");
    let mut m = EgressMatcher::new(vec![recorded], url_noise());
    assert!(m
        .find(&get("http://api/v1/orders/run-2/items?n=2&ts=999"), None)
        .is_ok());
    let (name, _) = m
        .answer(&get("http://api/v1/orders/run-3/items?ts=1&n=2"), None)
        .expect("hit");
    assert_eq!(name, "http-1");
}

#[test]
fn url_noise_still_needs_the_parameter_the_other_values_and_the_segment_count() {
    let recorded = get_mock("http-1", "http://api/v1/orders/run-1/items?ts=100&n=2");
    let m = EgressMatcher::new(vec![recorded], url_noise());
    let no_ts = m
        .find(&get("http://api/v1/orders/run-2/items?n=2"), None)
        .expect_err("ts missing");
    assert!(
        no_ts.nearest.starts_with("http-1 ") && no_ts.nearest.ends_with("(differs in query)"),
        "{no_ts:?}"
    );
    assert!(m
        .find(&get("http://api/v1/orders/run-2/items?n=3&ts=1"), None)
        .is_err());
    let deeper = m
        .find(&get("http://api/v1/orders/a/b/items?n=2&ts=1"), None)
        .expect_err("more segments");
    assert!(
        deeper
            .nearest
            .starts_with("none recorded for GET /v1/orders/a/b/items"),
        "{deeper:?}"
    );
    assert!(m
        .find(&get("http://api/v1/orders//items?n=2&ts=1"), None)
        .is_err());
}

#[test]
fn without_url_noise_another_path_segment_is_a_miss_naming_the_call() {
    let recorded = get_mock("http-1", "http://api/v1/orders/run-1/items?ts=100");
    let m = EgressMatcher::new(vec![recorded], EgressNoise::default());
    let miss = m
        .find(&get("http://api/v1/orders/run-2/items?ts=100"), None)
        .expect_err("miss");
    assert_eq!(miss.call, "GET http://api/v1/orders/run-2/items?ts=100");
    let same_path = m
        .find(&get("http://api/v1/orders/run-1/items?ts=101"), None)
        .expect_err("miss");
    assert!(
        same_path.nearest.ends_with("(differs in query)"),
        "{same_path:?}"
    );
}

#[test]
fn a_pattern_segment_matches_one_segment() {
    assert!(path_matches("/v1/orders/*", "/v1/orders/42"));
    assert!(!path_matches("/v1/orders/*", "/v1/orders"));
    assert!(!path_matches("/v1/orders/*", "/v1/orders/42/x"));
    assert!(!path_matches("/v1/orders/*", "/v1/orders/"));
    assert!(!path_matches("/v1/*/x", "/v2/a/x"));
}
