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

/// A table of the types the first one lacks; the JSON's keys are not in
/// jsonb's order, so the mock must print them as the server does.
const KINDS_SEED: &str = r#"CREATE TABLE kinds (small int2, big int8, ratio float4, ref uuid,
  doc jsonb, day date, at timestamp, clock time, code char(5));
INSERT INTO kinds VALUES
  (-3, 9007199254740993, 0.25, '6f1c1b8e-5f0a-4d39-9a57-0c5b4c7b2a11',
   '{"bb": [true, null], "a": 1, "nested": {"x": "quote \" and \\ back"}}',
   '2026-04-22', '2026-04-22 10:11:12.25', '10:11:12.5', 'ab'),
  (7, -1, -1.5e-07, '00000000-0000-0000-0000-000000000000', '[1, "two"]',
   '1999-12-31', '1999-12-31 23:59:59.999999', '00:00:00', 'xyz');"#;

const KINDS: &str =
    "SELECT small, big, ratio, ref, doc, day, at, clock, code FROM kinds ORDER BY small";

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

type Binary = (Vec<u32>, Vec<Vec<Option<Raw>>>);

/// Every row's raw values and the columns' type OIDs, for the statement
/// with parameters and the one without.
async fn binary_answers(client: &tokio_postgres::Client) -> (Binary, Binary) {
    (
        binary_answer(client, ALL_TYPES, &[&2i64]).await,
        binary_answer(client, KINDS, &[]).await,
    )
}

async fn binary_answer(
    client: &tokio_postgres::Client,
    sql: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Binary {
    let rows = client.query(sql, params).await.expect("answered");
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

type Text = (Vec<Vec<Option<String>>>, Option<u64>);

async fn text_answers(client: &tokio_postgres::Client) -> (Text, Text) {
    (
        text_answer(client, SIMPLE).await,
        text_answer(client, KINDS).await,
    )
}

async fn text_answer(client: &tokio_postgres::Client, sql: &str) -> Text {
    let messages = client.simple_query(sql).await.expect("answered");
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
    pg.psql(KINDS_SEED);
    let (real, connection) = tokio_postgres::connect(&pg.conn_str(), NoTls)
        .await
        .expect("connects");
    tokio::spawn(async move {
        let _ = connection.await;
    });
    let real_binary = binary_answers(&real).await;
    let real_text = text_answers(&real).await;
    drop(real);
    pg.stop();

    let replay = serve().await;
    let mock = connect(replay.addr).await;
    let mock_binary = binary_answers(&mock).await;
    assert_eq!(real_binary.0 .1.len(), 2, "the real server answered rows");
    assert_eq!(real_binary.1 .1.len(), 2, "the real server answered rows");
    assert_eq!(mock_binary.0, real_binary.0);
    assert_eq!(mock_binary.1, real_binary.1);
    let mock_text = text_answers(&mock).await;
    assert_eq!(mock_text.0, real_text.0);
    assert_eq!(mock_text.1, real_text.1);
}
