//! Body noise paths: the keys of keploy.yml `globalNoise` and a test's
//! `assertions.noise` that select JSON fields (`created_at`,
//! `results.created_at`, `items[].id`), parsed once and matched against
//! the path of each field compared. Users write these by hand, so every
//! malformed one is an error naming it, never a panic.

/// Why a body noise path could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoisePathError {
    /// `items[` without its `]`.
    #[error("unclosed '[' in body noise path {0:?}")]
    Unclosed(String),
    /// `items[x]`: neither empty, `*`, nor a number.
    #[error("body noise path {key:?}: [{inside}] is not an array index")]
    NotAnIndex {
        /// The path as written.
        key: String,
        /// What stood between the brackets.
        inside: String,
    },
    /// Text after a `]` that is neither `[` nor `.`.
    #[error("unexpected {rest:?} in body noise path {key:?}")]
    Unexpected {
        /// The path as written.
        key: String,
        /// The stray text.
        rest: String,
    },
    /// `a..b`, `.a`, `a.`.
    #[error("empty segment in body noise path {0:?}")]
    EmptySegment(String),
}

/// One step of a JSON path: an object key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathStep {
    /// An object key.
    Key(String),
    /// An array index.
    Index(usize),
}

/// Which body fields a noise entry selects.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodySelector {
    /// The whole body (`body` on its own in a test's assertions).
    Whole,
    /// A key without dots: that key at any depth, inside arrays too.
    AnyDepth(String),
    /// A dotted path from the root. `[]` after a key matches any index,
    /// `[N]` only index N; an array the pattern does not mention is
    /// stepped through, as Keploy's flattened paths do (`items.id`).
    Path(Vec<PatternStep>),
}

/// One step of a parsed noise path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternStep {
    /// This object key.
    Key(String),
    /// `[]` or `[*]`: any array index.
    AnyIndex,
    /// `[N]`: index N only.
    Index(usize),
}

impl BodySelector {
    /// Parses a noise key such as `created_at`, `results.created_at` or
    /// `items[].id`.
    pub fn parse(key: &str) -> Result<Self, NoisePathError> {
        let key = key.trim();
        if key.is_empty() {
            return Ok(BodySelector::Whole);
        }
        if !key.contains('.') && !key.contains('[') {
            return Ok(BodySelector::AnyDepth(key.to_string()));
        }
        let mut steps = Vec::new();
        for part in key.split('.') {
            let (name, mut rest) = match part.find('[') {
                Some(i) => (&part[..i], &part[i..]),
                None => (part, ""),
            };
            if !name.is_empty() {
                steps.push(PatternStep::Key(name.to_string()));
            }
            while let Some(after) = rest.strip_prefix('[') {
                let Some(end) = after.find(']') else {
                    return Err(NoisePathError::Unclosed(key.to_string()));
                };
                let inside = after[..end].trim();
                if inside.is_empty() || inside == "*" {
                    steps.push(PatternStep::AnyIndex);
                } else {
                    let n = inside.parse().map_err(|_| NoisePathError::NotAnIndex {
                        key: key.to_string(),
                        inside: inside.to_string(),
                    })?;
                    steps.push(PatternStep::Index(n));
                }
                rest = &after[end + 1..];
            }
            if !rest.is_empty() {
                return Err(NoisePathError::Unexpected {
                    key: key.to_string(),
                    rest: rest.to_string(),
                });
            }
            if name.is_empty() && part.is_empty() {
                return Err(NoisePathError::EmptySegment(key.to_string()));
            }
        }
        Ok(BodySelector::Path(steps))
    }

    /// Whether the field at `path` is selected.
    pub fn selects(&self, path: &[PathStep]) -> bool {
        match self {
            BodySelector::Whole => path.is_empty(),
            BodySelector::AnyDepth(key) => {
                matches!(path.last(), Some(PathStep::Key(k)) if k == key)
            }
            BodySelector::Path(pattern) => path_matches(pattern, path),
        }
    }
}

fn path_matches(pattern: &[PatternStep], path: &[PathStep]) -> bool {
    match (pattern.first(), path.first()) {
        (None, None) => true,
        (Some(PatternStep::Key(k)), Some(PathStep::Key(p))) => {
            k == p && path_matches(&pattern[1..], &path[1..])
        }
        (Some(PatternStep::AnyIndex), Some(PathStep::Index(_))) => {
            path_matches(&pattern[1..], &path[1..])
        }
        (Some(PatternStep::Index(n)), Some(PathStep::Index(i))) => {
            n == i && path_matches(&pattern[1..], &path[1..])
        }
        // An array the pattern does not mention is stepped through.
        (_, Some(PathStep::Index(_))) => path_matches(pattern, &path[1..]),
        _ => false,
    }
}
