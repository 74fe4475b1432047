//! Which statements are session-level.
//!
//! Session-level statements (SET, SHOW, BEGIN, COMMIT, DISCARD, ...) change
//! or read connection state rather than data. Any test may replay them, any
//! number of times, so they are recorded with lifetime `session` instead of
//! being tied to the HTTP test that happened to run them first.

/// First keywords of statements that only touch session state.
const SESSION_KEYWORDS: &[&str] = &[
    "SET",
    "SHOW",
    "RESET",
    "BEGIN",
    "START",
    "COMMIT",
    "END",
    "ROLLBACK",
    "ABORT",
    "SAVEPOINT",
    "RELEASE",
    "DISCARD",
    "DEALLOCATE",
    "LISTEN",
    "UNLISTEN",
];

/// Function calls that read or set configuration, as drivers issue them in
/// `SELECT set_config(...)` or `SELECT current_setting(...)`.
const SESSION_FUNCTIONS: &[&str] = &["set_config(", "current_setting("];

// `names_session_function` finds these names by their underscore.
const _: () = {
    let mut i = 0;
    while i < SESSION_FUNCTIONS.len() {
        let name = SESSION_FUNCTIONS[i].as_bytes();
        let mut j = 0;
        while j < name.len() && name[j] != b'_' {
            j += 1;
        }
        assert!(j < name.len(), "a session function without an underscore");
        i += 1;
    }
};

/// Whether every statement in `sql` (one or several, `;`-separated) is
/// session-level. Empty text is not.
pub fn is_session_sql(sql: &str) -> bool {
    if is_plainly_data(sql) {
        return false;
    }
    let statements = split_statements(sql);
    !statements.is_empty() && statements.iter().all(|s| is_session_statement(s))
}

/// A cheap answer for the common case, called once per recorded exchange:
/// text that opens (no comment first) with a data keyword, or with a
/// SELECT that names no configuration function, has a first statement that
/// is data, so not every statement is session-level. Anything else goes
/// through the full split below.
fn is_plainly_data(sql: &str) -> bool {
    let head = sql.trim_start_matches(|c: char| c.is_whitespace() || c == '(');
    if head.starts_with("--") || head.starts_with("/*") {
        return false;
    }
    let end = head
        .find(|c: char| !(c.is_ascii_alphabetic() || c == '_'))
        .unwrap_or(head.len());
    let word = &head[..end];
    if SESSION_KEYWORDS
        .iter()
        .any(|k| k.eq_ignore_ascii_case(word))
    {
        return false;
    }
    if word.eq_ignore_ascii_case("select") {
        return !names_session_function(sql);
    }
    true
}

/// Whether `sql` names one of [`SESSION_FUNCTIONS`], in any case. Every
/// one of them has an underscore, and underscores are rare in SQL text, so
/// only the places around them are compared, in one pass: this runs for
/// every SELECT recorded.
fn names_session_function(sql: &str) -> bool {
    let text = sql.as_bytes();
    // `match_indices` finds each underscore with a word-at-a-time search.
    sql.match_indices('_').any(|(at, _)| {
        SESSION_FUNCTIONS.iter().any(|f| {
            let name = f.trim_end_matches('(').as_bytes();
            name.iter()
                .position(|b| *b == b'_')
                .and_then(|offset| at.checked_sub(offset))
                .and_then(|start| text.get(start..start + name.len()))
                .is_some_and(|window| window.eq_ignore_ascii_case(name))
        })
    })
}

fn is_session_statement(stmt: &str) -> bool {
    let first: String = stmt
        .chars()
        .take_while(|c| c.is_ascii_alphabetic() || *c == '_')
        .collect();
    let first = first.to_ascii_uppercase();
    if SESSION_KEYWORDS.contains(&first.as_str()) {
        return true;
    }
    if first == "SELECT" {
        let lower = stmt.to_ascii_lowercase();
        let lower = lower.replace("pg_catalog.", "");
        let compact: String = lower.chars().filter(|c| !c.is_whitespace()).collect();
        // A FROM clause means rows are read: that is data, not session state.
        return SESSION_FUNCTIONS.iter().any(|f| compact.contains(f))
            && !lower.split_whitespace().any(|w| w == "from");
    }
    false
}

/// Splits on `;` outside quotes, identifiers and comments, and strips each
/// statement's leading whitespace and comments. Dollar quoting is treated as
/// opaque only for the common `$$` form; anything odder just makes a
/// statement look like data, which is the safe side.
fn split_statements(sql: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut chars = sql.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\'' | '"' => {
                current.push(c);
                for d in chars.by_ref() {
                    current.push(d);
                    if d == c {
                        break;
                    }
                }
            }
            '-' if chars.peek() == Some(&'-') => {
                for d in chars.by_ref() {
                    if d == '\n' {
                        break;
                    }
                }
                current.push(' ');
            }
            '/' if chars.peek() == Some(&'*') => {
                chars.next();
                let mut prev = ' ';
                for d in chars.by_ref() {
                    if prev == '*' && d == '/' {
                        break;
                    }
                    prev = d;
                }
                current.push(' ');
            }
            '$' if chars.peek() == Some(&'$') => {
                chars.next();
                current.push_str("$$");
                let mut prev = ' ';
                for d in chars.by_ref() {
                    current.push(d);
                    if prev == '$' && d == '$' {
                        break;
                    }
                    prev = d;
                }
            }
            ';' => out.push(std::mem::take(&mut current)),
            c => current.push(c),
        }
    }
    out.push(current);
    out.into_iter()
        .map(|s| s.trim().trim_start_matches('(').trim().to_string())
        .filter(|s| !s.is_empty())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn session_statements_are_recognised() {
        for sql in [
            "SET TIME ZONE 'UTC'",
            "set search_path = public",
            "SHOW server_version",
            "BEGIN",
            "begin isolation level serializable",
            "START TRANSACTION",
            "COMMIT",
            "ROLLBACK TO SAVEPOINT s1",
            "SAVEPOINT s1",
            "RELEASE SAVEPOINT s1",
            "DISCARD ALL",
            "DEALLOCATE pdo_stmt_1",
            "SELECT set_config('search_path', 'app', false)",
            "SELECT pg_catalog.set_config('search_path', '', false)",
            "select CURRENT_SETTING('TimeZone')",
            "  -- driver preamble\n SET client_encoding TO 'UTF8'; SET datestyle TO ISO",
        ] {
            assert!(is_session_sql(sql), "{sql}");
        }
    }

    #[test]
    fn data_statements_are_not() {
        for sql in [
            "SELECT * FROM orders WHERE id = 15",
            "INSERT INTO t VALUES ('SET')",
            "BEGIN; INSERT INTO t VALUES (1); COMMIT",
            "UPDATE settings SET value = 'x'",
            "SELECT set_config('a', value, false) FROM settings",
            "",
            "WITH x AS (SELECT 1) SELECT * FROM x",
        ] {
            assert!(!is_session_sql(sql), "{sql}");
        }
    }
}
