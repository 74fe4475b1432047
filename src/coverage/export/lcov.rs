//! LCOV tracefile: one `TN:` section per test, each listing the files the
//! test ran with every statement (hit 1 or 0) and branch, plus a `startup`
//! section for lines run outside tests that lists every described file (so
//! files no test touched still show up, at 0%). genhtml merges the sections.
//!
//! A test that ran none of the measured source (a framework's generic view,
//! a cached answer) still gets its section: the first file, nothing hit.
//! Readers count tests by their `TN:` names, and a test must not vanish
//! from them for covering nothing.

use std::fmt::Write;

use super::super::model::{FileDetail, RunCoverage};

pub fn render(run: &RunCoverage) -> String {
    let paths = run.paths();
    let details: Vec<(String, FileDetail)> = paths
        .into_iter()
        .map(|p| {
            let d = run.file_detail(&p);
            (p, d)
        })
        .collect();
    let mut out = String::new();
    for (path, detail) in &details {
        section(
            &mut out,
            "startup",
            path,
            detail,
            &detail.startup_lines,
            &detail.startup_arcs,
        );
    }
    for (index, test) in run.tests.iter().enumerate() {
        let name = test_name(&test.test, index);
        let mut listed = false;
        for (path, detail) in &details {
            let Some((lines, arcs)) = detail.per_test.get(index) else {
                continue;
            };
            if lines.is_empty() && arcs.is_empty() {
                continue;
            }
            section(&mut out, &name, path, detail, lines, arcs);
            listed = true;
        }
        if let (false, Some((path, detail))) = (listed, details.first()) {
            let nothing = Default::default();
            section(&mut out, &name, path, detail, &nothing, &Default::default());
        }
    }
    out
}

/// LCOV test names hold letters, digits and underscores only.
fn test_name(test: &str, index: usize) -> String {
    let cleaned: String = test
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
        .collect();
    if cleaned.is_empty() {
        format!("test_{index}")
    } else {
        cleaned
    }
}

fn section(
    out: &mut String,
    name: &str,
    path: &str,
    detail: &FileDetail,
    lines: &std::collections::BTreeSet<u32>,
    arcs: &std::collections::BTreeSet<(i32, i32)>,
) {
    let _ = writeln!(out, "TN:{name}");
    let _ = writeln!(out, "SF:{path}");
    let mut found_branches = 0;
    let mut hit_branches = 0;
    for (block, (&line, dests)) in detail.branches.iter().enumerate() {
        let from = i32::try_from(line).unwrap_or(i32::MAX);
        for (branch, &dest) in dests.iter().enumerate() {
            found_branches += 1;
            let taken = if !lines.contains(&line) {
                "-".to_string()
            } else if arcs.contains(&(from, dest)) {
                hit_branches += 1;
                "1".to_string()
            } else {
                "0".to_string()
            };
            let _ = writeln!(out, "BRDA:{line},{block},{branch},{taken}");
        }
    }
    if found_branches > 0 {
        let _ = writeln!(out, "BRF:{found_branches}");
        let _ = writeln!(out, "BRH:{hit_branches}");
    }
    let mut hit = 0;
    for line in &detail.statements {
        let count = u8::from(lines.contains(line));
        hit += usize::from(count);
        let _ = writeln!(out, "DA:{line},{count}");
    }
    let _ = writeln!(out, "LF:{}", detail.statements.len());
    let _ = writeln!(out, "LH:{hit}");
    out.push_str("end_of_record\n");
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    // Relative paths: the integration tests compile this module too.
    use super::super::super::model::{CoverageMap, FileHits, RunCoverage, TestCoverage};
    use super::super::super::protocol::StaticFile;
    use super::render;

    #[test]
    fn a_test_that_ran_no_measured_line_keeps_its_section() {
        let statics = BTreeMap::from([(
            "/app/views.py".to_string(),
            StaticFile {
                lines: vec![1, 2, 3],
                branches: BTreeMap::new(),
                multiline: BTreeMap::new(),
            },
        )]);
        let ran = FileHits {
            lines: [2].into(),
            arcs: Default::default(),
        };
        let tests = vec![
            TestCoverage {
                test: "test-set-0/test-1".into(),
                files: CoverageMap::from([("/app/views.py".to_string(), ran)]),
                ..Default::default()
            },
            TestCoverage {
                test: "test-set-0/test-2".into(),
                ..Default::default()
            },
        ];
        let run = RunCoverage::build(
            Some("/app".into()),
            false,
            vec![],
            statics,
            CoverageMap::new(),
            tests,
        );
        let text = render(&run);
        let sections: Vec<&str> = text.split("end_of_record\n").collect();
        let of = |name: &str| -> Vec<&str> {
            sections
                .iter()
                .copied()
                .filter(|s| s.starts_with(&format!("TN:{name}\n")))
                .collect()
        };
        assert!(of("test_set_0_test_1")[0].contains("DA:2,1"), "{text}");
        let empty = of("test_set_0_test_2");
        assert_eq!(empty.len(), 1, "{text}");
        assert!(empty[0].contains("SF:/app/views.py\nDA:1,0\nDA:2,0\nDA:3,0\n"));
        assert!(empty[0].contains("LH:0"), "{text}");
    }
}
