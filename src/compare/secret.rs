//! Recorded values that hold secret placeholders.

use recplay_proxy::testset::redact::{has_placeholder, shape_matches};

/// A recorded value holding secret placeholders matches any actual value
/// of the same shape: the secret differs between runs, its place does not.
pub fn secret_shape_matches(recorded: &str, actual: &str) -> bool {
    has_placeholder(recorded) && shape_matches(recorded, actual)
}
