//! What a person sees: a progress bar while replaying, then every failure
//! with the fields that differ, then one summary line per test set.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use recplay_proxy::pg::matcher::Miss;
use similar::{ChangeTag, TextDiff};

use crate::compare::Difference;
use crate::replay::outcome::{SetOutcome, TestOutcome};

/// Whether to colour output that goes to a terminal (`is_terminal`) unless
/// NO_COLOR is set (<https://no-color.org>).
pub fn colour_wanted(is_terminal: bool) -> bool {
    let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
    is_terminal && !no_color
}

/// ANSI colours, or nothing when stdout is not a terminal or NO_COLOR is set.
#[derive(Debug, Clone, Copy)]
pub struct Palette {
    on: bool,
}

impl Palette {
    pub fn detect() -> Self {
        Palette {
            on: colour_wanted(std::io::stdout().is_terminal()),
        }
    }

    pub fn plain() -> Self {
        Palette { on: false }
    }

    fn paint(&self, code: &str, s: &str) -> String {
        if self.on {
            format!("\x1b[{code}m{s}\x1b[0m")
        } else {
            s.to_string()
        }
    }

    fn red(&self, s: &str) -> String {
        self.paint("31", s)
    }

    fn green(&self, s: &str) -> String {
        self.paint("32", s)
    }

    fn bold(&self, s: &str) -> String {
        self.paint("1", s)
    }

    fn dim(&self, s: &str) -> String {
        self.paint("2", s)
    }
}

/// A progress bar on stderr; hidden when stderr is not a terminal.
pub fn progress(total: usize) -> ProgressBar {
    let bar = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{spinner} {msg:20} [{bar:30}] {pos}/{len} ({per_sec})")
    {
        bar.set_style(style.progress_chars("=> "));
    }
    bar
}

fn show(v: &Option<String>) -> String {
    match v {
        Some(s) => s.clone(),
        None => "(absent)".to_string(),
    }
}

fn text_diff(expected: &str, actual: &str, palette: Palette, out: &mut String) {
    let diff = TextDiff::from_lines(expected, actual);
    for (i, group) in diff.grouped_ops(2).iter().enumerate() {
        if i > 0 {
            out.push_str(&palette.dim("      ...\n"));
        }
        for op in group {
            for change in diff.iter_changes(op) {
                let line = change.value().trim_end_matches('\n');
                let rendered = match change.tag() {
                    ChangeTag::Delete => palette.red(&format!("      - {line}")),
                    ChangeTag::Insert => palette.green(&format!("      + {line}")),
                    ChangeTag::Equal => palette.dim(&format!("        {line}")),
                };
                out.push_str(&rendered);
                out.push('\n');
            }
        }
    }
}

/// One line saying why the test failed, and the full list of differences
/// (plain text, for JUnit and the terminal alike).
pub fn describe_failure(t: &TestOutcome) -> (String, String) {
    render_failure(t, Palette::plain())
}

fn render_failure(t: &TestOutcome, palette: Palette) -> (String, String) {
    // A query with no recorded answer is the cause; the app's error page
    // that follows is only its consequence, so the miss leads.
    let misses = database_misses(t);
    let mut detail = String::new();
    for miss in &misses {
        detail.push_str(&format!(
            "    database: no recorded answer for: {}\n",
            palette.red(&miss.query)
        ));
        match miss.candidates.first() {
            Some(nearest) => detail.push_str(&format!("      nearest recorded: {nearest}\n")),
            None => detail.push_str("      nothing of that shape was recorded\n"),
        }
    }
    let lead = misses.first().map(|miss| {
        let more = match misses.len() {
            1 => String::new(),
            n => format!(" (and {} more)", n - 1),
        };
        format!("no recorded database answer for: {}{more}", miss.query)
    });
    let (http_lead, calls) = outgoing_calls(t, palette, &mut detail);
    let lead = lead.or(http_lead);
    if let Some(err) = &t.error {
        detail.push_str(&format!("    {}\n", palette.red(err)));
        return (lead.unwrap_or_else(|| err.clone()), detail);
    }
    let Some(cmp) = &t.comparison else {
        return (lead.unwrap_or_else(|| "not compared".to_string()), detail);
    };
    let mut fields = Vec::new();
    for d in &cmp.differences {
        match d {
            Difference::Status { expected, actual } => {
                fields.push("status".to_string());
                detail.push_str(&format!(
                    "    status: expected {}, got {}\n",
                    palette.green(&expected.to_string()),
                    palette.red(&actual.to_string())
                ));
            }
            Difference::Header {
                name,
                expected,
                actual,
            } => {
                fields.push(format!("header {name}"));
                detail.push_str(&format!(
                    "    header {}: expected {}, got {}\n",
                    palette.bold(name),
                    palette.green(&show(expected)),
                    palette.red(&show(actual))
                ));
            }
            Difference::Body {
                path,
                expected,
                actual,
            } => {
                fields.push(format!("body {path}"));
                let multi_line = [expected, actual]
                    .iter()
                    .any(|v| v.as_deref().is_some_and(|s| s.contains('\n')));
                if multi_line {
                    detail.push_str(&format!("    body {}:\n", palette.bold(path)));
                    text_diff(
                        expected.as_deref().unwrap_or(""),
                        actual.as_deref().unwrap_or(""),
                        palette,
                        &mut detail,
                    );
                } else {
                    detail.push_str(&format!(
                        "    body {}: expected {}, got {}\n",
                        palette.bold(path),
                        palette.green(&show(expected)),
                        palette.red(&show(actual))
                    ));
                }
            }
        }
    }
    let summary = match lead {
        Some(lead) if fields.is_empty() => lead,
        Some(lead) => format!("{lead}; differs in {}", fields.join(", ")),
        None => format!("differs in {}{calls}", fields.join(", ")),
    };
    (summary, detail)
}

/// The outgoing calls of a failed test: the lead when one had no recorded
/// answer (`http_misses`), and otherwise a note naming the recorded calls
/// that answered (`http_mocks`), since a changed recorded answer shows up
/// only as a different response. Details go to `detail`.
fn outgoing_calls(
    t: &TestOutcome,
    palette: Palette,
    detail: &mut String,
) -> (Option<String>, String) {
    let misses: Vec<recplay_proxy::egress::HttpMiss> = t
        .extras
        .get("http_misses")
        .and_then(|v| serde_yaml::from_value(v.clone()).ok())
        .unwrap_or_default();
    for miss in &misses {
        detail.push_str(&format!(
            "    outgoing call: no recorded answer for: {}\n      nearest recorded: {}\n",
            palette.red(&miss.call),
            miss.nearest
        ));
    }
    let served: Vec<String> = t
        .extras
        .get("http_mocks")
        .and_then(|v| serde_yaml::from_value(v.clone()).ok())
        .unwrap_or_default();
    for call in &served {
        detail.push_str(&format!(
            "    outgoing call answered from the recording: {call}\n"
        ));
    }
    let lead = misses.first().map(|miss| {
        format!(
            "no recorded answer for the outgoing call {} (nearest: {})",
            miss.call, miss.nearest
        )
    });
    let note = if served.is_empty() {
        String::new()
    } else {
        format!(
            " (outgoing calls answered from the recording: {})",
            served.join(", ")
        )
    };
    (lead, note)
}

/// The queries the mock server had no answer for during this test (the
/// `pg_misses` it stored under the test).
fn database_misses(t: &TestOutcome) -> Vec<Miss> {
    t.extras
        .get("pg_misses")
        .and_then(|v| serde_yaml::from_value(v.clone()).ok())
        .unwrap_or_default()
}

/// Every failure of the run, then the summary lines, as printed on stdout.
pub fn render_run(sets: &[SetOutcome], palette: Palette) -> String {
    let mut out = String::new();
    for set in sets {
        if let Some(err) = &set.error {
            out.push_str(&format!(
                "{} {}: {}\n",
                palette.red("ERROR"),
                palette.bold(&set.name),
                err
            ));
        }
        for p in &set.problems {
            out.push_str(&format!(
                "{} {}: could not load {}: {}\n",
                palette.red("FAIL"),
                palette.bold(&set.name),
                p.location,
                p.message
            ));
        }
        for note in &set.unserved {
            out.push_str(&format!(
                "{} {}: {}\n",
                palette.dim("NOTE"),
                palette.bold(&set.name),
                note
            ));
        }
        for t in set.tests.failures() {
            let req = &t.case.spec.req;
            out.push_str(&format!(
                "{} {}/{} {}\n",
                palette.red("FAIL"),
                palette.bold(&set.name),
                palette.bold(t.name()),
                palette.dim(&format!(
                    "{} {}",
                    req.method,
                    crate::replay::request::path_and_query(req)
                ))
            ));
            out.push_str(&render_failure(t, palette).1);
        }
    }
    for set in sets {
        out.push_str(&summary_line(set, palette));
        out.push('\n');
        if let Some(note) = skipped_note(set) {
            out.push_str(&palette.dim(&note));
            out.push('\n');
        }
    }
    out
}

/// `test-set-0: 2 tests skipped, of kinds recplay does not replay:
/// test-4 (gRPC), test-5 (Http2)`, or `None` when none was.
pub fn skipped_note(set: &SetOutcome) -> Option<String> {
    if set.skipped.is_empty() {
        return None;
    }
    let names: Vec<String> = set
        .skipped
        .iter()
        .map(|t| format!("{} ({})", t.name, t.kind))
        .collect();
    let count = set.skipped.len();
    Some(format!(
        "{}: {count} test{} skipped, of kinds recplay does not replay: {}",
        set.name,
        if count == 1 { "" } else { "s" },
        names.join(", ")
    ))
}

/// `test-set-0: 12 passed, 1 failed`.
pub fn summary_line(set: &SetOutcome, palette: Palette) -> String {
    let passed = format!("{} passed", set.passed_count());
    let failed = format!("{} failed", set.failed_count());
    let failed = if set.failed_count() > 0 {
        palette.red(&failed)
    } else {
        failed
    };
    let mut line = format!("{}: {}, {}", set.name, palette.green(&passed), failed);
    if set.error.is_some() {
        line.push_str(&palette.red(" (did not run to the end)"));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use recplay_proxy::testset::{HttpSpec, HttpTestCase};

    fn failing(differences: Vec<Difference>) -> TestOutcome {
        TestOutcome::compared(
            HttpTestCase::new("test-1", HttpSpec::default()),
            differences,
        )
    }

    #[test]
    fn a_text_body_difference_is_shown_as_a_line_diff() {
        let t = failing(vec![Difference::Body {
            path: "(body)".into(),
            expected: Some("one\ntwo\nthree\n".into()),
            actual: Some("one\n2\nthree\n".into()),
        }]);
        let (summary, detail) = describe_failure(&t);
        assert_eq!(summary, "differs in body (body)");
        assert!(detail.contains("      - two\n"), "{detail}");
        assert!(detail.contains("      + 2\n"), "{detail}");
        assert!(!detail.contains('\x1b'), "plain output has no escapes");
    }

    #[test]
    fn a_database_miss_leads_the_summary_before_the_http_difference() {
        let mut t = failing(vec![Difference::Status {
            expected: 200,
            actual: 500,
        }]);
        let misses = vec![Miss {
            query: "SELECT name FROM items WHERE id = 9".into(),
            candidates: vec!["mock-4: SELECT name FROM items WHERE id = 7".into()],
        }];
        t.extras.insert(
            "pg_misses".into(),
            serde_yaml::to_value(&misses).expect("yaml"),
        );
        let (summary, detail) = describe_failure(&t);
        assert_eq!(
            summary,
            "no recorded database answer for: SELECT name FROM items WHERE id = 9; differs in status"
        );
        assert!(
            detail.starts_with(
                "    database: no recorded answer for: SELECT name FROM items WHERE id = 9\n      nearest recorded: mock-4: SELECT name FROM items WHERE id = 7\n    status:"
            ),
            "{detail}"
        );
    }

    #[test]
    fn colour_wraps_values_only_when_asked() {
        let t = failing(vec![Difference::Status {
            expected: 200,
            actual: 500,
        }]);
        let coloured = render_failure(&t, Palette { on: true }).1;
        assert!(coloured.contains("\x1b[31m500\x1b[0m"), "{coloured}");
        let plain = render_failure(&t, Palette::plain()).1;
        assert_eq!(plain, "    status: expected 200, got 500\n");
    }
}
