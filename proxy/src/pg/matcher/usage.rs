//! What each replayed test took from the recording.
//!
//! The replayer's report lists, per test, the mocks that answered it (as
//! Keploy's mappings do), the queries nothing recorded could answer, and the
//! queries answered by a near match, with the literals that differed — a
//! silently wrong answer is the one failure a record/replay tool must never
//! hide.

use serde::{Deserialize, Serialize};

/// Everything the mock server did for one test.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TestUsage {
    /// Names of the mocks that answered, in the order they were served
    /// (a session mock appears each time it was reused).
    pub mocks: Vec<String>,
    /// Exchanges nothing recorded could answer.
    pub misses: Vec<Miss>,
    /// Exchanges answered by something other than an unused exact match.
    pub fallbacks: Vec<Fallback>,
}

/// An exchange answered with a recplay ErrorResponse.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Miss {
    /// The statement text(s) of the exchange.
    pub query: String,
    /// The nearest recorded statements (mock name and text), best first.
    pub candidates: Vec<String>,
}

/// An exchange answered by a recording that is not an unused exact match.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fallback {
    /// The statement text(s) of the exchange.
    pub query: String,
    /// The mock that answered.
    pub mock: String,
    /// Why an unused exact match was not available.
    pub reason: FallbackReason,
    /// Literal or parameter values that differ from the recording.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub differing: Vec<LiteralDiff>,
}

/// Why a fallback was needed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum FallbackReason {
    /// Only a query of the same shape with other literal values was recorded.
    SameShape,
    /// Every exact recording was already consumed; the last one was reused.
    Reused,
    /// COPY rows sent at replay differ from the recorded ones.
    CopyDataDiffers,
}

/// One literal or Bind value that differs between the live query and the
/// recording that answered it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiteralDiff {
    /// Position among the exchange's literals and parameters (0-based).
    pub position: usize,
    /// The value in the recording that answered.
    pub recorded: String,
    /// The value the client sent at replay.
    pub actual: String,
}
