//! JUnit XML: one `<testsuite>` per test set, one `<testcase>` per test,
//! a `<failure>` carrying the same differences the terminal shows.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use recplay_proxy::testset::store::write_atomically;

use super::terminal::describe_failure;
use crate::replay::outcome::SetOutcome;

/// The JUnit file a shard's run keeps in its report directory.
pub const FILE_NAME: &str = "junit.xml";

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // XML 1.0 cannot carry most control characters at all.
            c if (c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r') => {
                out.push_str(&format!("\\u{{{:x}}}", c as u32))
            }
            c => out.push(c),
        }
    }
    out
}

pub fn seconds(d: chrono::TimeDelta) -> String {
    format!("{:.3}", d.num_microseconds().unwrap_or(0) as f64 / 1e6)
}

/// Renders the whole run.
pub fn render(sets: &[SetOutcome]) -> String {
    let tests: usize = sets.iter().map(SetOutcome::total).sum();
    let failures: usize = sets.iter().map(SetOutcome::failed_count).sum();
    let mut xml = open_run(tests, failures);
    for set in sets {
        xml.push_str(&open_suite(
            &set.name,
            set.total(),
            set.failed_count(),
            &seconds(set.completed - set.started),
            &timestamp(set.started),
        ));
        for t in &set.tests {
            let _ = write!(
                xml,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"{}\"",
                escape(&set.name),
                escape(t.name()),
                seconds(t.completed - t.started)
            );
            if let Some(failed) = t.failure() {
                let (summary, detail) = describe_failure(failed);
                let _ = writeln!(
                    xml,
                    ">\n      <failure message=\"{}\" type=\"mismatch\">{}</failure>\n    </testcase>",
                    escape(&summary),
                    escape(&detail)
                );
            } else {
                xml.push_str("/>\n");
            }
        }
        for p in &set.problems {
            let _ = writeln!(
                xml,
                "    <testcase classname=\"{}\" name=\"{}\" time=\"0\">\n      <failure message=\"could not load\" type=\"load\">{}</failure>\n    </testcase>",
                escape(&set.name),
                escape(&p.location),
                escape(&p.message)
            );
        }
        xml.push_str(CLOSE_SUITE);
    }
    xml.push_str(CLOSE_RUN);
    xml
}

/// The XML declaration and the opening `<testsuites>`.
pub fn open_run(tests: usize, failures: usize) -> String {
    format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"recplay\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\">\n"
    )
}

/// One set's opening `<testsuite>` line.
pub fn open_suite(
    name: &str,
    tests: usize,
    failures: usize,
    time: &str,
    timestamp: &str,
) -> String {
    format!(
        "  <testsuite name=\"{}\" tests=\"{tests}\" failures=\"{failures}\" errors=\"0\" skipped=\"0\" time=\"{time}\" timestamp=\"{}\">\n",
        escape(name),
        escape(timestamp),
    )
}

/// A suite's `timestamp` attribute.
pub fn timestamp(started: chrono::DateTime<chrono::Utc>) -> String {
    started.format("%Y-%m-%dT%H:%M:%S").to_string()
}

pub const CLOSE_SUITE: &str = "  </testsuite>\n";
pub const CLOSE_RUN: &str = "</testsuites>\n";

/// Writes the JUnit file atomically.
pub fn write(path: &Path, sets: &[SetOutcome]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("could not create {}", dir.display()))?;
    }
    write_atomically(path, render(sets).as_bytes())
        .with_context(|| format!("could not write the JUnit report {}", path.display()))
}
