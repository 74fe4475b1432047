//! The gate contract, TC-01..TC-12: verdicts at every border, epsilon, the
//! ratchet, bootstrap, scope, the kill switch, fail-open/fail-closed, inputs
//! that must not escape as errors, the report round trip, and the gate's
//! isolation from anything that could change the world.

use std::fs;
use std::path::Path;

use super::baseline::{ratchet, ratchet_from_report, read_baseline};
use super::report::{parse_coverage_status, read_measured_coverage, render_report, ReportFields};
use super::verdict::{compute_delta, compute_verdict, parse_coverage_percent, Policy};
use super::{run_gate, GateConfig};
use crate::coverage::model::{CoverageMap, FileHits, RunCoverage, TestCoverage};
use crate::coverage::protocol::StaticFile;
use crate::coverage::store;

fn ok(measured: f64, baseline: Option<f64>, floor: f64, policy: Policy, eps: f64) -> bool {
    compute_verdict(measured, baseline, floor, policy, eps).pass
}

#[test]
fn tc01_policy_absolute() {
    assert!(ok(85.0, None, 80.0, Policy::Absolute, 0.0));
    assert!(
        ok(80.0, None, 80.0, Policy::Absolute, 0.0),
        "on the floor passes"
    );
    assert!(!ok(78.0, None, 80.0, Policy::Absolute, 0.5));
    assert!(
        ok(85.0, Some(99.0), 80.0, Policy::Absolute, 0.0),
        "baseline ignored"
    );
}

#[test]
fn tc02_policy_baseline() {
    assert!(ok(90.0, Some(85.0), 0.0, Policy::Baseline, 0.0));
    assert!(
        ok(85.0, Some(85.0), 0.0, Policy::Baseline, 0.0),
        "on the baseline passes"
    );
    assert!(!ok(83.0, Some(85.0), 0.0, Policy::Baseline, 0.5));
    assert!(
        ok(40.0, Some(30.0), 80.0, Policy::Baseline, 0.0),
        "floor ignored"
    );
    let v = compute_verdict(10.0, None, 80.0, Policy::Baseline, 0.0);
    assert!(v.pass);
    assert!(
        v.reason.to_lowercase().contains("bootstrap"),
        "{}",
        v.reason
    );
}

#[test]
fn tc03_policy_both() {
    assert!(ok(90.0, Some(85.0), 80.0, Policy::Both, 0.0));
    assert!(
        !ok(82.0, Some(80.0), 85.0, Policy::Both, 0.0),
        "below the floor"
    );
    assert!(
        !ok(84.0, Some(90.0), 80.0, Policy::Both, 0.0),
        "below the baseline"
    );
    assert!(
        ok(85.0, None, 80.0, Policy::Both, 0.0),
        "bootstrap: floor decides"
    );
    assert!(
        !ok(70.0, None, 80.0, Policy::Both, 0.0),
        "bootstrap: floor decides"
    );
}

#[test]
fn tc04_epsilon_tolerance() {
    assert!(ok(84.7, Some(85.0), 80.0, Policy::Both, 0.5));
    assert!(ok(79.7, None, 80.0, Policy::Absolute, 0.5));
    assert!(!ok(84.4, Some(85.0), 80.0, Policy::Baseline, 0.5));
    assert!(
        !ok(84.9, Some(85.0), 0.0, Policy::Baseline, -5.0),
        "negative epsilon is 0"
    );
}

#[test]
fn tc05_ratchet_moves_up_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("baseline.json");
    assert_eq!(read_baseline(&file).expect("read"), None);
    assert!(ratchet(&file, 80.0, Some("test-run-0")).expect("bootstrap"));
    assert_eq!(read_baseline(&file).expect("read"), Some(80.0));
    assert!(ratchet(&file, 85.0, Some("test-run-1")).expect("raise"));
    assert_eq!(read_baseline(&file).expect("read"), Some(85.0));
    assert!(!ratchet(&file, 85.0, Some("test-run-2")).expect("equal"));
    assert_eq!(read_baseline(&file).expect("read"), Some(85.0));
    assert!(!ratchet(&file, 70.0, Some("test-run-3")).expect("lower"));
    assert_eq!(read_baseline(&file).expect("read"), Some(85.0));
    // Replaced by rename: no temporary file is left behind.
    let names: Vec<_> = fs::read_dir(dir.path()).expect("ls").flatten().collect();
    assert_eq!(names.len(), 1);
}

#[test]
fn tc05_ratchet_files_are_isolated() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a = dir.path().join("service-a.json");
    let b = dir.path().join("service-b.json");
    ratchet(&a, 85.0, None).expect("a");
    ratchet(&b, 42.0, None).expect("b");
    assert_eq!(read_baseline(&a).expect("a"), Some(85.0));
    assert_eq!(read_baseline(&b).expect("b"), Some(42.0));
}

#[test]
fn tc06_bootstrap_from_the_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    let report = dir.path().join("coverage-report.md");
    fs::write(
        &report,
        "---\ncoverage_status: PASS\nmeasured: 77.50\nbaseline: \nfloor: 0.00\npolicy: both\n\
         epsilon: 0.50\ndelta: 0.00\n---\n# body\n",
    )
    .expect("write");
    let baseline = dir.path().join("baseline.json");
    assert!(ratchet_from_report(&baseline, &report, Some("test-run-0")));
    assert_eq!(read_baseline(&baseline).expect("read"), Some(77.5));
}

/// A replay run whose line coverage is `covered` of 10 statements.
fn write_run(project: &Path, run: &str, covered: u32) {
    let statics = [(
        "/app/views.py".to_string(),
        StaticFile {
            lines: (1..=10).collect(),
            ..Default::default()
        },
    )]
    .into_iter()
    .collect();
    let files: CoverageMap = [(
        "/app/views.py".to_string(),
        FileHits {
            lines: (1..=covered).collect(),
            ..Default::default()
        },
    )]
    .into_iter()
    .collect();
    let tests = vec![TestCoverage {
        test: "test-set-0/test-1".into(),
        files,
        ..Default::default()
    }];
    let coverage = RunCoverage::build(
        Some("/app".into()),
        false,
        vec![],
        statics,
        CoverageMap::new(),
        tests,
    );
    store::write_run(&store::reports_dir(project).join(run), &coverage).expect("write run");
}

fn config(project: &Path) -> GateConfig {
    GateConfig {
        path: project.to_path_buf(),
        run: None,
        policy: Policy::Both,
        floor: 80.0,
        epsilon: 0.5,
        baseline_file: project.join("coverage-baseline.json"),
        report_file: project.join("coverage-report.md"),
        fail_closed: false,
        switch: None,
    }
}

#[test]
fn tc07_the_gate_judges_the_selected_run_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_run(dir.path(), "test-run-1", 9);
    write_run(dir.path(), "test-run-2", 5);
    let latest = run_gate(&config(dir.path()));
    assert!(
        !latest.pass,
        "the latest run (50%) decides by default: {}",
        latest.reason
    );
    assert_eq!(latest.measured, Some(50.0));
    let mut chosen = config(dir.path());
    chosen.run = Some("test-run-1".into());
    let outcome = run_gate(&chosen);
    assert!(outcome.pass, "{}", outcome.reason);
    assert_eq!(outcome.measured, Some(90.0));
}

#[test]
fn tc08_kill_switch_makes_the_gate_inert() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_run(dir.path(), "test-run-0", 1);
    let mut off = config(dir.path());
    off.switch = Some("off".into());
    let outcome = run_gate(&off);
    assert!(outcome.pass);
    assert!(outcome.reason.contains("disabled"), "{}", outcome.reason);
    assert_eq!(outcome.measured, None, "nothing is measured");
    assert!(!off.report_file.exists(), "no report is written");
    assert!(!off.baseline_file.exists(), "the baseline is untouched");
    assert!(super::gate_enabled(None));
    assert!(super::gate_enabled(Some("on")));
}

#[test]
fn tc09_tool_error_fails_open_by_default() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cfg = config(dir.path()); // no reports at all
    let outcome = run_gate(&cfg);
    assert!(outcome.pass);
    assert!(
        outcome.reason.to_lowercase().contains("fail-open"),
        "{}",
        outcome.reason
    );
    let report = fs::read_to_string(&cfg.report_file).expect("report");
    assert!(report.contains("coverage_status: PASS"), "{report}");
    assert!(
        !cfg.baseline_file.exists(),
        "an unmeasured PASS never sets a baseline"
    );
}

#[test]
fn tc09_tool_error_fails_closed_when_asked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run_dir = store::reports_dir(dir.path()).join("test-run-0");
    fs::create_dir_all(&run_dir).expect("mkdir");
    fs::write(
        run_dir.join(store::COVERAGE_FILE),
        b"{\"format_version\": 1, \"tot",
    )
    .expect("write");
    let mut cfg = config(dir.path());
    cfg.fail_closed = true;
    let outcome = run_gate(&cfg);
    assert!(!outcome.pass);
    assert!(
        outcome.reason.to_lowercase().contains("fail-closed"),
        "{}",
        outcome.reason
    );
    let report = fs::read_to_string(&cfg.report_file).expect("report");
    assert!(report.contains("coverage_status: FAIL"), "{report}");
}

#[test]
fn tc10_bad_inputs_fail_without_escaping() {
    for measured in [f64::NAN, f64::INFINITY, -1.0, 250.0] {
        let v = compute_verdict(measured, None, 80.0, Policy::Both, 0.5);
        assert!(!v.pass);
        assert!(v.reason.contains("bad inputs"), "{}", v.reason);
    }
    assert!(!compute_verdict(90.0, Some(f64::NAN), 80.0, Policy::Both, 0.5).pass);
}

#[test]
fn tc10_percent_parsing_is_tolerant() {
    use serde_json::json;
    assert_eq!(
        parse_coverage_percent(&json!({"totals": {"percent_covered": 73.2}})),
        Some(73.2)
    );
    assert_eq!(
        parse_coverage_percent(&json!({"totals": {"line_percent": 61.5}})),
        Some(61.5)
    );
    assert_eq!(parse_coverage_percent(&json!({})), None);
    assert_eq!(parse_coverage_percent(&json!("garbage")), None);
    assert_eq!(parse_coverage_percent(&json!({"totals": {}})), None);
    assert_eq!(
        parse_coverage_percent(&json!({"totals": {"percent_covered": "x"}})),
        None
    );
}

#[test]
fn tc10_a_corrupt_baseline_is_a_tool_error_not_a_crash() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_run(dir.path(), "test-run-0", 9);
    let cfg = config(dir.path());
    fs::write(&cfg.baseline_file, b"\xff\xfe not json").expect("write");
    let outcome = run_gate(&cfg);
    assert!(outcome.pass, "fail-open");
    assert!(outcome.reason.contains("corrupt"), "{}", outcome.reason);
    assert!(!ratchet_from_report(
        &cfg.baseline_file,
        &dir.path().join("missing.md"),
        None
    ));
}

/// A passing report on run `test-run-4`: 88.25 against a baseline of 85.
fn passing_report() -> ReportFields {
    ReportFields {
        pass: true,
        measured: Some(88.25),
        baseline: Some(85.0),
        floor: 80.0,
        policy: "both".into(),
        epsilon: 0.5,
        delta: 3.25,
        run: Some("test-run-4".into()),
        reason: "ok".into(),
    }
}

#[test]
fn tc11_report_round_trip() {
    let mut fields = passing_report();
    let content = render_report(&fields);
    let (pass, verdict) = parse_coverage_status(&content);
    assert!(pass);
    assert!(verdict.contains("PASS"));
    assert_eq!(read_measured_coverage(&content), Some(88.25));
    fields.pass = false;
    let content = render_report(&fields);
    let (pass, verdict) = parse_coverage_status(&content);
    assert!(!pass);
    assert!(verdict.contains("FAIL"));
}

#[test]
fn tc11_missing_front_matter_and_blank_baseline() {
    let (pass, reason) = parse_coverage_status("no front matter here");
    assert!(!pass);
    assert!(reason.contains("coverage_status"));
    assert_eq!(read_measured_coverage("no front matter"), None);
    let content = render_report(&ReportFields {
        pass: true,
        measured: Some(50.0),
        baseline: None,
        floor: 0.0,
        policy: "both".into(),
        epsilon: 0.5,
        delta: 0.0,
        run: None,
        reason: "bootstrap".into(),
    });
    assert!(content.contains("baseline: \n"), "{content}");
    assert!(parse_coverage_status(&content).0);
}

#[test]
fn tc11_the_gate_ratchets_from_its_own_report() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_run(dir.path(), "test-run-0", 9);
    let cfg = config(dir.path());
    let first = run_gate(&cfg);
    assert!(
        first.pass && first.baseline_raised,
        "bootstrap: {}",
        first.reason
    );
    let report = fs::read_to_string(&cfg.report_file).expect("report");
    assert_eq!(
        read_measured_coverage(&report),
        read_baseline(&cfg.baseline_file).expect("read")
    );
    // A later, lower run fails against the ratchet and leaves it alone.
    write_run(dir.path(), "test-run-1", 8);
    let second = run_gate(&cfg);
    assert!(!second.pass, "{}", second.reason);
    assert_eq!(read_baseline(&cfg.baseline_file).expect("read"), Some(90.0));
    let report = fs::read_to_string(&cfg.report_file).expect("report");
    assert!(
        report.contains("coverage_status: FAIL") && report.contains("delta: -10.00"),
        "{report}"
    );
}

#[test]
fn tc12_the_gate_changes_nothing_but_its_two_files() {
    // The gate decides; it must not start processes or reach the network.
    let sources = [
        include_str!("mod.rs"),
        include_str!("verdict.rs"),
        include_str!("report.rs"),
        include_str!("baseline.rs"),
    ];
    let forbidden = [
        "std::process",
        "Command::new",
        "TcpStream",
        "UnixStream",
        "tokio::net",
    ];
    for source in sources {
        for word in forbidden {
            assert!(!source.contains(word), "the gate must not use {word}");
        }
    }
}

#[test]
fn tc12_delta_is_signed() {
    assert_eq!(compute_delta(85.0, Some(80.0), Some(70.0)), 5.0);
    assert_eq!(compute_delta(75.0, Some(80.0), Some(70.0)), -5.0);
    assert_eq!(compute_delta(50.0, None, None), 0.0);
}

/// Whatever the baseline file holds, the gate reads a percentage or names
/// the file: never a panic, never a number that is not a percentage.
#[test]
fn a_damaged_baseline_is_a_percentage_or_an_error_naming_the_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("baseline.json");
    ratchet(&file, 85.5, Some("test-run-1")).expect("ratchet");
    let original = fs::read(&file).expect("read");
    let mut rng = recplay_proxy::test_rng::Rng::new(12);
    for _ in 0..1000 {
        fs::write(&file, rng.damage(&original)).expect("write");
        match read_baseline(&file) {
            Ok(Some(value)) => assert!((0.0..=100.0).contains(&value), "{value}"),
            Ok(None) => panic!("an existing baseline read as none"),
            Err(e) => {
                let message = format!("{e:#}");
                assert!(message.contains(&file.display().to_string()), "{message}");
            }
        }
    }
    for value in ["250", "-5", "1e308"] {
        let body = format!(r#"{{"format_version":1,"line_percent":{value}}}"#);
        fs::write(&file, body).expect("write");
        let e = read_baseline(&file).expect_err(value);
        assert!(format!("{e:#}").contains("not a percentage"), "{e:#}");
    }
}

/// The front matter reads back as written whatever the run is called, and
/// a damaged report never reads as a PASS it does not state.
#[test]
fn the_front_matter_reads_back_whatever_the_run_is_called() {
    let alphabet = [
        "test-run-",
        "1",
        " ",
        ": ",
        "#",
        "'",
        "\"",
        "\\",
        "\n",
        "\t",
        "yes",
        "null",
        "~",
        "[",
        "{",
        "&",
        "*",
        "!",
        "|",
        ">",
        "%",
        "@",
        "é",
        "😀",
        "---",
    ];
    let mut rng = recplay_proxy::test_rng::Rng::new(13);
    let named = ["{*yes!", "a: b", "#x", "x\n---\ny", "\u{2028}"].map(String::from);
    for round in 0..2000 {
        let run = match named.get(round) {
            Some(run) => run.clone(),
            None => rng.string_of(&alphabet, 6),
        };
        let fields = ReportFields {
            run: Some(run.clone()),
            reason: rng.string_of(&alphabet, 6),
            ..passing_report()
        };
        let content = render_report(&fields);
        assert!(parse_coverage_status(&content).0, "{run:?}\n{content}");
        assert_eq!(read_measured_coverage(&content), Some(88.25), "{run:?}");
        let damaged = String::from_utf8_lossy(&rng.damage(content.as_bytes())).into_owned();
        if parse_coverage_status(&damaged).0 {
            assert!(damaged.contains("coverage_status: PASS"), "{damaged}");
        }
        if let Some(m) = read_measured_coverage(&damaged) {
            assert!((0.0..=100.0).contains(&m), "{m}\n{damaged}");
        }
    }
}
