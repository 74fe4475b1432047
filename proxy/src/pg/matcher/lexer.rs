//! A small SQL lexer: just enough to tell literals from the rest.
//!
//! The exact identity of a query keeps every literal (only the whitespace
//! between tokens is normalised); its *shape* replaces each literal with `?`
//! so a query that differs only in literal values can be found as a
//! fallback, and the literal values are kept in order so a fallback can be
//! scored by how many of them agree and report the ones that do not.
//!
//! Literals are single-quoted strings (with `''` escapes, and the `E''`,
//! `B''`, `X''`, `N''` and `U&''` prefixes), dollar-quoted strings
//! (`$$...$$`, `$tag$...$tag$`) and numbers. Comments are dropped from the
//! shape but kept in the exact text. Unterminated quotes run to the end of
//! the text rather than failing: a lexer used for matching must accept
//! whatever the client sent.

/// The two views of one SQL text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lexed {
    /// Tokens joined by one space, literals and comments included.
    pub exact: String,
    /// Tokens joined by one space, each literal as `?`, comments dropped.
    pub shape: String,
    /// The literal values, in order of appearance, as written.
    pub literals: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Word,
    Literal,
    Comment,
    Other,
}

/// Lexes `sql` into its exact and shape forms.
pub fn lex(sql: &str) -> Lexed {
    let mut out = Lexed {
        exact: String::with_capacity(sql.len()),
        shape: String::with_capacity(sql.len()),
        literals: Vec::new(),
    };
    let bytes = sql.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        let start = i;
        let b = bytes[i];
        let kind = if b.is_ascii_whitespace() {
            i += 1;
            continue;
        } else if b == b'-' && bytes.get(i + 1) == Some(&b'-') {
            i = bytes[i..]
                .iter()
                .position(|&c| c == b'\n')
                .map_or(bytes.len(), |p| i + p);
            Kind::Comment
        } else if b == b'/' && bytes.get(i + 1) == Some(&b'*') {
            i = block_comment_end(bytes, i);
            Kind::Comment
        } else if b == b'\'' {
            i = quoted_end(bytes, i + 1, b'\'', false);
            Kind::Literal
        } else if let Some(body) = string_prefix(bytes, i) {
            let backslashes = matches!(bytes[i], b'e' | b'E');
            i = quoted_end(bytes, body + 1, b'\'', backslashes);
            Kind::Literal
        } else if b == b'"' {
            i = quoted_end(bytes, i + 1, b'"', false);
            Kind::Word
        } else if b == b'$' {
            match dollar_tag_end(bytes, i) {
                Some(tag_end) => {
                    i = dollar_body_end(bytes, i, tag_end);
                    Kind::Literal
                }
                None => {
                    // `$1` parameters and a lone `$` are not literals.
                    i += 1;
                    while i < bytes.len() && bytes[i].is_ascii_digit() {
                        i += 1;
                    }
                    Kind::Word
                }
            }
        } else if b.is_ascii_digit()
            || (b == b'.' && bytes.get(i + 1).is_some_and(u8::is_ascii_digit))
        {
            i = number_end(bytes, i);
            Kind::Literal
        } else if is_word_start(b) {
            while i < bytes.len() && is_word_continue(bytes[i]) {
                i += 1;
            }
            Kind::Word
        } else {
            // One character at a time; multi-byte UTF-8 stays whole.
            i += utf8_len(b);
            Kind::Other
        };
        let end = i.min(bytes.len());
        let text = sql.get(start..end).unwrap_or("");
        push(&mut out.exact, text);
        match kind {
            Kind::Comment => {}
            Kind::Literal => {
                push(&mut out.shape, "?");
                out.literals.push(text.to_string());
            }
            Kind::Word | Kind::Other => push(&mut out.shape, text),
        }
    }
    out
}

fn push(s: &mut String, token: &str) {
    if !s.is_empty() {
        s.push(' ');
    }
    s.push_str(token);
}

fn is_word_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b >= 0x80
}

fn is_word_continue(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'$' || b >= 0x80
}

fn utf8_len(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

/// `E'`, `B'`, `X'`, `N'` (any case) or `U&'` at `i`, not inside a word:
/// returns the index of the opening quote.
fn string_prefix(bytes: &[u8], i: usize) -> Option<usize> {
    if i > 0 && is_word_continue(bytes[i - 1]) {
        return None;
    }
    match bytes[i].to_ascii_uppercase() {
        b'E' | b'B' | b'X' | b'N' if bytes.get(i + 1) == Some(&b'\'') => Some(i + 1),
        b'U' if bytes.get(i + 1) == Some(&b'&') && bytes.get(i + 2) == Some(&b'\'') => Some(i + 2),
        _ => None,
    }
}

/// End (exclusive) of a quoted token whose body starts at `i`; a doubled
/// quote is an escaped quote, and with `backslashes` so is `\'`.
fn quoted_end(bytes: &[u8], mut i: usize, quote: u8, backslashes: bool) -> usize {
    while i < bytes.len() {
        let b = bytes[i];
        if backslashes && b == b'\\' {
            i += 2;
        } else if b == quote {
            if bytes.get(i + 1) == Some(&quote) {
                i += 2;
            } else {
                return i + 1;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// Nested `/* */` comments, as PostgreSQL allows.
fn block_comment_end(bytes: &[u8], mut i: usize) -> usize {
    let mut depth = 0usize;
    while i + 1 < bytes.len() {
        if bytes[i] == b'/' && bytes[i + 1] == b'*' {
            depth += 1;
            i += 2;
        } else if bytes[i] == b'*' && bytes[i + 1] == b'/' {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return i;
            }
        } else {
            i += 1;
        }
    }
    bytes.len()
}

/// At a `$`: the index just past the opening `$tag$` if this starts a
/// dollar-quoted string (the tag is empty or an identifier without `$`).
fn dollar_tag_end(bytes: &[u8], i: usize) -> Option<usize> {
    if i > 0 && is_word_continue(bytes[i - 1]) {
        return None;
    }
    let mut j = i + 1;
    if bytes.get(j).is_some_and(u8::is_ascii_digit) {
        return None;
    }
    while j < bytes.len()
        && (bytes[j].is_ascii_alphanumeric() || bytes[j] == b'_' || bytes[j] >= 0x80)
    {
        j += 1;
    }
    (bytes.get(j) == Some(&b'$')).then_some(j + 1)
}

fn dollar_body_end(bytes: &[u8], open: usize, tag_end: usize) -> usize {
    let tag = &bytes[open..tag_end];
    let body = &bytes[tag_end..];
    body.windows(tag.len())
        .position(|w| w == tag)
        .map_or(bytes.len(), |p| tag_end + p + tag.len())
}

fn number_end(bytes: &[u8], mut i: usize) -> usize {
    let hex = bytes[i] == b'0' && matches!(bytes.get(i + 1), Some(b'x' | b'X'));
    if hex {
        i += 2;
        while i < bytes.len() && (bytes[i].is_ascii_hexdigit() || bytes[i] == b'_') {
            i += 1;
        }
        return i;
    }
    while i < bytes.len() && (bytes[i].is_ascii_digit() || bytes[i] == b'_' || bytes[i] == b'.') {
        i += 1;
    }
    if matches!(bytes.get(i), Some(b'e' | b'E')) {
        let mut j = i + 1;
        if matches!(bytes.get(j), Some(b'+' | b'-')) {
            j += 1;
        }
        if bytes.get(j).is_some_and(u8::is_ascii_digit) {
            i = j;
            while i < bytes.len() && bytes[i].is_ascii_digit() {
                i += 1;
            }
        }
    }
    i
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literals_differ_in_exact_text_but_not_in_shape() {
        let a = lex(r#"SELECT "id" FROM "django_content_type" WHERE "id" = 15"#);
        let b = lex(r#"SELECT  "id"   FROM "django_content_type"
                       WHERE "id" = 13"#);
        assert_ne!(a.exact, b.exact);
        assert_eq!(a.shape, b.shape);
        assert_eq!(a.literals, vec!["15"]);
        assert_eq!(b.literals, vec!["13"]);
    }

    #[test]
    fn whitespace_alone_does_not_change_the_exact_text() {
        let a = lex("SELECT 1 ,  'a  b'");
        let b = lex("SELECT\n\t1,'a  b'");
        assert_eq!(a.exact, b.exact);
        assert_eq!(a.literals, vec!["1", "'a  b'"]);
    }

    #[test]
    fn every_kind_of_string_literal_is_one_token() {
        let l = lex(
            "SELECT 'it''s', E'a\\'b', $$x 'y' $$, $fn$ body $fn$, X'ff', U&'d', tab1.col2, $1",
        );
        assert_eq!(
            l.literals,
            vec![
                "'it''s'",
                "E'a\\'b'",
                "$$x 'y' $$",
                "$fn$ body $fn$",
                "X'ff'",
                "U&'d'"
            ]
        );
        assert_eq!(l.shape, "SELECT ? , ? , ? , ? , ? , ? , tab1 . col2 , $1");
    }

    #[test]
    fn numbers_and_comments() {
        let l = lex("SELECT 1.5e3, .5, 0x1F -- trailing\n/* a /* nested */ one */ FROM t");
        assert_eq!(l.literals, vec!["1.5e3", ".5", "0x1F"]);
        assert_eq!(l.shape, "SELECT ? , ? , ? FROM t");
        assert!(l.exact.contains("-- trailing"));
    }

    #[test]
    fn unterminated_input_does_not_panic() {
        for text in [
            "'open",
            "E'\\",
            "$tag$ never closed",
            "/* open",
            "\"id",
            "é'",
            "$",
        ] {
            let _ = lex(text);
        }
    }
}
