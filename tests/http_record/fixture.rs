//! A test case exactly as Keploy writes it loads, and writes back
//! equivalently.

use std::path::Path;

use recplay_proxy::testset::TestSetDir;

const FIXTURE_SET: &str = "tests/fixtures/keploy/test-set-0";

#[test]
fn a_keploy_written_test_case_loads_and_writes_back_equivalently() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join(FIXTURE_SET);
    let loaded = TestSetDir::open(root.clone()).load().expect("load");
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    assert_eq!(loaded.tests.len(), 1);
    let case = &loaded.tests[0];
    assert_eq!(
        case.recplay_format, 0,
        "Keploy files carry no recplay version"
    );
    assert_eq!(case.spec.req.method, "POST");
    assert_eq!(case.spec.req.header["Content-Type"], "application/json");
    assert_eq!(case.spec.resp.status_code, 201);
    assert!(case.spec.assertions.noise.contains_key("header.Date"));
    assert!(case.curl.starts_with("curl --request POST"));

    let out = tempfile::tempdir().expect("tempdir");
    let set = TestSetDir::create_next(out.path()).expect("set");
    let written = set.write_test(case).expect("write");
    let original: serde_yaml::Value = serde_yaml::from_str(
        &std::fs::read_to_string(root.join("tests/test-1.yaml")).expect("fixture"),
    )
    .expect("fixture YAML");
    let rewritten: serde_yaml::Value =
        serde_yaml::from_str(&std::fs::read_to_string(&written).expect("written")).expect("YAML");
    assert_eq!(rewritten, original, "same document, field for field");
    let reloaded = set.load().expect("reload");
    assert_eq!(&reloaded.tests[0], case);
}
