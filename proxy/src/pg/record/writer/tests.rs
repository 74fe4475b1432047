//! The writer fed with events as connections send them.

use std::time::SystemTime;

use bytes::Bytes;

use super::*;
use crate::journal::{JournalReader, JournalWriter, Next};
use crate::pgwire::backend::encode_backend;
use crate::pgwire::frontend::FrontendMessage as F;
use crate::testset::pg_mock::{BackendMsg, FrontendMsg, PgValue};

fn opened(progress: &Arc<Progress>) -> Event {
    Event::Opened {
        connection: 1,
        startup: Box::new(F::Startup {
            protocol: crate::pgwire::frontend::PROTOCOL_3_0,
            parameters: vec![("user".into(), "app".into())],
        }),
        at: SystemTime::now(),
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
        take(
            e,
            &mut connections,
            &TestWindows::new(),
            &mut Calendar::default(),
            &mut completed,
        );
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
        at: SystemTime::now(),
    };
    let server = |bytes: &[u8]| Event::Traffic {
        connection: 1,
        from: Side::Server,
        bytes: Bytes::copy_from_slice(bytes),
        at: SystemTime::now(),
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
    let dir = tempfile::tempdir().expect("temp dir");
    let journal = JournalWriter::create(&crate::journal::pg_path_in(dir.path())).expect("journal");
    let feed = super::super::handover::Feed::new(1, queue, Arc::new(journal));
    let progress = Arc::clone(feed.progress());
    let mut connections = FastMap::default();
    let mut completed = Vec::new();
    let windows = TestWindows::new();
    let mut take_next = async |connections: &mut FastMap<u64, Followed>,
                               completed: &mut Vec<MockSpec>| {
        let event = events.recv().await.expect("an event");
        take(
            event,
            connections,
            &windows,
            &mut Calendar::default(),
            completed,
        );
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
        at: SystemTime::now(),
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
        at: SystemTime::now(),
    })
    .await;
    take_next(&mut connections, &mut completed).await;
    assert!(progress.is_abandoned() && progress.is_idle() && !feed.is_recording());
    assert_eq!(completed.len(), 1);

    feed.close().await;
    take_next(&mut connections, &mut completed).await;
    assert!(connections.is_empty());
}

/// Two connections' start-ups and one query each, through the writer's own
/// loop; `mocks_yaml_is_a_directory` makes every append fail.
fn write_two_connections(mocks_yaml_is_a_directory: bool) -> (Written, tempfile::TempDir) {
    let dir = tempfile::tempdir().expect("temp dir");
    let test_set = TestSetDir::open(dir.path().to_path_buf());
    if mocks_yaml_is_a_directory {
        std::fs::create_dir(test_set.mocks_path()).expect("a directory in the way");
    }
    let (queue, events) = tokio::sync::mpsc::channel(64);
    let mut query = BytesMut::new();
    postgres_protocol::message::frontend::query("SELECT 1", &mut query).expect("encode");
    let answer = wire(&[
        BackendMsg::CommandComplete {
            tag: "SELECT 1".into(),
        },
        ready(),
    ]);
    for connection in [1, 2] {
        let progress = Arc::new(Progress::default());
        let Event::Opened { startup, at, .. } = opened(&progress) else {
            unreachable!("opened() makes an Opened event");
        };
        let traffic = |from, bytes: &[u8]| Event::Traffic {
            connection,
            from,
            bytes: Bytes::copy_from_slice(bytes),
            at: SystemTime::now(),
        };
        for event in [
            Event::Opened {
                connection,
                startup,
                at,
                progress,
            },
            traffic(
                Side::Server,
                &wire(&[BackendMsg::AuthenticationOk, ready()]),
            ),
            traffic(Side::Client, &query),
            traffic(Side::Server, &answer),
            Event::Closed { connection },
        ] {
            queue.try_send(event).expect("room in the queue");
        }
    }
    drop(queue);
    let written = super::run(events, &test_set, TestWindows::new());
    (written, dir)
}

#[test]
fn every_completed_exchange_is_named_in_order_and_appended() {
    let (written, dir) = write_two_connections(false);
    assert_eq!((written.mocks, written.failures), (4, 0));
    let path = dir.path().join("mocks.yaml");
    let text = std::fs::read_to_string(&path).expect("mocks.yaml");
    let (mocks, problems) = crate::testset::store::parse_mocks(&text, &path);
    assert!(problems.is_empty(), "{problems:?}");
    let names: Vec<_> = mocks.iter().map(|m| m.name.as_str()).collect();
    assert_eq!(names, ["mock-1", "mock-2", "mock-3", "mock-4"]);
    let queries = mocks
        .iter()
        .filter(|m| {
            m.spec.requests
                == [FrontendMsg::Query {
                    query: "SELECT 1".into(),
                }]
        })
        .count();
    assert_eq!(queries, 2);
}

#[test]
fn mocks_that_cannot_be_written_are_counted_as_failures() {
    let (written, _dir) = write_two_connections(true);
    assert_eq!((written.mocks, written.failures), (0, 4));
}

/// The nice value of the calling thread, as the kernel reports it.
#[cfg(target_os = "linux")]
fn own_nice() -> i64 {
    let stat = std::fs::read_to_string("/proc/thread-self/stat").expect("own stat");
    // Fields after the command name (which may hold spaces); nice is the
    // 19th field of the line, the 17th after the name.
    let after_name = &stat[stat.rfind(')').expect("a command name") + 2..];
    after_name
        .split(' ')
        .nth(16)
        .and_then(|nice| nice.parse().ok())
        .expect("a nice value")
}

#[cfg(target_os = "linux")]
#[test]
fn the_writer_yields_to_traffic_on_its_own_thread_only() {
    let before = own_nice();
    let writer = std::thread::spawn(|| {
        yield_to_traffic();
        own_nice()
    })
    .join()
    .expect("the thread ran");
    assert_eq!(writer, before.max(i64::from(WRITER_NICE)));
    assert_eq!(own_nice(), before, "only the writer's thread yields");
}

/// Two connections' events, interleaved, through a feed each: the writer
/// fed from the queue and a replay of the journal make the same mocks
/// under the same names.
#[tokio::test]
async fn a_replay_of_the_journal_names_every_mock_as_the_writer_did() {
    let dir = tempfile::tempdir().expect("temp dir");
    let test_set = TestSetDir::open(dir.path().to_path_buf());
    let journal_path = crate::journal::pg_path_in(dir.path());
    let journal = Arc::new(JournalWriter::create(&journal_path).expect("journal"));
    let (queue, events) = tokio::sync::mpsc::channel(64);
    let feeds: Vec<_> = [1, 2]
        .map(|connection| {
            super::super::handover::Feed::new(connection, queue.clone(), Arc::clone(&journal))
        })
        .into_iter()
        .collect();
    drop(queue);
    let traffic = |connection, from, bytes: Vec<u8>| Event::Traffic {
        connection,
        from,
        bytes: Bytes::from(bytes),
        at: SystemTime::now(),
    };
    let query = |text: &str| {
        let mut query = BytesMut::new();
        postgres_protocol::message::frontend::query(text, &mut query).expect("encode");
        query.to_vec()
    };
    let answer = wire(&[
        BackendMsg::CommandComplete {
            tag: "SELECT 1".into(),
        },
        ready(),
    ]);
    for feed in &feeds {
        let progress = Arc::clone(feed.progress());
        let Event::Opened { startup, at, .. } = opened(&progress) else {
            unreachable!("opened() makes an Opened event");
        };
        let opened = Event::Opened {
            connection: feed.connection,
            startup,
            at,
            progress,
        };
        let _ = feed.send(opened).await;
        let ok = wire(&[BackendMsg::AuthenticationOk, ready()]);
        let written = feed.send(traffic(feed.connection, Side::Server, ok)).await;
        written.expect("recording").expect("appended");
        feed.flush_journal().expect("journaled");
    }
    for round in 0..3 {
        for feed in &feeds {
            let text = format!("SELECT {round} FROM c{}", feed.connection);
            let _ = feed
                .send(traffic(feed.connection, Side::Client, query(&text)))
                .await;
        }
        for feed in feeds.iter().rev() {
            let answered = traffic(feed.connection, Side::Server, answer.clone());
            feed.send(answered)
                .await
                .expect("recording")
                .expect("appended");
            feed.flush_journal().expect("journaled");
        }
    }
    for feed in feeds {
        feed.close().await;
    }
    assert!(journal.close().failed.is_none());
    let test_set = Arc::new(test_set);
    let writer_set = Arc::clone(&test_set);
    let written =
        tokio::task::spawn_blocking(move || super::run(events, &writer_set, TestWindows::new()))
            .await
            .expect("writer");
    assert_eq!((written.mocks, written.failures), (8, 0));

    let path = test_set.mocks_path();
    let text = std::fs::read_to_string(&path).expect("mocks.yaml");
    let (from_writer, problems) = crate::testset::store::parse_mocks(&text, &path);
    assert!(problems.is_empty(), "{problems:?}");

    let mut reader = JournalReader::open(&journal_path).expect("open");
    let mut replay = Replay::new(TestWindows::new());
    let mut replayed = Vec::new();
    loop {
        match reader.next_record().expect("read") {
            Next::Record(record) => {
                let event = super::super::entry::decode(&record.payload).expect("decode");
                replay.take(event, &mut replayed);
            }
            Next::End => break,
            Next::Torn { reason, .. } => panic!("torn: {reason}"),
        }
    }
    let rendered = crate::testset::store::render_mocks(&replayed);
    let (replayed, problems) = crate::testset::store::parse_mocks(&rendered, &path);
    assert!(problems.is_empty(), "{problems:?}");
    assert_eq!(replayed, from_writer);
}
