//! The gate's decision: a pure function of (measured, baseline, floor,
//! policy, epsilon), so every border case can be pinned by a test.

use std::fmt;

/// Which comparison decides.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Measured coverage against the floor only.
    Absolute,
    /// Measured coverage against the ratchet baseline only (no regression).
    Baseline,
    /// Both must hold.
    Both,
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Policy::Absolute => "absolute",
            Policy::Baseline => "baseline",
            Policy::Both => "both",
        })
    }
}

/// PASS or FAIL, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    pub pass: bool,
    pub reason: String,
}

/// Floating-point slack so that e.g. 84.5 against 85.0 - 0.5 is "on" the line.
const SLACK: f64 = 1e-9;

fn plausible(value: f64) -> bool {
    value.is_finite() && (0.0..=100.0 + SLACK).contains(&value)
}

/// Decides the gate. A negative epsilon counts as 0 (tolerance never
/// tightens the bar); a missing baseline is the bootstrap case, where only
/// the floor can fail. Inputs that are not percentages FAIL, naming them.
pub fn compute_verdict(
    measured: f64,
    baseline: Option<f64>,
    floor: f64,
    policy: Policy,
    epsilon: f64,
) -> Verdict {
    if !plausible(measured)
        || !floor.is_finite()
        || epsilon.is_nan()
        || baseline.is_some_and(|b| !plausible(b))
    {
        return Verdict {
            pass: false,
            reason: format!(
                "bad inputs: measured={measured}, baseline={baseline:?}, floor={floor}, \
                 epsilon={epsilon} (percentages must be numbers between 0 and 100)"
            ),
        };
    }
    let epsilon = epsilon.max(0.0);
    let absolute_ok = measured + SLACK >= floor - epsilon;
    let absolute = format!(
        "absolute {} ({measured:.2}% vs floor {floor:.2}%, epsilon {epsilon:.2})",
        pass_fail(absolute_ok)
    );
    let (baseline_ok, baseline_text) = match baseline {
        None => (
            true,
            "baseline bootstrap: no baseline yet, nothing to regress from".to_string(),
        ),
        Some(b) => {
            let ok = measured + SLACK >= b - epsilon;
            (
                ok,
                format!(
                    "baseline {} ({measured:.2}% vs baseline {b:.2}%, epsilon {epsilon:.2})",
                    pass_fail(ok)
                ),
            )
        }
    };
    let (pass, detail) = match policy {
        Policy::Absolute => (absolute_ok, absolute),
        Policy::Baseline => (baseline_ok, baseline_text),
        Policy::Both => (
            absolute_ok && baseline_ok,
            format!("{absolute}; {baseline_text}"),
        ),
    };
    Verdict {
        pass,
        reason: format!("measured={measured:.2}% policy={policy}: {detail}"),
    }
}

fn pass_fail(ok: bool) -> &'static str {
    if ok {
        "PASS"
    } else {
        "FAIL"
    }
}

/// Signed distance from the bar that applies: the higher of baseline and
/// floor when present, 0 when neither is.
pub fn compute_delta(measured: f64, baseline: Option<f64>, floor: Option<f64>) -> f64 {
    match (baseline, floor) {
        (None, None) => 0.0,
        (Some(b), None) => measured - b,
        (None, Some(f)) => measured - f,
        (Some(b), Some(f)) => measured - b.max(f),
    }
}

/// Reads a total line percentage from a coverage summary: recplay's
/// `coverage.json` (`totals.line_percent`) or coverage.py's JSON report
/// (`totals.percent_covered`). Anything else is `None`, never an error.
#[allow(dead_code)] // for callers holding a JSON summary rather than a run
pub fn parse_coverage_percent(value: &serde_json::Value) -> Option<f64> {
    let totals = value.get("totals")?;
    totals
        .get("line_percent")
        .or_else(|| totals.get("percent_covered"))
        .and_then(serde_json::Value::as_f64)
        .filter(|p| plausible(*p))
}
