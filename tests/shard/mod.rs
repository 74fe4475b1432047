//! `recplay test --shard I/N` and `recplay report merge`: a synthetic suite
//! (one 2,000-test set that must be split, two small ones, a few tests that
//! fail on purpose) replayed against a real in-process HTTP app, once whole
//! and once as four shards; the merged reports must be the whole run's.

mod coverage;
mod docs;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_yaml::Value;

use crate::support::demo_app::DemoApp;

const BIG: usize = 2000;
const SETS: [(&str, usize); 3] = [("test-set-0", BIG), ("test-set-1", 30), ("test-set-2", 5)];

/// The CI variables that would shard a run on their own.
const CI_VARS: [&str; 3] = ["CI_NODE_INDEX", "CI_NODE_TOTAL", "JOB_COMPLETION_INDEX"];

/// Whether test `n` of a set was recorded with an answer the app no longer
/// gives (so merged failures are checked, not only passes).
fn fails(n: usize) -> bool {
    n % 250 == 7
}

/// A Keploy Http test: POST /echo with `{"n": n}`, answered 201 with the
/// request echoed and a `created_at` the test's own noise ignores.
fn test_yaml(set: &str, n: usize) -> String {
    let echoed = if fails(n) { -1 } else { n as i64 };
    format!(
        r#"version: api.keploy.io/v1beta1
kind: Http
name: test-{n}
spec:
  metadata: {{}}
  req:
    method: POST
    proto_major: 1
    proto_minor: 1
    url: "http://127.0.0.1:1/echo"
    header:
      Content-Type: application/json
    body: "{{\"set\":\"{set}\",\"n\":{n}}}"
    timestamp: "2026-12-02T16:41:48Z"
  resp:
    status_code: 201
    header:
      Content-Type: application/json
    body: "{{\"received\":{{\"set\":\"{set}\",\"n\":{echoed}}},\"created_at\":\"0\"}}"
    status_message: Created
    proto_major: 1
    proto_minor: 1
    timestamp: "2026-12-02T16:41:48Z"
  objects: []
  assertions:
    noise:
      body.created_at: []
  created: 1796229708
"#
    )
}

fn write_suite(keploy: &Path) {
    for (set, count) in SETS {
        let tests = keploy.join(set).join("tests");
        std::fs::create_dir_all(&tests).expect("create tests dir");
        for n in 1..=count {
            std::fs::write(tests.join(format!("test-{n}.yaml")), test_yaml(set, n))
                .expect("write test");
        }
    }
}

fn recplay(dir: &Path, args: &[&str], env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_recplay"));
    cmd.args(args)
        .current_dir(dir)
        .env("NO_COLOR", "1")
        .env_remove("RUST_LOG");
    for var in CI_VARS {
        cmd.env_remove(var);
    }
    cmd.envs(env.iter().copied());
    cmd
}

fn replay_args<'a>(app: &'a str, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["test", "--http-target", app, "--delay", "5"];
    args.extend_from_slice(extra);
    args
}

fn text(out: &Output) -> String {
    format!(
        "exit {:?}\nstdout:\n{}\nstderr:\n{}",
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

/// The run directory a command printed (`reports: DIR`).
fn reports_dir(dir: &Path, out: &Output) -> PathBuf {
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("reports: "))
        .unwrap_or_else(|| panic!("no reports line:\n{}", text(out)));
    dir.join(line.trim())
}

fn read_yaml(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_yaml::from_str(&text).expect("report parses")
}

/// A report with what varies from run to run taken out: timings, the run's
/// name, the `Date` the app stamps, its `created_at`, and the merge's note.
fn without_timings(v: &mut Value) {
    match v {
        Value::Mapping(m) => {
            for key in [
                "created_at",
                "time_taken",
                "started",
                "completed",
                "timestamp",
                "Date",
                "name_of_run",
                "merged_shards",
            ] {
                m.remove(key);
            }
            if let Some(Value::String(body)) = m.get("body") {
                if let Ok(mut json) = serde_json::from_str::<serde_json::Value>(body) {
                    if let Some(o) = json.as_object_mut() {
                        o.remove("created_at");
                    }
                    m.insert("body".into(), Value::String(json.to_string()));
                }
            }
            for (_, child) in m.iter_mut() {
                without_timings(child);
            }
        }
        Value::Sequence(s) => s.iter_mut().for_each(without_timings),
        _ => {}
    }
}

/// `time="…"` and `timestamp="…"` emptied.
fn junit_without_timings(xml: &str) -> String {
    let mut out = xml.to_string();
    for attr in [" time=\"", " timestamp=\""] {
        let mut blanked = String::new();
        let mut rest = out.as_str();
        while let Some(i) = rest.find(attr) {
            let (head, tail) = rest.split_at(i + attr.len());
            blanked.push_str(head);
            let end = tail.find('"').expect("attribute ends");
            rest = &tail[end..];
        }
        blanked.push_str(rest);
        out = blanked;
    }
    out
}

/// The first line where two texts differ, for a readable failure.
fn first_difference(a: &str, b: &str) -> Option<(usize, String, String)> {
    let (mut la, mut lb) = (a.lines(), b.lines());
    for n in 1.. {
        match (la.next(), lb.next()) {
            (None, None) => return None,
            (x, y) if x == y => continue,
            (x, y) => return Some((n, x.unwrap_or("").to_string(), y.unwrap_or("").to_string())),
        }
    }
    None
}

fn test_names(report: &Value) -> Vec<String> {
    report["tests"]
        .as_sequence()
        .expect("tests")
        .iter()
        .map(|t| t["name"].as_str().expect("name").to_string())
        .collect()
}

#[test]
fn four_shards_merged_equal_one_whole_run() {
    let tmp = tempfile::tempdir().expect("tempdir");
    let dir = tmp.path();
    write_suite(&dir.join("keploy"));
    let app = DemoApp::start();
    let url = app.url();

    let whole = recplay(dir, &replay_args(&url, &["--junit", "whole.xml"]), &[])
        .output()
        .expect("run recplay");
    assert_eq!(
        whole.status.code(),
        Some(1),
        "some tests fail on purpose\n{}",
        text(&whole)
    );
    let whole_dir = reports_dir(dir, &whole);

    // Four runners at once, numbered three ways, as CI systems number them.
    let children = vec![
        recplay(dir, &replay_args(&url, &["--shard", "1/4"]), &[]),
        recplay(
            dir,
            &replay_args(&url, &[]),
            &[("CI_NODE_INDEX", "2"), ("CI_NODE_TOTAL", "4")],
        ),
        recplay(
            dir,
            &replay_args(&url, &["--shard-total", "4"]),
            &[("JOB_COMPLETION_INDEX", "2")],
        ),
        recplay(dir, &replay_args(&url, &["--shard", "4/4"]), &[]),
    ]
    .into_iter()
    .map(|mut c| {
        c.stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("spawn recplay")
    })
    .collect::<Vec<_>>();
    let shards: Vec<Output> = children
        .into_iter()
        .map(|c| c.wait_with_output().expect("shard finishes"))
        .collect();
    let shard_dirs: Vec<PathBuf> = shards.iter().map(|o| reports_dir(dir, o)).collect();

    // Each shard says which it was; shares are disjoint and cover all.
    let mut seen = BTreeSet::new();
    let mut big_parts = 0;
    for (i, (out, run)) in shards.iter().zip(&shard_dirs).enumerate() {
        let report = read_yaml(&run.join("run-report.yaml"));
        assert_eq!(
            report["shard"]["index"].as_u64(),
            Some(i as u64 + 1),
            "{}",
            text(out)
        );
        assert_eq!(report["shard"]["total"].as_u64(), Some(4));
        let tests: usize = report["total"].as_u64().expect("total") as usize;
        assert!(
            tests > 0 && tests < BIG,
            "shard {} replayed {tests} tests",
            i + 1
        );
        for (set, _) in SETS {
            let path = run.join(format!("{set}-report.yaml"));
            if !path.exists() {
                continue;
            }
            big_parts += usize::from(set == "test-set-0");
            for name in test_names(&read_yaml(&path)) {
                assert!(
                    seen.insert((set, name.clone())),
                    "{set}/{name} replayed twice"
                );
            }
        }
    }
    assert_eq!(
        seen.len(),
        SETS.iter().map(|(_, n)| n).sum::<usize>(),
        "every test once"
    );
    assert_eq!(
        big_parts, 4,
        "the dominant set is split across all four shards"
    );

    // A missing shard is an error, and nothing is written.
    let runs_before = std::fs::read_dir(dir.join("keploy/reports"))
        .expect("reports")
        .count();
    let partial: Vec<&str> = shard_dirs[..3]
        .iter()
        .map(|p| p.to_str().expect("utf-8"))
        .collect();
    let mut args = vec!["report", "merge"];
    args.extend(&partial);
    let missing = recplay(dir, &args, &[]).output().expect("run merge");
    assert_eq!(missing.status.code(), Some(2), "{}", text(&missing));
    assert!(
        String::from_utf8_lossy(&missing.stderr).contains("shard 4/4 missing"),
        "{}",
        text(&missing)
    );
    // So is a shard given twice.
    let all: Vec<&str> = shard_dirs
        .iter()
        .map(|p| p.to_str().expect("utf-8"))
        .collect();
    let mut args = vec!["report", "merge", all[0]];
    args.extend(&all);
    let twice = recplay(dir, &args, &[]).output().expect("run merge");
    assert_eq!(twice.status.code(), Some(2), "{}", text(&twice));
    assert!(
        String::from_utf8_lossy(&twice.stderr).contains("shard 1/4 appears twice"),
        "{}",
        text(&twice)
    );
    let runs_after = std::fs::read_dir(dir.join("keploy/reports"))
        .expect("reports")
        .count();
    assert_eq!(runs_before, runs_after, "no merged run is left behind");

    // All four: the whole run's reports, apart from timings; exit 1 for
    // the failing tests.
    let reports = dir.join("keploy/reports");
    let merged = recplay(
        dir,
        &[
            "report",
            "merge",
            reports.to_str().expect("utf-8"),
            "--junit",
            "merged.xml",
        ],
        &[],
    )
    .output()
    .expect("run merge");
    assert_eq!(merged.status.code(), Some(1), "{}", text(&merged));
    let merged_dir = reports_dir(dir, &merged);
    for (set, _) in SETS {
        let mut expected = read_yaml(&whole_dir.join(format!("{set}-report.yaml")));
        let mut actual = read_yaml(&merged_dir.join(format!("{set}-report.yaml")));
        without_timings(&mut expected);
        without_timings(&mut actual);
        assert!(
            expected == actual,
            "{set}: the merged report differs from the whole run's"
        );
    }
    let run_report = |p: &Path| {
        let mut v = read_yaml(&p.join("run-report.yaml"));
        if let Value::Mapping(m) = &mut v {
            m.remove("name");
        }
        without_timings(&mut v);
        v
    };
    assert_eq!(run_report(&whole_dir), run_report(&merged_dir));
    let failed = read_yaml(&merged_dir.join("run-report.yaml"))["failure"].as_u64();
    assert_eq!(
        failed,
        Some((1..=BIG).filter(|n| fails(*n)).count() as u64 + 1)
    );

    let junit = |name: &str| {
        junit_without_timings(&std::fs::read_to_string(dir.join(name)).expect("junit"))
    };
    let diff = first_difference(&junit("whole.xml"), &junit("merged.xml"));
    assert!(
        diff.is_none(),
        "JUnit differs (line, whole, merged): {diff:?}"
    );
}

#[test]
fn shard_numbers_out_of_range_are_usage_errors() {
    let tmp = tempfile::tempdir().expect("tempdir");
    for bad in ["0/4", "5/4", "two/4"] {
        let out = recplay(tmp.path(), &["test", "--shard", bad], &[])
            .output()
            .expect("run");
        assert_eq!(out.status.code(), Some(2), "{bad}: {}", text(&out));
        assert!(
            String::from_utf8_lossy(&out.stderr).contains("--shard"),
            "{}",
            text(&out)
        );
    }
    let out = recplay(
        tmp.path(),
        &["test"],
        &[("CI_NODE_INDEX", "5"), ("CI_NODE_TOTAL", "4")],
    )
    .output()
    .expect("run");
    assert_eq!(out.status.code(), Some(2), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("CI_NODE_INDEX"),
        "{}",
        text(&out)
    );
}
