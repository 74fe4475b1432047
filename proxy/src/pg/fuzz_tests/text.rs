//! Query text as clients send it, which need not be valid SQL: the lexer,
//! the identity keys built from it and session-statement detection must
//! accept anything, keep every byte that is not layout, and stay linear.

use std::time::{Duration, Instant};

use super::Rng;
use crate::pg::matcher::identity::{identify, Statements};
use crate::pg::matcher::lexer::lex;
use crate::testset::pg_exchange::lifetime::is_session_sql;
use crate::testset::pg_mock::{Format, FrontendMsg, PgValue, Target};

/// Fragments that open, close or escape something, plus text the lexer
/// must keep whole.
const PIECES: &[&str] = &[
    "'",
    "''",
    "\"",
    "$$",
    "$a$",
    "$tag$",
    "$1",
    "$",
    "/*",
    "*/",
    "--",
    "\n",
    "E'",
    "e'",
    "U&'",
    "X'",
    "\\",
    "\\'",
    "é",
    "€",
    "😀",
    "\0",
    " ",
    "\t",
    "SELECT",
    "set",
    "FROM",
    "BEGIN",
    ";",
    "(",
    ")",
    "0x1F",
    "1.5e",
    "1e+",
    ".5",
    ".",
    "_",
    "set_config(",
    "current_setting(",
    "x",
    "42",
    "?",
    "&",
    "\r",
];

fn random_sql(rng: &mut Rng, max_pieces: usize) -> String {
    let mut s = String::new();
    for _ in 0..rng.below(max_pieces + 1) {
        if rng.below(8) == 0 {
            s.push(char::from_u32(rng.below(0x2_0000) as u32).unwrap_or('\u{fffd}'));
        } else {
            s.push_str(rng.pick::<&str>(PIECES));
        }
    }
    s
}

fn without_layout(s: &str) -> String {
    s.chars().filter(|c| !c.is_ascii_whitespace()).collect()
}

/// The exact form drops only whitespace between tokens, the shape holds a
/// `?` for every literal, and every literal is text from the query.
fn check_lex(sql: &str) {
    let l = lex(sql);
    assert_eq!(
        without_layout(&l.exact),
        without_layout(sql),
        "the exact form lost or added text: {sql:?}"
    );
    let marks = l.shape.split(' ').filter(|t| *t == "?").count();
    assert!(
        marks >= l.literals.len(),
        "{} literals but {marks} placeholders: {sql:?}",
        l.literals.len()
    );
    for literal in &l.literals {
        assert!(!literal.is_empty() && sql.contains(literal.as_str()));
    }
}

#[test]
fn lexing_arbitrary_text_keeps_every_token() {
    let mut rng = Rng::new(0x5E);
    for _ in 0..20_000 {
        let sql = random_sql(&mut rng, 24);
        check_lex(&sql);
        let _ = is_session_sql(&sql);
    }
}

/// Work must grow linearly: each input here, a megabyte of something that
/// opens and never closes, or nests, or repeats a delimiter, is lexed and
/// classified well within the limit even in a debug build.
#[test]
fn pathological_text_is_handled_in_linear_time() {
    const SIZE: usize = 1 << 20;
    let repeat = |unit: &str| unit.repeat(SIZE / unit.len());
    let inputs = [
        repeat("/*"),
        repeat("'"),
        repeat("$"),
        repeat("$a"),
        repeat("$ab"),
        repeat("E'\\"),
        repeat("--"),
        repeat("é"),
        repeat("\0"),
        format!("$x${}", repeat("$x")),
        format!("/*{}", repeat("*")),
        format!("$tag$ {}", repeat("$ta")),
        format!("SELECT {}", repeat("(")),
        repeat("1."),
        repeat(";"),
        repeat("set_config"),
    ];
    for sql in &inputs {
        let started = Instant::now();
        check_lex(sql);
        let _ = is_session_sql(sql);
        let took = started.elapsed();
        assert!(
            took < Duration::from_secs(5),
            "{took:?} for a megabyte starting {:?}",
            sql.chars().take(8).collect::<String>()
        );
    }
}

fn random_exchange(rng: &mut Rng) -> Vec<FrontendMsg> {
    let names = ["", "s1", "s2"];
    (0..1 + rng.below(6))
        .map(|_| match rng.below(8) {
            0 => FrontendMsg::Query {
                query: random_sql(rng, 8),
            },
            1 => FrontendMsg::Parse {
                name: rng.pick(&names).to_string(),
                query: random_sql(rng, 8),
                param_types: vec![23; rng.below(3)],
            },
            2 => FrontendMsg::Bind {
                portal: String::new(),
                statement: rng.pick(&names).to_string(),
                statement_query: (rng.below(2) == 0).then(|| random_sql(rng, 4)),
                param_formats: vec![Format::Binary; rng.below(2)],
                params: vec![PgValue::Text(random_sql(rng, 2)), PgValue::Null],
                result_formats: vec![],
            },
            3 => FrontendMsg::Describe {
                target: *rng.pick(&[Target::Statement, Target::Portal]),
                name: rng.pick(&names).to_string(),
            },
            4 => FrontendMsg::Close {
                target: *rng.pick(&[Target::Statement, Target::Portal]),
                name: rng.pick(&names).to_string(),
            },
            5 => FrontendMsg::Execute {
                portal: String::new(),
                max_rows: 0,
            },
            6 => FrontendMsg::CopyData {
                data: PgValue::Text(random_sql(rng, 2)),
            },
            _ => FrontendMsg::Sync,
        })
        .collect()
}

/// Identity never panics, is a function of the exchange and the statements
/// known, and its keys cannot be forged: two different query texts never
/// share an exact key.
#[test]
fn identities_of_arbitrary_exchanges() {
    let mut rng = Rng::new(0x1D);
    let mut statements = Statements::new();
    for _ in 0..5_000 {
        let exchange = random_exchange(&mut rng);
        let mut again = statements.clone();
        let first = identify(&exchange, &mut statements);
        assert_eq!(first, identify(&exchange, &mut again));
        assert_eq!(statements, again);
        if statements.len() > 16 {
            statements.clear();
        }
    }
    for _ in 0..5_000 {
        let a = random_sql(&mut rng, 6);
        let b = random_sql(&mut rng, 6);
        let key = |q: &str| {
            identify(
                &[FrontendMsg::Query {
                    query: q.to_string(),
                }],
                &mut Statements::new(),
            )
            .expect("a Query names no statement")
        };
        let (ka, kb) = (key(&a), key(&b));
        if lex(&a).exact != lex(&b).exact {
            assert_ne!(ka.exact, kb.exact, "{a:?} and {b:?} share a key");
        }
    }
}
