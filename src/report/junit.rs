//! JUnit XML: one `<testsuite>` per test set, one `<testcase>` per test,
//! a `<failure>` carrying the same differences the terminal shows.

use std::fmt::Write as _;
use std::fs::File;
use std::io::{BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use recplay_proxy::testset::store::{write_atomically_with, LoadProblem};

use super::terminal::describe_failure;
use crate::replay::outcome::{SetOutcome, TestOutcome};

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

/// One test's `<testcase>`, with a `<failure>` when it failed.
fn testcase(set: &str, t: &TestOutcome) -> String {
    let mut xml = format!(
        "    <testcase classname=\"{}\" name=\"{}\" time=\"{}\"",
        escape(set),
        escape(t.name()),
        seconds(t.completed - t.started)
    );
    if t.passed() {
        xml.push_str("/>\n");
    } else {
        let (summary, detail) = describe_failure(t);
        let _ = writeln!(
            xml,
            ">\n      <failure message=\"{}\" type=\"mismatch\">{}</failure>\n    </testcase>",
            escape(&summary),
            escape(&detail)
        );
    }
    xml
}

/// A file that could not be loaded, as a failed `<testcase>`.
fn problem_case(set: &str, p: &LoadProblem) -> String {
    format!(
        "    <testcase classname=\"{}\" name=\"{}\" time=\"0\">\n      <failure message=\"could not load\" type=\"load\">{}</failure>\n    </testcase>\n",
        escape(set),
        escape(&p.location),
        escape(&p.message)
    )
}

/// Each replayed test's `<testcase>`, written to a file in the run
/// directory as the test finishes and copied into the JUnit files at the
/// end (see [`write`]), so a run keeps no row per test in memory. The file
/// is removed when this is dropped, however the run ends; only a killed
/// run leaves it, in its own run directory.
pub struct Rows {
    path: PathBuf,
    out: BufWriter<File>,
    /// Each set's part of the file, in the order the sets ran.
    sets: Vec<(String, u64)>,
}

impl Rows {
    pub fn create(run_dir: &Path) -> Result<Rows> {
        let path = run_dir.join(".junit-rows.tmp");
        let file =
            File::create(&path).with_context(|| format!("could not create {}", path.display()))?;
        Ok(Rows {
            path,
            out: BufWriter::new(file),
            sets: Vec::new(),
        })
    }

    /// Writes `t`'s row, a test of `set`.
    pub fn add(&mut self, set: &str, t: &TestOutcome) -> Result<()> {
        let row = testcase(set, t);
        self.out
            .write_all(row.as_bytes())
            .with_context(|| format!("could not write {}", self.path.display()))?;
        let len = row.len() as u64;
        match self.sets.last_mut() {
            Some((name, written)) if name == set => *written += len,
            _ => self.sets.push((set.to_string(), len)),
        }
        Ok(())
    }

    /// Where `set`'s rows lie in the file: offset and length.
    fn span(&self, set: &str) -> (u64, u64) {
        let mut offset = 0;
        for (name, len) in &self.sets {
            if name == set {
                return (offset, *len);
            }
            offset += len;
        }
        (offset, 0)
    }
}

impl Drop for Rows {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
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

/// Writes the JUnit file atomically: every set's suite, its rows copied
/// from `rows`, then a failed case per file that could not be loaded.
pub fn write(path: &Path, sets: &[SetOutcome], rows: &mut Rows) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)
            .with_context(|| format!("could not create {}", dir.display()))?;
    }
    let rows_path = rows.path.display().to_string();
    let reading = |e: std::io::Error| {
        std::io::Error::new(e.kind(), format!("could not read {rows_path}: {e}"))
    };
    rows.out.flush().map_err(reading)?;
    let mut source = File::open(&rows.path).map_err(reading)?;
    let tests: usize = sets.iter().map(SetOutcome::total).sum();
    let failures: usize = sets.iter().map(SetOutcome::failed_count).sum();
    write_atomically_with(path, |out| {
        out.write_all(open_run(tests, failures).as_bytes())?;
        for set in sets {
            out.write_all(
                open_suite(
                    &set.name,
                    set.total(),
                    set.failed_count(),
                    &seconds(set.completed - set.started),
                    &timestamp(set.started),
                )
                .as_bytes(),
            )?;
            let (offset, len) = rows.span(&set.name);
            source.seek(SeekFrom::Start(offset)).map_err(reading)?;
            let copied = std::io::copy(&mut (&mut source).take(len), out)?;
            if copied != len {
                return Err(reading(std::io::ErrorKind::UnexpectedEof.into()));
            }
            for p in &set.problems {
                out.write_all(problem_case(&set.name, p).as_bytes())?;
            }
            out.write_all(CLOSE_SUITE.as_bytes())?;
        }
        out.write_all(CLOSE_RUN.as_bytes())
    })
    .with_context(|| format!("could not write the JUnit report {}", path.display()))
}
