//! The agent's sys.monitoring engine in a real interpreter (Python 3.12+):
//! it arms the measured file's code and nothing else, records each line a
//! call ran once per snapshot and re-arms it, shares sys.monitoring with
//! another tool, watches caught exceptions only for an `async for`, and
//! takes a free tool id or says none is left.

use std::path::Path;
use std::process::Command;

use crate::support::python::test_venv;

#[test]
fn the_monitor_arms_only_measured_code_and_rearms_per_snapshot() {
    let venv = test_venv();
    let python = venv.join("bin/python");
    let has_monitoring = Command::new(&python)
        .args(["-c", "import sys; sys.exit(sys.version_info < (3, 12))"])
        .status()
        .expect("run the venv's python");
    if !has_monitoring.success() {
        eprintln!("skipped: the test Python has no sys.monitoring (set RECPLAY_TEST_PYTHON)");
        return;
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let fixture = root.join("tests/fixtures/line_monitor");
    let output = Command::new(&python)
        .arg(fixture.join("check.py"))
        .arg(root.join("src/coverage/agent"))
        .arg(&fixture)
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .output()
        .expect("run check.py");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let checks: serde_json::Value = serde_json::from_slice(&output.stdout).expect("checks JSON");

    // Tool id 4 was taken by someone else; the monitor took the next one.
    assert_eq!(checks["tool"], 3, "{checks}");
    // Nothing global, nothing on the standard library's code.
    assert_eq!(checks["global_events"], 0, "{checks}");
    assert_eq!(checks["stdlib_events"], 0, "{checks}");
    assert_eq!(checks["measured_events"], serde_json::json!([true, true]));
    // The lines marked in the fixture, after the first call and again after
    // two more calls (re-armed by the snapshot, reported once), then nothing.
    let expected = &checks["expected"];
    assert!(
        expected.as_array().is_some_and(|a| a.len() >= 5),
        "{checks}"
    );
    assert_eq!(&checks["first"], expected, "{checks}");
    assert_eq!(&checks["second"], expected, "{checks}");
    assert_eq!(checks["empty"], serde_json::json!({}), "{checks}");
    // restart_events() re-armed the other tool's disabled lines too.
    assert_eq!(checks["other_rearmed"], true, "{checks}");
    // Branch mode watches caught exceptions process-wide only once measured
    // code has an `async for`, and sees both arcs of its line.
    assert_eq!(checks["handled_before_async_for"], true, "{checks}");
    assert_eq!(checks["handled_after_async_for"], true, "{checks}");
    assert_eq!(
        checks["async_for_arcs"], checks["async_for_expected"],
        "{checks}"
    );
    let refused = checks["all_ids_taken"].as_str().unwrap_or_default();
    assert!(
        refused.contains("no free sys.monitoring tool id"),
        "{checks}"
    );
}
