//! Per-test coverage of a real gunicorn app (the agent injected), replayed
//! whole and as two shards: the merged `coverage.json` is the whole run's,
//! and `coverage export` and `coverage gate` work on the merged run.

use std::path::Path;

use serde_json::Value;

use super::{recplay, reports_dir, text};
use crate::replay::app_lifecycle::{gunicorn_app, record_set};

fn coverage(run: &Path) -> Value {
    let bytes = std::fs::read(run.join("coverage.json")).expect("coverage.json");
    serde_json::from_slice(&bytes).expect("coverage.json parses")
}

#[test]
fn two_shards_merge_into_the_whole_runs_per_test_coverage() {
    let (_app_dir, two_workers, upstream) = gunicorn_app();
    // One worker: a second one may connect its agent only after the
    // warm-up, and its start-up lines then land on whichever test it
    // serves first, in any run, sharded or not.
    let gunicorn = two_workers.replace(" -w 2 ", " -w 1 ");
    assert_ne!(gunicorn, two_workers, "the fixture's command changed");
    let dir = tempfile::tempdir().expect("tempdir");
    let keploy = dir.path().join("keploy");
    record_set(
        &keploy,
        &upstream,
        &gunicorn,
        &["/items", "/items/1", "/items/2", "/health"],
    );
    record_set(&keploy, &upstream, &gunicorn, &["/health", "/items/2"]);
    let replay = |extra: &[&str]| {
        let mut args = vec![
            "test",
            "--http-target",
            &upstream,
            "--delay",
            "30",
            "--coverage",
        ];
        args.extend_from_slice(&["-c", &gunicorn]);
        args.extend_from_slice(extra);
        let out = recplay(dir.path(), &args, &[])
            .output()
            .expect("run recplay");
        assert_eq!(out.status.code(), Some(0), "{}", text(&out));
        reports_dir(dir.path(), &out)
    };
    let whole = replay(&[]);
    // One after the other: the shards share the app's port here.
    let first = replay(&["--shard", "1/2"]);
    let second = replay(&["--shard", "2/2"]);

    let dirs = [
        first.to_str().expect("utf-8"),
        second.to_str().expect("utf-8"),
    ];
    let out = recplay(dir.path(), &["report", "merge", dirs[0], dirs[1]], &[])
        .output()
        .expect("run merge");
    assert_eq!(out.status.code(), Some(0), "{}", text(&out));
    let merged_dir = reports_dir(dir.path(), &out);

    let (whole, merged) = (coverage(&whole), coverage(&merged_dir));
    let tests = whole["tests"].as_array().expect("tests");
    assert_eq!(tests.len(), 6);
    assert!(
        tests.iter().all(|t| t["lines_covered"].as_u64() > Some(0)),
        "{whole}"
    );
    // What each test ran, file by file and line by line, and the figures
    // derived; how many of gunicorn's processes answered a snapshot
    // depends on when its workers connected, not on the sharding.
    let measured = |run: &Value| -> Value {
        let mut run = run.clone();
        for t in run["tests"].as_array_mut().into_iter().flatten() {
            if let Some(t) = t.as_object_mut() {
                t.remove("agents_answered");
                t.remove("agents_failed");
            }
        }
        run
    };
    let (whole, merged) = (measured(&whole), measured(&merged));
    for key in ["tests", "files", "totals", "statics"] {
        if whole[key] != merged[key] {
            let a = serde_json::to_string_pretty(&whole[key]).unwrap_or_default();
            let b = serde_json::to_string_pretty(&merged[key]).unwrap_or_default();
            panic!("{key}: the merged run differs from the whole run:\n{a}\n---\n{b}");
        }
    }

    let keploy_arg = keploy.to_str().expect("utf-8");
    let lcov = dir.path().join("merged.lcov");
    let export = recplay(
        dir.path(),
        &[
            "coverage",
            "export",
            "--path",
            keploy_arg,
            "--format",
            "lcov",
            "-o",
            lcov.to_str().expect("utf-8"),
        ],
        &[],
    )
    .output()
    .expect("run export");
    assert!(export.status.success(), "{}", text(&export));
    let lcov = std::fs::read_to_string(&lcov).expect("lcov");
    assert_eq!(
        lcov.lines()
            .filter(|l| l.starts_with("TN:test_set_"))
            .collect::<std::collections::BTreeSet<_>>()
            .len(),
        6,
        "a section per test (and file):\n{lcov}"
    );
    let baseline = dir.path().join("baseline.json");
    let gate = recplay(
        dir.path(),
        &[
            "coverage",
            "gate",
            "--path",
            keploy_arg,
            "--floor",
            "1",
            "--baseline",
            baseline.to_str().expect("utf-8"),
            "--report",
            dir.path().join("gate.md").to_str().expect("utf-8"),
        ],
        &[],
    )
    .output()
    .expect("run gate");
    assert_eq!(gate.status.code(), Some(0), "{}", text(&gate));
}
