//! What a recorded statement's text says about itself: its `$N`
//! placeholders and the transaction status it leaves.

/// The highest `$N` placeholder in `sql`, outside quotes, quoted
/// identifiers, dollar-quoted strings and comments; 0 when there is none.
///
/// Keploy's `sqlNormalized` is the statement as the client sent it in
/// recent versions, and a normalised form (literals replaced by `$N`) in
/// older ones. A placeholder numbered past the recorded bind values can
/// only be a literal that was normalised away.
pub fn max_placeholder(sql: &str) -> usize {
    let b = sql.as_bytes();
    let mut max = 0;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\'' | b'"' => i = skip_quoted(b, i, b[i]),
            b'-' if b.get(i + 1) == Some(&b'-') => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
            }
            b'/' if b.get(i + 1) == Some(&b'*') => {
                i = sql[i + 2..]
                    .find("*/")
                    .map_or(b.len(), |end| i + 2 + end + 2);
            }
            b'$' if i == 0 || !is_ident(b[i - 1]) => {
                let digits = b[i + 1..].iter().take_while(|c| c.is_ascii_digit()).count();
                if digits > 0 {
                    let n: usize = sql[i + 1..i + 1 + digits].parse().unwrap_or(usize::MAX);
                    max = max.max(n);
                    i += 1 + digits;
                } else {
                    i = skip_dollar_quoted(sql, i);
                }
            }
            _ => i += 1,
        }
    }
    max
}

fn is_ident(c: u8) -> bool {
    c.is_ascii_alphanumeric() || c == b'_' || c >= 0x80
}

/// Past a `'...'` or `"..."` (doubled quotes escape themselves).
fn skip_quoted(b: &[u8], start: usize, quote: u8) -> usize {
    let mut i = start + 1;
    while i < b.len() {
        if b[i] == quote {
            if b.get(i + 1) == Some(&quote) {
                i += 2;
                continue;
            }
            return i + 1;
        }
        i += 1;
    }
    b.len()
}

/// Past a `$tag$...$tag$` string starting at `start`; one byte on when
/// the `$` opens none.
fn skip_dollar_quoted(sql: &str, start: usize) -> usize {
    let rest = &sql[start + 1..];
    let tag_len = rest
        .bytes()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == b'_')
        .count();
    if rest.as_bytes().get(tag_len) != Some(&b'$') {
        return start + 1;
    }
    let delimiter = &sql[start..start + tag_len + 2];
    let body = start + delimiter.len();
    sql[body..]
        .find(delimiter)
        .map_or(sql.len(), |end| body + end + delimiter.len())
}

/// The status ReadyForQuery reports after `sql` ran from `before`:
/// BEGIN/START open a transaction, COMMIT/ROLLBACK/END/ABORT close it
/// (ROLLBACK TO SAVEPOINT does not), anything else leaves it as it was.
pub fn status_after(sql: &str, before: char) -> char {
    let words: Vec<String> = sql
        .split(|c: char| c.is_whitespace() || c == ';')
        .filter(|w| !w.is_empty())
        .take(2)
        .map(str::to_ascii_uppercase)
        .collect();
    match words.first().map(String::as_str) {
        Some("BEGIN") | Some("START") => 'T',
        Some("ROLLBACK") | Some("ABORT") if !words.get(1).is_some_and(|w| w == "TO") => 'I',
        Some("COMMIT") | Some("END") => 'I',
        _ => before,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_counted_outside_quotes_and_comments() {
        assert_eq!(max_placeholder("select 1"), 0);
        assert_eq!(
            max_placeholder("select * from t where a = $1 and b = $2"),
            2
        );
        assert_eq!(max_placeholder("select '$3', \"$4\" -- $5\n, $1"), 1);
        assert_eq!(max_placeholder("select $f$ $9 $f$, a$2 /* $7 */ from t"), 0);
        assert_eq!(max_placeholder("select $10"), 10);
    }

    #[test]
    fn transaction_statements_move_the_status() {
        assert_eq!(status_after("BEGIN", 'I'), 'T');
        assert_eq!(status_after("start transaction", 'I'), 'T');
        assert_eq!(status_after("COMMIT", 'T'), 'I');
        assert_eq!(status_after("ROLLBACK TO SAVEPOINT s1", 'T'), 'T');
        assert_eq!(status_after("SELECT 1", 'T'), 'T');
    }
}
