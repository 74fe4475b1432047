//! Whatever the fast writer emits, the loader reads back identically.
//!
//! Thousands of seeded cases put awkward strings (YAML keywords, number and
//! date look-alikes, indicators, line breaks, control characters, long
//! lines, characters outside the BMP) in every string a mock or a test case
//! can hold, and random bytes where the format stores bytes; each is
//! written with the project's writer and read with the project's loader.

use std::sync::Arc;

use base64::Engine as _;

use crate::testset::http_case::BodyEncoding;
use crate::testset::pg_mock::*;
use crate::testset::samples::{mock, test_case};
use crate::testset::store::{parse_mocks, parse_test, render_mocks, render_test};
use crate::testset::test_rng::Rng;
use crate::testset::TestSetDir;

const CASES: u64 = 3000;

/// The bytes a stored body stands for: base64 is the rule for anything
/// that is not UTF-8, text for the rest.
fn stored_bytes(body: &crate::testset::http_case::StoredBody) -> Vec<u8> {
    match body.body_encoding {
        Some(BodyEncoding::Base64) => base64::engine::general_purpose::STANDARD
            .decode(&body.body)
            .expect("the writer's base64 decodes"),
        None => body.body.as_bytes().to_vec(),
    }
}

fn assert_value_rule(v: &PgValue) {
    if let PgValue::Bytes { base64 } = v {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(base64)
            .expect("base64");
        assert!(std::str::from_utf8(&bytes).is_err(), "UTF-8 kept as base64");
    }
}

#[test]
fn every_generated_mock_reads_back_identically() {
    let mut rng = Rng::new(0x5eed_0001);
    for case in 0..CASES {
        let mock = mock(&mut rng, case);
        let text = render_mocks(std::slice::from_ref(&mock));
        let (back, problems) = parse_mocks(&text, std::path::Path::new("mocks.yaml"));
        assert!(problems.is_empty(), "case {case}: {problems:?}\n{text}");
        assert_eq!(back, vec![mock.clone()], "case {case}\n{text}");
        for msg in &back[0].spec.requests {
            if let FrontendMsg::Bind { params, .. } = msg {
                params.iter().for_each(assert_value_rule);
            }
        }
    }
}

#[test]
fn every_generated_test_case_reads_back_identically() {
    let mut rng = Rng::new(0x5eed_0002);
    for case in 0..CASES {
        let (test, req_bytes, resp_bytes) = test_case(&mut rng, case);
        let text = render_test(&test).expect("emit");
        let back =
            parse_test(text.as_bytes()).unwrap_or_else(|e| panic!("case {case}: {e}\n{text}"));
        assert_eq!(back, test, "case {case}\n{text}");
        assert_eq!(stored_bytes(&back.spec.req.body), req_bytes, "case {case}");
        assert_eq!(
            stored_bytes(&back.spec.resp.body),
            resp_bytes,
            "case {case}"
        );
        for b in [&back.spec.req.body, &back.spec.resp.body] {
            let utf8 = std::str::from_utf8(&stored_bytes(b)).is_ok();
            assert_eq!(
                b.body_encoding.is_none(),
                utf8,
                "case {case}: base64 iff not UTF-8"
            );
        }
    }
}

/// The same through the files: the recorder's writers, the replay's loader.
#[test]
fn a_generated_test_set_loads_back_whole() {
    let mut rng = Rng::new(0x5eed_0003);
    let dir = tempfile::tempdir().expect("tempdir");
    let set = TestSetDir::create_next(dir.path()).expect("create");
    let mut tests = Vec::new();
    let mut mocks = Vec::new();
    for n in 1..=200 {
        let (test, _, _) = test_case(&mut rng, n);
        set.write_test(&test).expect("write test");
        tests.push(test);
        let batch: Vec<PgMock> = (0..rng.below(3)).map(|_| mock(&mut rng, n)).collect();
        set.append_mocks(&batch).expect("append");
        mocks.extend(batch);
    }
    set.sync().expect("sync");
    let loaded = set.load().expect("load");
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    assert_eq!(loaded.tests, tests);
    assert_eq!(loaded.mocks, mocks);
}

/// Minimal inputs that once failed to read back, kept as plain cases.
#[test]
fn known_awkward_strings_read_back() {
    let mut rng = Rng::new(1);
    let base = mock(&mut rng, 1);
    for s in ["\n  x\ny", "\n   \nx", &"k".repeat(1025), "a\n\u{85}b"] {
        let mut m = base.clone();
        m.spec.requests = vec![FrontendMsg::Query { query: s.into() }];
        m.spec.startup = Arc::new([(s.to_string(), s.to_string())].into_iter().collect());
        let text = render_mocks(std::slice::from_ref(&m));
        let (back, problems) = parse_mocks(&text, std::path::Path::new("mocks.yaml"));
        assert!(problems.is_empty(), "{s:?}: {problems:?}\n{text}");
        assert_eq!(back, vec![m], "{s:?}\n{text}");
    }
}
