use super::*;

fn redactor() -> Redactor {
    Redactor::default()
}

#[test]
fn authorization_keeps_its_scheme_and_the_same_token_gets_the_same_placeholder() {
    let r = redactor();
    let mut t = Tally::default();
    let a = r.header("Authorization", "Token 5ec0ded0c0ffee", &mut t);
    assert_eq!(a, "Token {{recplay.secret.authorization_1}}");
    let b = r.header("authorization", "Bearer 5ec0ded0c0ffee", &mut t);
    assert_eq!(b, "Bearer {{recplay.secret.authorization_1}}");
    let c = r.header("Authorization", "Bearer other-token-value", &mut t);
    assert_eq!(c, "Bearer {{recplay.secret.authorization_2}}");
    assert_eq!(t.counts["authorization"], 3);
}

#[test]
fn cookies_keep_their_names_and_attributes() {
    let r = redactor();
    let mut t = Tally::default();
    let set = r.header("Set-Cookie", "sessionid=abc123; Path=/; HttpOnly", &mut t);
    assert_eq!(
        set,
        "sessionid={{recplay.secret.cookie_sessionid_1}}; Path=/; HttpOnly"
    );
    let sent = r.header("Cookie", "csrftoken=zz9; sessionid=abc123", &mut t);
    assert_eq!(
        sent,
        "csrftoken={{recplay.secret.cookie_csrftoken_1}}; sessionid={{recplay.secret.cookie_sessionid_1}}"
    );
}

#[test]
fn header_names_with_token_secret_api_key_or_password_are_redacted() {
    let r = redactor();
    let mut t = Tally::default();
    for name in [
        "X-Auth-Token",
        "X-Client-Secret",
        "X-Api-Key",
        "X_API_KEY",
        "Db-Password",
    ] {
        let v = r.header(name, "plain-value", &mut t);
        assert!(has_placeholder(&v), "{name}: {v}");
    }
    assert_eq!(r.header("Accept", "plain-value", &mut t), "plain-value");
}

#[test]
fn json_fields_named_secret_are_redacted_whatever_the_value() {
    let r = redactor();
    let mut t = Tally::default();
    let body = r#"{"username":"ann","password1":"hunter2","nested":{"api_key":42,"list":[{"token":"x"}]}}"#;
    let out = r.body(body, Some("application/json"), &mut t);
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(v["username"], "ann");
    assert_eq!(v["password1"], "{{recplay.secret.password1_1}}");
    assert_eq!(v["nested"]["api_key"], "{{recplay.secret.api_key_1}}");
    assert_eq!(
        v["nested"]["list"][0]["token"],
        "{{recplay.secret.token_1}}"
    );
    assert!(!out.contains("hunter2"));
}

#[test]
fn secret_patterns_are_found_inside_text() {
    let r = redactor();
    let mut t = Tally::default();
    let jwt = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4ifQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";
    let aws = "AKIAQYLPMN5HHHFPZAM2";
    let gh = "ghp_R2xq7YcM1t5nVb8KpL3wZ0aJdHfG6sTuE9iO";
    let stripe = "sk_live_4eC39HqLyjWDarjtT1zdp7dc";
    let text = format!("a {jwt} b {aws} c {gh} d {stripe} e");
    let out = r.body(&text, Some("text/plain"), &mut t);
    for s in [jwt, aws, gh, stripe] {
        assert!(!out.contains(s), "{s} left in {out}");
    }
    assert!(out.contains("{{recplay.secret.jwt_1}}"), "{out}");
    assert!(
        out.contains("{{recplay.secret.aws_access_token_1}}"),
        "{out}"
    );
    assert!(out.contains("{{recplay.secret.github_pat_1}}"), "{out}");
    assert!(
        out.contains("{{recplay.secret.stripe_access_token_1}}"),
        "{out}"
    );
}

#[test]
fn a_pem_private_key_is_redacted() {
    let r = redactor();
    let mut t = Tally::default();
    let pem = format!(
        "-----BEGIN RSA PRIVATE KEY-----\n{}\n-----END RSA PRIVATE KEY-----",
        "MIIEowIBAAKCAQEAx4Kq9r1xJ2bYcX8v0nT3hWm5uPz7aLdQeRf6sGk1oNjHiBtV".repeat(2)
    );
    let body = serde_json::json!({ "key": pem }).to_string();
    let out = r.body(&body, None, &mut t);
    assert!(!out.contains("MIIEowIBAAKCAQEA"), "{out}");
    assert_eq!(t.counts["private-key"], 1);
}

#[test]
fn forms_and_query_strings_redact_by_name_and_by_pattern() {
    let r = redactor();
    let mut t = Tally::default();
    let form = r.body(
        "user=ann&password=s3cr%21t&note=ghp_R2xq7YcM1t5nVb8KpL3wZ0aJdHfG6sTuE9iO",
        Some("application/x-www-form-urlencoded"),
        &mut t,
    );
    assert_eq!(
        form,
        "user=ann&password={{recplay.secret.password_1}}&note={{recplay.secret.github_pat_1}}"
    );
    let url = r.url("http://h/x?access_token=abc123&page=2", &mut t);
    assert_eq!(
        url,
        "http://h/x?access_token={{recplay.secret.access_token_1}}&page=2"
    );
}

#[test]
fn redacting_twice_changes_nothing_more_and_numbers_are_not_reused() {
    let r = redactor();
    let mut t = Tally::default();
    let once = r.header("Authorization", "Bearer abcdefgh", &mut t);
    let mut again = Tally::default();
    assert_eq!(r.header("Authorization", &once, &mut again), once);
    assert_eq!(again.total(), 0);

    let fresh = Redactor::default();
    fresh.reserve_existing(&once);
    let mut t = Tally::default();
    let other = fresh.header("Authorization", "Bearer zzzzzzzz", &mut t);
    assert_eq!(other, "Bearer {{recplay.secret.authorization_2}}");
}

#[test]
fn disabled_rules_are_off_and_user_rules_on() {
    let config = RedactConfig {
        headers: vec!["X-Session".into()],
        body: vec!["ssn".into(), "card.number".into()],
        patterns: vec![("internal".into(), r"ik_[a-z0-9]{8}".into())],
        disable: vec!["cookie".into(), "jwt".into(), "nope".into()],
    };
    assert_eq!(config.unknown_disabled(), ["nope"]);
    let r = Redactor::new(&config).expect("valid config");
    let mut t = Tally::default();
    assert_eq!(r.header("Cookie", "a=b", &mut t), "a=b");
    assert!(has_placeholder(&r.header("X-Session", "v", &mut t)));
    let out = r.body(
        r#"{"ssn":"123","card":{"number":"4111"},"number":"5","k":"ik_abcdef12"}"#,
        None,
        &mut t,
    );
    let v: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert!(has_placeholder(v["ssn"].as_str().unwrap_or_default()));
    assert!(has_placeholder(
        v["card"]["number"].as_str().unwrap_or_default()
    ));
    assert_eq!(v["number"], "5");
    assert_eq!(v["k"], "{{recplay.secret.internal_1}}");
    let bad = RedactConfig {
        patterns: vec![("broken".into(), "(".into())],
        ..RedactConfig::default()
    };
    assert!(Redactor::new(&bad).is_err());
}

#[test]
fn placeholders_fill_and_match_by_shape() {
    let filled = fill("Token {{recplay.secret.authorization_1}}", |n| {
        (n == "authorization_1").then(|| "abc".to_string())
    });
    assert_eq!(filled.as_deref(), Ok("Token abc"));
    assert_eq!(
        fill("{{recplay.secret.x_1}}", |_| None),
        Err("x_1".to_string())
    );
    assert_eq!(env_var("authorization_1"), "RECPLAY_SECRET_AUTHORIZATION_1");
    assert!(shape_matches("Token {{recplay.secret.a_1}}", "Token zz"));
    assert!(!shape_matches("Token {{recplay.secret.a_1}}", "Token "));
    assert!(!shape_matches("Token {{recplay.secret.a_1}}", "Basic zz"));
    assert!(shape_matches("{{recplay.secret.jwt_1}}", "aaa.bbb.ccc"));
    assert!(!shape_matches("{{recplay.secret.jwt_1}}", "not-a-jwt"));
    assert!(shape_matches("plain", "plain"));
}
