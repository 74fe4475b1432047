//! `recplay sanitize` on a test set written by Keploy: secrets leave the
//! test files and the Http mocks, everything else stays, and a second run
//! finds nothing.

use std::path::Path;

use super::{assert_nowhere, recplay, Planted};

const FIXTURE: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keploy-secrets");

/// The fixture with its markers replaced by planted values.
fn copy_fixture(to: &Path, p: &Planted) {
    for entry in walk(Path::new(FIXTURE)) {
        let rel = entry.strip_prefix(FIXTURE).expect("under the fixture");
        let text = std::fs::read_to_string(&entry)
            .expect("fixture file")
            .replace("__JWT__", &p.jwt)
            .replace("__API_KEY__", &p.api_key)
            .replace("__PASSWORD__", &p.password)
            .replace("__GITHUB__", &p.github)
            .replace("__AWS__", &p.aws)
            .replace("__SESSION__", &p.session)
            .replace("__QUERY_KEY__", &p.query_key);
        let out = to.join(rel);
        std::fs::create_dir_all(out.parent().expect("parent")).expect("mkdir");
        std::fs::write(out, text).expect("write");
    }
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    super::files_under(dir)
        .into_iter()
        .map(|(p, _)| p)
        .collect()
}

#[test]
fn a_keploy_test_set_is_sanitized_in_place_and_stays_loadable() {
    let p = Planted::new();
    let work = tempfile::tempdir().expect("tempdir");
    let keploy = work.path().join("keploy");
    copy_fixture(&keploy, &p);

    let run = recplay(work.path(), &["sanitize", "keploy"], &[]);
    assert_eq!(run.code, 0, "{}", run.output);
    for (what, secret) in p.all() {
        if what != "form password" {
            // (the fixture has no form password marker)
            assert_nowhere(&keploy, what, secret);
        }
    }
    // What changed is reported per file and per rule.
    assert!(
        run.output.contains("test-1.yaml: ")
            && run.output.contains("authorization 1")
            && run.output.contains("mocks.yaml: ")
            && run.output.contains("github-pat 1"),
        "{}",
        run.output
    );
    let test = std::fs::read_to_string(keploy.join("test-set-0/tests/test-1.yaml")).expect("test");
    let case: recplay_proxy::testset::HttpTestCase =
        serde_yaml::from_str(&test).expect("still a Keploy test case");
    assert_eq!(
        case.spec.req.header["Authorization"],
        "Bearer {{recplay.secret.authorization_1}}"
    );
    assert_eq!(case.spec.req.header["Accept"], "application/json");
    assert!(case.curl.contains("{{recplay.secret.authorization_1}}"));
    let mocks = std::fs::read_to_string(keploy.join("test-set-0/mocks.yaml")).expect("mocks");
    assert!(mocks.contains("kind: Mongo"), "other kinds are kept");
    assert!(
        mocks.contains("{{recplay.secret.authorization_1}}"),
        "stable across files: {mocks}"
    );
    // No temporary file is left behind.
    assert!(walk(&keploy).iter().all(|f| !f
        .file_name()
        .is_some_and(|n| n.to_string_lossy().starts_with(".sanitize-"))));

    let again = recplay(work.path(), &["sanitize", "keploy"], &[]);
    assert_eq!(again.code, 0, "{}", again.output);
    assert!(again.output.contains("0 rewritten"), "{}", again.output);
}
