//! What makes two exchanges "the same request".
//!
//! A simple Query is its full text, literals included (whitespace between
//! tokens normalised). An extended-protocol exchange is the sequence of its
//! messages with every statement reference replaced by the statement's
//! text, plus Bind values and formats. Statement and portal *names* are left
//! out: a client names them differently at replay (a new connection starts
//! again at `s0`, a pool spreads statements over other connections).
//!
//! COPY rows are not part of the identity: the server must answer the COPY
//! command before the client sends its rows, so the look-up happens first.
//! An exchange that holds a COPY command and its rows is identified by what
//! precedes the rows; an exchange that *starts* with rows (a recorder that
//! cut at the Sync before them) by its CopyDone/CopyFail marker and what
//! follows.
//!
//! Keys are length-prefixed byte strings so no text can forge a separator.

use std::collections::HashMap;

use super::lexer::lex;
use crate::testset::pg_mock::{Format, FrontendMsg, PgValue, Target};

/// The statement texts a connection has prepared, by name (`""` is the
/// unnamed statement). Kept per connection by the caller.
pub type Statements = HashMap<String, String>;

/// A client exchange reduced to what matching needs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Hash key of the exact identity.
    pub exact: Vec<u8>,
    /// Hash key of the shape: literals and Bind values abstracted.
    pub shape: Vec<u8>,
    /// Literal values and Bind parameters, in order, for scoring fallbacks.
    pub literals: Vec<String>,
    /// A readable one-line summary (the statement texts) for reports.
    pub display: String,
    /// Whether the exchange runs anything (Query, Execute, FunctionCall);
    /// one that only prepares or describes has a data-independent answer.
    pub executes: bool,
}

/// Why an exchange cannot be identified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdentityError {
    /// A Bind or Describe names a statement this connection never prepared.
    #[error("prepared statement \"{0}\" does not exist on this connection")]
    UnknownStatement(String),
}

struct Builder {
    exact: Vec<u8>,
    shape: Vec<u8>,
    literals: Vec<String>,
    display: Vec<String>,
}

impl Builder {
    fn part(&mut self, exact: &[u8], shape: &[u8]) {
        put(&mut self.exact, exact);
        put(&mut self.shape, shape);
    }
    fn same(&mut self, both: &[u8]) {
        self.part(both, both);
    }
}

fn put(key: &mut Vec<u8>, part: &[u8]) {
    key.extend_from_slice(&(part.len() as u64).to_le_bytes());
    key.extend_from_slice(part);
}

fn formats(fs: &[Format]) -> Vec<u8> {
    fs.iter()
        .map(|f| match f {
            Format::Text => b't',
            Format::Binary => b'b',
        })
        .collect()
}

fn value_bytes(v: &PgValue) -> Vec<u8> {
    match v {
        PgValue::Null => vec![b'N'],
        PgValue::Text(s) => [b"T".as_slice(), s.as_bytes()].concat(),
        PgValue::Bytes { base64 } => [b"B".as_slice(), base64.as_bytes()].concat(),
    }
}

fn value_text(v: &PgValue) -> String {
    match v {
        PgValue::Null => "NULL".to_string(),
        PgValue::Text(s) => s.clone(),
        PgValue::Bytes { base64 } => format!("base64:{base64}"),
    }
}

/// Computes the identity of `requests`, resolving statement names through
/// `statements` and recording the exchange's own Parse messages there (so a
/// later exchange of the same connection can Bind them).
///
/// A recorded Bind whose Parse is not in `statements` falls back to the
/// text the recorder resolved for it (`statement_query`): the index is built
/// mock by mock, so an earlier exchange's Parse may be out of reach.
pub fn identify(
    requests: &[FrontendMsg],
    statements: &mut Statements,
) -> Result<Identity, IdentityError> {
    let mut b = Builder {
        exact: Vec::with_capacity(128),
        shape: Vec::with_capacity(128),
        literals: Vec::new(),
        display: Vec::new(),
    };
    let copy_start = requests.iter().position(is_copy_stream);
    let requests = match copy_start {
        Some(start) if start > 0 => &requests[..start],
        _ => requests,
    };
    let executes = requests.iter().any(|m| {
        matches!(
            m,
            FrontendMsg::Query { .. }
                | FrontendMsg::Execute { .. }
                | FrontendMsg::FunctionCall { .. }
        )
    });
    for msg in requests {
        match msg {
            FrontendMsg::Query { query } => {
                let l = lex(query);
                b.same(b"Q");
                b.part(l.exact.as_bytes(), l.shape.as_bytes());
                b.literals.extend(l.literals);
                b.display.push(l.exact);
            }
            FrontendMsg::Parse {
                name,
                query,
                param_types,
            } => {
                let l = lex(query);
                b.same(b"P");
                b.part(l.exact.as_bytes(), l.shape.as_bytes());
                let types: Vec<u8> = param_types.iter().flat_map(|t| t.to_le_bytes()).collect();
                b.same(&types);
                b.literals.extend(l.literals);
                b.display.push(l.exact);
                statements.insert(name.clone(), query.clone());
            }
            FrontendMsg::Bind {
                statement,
                statement_query,
                param_formats,
                params,
                result_formats,
                ..
            } => {
                let text = match statements.get(statement) {
                    Some(t) => t.clone(),
                    None => match statement_query {
                        Some(t) => t.clone(),
                        None => return Err(IdentityError::UnknownStatement(statement.clone())),
                    },
                };
                let l = lex(&text);
                b.same(b"B");
                b.part(l.exact.as_bytes(), l.shape.as_bytes());
                b.same(&formats(param_formats));
                b.same(&formats(result_formats));
                b.same(&(params.len() as u64).to_le_bytes());
                for p in params {
                    put(&mut b.exact, &value_bytes(p));
                    b.literals.push(value_text(p));
                }
                b.literals.extend(l.literals);
                if b.display.last() != Some(&l.exact) {
                    b.display.push(l.exact);
                }
            }
            FrontendMsg::Describe { target, name } => match target {
                Target::Statement => {
                    let text = statements
                        .get(name)
                        .ok_or_else(|| IdentityError::UnknownStatement(name.clone()))?;
                    let l = lex(text);
                    b.same(b"DS");
                    b.part(l.exact.as_bytes(), l.shape.as_bytes());
                }
                Target::Portal => b.same(b"DP"),
            },
            FrontendMsg::Execute { max_rows, .. } => {
                b.same(b"E");
                b.same(&max_rows.to_le_bytes());
            }
            FrontendMsg::Close { target, name } => match target {
                Target::Statement => {
                    // Closing a statement this connection never prepared is
                    // legal (PostgreSQL answers CloseComplete): keep the name
                    // out, the text when known.
                    let text = statements.remove(name).unwrap_or_default();
                    let l = lex(&text);
                    b.same(b"CS");
                    b.part(l.exact.as_bytes(), l.shape.as_bytes());
                }
                Target::Portal => b.same(b"CP"),
            },
            FrontendMsg::Sync => b.same(b"S"),
            FrontendMsg::Flush => b.same(b"H"),
            FrontendMsg::FunctionCall {
                function_oid,
                arg_formats,
                args,
                result_format,
            } => {
                b.same(b"F");
                b.same(&function_oid.to_le_bytes());
                b.same(&formats(arg_formats));
                b.same(&formats(&[*result_format]));
                for a in args {
                    put(&mut b.exact, &value_bytes(a));
                    b.literals.push(value_text(a));
                }
                b.display.push(format!("function call {function_oid}"));
            }
            FrontendMsg::CopyDone => b.same(b"CD"),
            FrontendMsg::CopyFail { .. } => b.same(b"CF"),
            // Rows are compared after the look-up; startup and Terminate are
            // handled by the server, not matched.
            FrontendMsg::CopyData { .. } | FrontendMsg::Startup { .. } | FrontendMsg::Terminate => {
            }
        }
    }
    Ok(Identity {
        exact: b.exact,
        shape: b.shape,
        literals: b.literals,
        display: b.display.join("; "),
        executes,
    })
}

/// Part of a COPY FROM STDIN row stream.
pub fn is_copy_stream(msg: &FrontendMsg) -> bool {
    matches!(
        msg,
        FrontendMsg::CopyData { .. } | FrontendMsg::CopyDone | FrontendMsg::CopyFail { .. }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(name: &str, q: &str) -> FrontendMsg {
        FrontendMsg::Parse {
            name: name.into(),
            query: q.into(),
            param_types: vec![],
        }
    }

    fn bind(stmt: &str, value: &str) -> FrontendMsg {
        FrontendMsg::Bind {
            portal: String::new(),
            statement: stmt.into(),
            statement_query: None,
            param_formats: vec![Format::Text],
            params: vec![PgValue::Text(value.into())],
            result_formats: vec![],
        }
    }

    #[test]
    fn statement_names_do_not_matter_but_texts_and_values_do() {
        let q = "SELECT * FROM t WHERE id = $1";
        let mut rec = Statements::new();
        let a = identify(
            &[parse("s0", q), bind("s0", "15"), FrontendMsg::Sync],
            &mut rec,
        )
        .expect("identity");
        let mut live = Statements::new();
        let b = identify(
            &[parse("s7", q), bind("s7", "15"), FrontendMsg::Sync],
            &mut live,
        )
        .expect("identity");
        assert_eq!(a.exact, b.exact);
        let c = identify(&[bind("s7", "13"), FrontendMsg::Sync], &mut live).expect("identity");
        let d = identify(&[bind("s0", "15"), FrontendMsg::Sync], &mut rec).expect("identity");
        assert_ne!(c.exact, d.exact, "different bind values differ");
        assert_eq!(c.shape, d.shape, "but share a shape");
    }

    #[test]
    fn an_unknown_statement_is_an_error() {
        let mut s = Statements::new();
        assert_eq!(
            identify(&[bind("nope", "1")], &mut s),
            Err(IdentityError::UnknownStatement("nope".into()))
        );
    }

    #[test]
    fn simple_queries_keep_their_literals() {
        let mut s = Statements::new();
        let a = identify(
            &[FrontendMsg::Query {
                query: "SELECT 1 WHERE 'projects' = 'projects'".into(),
            }],
            &mut s,
        )
        .expect("identity");
        assert_eq!(a.literals, vec!["1", "'projects'", "'projects'"]);
    }
}
