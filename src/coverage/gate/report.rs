//! The gate's Markdown report. Its YAML front matter is the single source of
//! truth: CI reads `coverage_status`, and the ratchet reads `measured` back
//! from the same file, so what the gate wrote is what the baseline becomes.

use serde::Deserialize;

/// What the report states.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportFields {
    pub pass: bool,
    /// None when coverage could not be measured.
    pub measured: Option<f64>,
    pub baseline: Option<f64>,
    pub floor: f64,
    pub policy: String,
    pub epsilon: f64,
    pub delta: f64,
    pub run: Option<String>,
    pub reason: String,
}

#[derive(Debug, Deserialize)]
struct FrontMatter {
    coverage_status: Option<String>,
    measured: Option<f64>,
}

/// Renders the report; absent numbers are left blank (YAML null).
pub fn render_report(fields: &ReportFields) -> String {
    let status = if fields.pass { "PASS" } else { "FAIL" };
    let number = |v: Option<f64>| v.map(|v| format!("{v:.2}")).unwrap_or_default();
    let mut out = String::new();
    out.push_str("---\n");
    out.push_str(&format!("coverage_status: {status}\n"));
    out.push_str(&format!("measured: {}\n", number(fields.measured)));
    out.push_str(&format!("baseline: {}\n", number(fields.baseline)));
    out.push_str(&format!("floor: {:.2}\n", fields.floor));
    out.push_str(&format!("policy: {}\n", fields.policy));
    out.push_str(&format!("epsilon: {:.2}\n", fields.epsilon));
    out.push_str(&format!("delta: {:.2}\n", fields.delta));
    // The run is named by the user: quoted and escaped as needed, so no
    // name can break the front matter CI and the ratchet read.
    let run = fields
        .run
        .as_deref()
        .and_then(|run| recplay_proxy::testset::yaml::to_yaml(run).ok())
        .unwrap_or_else(|| "\n".to_string());
    out.push_str(&format!("run: {run}"));
    out.push_str("---\n\n");
    out.push_str(&format!("# Coverage gate: {status}\n\n"));
    out.push_str(&format!("{}\n\n", fields.reason.replace('\n', " ")));
    out.push_str("| | |\n|---|---|\n");
    let shown =
        |v: Option<f64>, none: &str| v.map(|v| format!("{v:.2}%")).unwrap_or(none.to_string());
    out.push_str(&format!(
        "| Line coverage | {} |\n",
        shown(fields.measured, "not measured")
    ));
    out.push_str(&format!(
        "| Baseline | {} |\n",
        shown(fields.baseline, "none yet (bootstrap)")
    ));
    out.push_str(&format!("| Floor | {:.2}% |\n", fields.floor));
    out.push_str(&format!("| Policy | {} |\n", fields.policy));
    out.push_str(&format!("| Epsilon | {:.2} points |\n", fields.epsilon));
    out.push_str(&format!("| Delta | {:+.2} points |\n", fields.delta));
    out.push_str("\nThe front matter above is what CI and the baseline ratchet read.\n");
    out
}

fn front_matter(content: &str) -> Option<FrontMatter> {
    let rest = content.strip_prefix("---\n")?;
    let end = rest.find("\n---")?;
    serde_yaml::from_str(&rest[..end + 1]).ok()
}

/// `(true, "PASS")` or `(false, why)`; a report without a readable status
/// counts as FAIL and says so.
pub fn parse_coverage_status(content: &str) -> (bool, String) {
    match front_matter(content).and_then(|f| f.coverage_status) {
        Some(status) if status.trim() == "PASS" => (true, "coverage_status: PASS".to_string()),
        Some(status) if status.trim() == "FAIL" => (false, "coverage_status: FAIL".to_string()),
        Some(other) => (
            false,
            format!("coverage_status has an unknown value {other:?}"),
        ),
        None => (
            false,
            "the report has no coverage_status in its YAML front matter".to_string(),
        ),
    }
}

/// The measured percentage the report states, if any.
pub fn read_measured_coverage(content: &str) -> Option<f64> {
    front_matter(content)?
        .measured
        .filter(|m| (0.0..=100.0).contains(m))
}
