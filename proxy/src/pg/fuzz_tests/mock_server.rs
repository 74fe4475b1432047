//! The replay server fed arbitrary client bytes over real connections: a
//! start-up, queries, a COPY and their mutations. Whatever arrives, the
//! server must answer or close, never panic, and close once the client
//! stops sending; and it must go on serving well-behaved clients.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use chrono::Utc;
use postgres_protocol::message::frontend as pp;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::seeds::{frontend_messages, startup_packets};
use super::{hex, mutate, Rng};
use crate::pg::matcher::MatchStrategy;
use crate::pg::mock_server::MockServer;
use crate::pgwire::backend::BackendMessage;
use crate::testset::pg_mock::{BackendMsg, Format, FrontendMsg, Lifetime, MockSpec, PgMock};
use crate::window::TestWindows;

const COPY: &str = "COPY t FROM STDIN";

/// A recording the inputs can reach: a COPY FROM STDIN, so mutated rows
/// exercise the server's COPY reading as well as matching.
fn copy_mock() -> PgMock {
    PgMock::new(
        "mock-1",
        MockSpec {
            connection: 1,
            position: 1,
            lifetime: Lifetime::Session,
            startup: Arc::default(),
            request_timestamp: Utc::now(),
            response_timestamp: Utc::now(),
            requests: vec![FrontendMsg::Query { query: COPY.into() }],
            responses: vec![
                BackendMsg::CopyInResponse {
                    format: Format::Text,
                    column_formats: vec![Format::Text],
                },
                BackendMsg::CommandComplete {
                    tag: "COPY 1".into(),
                },
                BackendMsg::ReadyForQuery { status: 'I' },
            ],
        },
    )
}

/// A session: optional SSL request, start-up, then client messages.
fn session(rng: &mut Rng, packets: &[Vec<u8>], messages: &[Vec<u8>]) -> Vec<u8> {
    let mut out = Vec::new();
    if rng.below(4) == 0 {
        out.extend_from_slice(&packets[0]);
    }
    out.extend_from_slice(&packets[2]);
    if rng.below(2) == 0 {
        let mut b = BytesMut::new();
        pp::query(COPY, &mut b).expect("encodes");
        pp::CopyData::new(&b"1\n"[..])
            .expect("encodes")
            .write(&mut b);
        pp::copy_done(&mut b);
        out.extend_from_slice(&b);
    }
    for _ in 0..rng.below(6) {
        out.extend_from_slice(&rng.pick(messages)[..]);
    }
    out
}

/// Panics on this test's thread, where the current-thread runtime runs
/// the server's tasks too; a panicking connection task would otherwise
/// look to the client like an ordinary close.
static PANICS: AtomicUsize = AtomicUsize::new(0);

fn count_panics_on_this_thread() {
    let name = std::thread::current().name().map(str::to_owned);
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if std::thread::current().name().map(str::to_owned) == name {
            PANICS.fetch_add(1, Ordering::SeqCst);
        }
        previous(info);
    }));
}

/// Sends `input`, closes the sending side and reads until the server
/// closes; `None` if it does not within a generous limit.
async fn exchange(addr: std::net::SocketAddr, input: &[u8]) -> Option<Vec<u8>> {
    let mut s = TcpStream::connect(addr).await.expect("connects");
    // The server may close before reading everything; that is its right.
    let _ = s.write_all(input).await;
    let _ = s.shutdown().await;
    let mut answer = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(10), s.read_to_end(&mut answer)).await;
    read.ok().map(|_| answer)
}

#[tokio::test]
async fn arbitrary_client_bytes_are_answered_or_refused() {
    count_panics_on_this_thread();
    let server = MockServer::bind(
        "127.0.0.1:0".parse().expect("addr"),
        vec![copy_mock()],
        TestWindows::new(),
        MatchStrategy::Exact,
    )
    .await
    .expect("binds");
    let addr = server.local_addr().expect("addr");
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let running = tokio::spawn(server.run(async {
        let _ = stopped.await;
    }));

    let packets = startup_packets();
    let messages = frontend_messages();
    let mut pool = packets.clone();
    pool.extend(messages.iter().cloned());
    let mut rng = Rng::new(0x5EED);
    for i in 0..400 {
        let mut input = session(&mut rng, &packets, &messages);
        if i % 8 != 0 {
            mutate(&mut rng, &mut input, &pool);
        }
        let answer = exchange(addr, &input).await;
        assert!(
            answer.is_some(),
            "the server neither answered nor closed: {}",
            hex(&input)
        );
        assert_eq!(
            PANICS.load(Ordering::SeqCst),
            0,
            "the server panicked on {}",
            hex(&input)
        );
    }

    // Still serving: a clean session gets its start-up answered and its
    // COPY completed.
    let mut b = BytesMut::new();
    pp::query(COPY, &mut b).expect("encodes");
    pp::copy_done(&mut b);
    pp::terminate(&mut b);
    let input = [packets[2].as_slice(), &b].concat();
    let answer = exchange(addr, &input).await.expect("answers");
    let mut tags = Vec::new();
    let mut rest = answer.as_slice();
    while let Ok(Some((msg, used))) = BackendMessage::decode(rest) {
        tags.push(msg);
        rest = &rest[used..];
    }
    assert!(rest.is_empty(), "the answer is whole messages");
    assert!(tags
        .iter()
        .any(|m| matches!(m, BackendMessage::CopyInResponse { .. })));
    assert!(matches!(
        tags.last(),
        Some(BackendMessage::ReadyForQuery { .. })
    ));
    let _ = stop.send(());
    running.await.expect("the server stops");
}
