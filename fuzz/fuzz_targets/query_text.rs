//! Query text as a client may send it: lexed for matching and classified
//! for the recorder.
#![no_main]

use libfuzzer_sys::fuzz_target;
use recplay_proxy::pg::matcher::lexer::lex;
use recplay_proxy::testset::pg_exchange::lifetime::is_session_sql;

fuzz_target!(|data: &[u8]| {
    let sql = String::from_utf8_lossy(data);
    let l = lex(&sql);
    let kept: String = l
        .exact
        .chars()
        .filter(|c| !c.is_ascii_whitespace())
        .collect();
    let given: String = sql.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    assert_eq!(kept, given);
    let _ = is_session_sql(&sql);
});
