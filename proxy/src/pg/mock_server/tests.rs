//! The server speaking raw protocol bytes: negotiation, bad input, misses.

use bytes::{BufMut, BytesMut};
use postgres_protocol::message::backend::Message;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::*;

async fn start(
    mocks: Vec<PgMock>,
) -> (
    SocketAddr,
    MockServerHandle,
    tokio::sync::oneshot::Sender<()>,
) {
    let server = MockServer::bind(
        "127.0.0.1:0".parse().expect("addr"),
        mocks,
        TestWindows::new(),
        MatchStrategy::Exact,
    )
    .await
    .expect("binds");
    let addr = server.local_addr().expect("addr");
    let handle = server.handle();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(server.run(async {
        let _ = rx.await;
    }));
    (addr, handle, tx)
}

fn startup_packet() -> Vec<u8> {
    let mut body = BytesMut::new();
    body.put_u32(196_608);
    for s in ["user", "postgres", "database", "postgres"] {
        body.put_slice(s.as_bytes());
        body.put_u8(0);
    }
    body.put_u8(0);
    let mut out = ((body.len() + 4) as u32).to_be_bytes().to_vec();
    out.extend_from_slice(&body);
    out
}

/// Reads whole backend messages until `stop` matches one or the server
/// closes; returns their tags.
async fn read_until(stream: &mut TcpStream, buf: &mut BytesMut, stop: u8) -> Vec<u8> {
    let mut tags = Vec::new();
    loop {
        while let Some(msg) = Message::parse(buf).expect("valid backend bytes") {
            let tag = match msg {
                Message::AuthenticationOk => b'R',
                Message::ParameterStatus(_) => b'S',
                Message::BackendKeyData(_) => b'K',
                Message::ReadyForQuery(_) => b'Z',
                Message::ErrorResponse(_) => b'E',
                _ => b'?',
            };
            tags.push(tag);
            if tag == stop {
                return tags;
            }
        }
        let n = stream.read_buf(buf).await.expect("read");
        if n == 0 {
            return tags;
        }
    }
}

#[tokio::test]
async fn ssl_is_refused_and_startup_succeeds_without_a_recorded_startup() {
    let (addr, _handle, _stop) = start(Vec::new()).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(&[0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f])
        .await
        .expect("ssl request");
    let mut one = [0u8; 1];
    s.read_exact(&mut one).await.expect("answer");
    assert_eq!(&one, b"N");
    s.write_all(&startup_packet()).await.expect("startup");
    let mut buf = BytesMut::new();
    let tags = read_until(&mut s, &mut buf, b'Z').await;
    assert_eq!(tags.first(), Some(&b'R'));
    assert!(tags.contains(&b'S') && tags.contains(&b'K'));
    assert_eq!(tags.last(), Some(&b'Z'));
}

#[tokio::test]
async fn malformed_and_oversized_messages_close_with_an_error() {
    let (addr, _handle, _stop) = start(Vec::new()).await;
    for bad in [
        vec![b'!', 0, 0, 0, 4],             // unknown tag
        vec![b'Q', 0x7f, 0xff, 0xff, 0xff], // 2 GiB length
        vec![b'Q', 0, 0, 0, 1],             // length below its own size
    ] {
        let mut s = TcpStream::connect(addr).await.expect("connect");
        s.write_all(&startup_packet()).await.expect("startup");
        let mut buf = BytesMut::new();
        read_until(&mut s, &mut buf, b'Z').await;
        s.write_all(&bad).await.expect("bad bytes");
        let tags = read_until(&mut s, &mut buf, 0).await;
        assert_eq!(
            tags,
            vec![b'E'],
            "an ErrorResponse, then the connection closes"
        );
    }
}

#[tokio::test]
async fn a_miss_is_reported_for_the_current_test() {
    let (addr, handle, _stop) = start(Vec::new()).await;
    let mut s = TcpStream::connect(addr).await.expect("connect");
    s.write_all(&startup_packet()).await.expect("startup");
    let mut buf = BytesMut::new();
    read_until(&mut s, &mut buf, b'Z').await;
    let mut q = BytesMut::new();
    postgres_protocol::message::frontend::query("SELECT 42", &mut q).expect("query");
    s.write_all(&q).await.expect("query");
    let tags = read_until(&mut s, &mut buf, b'Z').await;
    assert_eq!(
        tags,
        vec![b'E', b'Z'],
        "error then ReadyForQuery: the session goes on"
    );
    let usage = handle.usage_outside_tests();
    assert_eq!(usage.misses.len(), 1);
    assert_eq!(usage.misses[0].query, "SELECT 42");
}

#[tokio::test]
async fn only_loopback_addresses_are_accepted() {
    let err = MockServer::bind(
        "0.0.0.0:0".parse().expect("addr"),
        Vec::new(),
        TestWindows::new(),
        MatchStrategy::Exact,
    )
    .await
    .expect_err("not loopback");
    assert!(matches!(err, MockServerError::NotLoopback(_)));
}
