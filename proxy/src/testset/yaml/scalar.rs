//! Scalars in YAML that every reader takes back the same way.
//!
//! Strings are written plain only when no YAML reader could take them for
//! something else (a number, a boolean, null, a flow indicator, a comment);
//! every other string is double-quoted, with escapes for what lies outside
//! YAML's printable set.

use std::cell::Cell;
use std::fmt::Write as _;

/// Words some YAML readers take for booleans or null.
const RESERVED: &[&str] = &["true", "false", "null", "yes", "no", "on", "off", "y", "n"];

/// A byte that may appear in a plain scalar (further rules in [`str_form`]).
const PLAIN: u8 = 1;
/// A byte copied as it is between double quotes: printable ASCII other than
/// the quote and the backslash.
const AS_IS: u8 = 2;

/// The classes of every byte, so one pass over a string with no branches
/// tells how it may be written (strings are the bulk of every mock).
static CLASSES: [u8; 256] = byte_classes();

const fn byte_classes() -> [u8; 256] {
    let mut classes = [0u8; 256];
    let mut b = 0x20;
    while b < 0x7f {
        if b != b'"' as usize && b != b'\\' as usize {
            classes[b] = AS_IS;
        }
        b += 1;
    }
    let mut i = 0;
    let plain_punctuation = b" _-./()=+*$";
    while i < plain_punctuation.len() {
        classes[plain_punctuation[i] as usize] |= PLAIN;
        i += 1;
    }
    let mut b = 0;
    while b < 256 {
        if (b as u8).is_ascii_alphanumeric() {
            classes[b] |= PLAIN;
        }
        b += 1;
    }
    classes
}

/// Whether a string made only of [`PLAIN`] bytes can go unquoted: it must
/// not read as something else (a number, a boolean, null) or lose spaces.
fn plain_shape_is_safe(s: &str) -> bool {
    let Some(&first) = s.as_bytes().first() else {
        return false;
    };
    (first.is_ascii_alphabetic() || first == b'_')
        && !s.ends_with(' ')
        // Runs of spaces are quoted, so they stay visible.
        && !s.as_bytes().windows(2).any(|pair| pair == b"  ")
        && !(s.len() <= 5 && RESERVED.iter().any(|w| s.eq_ignore_ascii_case(w)))
}

/// `n` spaces.
pub(super) fn indent(n: usize, out: &mut String) {
    const SPACES: &str = "                                                                ";
    let mut left = n;
    while left > 0 {
        let run = left.min(SPACES.len());
        out.push_str(&SPACES[..run]);
        left -= run;
    }
}

/// Whether `c` must be escaped in a double-quoted YAML string.
fn needs_escape(c: char) -> bool {
    let code = c as u32;
    code < 0x20
        || c == '"'
        || c == '\\'
        || (0x7f..=0x9f).contains(&code)
        || matches!(
            c,
            '\u{feff}' | '\u{fffe}' | '\u{ffff}' | '\u{2028}' | '\u{2029}'
        )
}

/// How a string is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum StrForm {
    /// As it is, unquoted.
    Plain,
    /// In double quotes, as it is: timestamps, numbers and most SQL.
    Quoted,
    /// In double quotes, with escapes (or, for multi-line text in a map,
    /// as a literal block: only text with escapes can hold a line break).
    Escaped,
}

pub(super) fn str_form(s: &str) -> StrForm {
    let classes = s
        .bytes()
        .fold(PLAIN | AS_IS, |all, b| all & CLASSES[usize::from(b)]);
    if classes & PLAIN != 0 && plain_shape_is_safe(s) {
        StrForm::Plain
    } else if classes & AS_IS != 0 {
        StrForm::Quoted
    } else {
        StrForm::Escaped
    }
}

/// [`str_form`] of a name that lives as long as the program (a field or
/// variant name): every mock writes the same few dozen of them, so each
/// one's form is worked out once and remembered by its address.
pub(super) fn static_str_form(name: &'static str) -> StrForm {
    const SLOTS: usize = 64;
    thread_local! {
        // (address, length, form); address 0 is never a string's.
        static KNOWN: [Cell<(usize, usize, StrForm)>; SLOTS] =
            const { [const { Cell::new((0, 0, StrForm::Plain)) }; SLOTS] };
    }
    let address = name.as_ptr() as usize;
    // Fibonacci hashing: the top bits of the product spread nearby
    // addresses (names sit next to each other) across the slots.
    let slot = address.wrapping_mul(0x9E37_79B9_7F4A_7C15_u64 as usize) >> (usize::BITS - 6);
    KNOWN.with(|known| {
        let (seen, len, form) = known[slot].get();
        if seen == address && len == name.len() {
            return form;
        }
        let form = str_form(name);
        known[slot].set((address, name.len(), form));
        form
    })
}

/// The longest key written as `key: value`, in bytes (YAML's limit is 1024
/// characters, never fewer than bytes); longer keys are written as
/// explicit `? key` / `: value` pairs.
const MAX_IMPLICIT_KEY: usize = 1000;

/// Writes map key `key` (in `form`, its [`str_form`]) where `out` ends, and
/// its colon. A key too long for `key: value` becomes an explicit `? key`
/// entry, its colon on the next line at `level`, the key's indentation.
pub(super) fn write_key(key: &str, form: StrForm, level: usize, out: &mut String) {
    let key_start = out.len();
    write_in_form(key, form, out);
    if out.len() - key_start > MAX_IMPLICIT_KEY {
        // YAML readers give up looking for the colon of an implicit key
        // after 1024 characters.
        out.insert_str(key_start, "? ");
        out.push('\n');
        indent(level, out);
    }
    out.push(':');
}

/// Writes `s` in the form [`str_form`] chose for it.
pub(super) fn write_in_form(s: &str, form: StrForm, out: &mut String) {
    match form {
        StrForm::Plain => out.push_str(s),
        StrForm::Quoted => {
            out.push('"');
            out.push_str(s);
            out.push('"');
        }
        StrForm::Escaped => write_escaped(s, out),
    }
}

/// `s` double-quoted, with escapes for what lies outside YAML's printable
/// set and for the quote and backslash.
fn write_escaped(s: &str, out: &mut String) {
    out.push('"');
    // Runs without escapes are copied whole: most text has none.
    let mut run_start = 0;
    for (at, c) in s.char_indices() {
        if !needs_escape(c) {
            continue;
        }
        out.push_str(&s[run_start..at]);
        run_start = at + c.len_utf8();
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            c => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
        }
    }
    out.push_str(&s[run_start..]);
    out.push('"');
}

/// Turns the text at `out[start..]` into what [`write_in_form`] writes for
/// it in its [`str_form`],
/// in place, when that needs no escapes (plain, or quoted as it is);
/// returns false, changing nothing, otherwise.
pub(super) fn finish_str_in_place(out: &mut String, start: usize) -> bool {
    match str_form(&out[start..]) {
        StrForm::Plain => true,
        StrForm::Quoted => {
            out.insert(start, '"');
            out.push('"');
            true
        }
        StrForm::Escaped => false,
    }
}

/// Writes multi-line `s` as a literal block (`|`) whose lines sit at
/// `level`, as serde_yaml does, so bodies and queries stay readable. Returns
/// false, writing nothing, when a block could not carry `s` exactly: a
/// single line, characters that need escapes, a first non-empty line
/// opening with a space or a tab (readers take the block's indentation from
/// that line, so it would need an indentation indicator), or no text at all.
pub(super) fn write_literal_block(s: &str, level: usize, out: &mut String) -> bool {
    if !s.as_bytes().contains(&b'\n') {
        return false;
    }
    let body = s.trim_end_matches('\n');
    let first_line = body.split('\n').find(|line| !line.is_empty());
    let usable = body.contains('\n')
        && !first_line.is_some_and(|line| line.starts_with([' ', '\t']))
        && !s
            .chars()
            .any(|c| !matches!(c, '\n' | '\t' | '"' | '\\') && needs_escape(c));
    if !usable {
        return false;
    }
    // Chomping keeps the trailing newlines exactly: none, one, or several.
    out.push_str(match s.len() - body.len() {
        0 => " |-\n",
        1 => " |\n",
        _ => " |+\n",
    });
    for line in s.strip_suffix('\n').unwrap_or(s).split('\n') {
        if !line.is_empty() {
            indent(level, out);
            out.push_str(line);
        }
        out.push('\n');
    }
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    fn written(s: &str) -> String {
        let mut out = String::new();
        write_in_form(s, str_form(s), &mut out);
        out
    }

    #[test]
    fn remembered_forms_of_static_names_are_their_forms() {
        // More names than the cache has slots, so some share a slot and
        // replace each other: the answer must not depend on it.
        let names: Vec<&'static str> = (0..200)
            .map(|i| match i % 5 {
                0 => "on",
                1 => "type",
                2 => "a b",
                3 => "tab\there",
                _ => &*Box::leak(format!("name_{i}").into_boxed_str()),
            })
            .collect();
        for _ in 0..3 {
            for &name in &names {
                assert_eq!(static_str_form(name), str_form(name), "{name:?}");
            }
        }
        // Same address, shorter length: a different string.
        let on: &'static str = "on";
        assert_eq!(static_str_form(on), StrForm::Quoted);
        assert_eq!(static_str_form(&on[..1]), StrForm::Plain);
    }

    #[test]
    fn plain_only_when_unambiguous() {
        assert_eq!(written("SELECT 1"), "SELECT 1");
        assert_eq!(written("text/plain"), "text/plain");
        for quoted in [
            "", "12", "true", "No", "~", "- dash", " lead", "a: b", "a  b",
        ] {
            assert!(written(quoted).starts_with('"'), "{quoted:?}");
        }
    }

    #[test]
    fn escapes_only_what_yaml_cannot_print() {
        assert_eq!(written("a\"b\\c\nd"), r#""a\"b\\c\nd""#);
        assert_eq!(written("é ✓ \u{85}"), "\"é ✓ \\u0085\"");
    }

    #[test]
    fn multi_line_text_is_a_literal_block_that_reads_back_exactly() {
        for text in [
            "<html>\n  <body>\n\n</body>\n</html>",
            "line one\nline two\n",
            "a\n\tb\n\n\n",
            "{\n  \"id\": 1\n}",
            "a\n   \nb",
            "\nafter an empty first line",
            "x\n---\n# not a comment\n- not an item: {}",
        ] {
            let mut doc = String::from("body:");
            assert!(write_literal_block(text, 2, &mut doc), "{text:?}");
            let back: std::collections::BTreeMap<String, String> =
                serde_yaml::from_str(&doc).unwrap_or_else(|e| panic!("{e}\n{doc}"));
            assert_eq!(back["body"], text, "\n{doc}");
        }
        for unsuitable in [
            "one line",
            " lead\nx",
            "a\r\nb",
            "\n\n",
            "x\u{7}\ny",
            // Readers would take the indentation from these first lines.
            "\t\n\n? >",
            "\n  x\ny",
            "\n   \nx",
        ] {
            let mut doc = String::new();
            assert!(
                !write_literal_block(unsuitable, 2, &mut doc),
                "{unsuitable:?}"
            );
            assert!(doc.is_empty());
        }
    }
}
