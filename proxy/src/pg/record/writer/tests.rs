//! The writer fed with events as connections send them.

use bytes::Bytes;

use super::*;
use crate::pg::encode::encode_backend;
use crate::pg::frontend::FrontendMessage as F;
use crate::testset::pg_mock::{BackendMsg, PgValue};

fn opened(progress: &Arc<Progress>) -> Event {
    Event::Opened {
        connection: 1,
        startup: F::Startup {
            protocol: crate::pg::frontend::PROTOCOL_3_0,
            parameters: vec![("user".into(), "app".into())],
        },
        at: Utc::now(),
        progress: Arc::clone(progress),
    }
}

fn wire(messages: &[BackendMsg]) -> Vec<u8> {
    let mut buf = BytesMut::new();
    for m in messages {
        encode_backend(m, &mut buf).expect("encode");
    }
    buf.to_vec()
}

fn ready() -> BackendMsg {
    BackendMsg::ReadyForQuery { status: 'I' }
}

/// Runs events through the writer's state; returns the mocks completed.
fn run(events: Vec<Event>) -> Vec<MockSpec> {
    let mut connections = FastMap::default();
    let mut completed = Vec::new();
    for e in events {
        take(e, &mut connections, &TestWindows::new(), &mut completed);
    }
    completed
}

#[test]
fn answers_split_anywhere_across_reads_make_the_same_mock() {
    let startup_answer = wire(&[BackendMsg::AuthenticationOk, ready()]);
    let answer = wire(&[
        BackendMsg::RowDescription { fields: vec![] },
        BackendMsg::DataRow {
            values: vec![PgValue::Text("a value".into())],
        },
        BackendMsg::CommandComplete {
            tag: "SELECT 1".into(),
        },
        ready(),
    ]);
    let mut query_bytes = BytesMut::new();
    postgres_protocol::message::frontend::query("SELECT 'a value'", &mut query_bytes)
        .expect("encode");
    let query = || Event::Traffic {
        connection: 1,
        from: Side::Client,
        bytes: query_bytes.clone().freeze(),
        at: Utc::now(),
    };
    let server = |bytes: &[u8]| Event::Traffic {
        connection: 1,
        from: Side::Server,
        bytes: Bytes::copy_from_slice(bytes),
        at: Utc::now(),
    };
    let progress = Arc::new(Progress::default());
    let whole = run(vec![
        opened(&progress),
        server(&startup_answer),
        query(),
        server(&answer),
    ]);
    assert_eq!(whole.len(), 2);
    for cut in 1..answer.len() {
        let split = run(vec![
            opened(&progress),
            server(&startup_answer),
            query(),
            server(&answer[..cut]),
            server(&answer[cut..]),
        ]);
        assert_eq!(split.len(), 2, "cut at {cut}");
        assert_eq!(split[1].responses, whole[1].responses, "cut at {cut}");
    }
}

#[tokio::test]
async fn a_connection_learns_when_the_writer_has_caught_up_and_nothing_is_in_flight() {
    let (queue, mut events) = tokio::sync::mpsc::channel(16);
    let feed = super::super::handover::Feed::new(1, queue);
    let progress = Arc::clone(feed.progress());
    let mut connections = FastMap::default();
    let mut completed = Vec::new();
    let windows = TestWindows::new();
    let mut take_next = async |connections: &mut FastMap<u64, Followed>,
                               completed: &mut Vec<MockSpec>| {
        let event = events.recv().await.expect("an event");
        take(event, connections, &windows, completed);
    };

    feed.send(opened(&progress)).await;
    assert!(!progress.is_caught_up() && !progress.is_idle());
    take_next(&mut connections, &mut completed).await;
    // Caught up, but the start-up exchange waits for its ReadyForQuery.
    assert!(progress.is_caught_up() && !progress.is_idle());

    feed.send(Event::Traffic {
        connection: 1,
        from: Side::Server,
        bytes: Bytes::from(wire(&[BackendMsg::AuthenticationOk, ready()])),
        at: Utc::now(),
    })
    .await;
    assert!(!progress.is_caught_up());
    take_next(&mut connections, &mut completed).await;
    assert!(progress.is_idle() && completed.len() == 1);

    // A length no message can have: recording this connection stops, and
    // it counts as idle from then on.
    feed.send(Event::Traffic {
        connection: 1,
        from: Side::Server,
        bytes: Bytes::from_static(&[b'Z', 0, 0, 0, 1]),
        at: Utc::now(),
    })
    .await;
    take_next(&mut connections, &mut completed).await;
    assert!(progress.is_abandoned() && progress.is_idle() && !feed.is_recording());
    assert_eq!(completed.len(), 1);

    feed.close().await;
    take_next(&mut connections, &mut completed).await;
    assert!(connections.is_empty());
}
