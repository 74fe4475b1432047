use serde_json::json;

use super::*;

fn answer(headers: &[(&str, &str)], body: Value) -> ActualResponse {
    let body = serde_json::to_vec(&body).expect("json");
    ActualResponse {
        status: 200,
        status_message: "OK".into(),
        headers: headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect(),
        wire_body: body.clone(),
        body,
    }
}

fn now_secs() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_secs()
}

#[test]
fn a_changed_leaf_is_proposed_by_its_path_not_its_container() {
    let mut p = SetProposal::default();
    p.learn(
        "test-1",
        &answer(
            &[],
            json!({"items": [{"id": 1, "n": 5}, {"id": 2, "n": 6}]}),
        ),
        &answer(
            &[],
            json!({"items": [{"id": 1, "n": 7}, {"id": 2, "n": 6}]}),
        ),
    );
    assert_eq!(
        p.body.into_iter().collect::<Vec<_>>(),
        vec![("items[].n".to_string(), Reason::Changed)]
    );
}

#[test]
fn a_container_is_proposed_only_when_its_shape_changed() {
    let mut p = SetProposal::default();
    p.learn(
        "test-1",
        &answer(&[], json!({"items": [1, 2], "meta": {"a": 1}})),
        &answer(&[], json!({"items": [1, 2, 3], "meta": "none"})),
    );
    assert_eq!(p.body.get("items[]"), Some(&Reason::ShapeChanged));
    assert_eq!(p.body.get("meta"), Some(&Reason::ShapeChanged));
}

#[test]
fn volatile_values_are_proposed_even_when_both_passes_agree() {
    let now = now_secs();
    let same = json!({
        "at": now,
        "token": "0f8fad5b-d9cb-469f-a165-70867728950e",
        "name": "widget",
        "rows": [{"created": "2026-12-04T10:11:12Z"}],
    });
    let date = [
        ("Date", "Fri, 04 Dec 2026 10:11:12 GMT"),
        ("Server", "demo"),
    ];
    let mut p = SetProposal::default();
    p.learn("test-1", &answer(&date, same.clone()), &answer(&date, same));
    assert_eq!(
        p.header.get("Date"),
        Some(&Reason::LooksVolatile("an HTTP date"))
    );
    assert!(!p.header.contains_key("Server"), "{:?}", p.header);
    assert_eq!(
        p.body.get("at"),
        Some(&Reason::LooksVolatile("epoch seconds"))
    );
    assert_eq!(p.body.get("token"), Some(&Reason::LooksVolatile("a UUID")));
    assert_eq!(
        p.body.get("rows[].created"),
        Some(&Reason::LooksVolatile("an ISO 8601 time"))
    );
    assert!(!p.body.contains_key("name"), "{:?}", p.body);
}

#[test]
fn a_change_seen_in_one_test_outranks_a_look_in_another() {
    let now = now_secs();
    let mut p = SetProposal::default();
    p.learn(
        "test-1",
        &answer(&[], json!({"at": now})),
        &answer(&[], json!({"at": now})),
    );
    p.learn(
        "test-2",
        &answer(&[], json!({"at": now})),
        &answer(&[], json!({"at": now + 1})),
    );
    assert_eq!(p.body.get("at"), Some(&Reason::Changed));
}

#[test]
fn the_rendered_proposal_is_keploy_yml_with_reasons_as_comments() {
    let now = now_secs();
    let mut p = SetProposal::default();
    p.learn(
        "test-1",
        &answer(&[], json!({"at": now, "n": 1, "odd key": 1, "list": [1]})),
        &answer(&[], json!({"at": now, "n": 2, "odd key": 2, "list": []})),
    );
    let text = render(&BTreeMap::from([("test-set-0".to_string(), p)])).expect("a proposal");
    assert!(
        text.contains("          at: []  # looks like epoch seconds; the same in both replays\n"),
        "{text}"
    );
    assert!(text.contains("          n: []\n"), "{text}");
    assert!(text.contains("shape changed"), "{text}");
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("valid YAML");
    let body = &doc["test"]["globalNoise"]["test-sets"]["test-set-0"]["body"];
    for key in ["at", "n", "odd key", "list[]"] {
        assert_eq!(
            body[key],
            serde_yaml::Value::Sequence(Vec::new()),
            "{key} in {text}"
        );
    }
}
