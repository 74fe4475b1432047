//! Real clients, each returning a transcript of everything it saw.

use std::net::SocketAddr;
use std::process::Command;

use futures_util::future::join_all;

use crate::support::pg::pg_bin;
use crate::support::python::test_venv;

/// psql's output (or its error, SQLSTATE included) for `sql`, as simple
/// Queries.
pub fn psql(addr: SocketAddr, sql: &str) -> String {
    let out = Command::new(pg_bin("psql"))
        .args(["-X", "-A", "-t", "-v", "VERBOSITY=verbose", "-h"])
        .arg(addr.ip().to_string())
        .args([
            "-p",
            &addr.port().to_string(),
            "-U",
            "postgres",
            "-d",
            "postgres",
            "-c",
            sql,
        ])
        .env("PGSSLMODE", "disable")
        .env("PGCONNECT_TIMEOUT", "10")
        .output()
        .expect("run psql");
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

const PSYCOPG2: &str = r#"
import sys, psycopg2
conn = psycopg2.connect(host=sys.argv[1], port=int(sys.argv[2]), user="postgres",
                        dbname="postgres", connect_timeout=10)
conn.autocommit = True
cur = conn.cursor()
for sql in sys.argv[3:]:
    try:
        cur.execute(sql)
        print(repr(cur.fetchall() if cur.description else cur.statusmessage))
    except psycopg2.Error as e:
        print("error", e.pgcode, str(e).splitlines()[0])
"#;

/// What psycopg2 (simple protocol, literals inlined, TLS tried first as
/// its default asks) got for each of `sqls`.
pub fn psycopg2(addr: SocketAddr, sqls: &[&str]) -> String {
    let venv = test_venv();
    let out = Command::new(venv.join("bin/python"))
        .args([
            "-c",
            PSYCOPG2,
            &addr.ip().to_string(),
            &addr.port().to_string(),
        ])
        .args(sqls)
        .output()
        .expect("run python");
    assert!(
        out.status.success(),
        "psycopg2 script failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub fn login(addr: SocketAddr, user: &str, password: &str) -> String {
    format!(
        "host={} port={} user={user} password={password} dbname=postgres",
        addr.ip(),
        addr.port()
    )
}

/// Connects tokio-postgres and drives its connection in a task.
pub async fn connect(conn: &str) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(conn, tokio_postgres::NoTls)
        .await
        .expect("connects");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    client
}

fn rows_of(rows: &[tokio_postgres::Row]) -> String {
    let rows: Vec<String> = rows
        .iter()
        .map(|r| {
            let id: i32 = r.get(0);
            let name: String = r.get(1);
            let price: Option<f64> = r.get(2);
            format!("({id}, {name}, {price:?})")
        })
        .collect();
    rows.join(" ")
}

/// The extended protocol through tokio-postgres: typed parameters, a
/// statement prepared once and run twice, an error, and a pipelined batch
/// (queries issued together go out in one write).
pub async fn extended(client: &tokio_postgres::Client) -> Vec<String> {
    let mut seen = Vec::new();
    let by_id = "SELECT id, name, price FROM items WHERE id = $1";
    let rows = client.query(by_id, &[&2i32]).await.expect("query");
    seen.push(rows_of(&rows));
    let prepared = client
        .prepare("SELECT id, name, price FROM items WHERE price > $1 ORDER BY id")
        .await
        .expect("prepare");
    for min in [2.0f64, 4.5] {
        let rows = client.query(&prepared, &[&min]).await.expect("query");
        seen.push(rows_of(&rows));
    }
    match client.query("SELECT * FROM no_such_table", &[]).await {
        Ok(_) => seen.push("no error".into()),
        Err(e) => seen.push(format!(
            "error {:?}",
            e.as_db_error()
                .map(|d| (d.code().code().to_string(), d.message().to_string()))
        )),
    }
    let ids: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&1i32, &3i32, &5i32];
    let params: Vec<[&(dyn tokio_postgres::types::ToSql + Sync); 1]> =
        ids.iter().map(|id| [*id]).collect();
    let results = join_all(params.iter().map(|p| client.query(by_id, p))).await;
    for r in results {
        seen.push(rows_of(&r.expect("pipelined query")));
    }
    seen
}

/// One simple Query's data rows, as text.
pub async fn simple_rows(client: &tokio_postgres::Client, sql: &str) -> Vec<Vec<Option<String>>> {
    let messages = client.simple_query(sql).await.expect("simple query");
    crate::support::pg_replay::simple_rows(&messages)
}
