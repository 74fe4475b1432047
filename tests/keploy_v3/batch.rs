//! The one-batch way node-postgres, JDBC and psycopg 3 ask (Parse, Bind,
//! Describe portal, Execute, Sync), spoken as raw protocol bytes since no
//! Rust driver sends it.

use bytes::BytesMut;
use postgres_protocol::message::frontend as pp;
use postgres_protocol::IsNull;

use super::{serve, BY_ID};
use crate::pg_record::RawClient;

/// The values of a DataRow body; `None` is SQL NULL.
fn values(body: &[u8]) -> Vec<Option<Vec<u8>>> {
    let count = i16::from_be_bytes([body[0], body[1]]);
    let mut at = 2;
    (0..count)
        .map(|_| {
            let len = i32::from_be_bytes([body[at], body[at + 1], body[at + 2], body[at + 3]]);
            at += 4;
            let Ok(len) = usize::try_from(len) else {
                return None;
            };
            at += len;
            Some(body[at - len..at].to_vec())
        })
        .collect()
}

/// Sends the batch for `id` (declaring `types` in Parse) and returns the
/// message tags and the rows of the answer.
async fn batch(
    client: &mut RawClient,
    id: i32,
    types: &[u32],
) -> (Vec<u8>, Vec<Vec<Option<Vec<u8>>>>) {
    let mut buf = BytesMut::new();
    pp::parse("", BY_ID, types.iter().copied(), &mut buf).expect("parse");
    pp::bind(
        "",
        "",
        [1i16],
        [id],
        |id, buf| {
            buf.extend_from_slice(&id.to_be_bytes());
            Ok::<_, Box<dyn std::error::Error + Sync + Send>>(IsNull::No)
        },
        Some(1),
        &mut buf,
    )
    .map_err(|_| "bind")
    .expect("bind");
    pp::describe(b'P', "", &mut buf).expect("describe");
    pp::execute("", 0, &mut buf).expect("execute");
    pp::sync(&mut buf);
    client.send(&buf).await;
    let messages = client.read_until_ready().await;
    let tags = messages.iter().map(|m| m.0).collect();
    let rows = messages
        .iter()
        .filter(|m| m.0 == b'D')
        .map(|m| values(&m.1))
        .collect();
    (tags, rows)
}

#[tokio::test]
async fn a_described_portal_batch_gets_its_recorded_answer() {
    let replay = serve().await;
    let mut client = RawClient::start(&replay.addr.to_string()).await;
    for (id, name, types) in [(15i32, "fifteen", &[][..]), (13, "thirteen", &[23][..])] {
        let (tags, rows) = batch(&mut client, id, types).await;
        assert_eq!(
            tags, b"12TDCZ",
            "ParseComplete, BindComplete, RowDescription, DataRow, CommandComplete, ReadyForQuery"
        );
        assert_eq!(
            rows,
            [vec![
                Some(id.to_be_bytes().to_vec()),
                Some(name.as_bytes().to_vec())
            ]]
        );
    }
    let usage = replay.handle.usage_outside_tests();
    assert!(usage.fallbacks.is_empty(), "{:?}", usage.fallbacks);
}
