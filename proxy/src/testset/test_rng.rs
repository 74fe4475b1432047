//! The awkward strings and bytes the round-trip and corruption tests feed
//! the writer and the loader, drawn from the crate's seeded generator.
//!
//! Deterministic on purpose: a failure names its seed and case number, and
//! the same run reproduces it on any machine.

pub use crate::test_rng::Rng;

/// Inputs shaped for YAML: what the writer must quote, escape or encode.
impl Rng {
    /// A string built from pieces YAML treats specially: indicators,
    /// keywords, number and date look-alikes, line breaks, control
    /// characters, characters outside the BMP, spaces at either end.
    pub fn awkward_string(&mut self) -> String {
        if self.chance(40) {
            return self.long_line();
        }
        let pieces = self.below(10);
        let mut s = String::new();
        for _ in 0..pieces {
            s.push_str(self.pick::<&str>(AWKWARD));
        }
        s
    }

    /// A line longer than YAML's 1024-character limit on implicit keys.
    pub fn long_line(&mut self) -> String {
        let mut s = "x".repeat(1000 + self.below(3000));
        s.push_str(self.pick::<&str>(AWKWARD));
        s
    }

    /// Random bytes, valid UTF-8 about half the time.
    pub fn awkward_bytes(&mut self) -> Vec<u8> {
        if self.chance(2) {
            return self.awkward_string().into_bytes();
        }
        let len = self.below(64);
        (0..len).map(|_| self.next_u64() as u8).collect()
    }
}

/// Pieces of awkward strings.
pub const AWKWARD: &[&str] = &[
    "a",
    "b",
    "x",
    "_",
    "SELECT",
    "Id",
    " ",
    "  ",
    ": ",
    ":",
    "#",
    " #",
    "'",
    "\"",
    "\\",
    "\n",
    "\n\n",
    "\r",
    "\r\n",
    "\t",
    "\0",
    "\u{1}",
    "\u{8}",
    "\u{b}",
    "\u{c}",
    "\u{1b}",
    "\u{7f}",
    "\u{85}",
    "\u{a0}",
    "\u{2028}",
    "\u{2029}",
    "\u{feff}",
    "\u{fffd}",
    "\u{fffe}",
    "\u{ffff}",
    "\u{d7ff}",
    "\u{e000}",
    "😀",
    "𝄞",
    "\u{10ffff}",
    "é",
    "✓",
    "-",
    "- ",
    "--- ",
    "---",
    "...",
    "?",
    "? ",
    "|",
    "|-",
    ">",
    "!",
    "!!str ",
    "&a",
    "*a",
    "%",
    "@",
    "`",
    "{",
    "}",
    "[",
    "]",
    ",",
    "{}",
    "[]",
    "yes",
    "No",
    "ON",
    "off",
    "y",
    "n",
    "true",
    "False",
    "null",
    "Null",
    "~",
    "1e3",
    "-1E-3",
    "0x1F",
    "0o17",
    "0b101",
    "1_000",
    "+1",
    "-0",
    "012",
    "3.14",
    ".5",
    ".inf",
    "-.Inf",
    ".nan",
    "NaN",
    "inf",
    "2026-01-01",
    "2026-01-01T00:00:00Z",
    "12:30:45",
    "1:20",
    "<<",
    "=",
    "$1",
    "/",
    ".",
    "(",
    ")",
    "+",
    "*",
];
