//! The converted answers against a real PostgreSQL holding the rows the
//! fixture records: every value's bytes, text and binary, must be the ones
//! the server sends, so a client cannot tell the mock from the database.

use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{NoTls, SimpleQueryMessage};

use super::{serve, simple_rows, ALL_TYPES, SIMPLE};
use crate::support::pg::PgCluster;
use crate::support::pg_replay::connect;

const SEED: &str = "ALTER DATABASE postgres SET timezone TO 'UTC';
CREATE TABLE items (id int PRIMARY KEY, name text NOT NULL, price float8, amount numeric,
  active bool, created_at timestamptz, data bytea, note varchar(64));
INSERT INTO items VALUES
  (1, 'alpha', 1.25, 10.50, true, '2026-04-22 10:11:12.5+00', '\\x00ff', NULL),
  (2, 'beta', 2.5, -7, false, '2026-04-23 00:00:00+00', NULL, 'it''s \"quoted\"'),
  (3, '', 0.1, 0.001, true, '2026-04-24 23:59:59.000001+00', '\\xdeadbeef', '');";

/// A column's bytes exactly as they arrived, whatever its type.
#[derive(Debug, PartialEq)]
struct Raw(Vec<u8>);

impl<'a> FromSql<'a> for Raw {
    fn from_sql(_: &Type, raw: &'a [u8]) -> Result<Self, Box<dyn std::error::Error + Sync + Send>> {
        Ok(Raw(raw.to_vec()))
    }

    fn accepts(_: &Type) -> bool {
        true
    }
}

/// Every row's raw values and the columns' type OIDs.
async fn binary_answer(client: &tokio_postgres::Client) -> (Vec<u32>, Vec<Vec<Option<Raw>>>) {
    let rows = client.query(ALL_TYPES, &[&2i64]).await.expect("answered");
    let types = rows
        .first()
        .map(|r| r.columns().iter().map(|c| c.type_().oid()).collect())
        .unwrap_or_default();
    let values = rows
        .iter()
        .map(|r| (0..r.len()).map(|i| r.get::<_, Option<Raw>>(i)).collect())
        .collect();
    (types, values)
}

async fn text_answer(client: &tokio_postgres::Client) -> (Vec<Vec<Option<String>>>, Option<u64>) {
    let messages = client.simple_query(SIMPLE).await.expect("answered");
    let tag = messages.iter().find_map(|m| match m {
        SimpleQueryMessage::CommandComplete(n) => Some(*n),
        _ => None,
    });
    (simple_rows(&messages), tag)
}

#[tokio::test]
async fn converted_answers_are_byte_for_byte_what_postgresql_sends() {
    let pg = PgCluster::start();
    pg.psql(SEED);
    let (real, connection) = tokio_postgres::connect(&pg.conn_str(), NoTls)
        .await
        .expect("connects");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let real_binary = binary_answer(&real).await;
    let real_text = text_answer(&real).await;
    drop(real);
    pg.stop();

    let replay = serve().await;
    let mock = connect(replay.addr).await;
    let mock_binary = binary_answer(&mock).await;
    assert_eq!(real_binary.1.len(), 2, "the real server answered rows");
    assert_eq!(mock_binary, real_binary);
    assert_eq!(text_answer(&mock).await, real_text);
}
