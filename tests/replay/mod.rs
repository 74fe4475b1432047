//! `recplay test` against a real app: record a flow, replay it through the
//! real binary, and check verdicts, diffs, reports and exit codes.

pub(crate) mod app_lifecycle;
mod app_process;
mod keploy_yml;
mod pg_app;
mod record;
mod sse;
mod wire;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::demo_app::{Behaviour, DemoApp};
use record::{record_flow, FLOW};

/// The noise template shipped with recplay, plus the entry this app needs
/// for its random ids (16 hex digits, so anything else still fails).
fn config_with(test_sets: &str) -> String {
    let template = include_str!("../../keploy.yml.template");
    assert!(
        template.contains("test-sets: {}"),
        "template layout changed"
    );
    template.replace("test-sets: {}", test_sets)
}

const RANDOM_ID_NOISE: &str =
    "test-sets:\n      test-set-0:\n        body:\n          request_id: [\"^[0-9a-f]{16}$\"]";

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn recplay(dir: &Path, args: &[&str]) -> Run {
    let out = Command::new(env!("CARGO_BIN_EXE_recplay"))
        .args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG")
        .output()
        .expect("run recplay");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

fn replay(dir: &Path, app: &DemoApp, extra: &[&str]) -> Run {
    let target = app.url();
    let mut args = vec!["test", "--http-target", target.as_str(), "--delay", "5"];
    args.extend_from_slice(extra);
    recplay(dir, &args)
}

/// The newest `reports/test-run-N`.
fn latest_run(dir: &Path) -> PathBuf {
    let reports = dir.join("keploy/reports");
    let mut runs: Vec<(u64, PathBuf)> = std::fs::read_dir(&reports)
        .expect("reports dir")
        .filter_map(|e| {
            let e = e.ok()?;
            let n = e
                .file_name()
                .to_string_lossy()
                .strip_prefix("test-run-")?
                .parse()
                .ok()?;
            Some((n, e.path()))
        })
        .collect();
    runs.sort();
    runs.pop().expect("a test run").1
}

fn set_report(dir: &Path, set: &str) -> serde_yaml::Value {
    let path = latest_run(dir).join(format!("{set}-report.yaml"));
    let text = std::fs::read_to_string(&path).expect("report");
    serde_yaml::from_str(&text).expect("report parses")
}

/// Test name → status, from a set report.
fn statuses(report: &serde_yaml::Value) -> BTreeMap<String, String> {
    report["tests"]
        .as_sequence()
        .expect("tests")
        .iter()
        .map(|t| {
            (
                t["name"].as_str().expect("name").to_string(),
                t["status"].as_str().expect("status").to_string(),
            )
        })
        .collect()
}

fn failed(report: &serde_yaml::Value) -> Vec<String> {
    statuses(report)
        .into_iter()
        .filter(|(_, s)| s == "FAILED")
        .map(|(n, _)| n)
        .collect()
}

/// The test recorded for a route of [`FLOW`].
fn test_for(route: &str) -> String {
    let i = FLOW
        .iter()
        .position(|e| e.path == route)
        .expect("route in the flow");
    format!("test-{}", i + 1)
}

fn setup(app: &DemoApp, sets: usize, test_sets_noise: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    for _ in 0..sets {
        record_flow(app, &dir.path().join("keploy"));
    }
    std::fs::write(dir.path().join("keploy.yml"), config_with(test_sets_noise)).expect("config");
    dir
}

#[test]
fn a_recorded_flow_replays_clean_with_the_template_noise() {
    let app = DemoApp::start();
    let dir = setup(&app, 1, RANDOM_ID_NOISE);
    let run = replay(dir.path(), &app, &[]);
    assert_eq!(
        run.code, 0,
        "stdout:\n{}\nstderr:\n{}",
        run.stdout, run.stderr
    );
    assert!(
        run.stdout
            .contains(&format!("test-set-0: {} passed, 0 failed", FLOW.len())),
        "{}",
        run.stdout
    );
    let report = set_report(dir.path(), "test-set-0");
    assert_eq!(report["status"].as_str(), Some("PASSED"));
    assert_eq!(report["success"].as_u64(), Some(FLOW.len() as u64));
    assert_eq!(report["failure"].as_u64(), Some(0));
    assert_eq!(report["total"].as_u64(), Some(FLOW.len() as u64));
    // The actual response is kept, compressed bodies decoded and marked.
    let gzip = &report["tests"][FLOW.len() - 1];
    assert_eq!(gzip["name"].as_str(), Some(test_for("/gzip").as_str()));
    assert_eq!(gzip["resp"]["content_encoding"].as_str(), Some("gzip"));
    assert!(gzip["resp"]["body"]
        .as_str()
        .expect("body")
        .contains("\"compressed\":true"));
    // A second run gets its own directory.
    assert_eq!(replay(dir.path(), &app, &[]).code, 0);
    assert!(latest_run(dir.path()).ends_with("test-run-1"));
}

#[test]
fn each_behaviour_change_fails_exactly_the_right_tests_and_names_the_path() {
    let app = DemoApp::start();
    let dir = setup(&app, 1, RANDOM_ID_NOISE);
    let cases = [
        (
            Behaviour {
                status_changed: true,
                ..Default::default()
            },
            "/status",
            "status: expected 200, got 503",
            None,
        ),
        (
            Behaviour {
                header_changed: true,
                ..Default::default()
            },
            "/items",
            "header X-Api-Version: expected 1.4, got 2.0",
            None,
        ),
        (
            Behaviour {
                nested_value_changed: true,
                ..Default::default()
            },
            "/users/7",
            "body user.profile.city: expected \"London\", got \"Paris\"",
            Some("user.profile.city"),
        ),
        (
            Behaviour {
                array_element_changed: true,
                ..Default::default()
            },
            "/items",
            "body items[1].name: expected \"pear\", got \"plum\"",
            Some("items[1].name"),
        ),
        (
            Behaviour {
                key_dropped: true,
                ..Default::default()
            },
            "/users/7",
            "body user.profile.name: expected \"Ada\", got (absent)",
            Some("user.profile.name"),
        ),
    ];
    for (behaviour, route, diff_line, body_path) in cases {
        app.set(behaviour);
        let run = replay(dir.path(), &app, &[]);
        assert_eq!(run.code, 1, "{behaviour:?}\n{}\n{}", run.stdout, run.stderr);
        let report = set_report(dir.path(), "test-set-0");
        let test = test_for(route);
        assert_eq!(
            failed(&report),
            std::slice::from_ref(&test),
            "{behaviour:?}"
        );
        assert!(
            run.stdout.contains(diff_line),
            "{behaviour:?}: expected {diff_line:?} in\n{}",
            run.stdout
        );
        assert!(run
            .stdout
            .contains(&format!("test-set-0: {} passed, 1 failed", FLOW.len() - 1)));
        let result = report["tests"]
            .as_sequence()
            .expect("tests")
            .iter()
            .find(|t| t["name"].as_str() == Some(test.as_str()))
            .expect("failed test in report")["result"]
            .clone();
        match body_path {
            Some(path) => {
                let paths: Vec<&str> = result["body_result"]
                    .as_sequence()
                    .expect("body_result")
                    .iter()
                    .filter_map(|b| b["path"].as_str())
                    .collect();
                assert_eq!(paths, [path], "{behaviour:?}");
            }
            None => assert!(result["body_result"]
                .as_sequence()
                .expect("body_result")
                .is_empty()),
        }
    }
    app.set(Behaviour::default());
    assert_eq!(replay(dir.path(), &app, &[]).code, 0);
}

#[test]
fn a_regex_noise_entry_passes_matching_values_and_fails_others() {
    let app = DemoApp::start();
    let dir = setup(&app, 1, RANDOM_ID_NOISE);
    assert_eq!(replay(dir.path(), &app, &[]).code, 0);
    app.set(Behaviour {
        request_id_not_hex: true,
        ..Default::default()
    });
    let run = replay(dir.path(), &app, &[]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    let report = set_report(dir.path(), "test-set-0");
    assert_eq!(failed(&report), [test_for("/items"), test_for("/users/7")]);
    assert!(run.stdout.contains("got \"unknown\""), "{}", run.stdout);
    assert!(run.stdout.contains("body request_id"), "{}", run.stdout);
}

#[test]
fn a_per_test_set_noise_entry_applies_only_to_its_set() {
    let app = DemoApp::start();
    let dir = setup(&app, 2, RANDOM_ID_NOISE);
    let run = replay(dir.path(), &app, &[]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(failed(&set_report(dir.path(), "test-set-0")).is_empty());
    assert_eq!(
        failed(&set_report(dir.path(), "test-set-1")),
        [test_for("/items"), test_for("/users/7")]
    );
    assert!(run
        .stdout
        .contains(&format!("test-set-0: {} passed, 0 failed", FLOW.len())));
    assert!(run
        .stdout
        .contains(&format!("test-set-1: {} passed, 2 failed", FLOW.len() - 2)));
    // --test-sets narrows the run to the set whose noise covers the ids.
    let only = replay(dir.path(), &app, &["--test-sets", "test-set-0"]);
    assert_eq!(only.code, 0, "{}", only.stdout);
    assert!(!only.stdout.contains("test-set-1"));
}

#[test]
fn a_keploy_recorded_test_set_replays_against_a_real_server() {
    let app = DemoApp::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keploy-test-set");
    copy_dir(&fixture, &dir.path().join("keploy"));
    let run = replay(dir.path(), &app, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    let report = set_report(dir.path(), "test-set-0");
    assert_eq!(report["total"].as_u64(), Some(3));
    assert_eq!(report["success"].as_u64(), Some(3));
    // Its per-test noise is what lets the random id pass: break the app
    // elsewhere and only the matching test fails.
    app.set(Behaviour {
        nested_value_changed: true,
        ..Default::default()
    });
    let run = replay(dir.path(), &app, &[]);
    assert_eq!(run.code, 1);
    assert_eq!(failed(&set_report(dir.path(), "test-set-0")), ["test-2"]);
}

/// Keploy's tests of other protocols (gRPC, Http2) beside its Http ones:
/// the set still runs, and the others are named as skipped, not failed.
#[test]
fn keploy_tests_of_other_kinds_are_skipped_and_named() {
    let app = DemoApp::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    copy_dir(
        &fixtures.join("keploy-test-set"),
        &dir.path().join("keploy"),
    );
    copy_dir(
        &fixtures.join("keploy-other-kinds"),
        &dir.path().join("keploy"),
    );
    let run = replay(dir.path(), &app, &[]);
    assert_eq!(run.code, 0, "{}\n{}", run.stdout, run.stderr);
    assert!(
        run.stdout.contains("test-set-0: 3 passed, 0 failed\n"),
        "{}",
        run.stdout
    );
    assert!(
        run.stdout.contains(
            "test-set-0: 2 tests skipped, of kinds recplay does not replay: test-4 (gRPC), test-5 (Http2)"
        ),
        "{}",
        run.stdout
    );
    let report = set_report(dir.path(), "test-set-0");
    assert_eq!(report["status"].as_str(), Some("PASSED"));
    assert_eq!(report["success"].as_u64(), Some(3));
    assert_eq!(report["total"].as_u64(), Some(3));
    assert_eq!(report["ignored"].as_u64(), Some(2));
    assert!(report.get("load_problems").is_none(), "{report:?}");
    let skipped: Vec<(&str, &str)> = report["skipped_tests"]
        .as_sequence()
        .expect("skipped_tests")
        .iter()
        .map(|t| {
            (
                t["name"].as_str().expect("name"),
                t["kind"].as_str().expect("kind"),
            )
        })
        .collect();
    assert_eq!(skipped, [("test-4", "gRPC"), ("test-5", "Http2")]);
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read fixture") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("type").is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), target).expect("copy");
        }
    }
}

#[test]
fn the_junit_file_is_xml_and_counts_what_the_summary_counts() {
    let app = DemoApp::start();
    let dir = setup(&app, 2, RANDOM_ID_NOISE);
    app.set(Behaviour {
        array_element_changed: true,
        ..Default::default()
    });
    let run = replay(dir.path(), &app, &["--junit", "out/junit.xml"]);
    assert_eq!(run.code, 1);
    let xml = std::fs::read_to_string(dir.path().join("out/junit.xml")).expect("junit");
    let doc = roxmltree::Document::parse(&xml).expect("JUnit is well-formed XML");
    let root = doc.root_element();
    assert_eq!(root.tag_name().name(), "testsuites");
    let mut summary_passed = 0;
    let mut summary_failed = 0;
    for line in run.stdout.lines() {
        if let Some((_, counts)) = line.split_once(": ") {
            if let Some((p, f)) = counts.split_once(" passed, ") {
                if let (Ok(p), Some(Ok(f))) = (
                    p.parse::<usize>(),
                    f.strip_suffix(" failed").map(str::parse::<usize>),
                ) {
                    summary_passed += p;
                    summary_failed += f;
                }
            }
        }
    }
    assert_eq!(
        summary_passed + summary_failed,
        2 * FLOW.len(),
        "{}",
        run.stdout
    );
    let cases: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("testcase"))
        .collect();
    let failures: Vec<_> = doc
        .descendants()
        .filter(|n| n.has_tag_name("failure"))
        .collect();
    assert_eq!(cases.len(), summary_passed + summary_failed);
    assert_eq!(failures.len(), summary_failed);
    assert_eq!(
        root.attribute("tests"),
        Some((summary_passed + summary_failed).to_string().as_str())
    );
    assert_eq!(
        root.attribute("failures"),
        Some(summary_failed.to_string().as_str())
    );
    let suites: Vec<_> = root.children().filter(|n| n.is_element()).collect();
    assert_eq!(suites.len(), 2);
    // test-set-1 also fails on its random ids; test-set-0 only on the item.
    assert_eq!(suites[0].attribute("failures"), Some("1"));
    assert!(failures[0]
        .text()
        .expect("failure text")
        .contains("items[1].name"));
}

#[test]
fn detect_noise_proposes_the_fields_that_vary_between_two_replays() {
    let app = DemoApp::start();
    let dir = setup(&app, 1, RANDOM_ID_NOISE);
    let run = replay(dir.path(), &app, &["--detect-noise"]);
    assert_eq!(run.code, 0, "{}", run.stdout);
    let text = std::fs::read_to_string(latest_run(dir.path()).join("noise-proposal.yaml"))
        .expect("proposal written");
    assert!(run.stdout.contains(text.trim()), "{}", run.stdout);
    let doc: serde_yaml::Value = serde_yaml::from_str(&text).expect("proposal is YAML");
    let body = doc["test"]["globalNoise"]["test-sets"]["test-set-0"]["body"]
        .as_mapping()
        .expect("body proposals");
    let keys: Vec<&str> = body.keys().filter_map(|k| k.as_str()).collect();
    for expected in [
        "request_id",
        "created_at",
        "items[].created_at",
        "items[].tags[].created_at",
        "updated_at",
    ] {
        assert!(keys.contains(&expected), "{expected} missing from {keys:?}");
    }
    assert!(
        !keys
            .iter()
            .any(|k| k.contains("name") || k.contains("city")),
        "{keys:?}"
    );
    // The proposal is keploy.yml: pasted in (with Date, which changes only
    // across seconds), the run still passes.
    let mut config = doc.clone();
    config["test"]["globalNoise"]["global"] =
        serde_yaml::from_str("header: {Date: []}").expect("yaml");
    let config = serde_yaml::to_string(&config).expect("yaml");
    std::fs::write(dir.path().join("keploy.yml"), config).expect("write");
    assert_eq!(replay(dir.path(), &app, &[]).code, 0);
}

#[test]
fn a_test_file_that_does_not_load_is_named_and_fails_the_run() {
    let app = DemoApp::start();
    let dir = setup(&app, 1, RANDOM_ID_NOISE);
    let broken = dir.path().join("keploy/test-set-0/tests/test-7.yaml");
    std::fs::write(
        &broken,
        "version: api.keploy.io/v1beta1\nkind: Http\nspec: [unclosed",
    )
    .expect("write");
    let run = replay(dir.path(), &app, &[]);
    assert_eq!(run.code, 1, "{}", run.stdout);
    assert!(run.stdout.contains("test-7.yaml"), "{}", run.stdout);
    assert!(run
        .stdout
        .contains(&format!("test-set-0: {} passed, 1 failed", FLOW.len())));
    let report = set_report(dir.path(), "test-set-0");
    assert_eq!(report["status"].as_str(), Some("FAILED"));
    assert_eq!(report["total"].as_u64(), Some(FLOW.len() as u64 + 1));
    assert!(report["load_problems"][0]["location"]
        .as_str()
        .expect("location")
        .ends_with("test-7.yaml"));
}
