//! Cobertura XML, as coverage.py writes it (DTD coverage-04): one package
//! per directory, one class per file.

use std::collections::BTreeMap;
use std::fmt::Write;

use super::super::model::{percent, RunCoverage};

pub fn render(run: &RunCoverage, timestamp_ms: i64) -> String {
    let mut packages: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for path in run.files.keys() {
        let shown = run.display_path(path);
        let package = match shown.rfind('/') {
            Some(i) => shown[..i].replace('/', "."),
            None => ".".to_string(),
        };
        packages.entry(package).or_default().push(path.clone());
    }

    let totals = &run.totals;
    let mut out = String::new();
    out.push_str("<?xml version=\"1.0\" ?>\n");
    let _ = writeln!(
        out,
        "<coverage version=\"recplay {}\" timestamp=\"{timestamp_ms}\" lines-valid=\"{}\" \
         lines-covered=\"{}\" line-rate=\"{}\" branches-covered=\"{}\" branches-valid=\"{}\" \
         branch-rate=\"{}\" complexity=\"0\">",
        env!("CARGO_PKG_VERSION"),
        totals.statements,
        totals.covered_lines,
        rate(totals.covered_lines, totals.statements),
        totals.covered_branches,
        totals.branches,
        rate(totals.covered_branches, totals.branches),
    );
    out.push_str(
        "\t<!-- Line hits: how many replayed tests ran the line (1 when it ran only outside tests). -->\n",
    );
    out.push_str("\t<sources>\n");
    let _ = writeln!(
        out,
        "\t\t<source>{}</source>",
        escape(run.root.as_deref().unwrap_or("."))
    );
    out.push_str("\t</sources>\n\t<packages>\n");
    for (package, paths) in &packages {
        let (mut st, mut cov, mut br, mut brc) = (0, 0, 0, 0);
        for p in paths {
            let s = &run.files[p].summary;
            st += s.statements;
            cov += s.covered_lines;
            br += s.branches;
            brc += s.covered_branches;
        }
        let _ = writeln!(
            out,
            "\t\t<package name=\"{}\" line-rate=\"{}\" branch-rate=\"{}\" complexity=\"0\">",
            escape(package),
            rate(cov, st),
            rate(brc, br)
        );
        out.push_str("\t\t\t<classes>\n");
        for path in paths {
            render_class(&mut out, run, path);
        }
        out.push_str("\t\t\t</classes>\n\t\t</package>\n");
    }
    out.push_str("\t</packages>\n</coverage>\n");
    out
}

fn render_class(out: &mut String, run: &RunCoverage, path: &str) {
    let detail = run.file_detail(path);
    let summary = &run.files[path].summary;
    let shown = run.display_path(path);
    let class_name = shown.rsplit('/').next().unwrap_or(shown);
    let _ = writeln!(
        out,
        "\t\t\t\t<class name=\"{}\" filename=\"{}\" complexity=\"0\" line-rate=\"{}\" branch-rate=\"{}\">",
        escape(class_name),
        escape(shown),
        rate(summary.covered_lines, summary.statements),
        rate(summary.covered_branches, summary.branches),
    );
    out.push_str("\t\t\t\t\t<methods/>\n\t\t\t\t\t<lines>\n");
    let covered = detail.covered_lines();
    let executed_arcs = detail.executed_arcs();
    for &line in &detail.statements {
        let by_tests = detail.tests_running(line);
        let hits = if by_tests == 0 && covered.contains(&line) {
            1
        } else {
            by_tests
        };
        let _ = write!(out, "\t\t\t\t\t\t<line number=\"{line}\" hits=\"{hits}\"");
        if let Some(dests) = detail.branches.get(&line) {
            let from = i32::try_from(line).unwrap_or(i32::MAX);
            let taken = dests
                .iter()
                .filter(|&&d| executed_arcs.contains(&(from, d)))
                .count();
            let _ = write!(
                out,
                " branch=\"true\" condition-coverage=\"{}% ({taken}/{})\"",
                percent(taken, dests.len()).round() as i64,
                dests.len()
            );
            let missing: Vec<String> = dests
                .iter()
                .filter(|&&d| !executed_arcs.contains(&(from, d)))
                .map(|d| {
                    if *d < 0 {
                        "exit".to_string()
                    } else {
                        d.to_string()
                    }
                })
                .collect();
            if !missing.is_empty() {
                let _ = write!(out, " missing-branches=\"{}\"", missing.join(","));
            }
        }
        out.push_str("/>\n");
    }
    out.push_str("\t\t\t\t\t</lines>\n\t\t\t\t</class>\n");
}

fn rate(covered: usize, total: usize) -> String {
    format!("{:.4}", percent(covered, total) / 100.0)
}

pub(super) fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            c if (c as u32) < 0x20 && c != '\t' && c != '\n' && c != '\r' => {}
            c => out.push(c),
        }
    }
    out
}
