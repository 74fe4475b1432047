//! One client connection: start-up negotiation, the upstream connection,
//! and two pumps that forward bytes unchanged and hand a copy to the writer
//! thread ([`super::handover`]).
//!
//! The client pump checks what it reads before forwarding it, so a
//! malformed message never reaches the server; the server pump decodes
//! nothing once authentication is over: turning answers into mocks is the
//! writer's job. Both queue what they read before forwarding it.
//!
//! Each pump is a task of its own, so a stalled write in one direction
//! never stops the other from being read, and a wake-up polls only the
//! direction that has bytes. Without TLS each pump owns its socket's half
//! outright (no lock between the halves, no boxed stream).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use crate::pg::refuse::error_response;
use bytes::{Buf, BufMut, Bytes, BytesMut};
use thiserror::Error;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::TcpStream;
use tokio::sync::watch;
use tokio_util::either::Either;

use super::event::{Event, Progress, Side};
use super::handover::Feed;
use crate::journal::JournalWriter;
use crate::pgwire::backend::{Authentication, BackendMessage};
use crate::pgwire::frontend::{Checked, DecodeContext, FrontendMessage};
use crate::pgwire::wire::ProtocolError;

/// How long connecting to the server may take before the client is told.
const UPSTREAM_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Read buffer growth step; messages larger than this grow the buffer only
/// as their bytes actually arrive.
const READ_CHUNK: usize = 16 * 1024;
/// How long, once the client's side is over, the server may take to finish
/// what it is sending before the connection is cut.
const UPSTREAM_DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// State shared by all connections of one recorder.
pub(super) struct Shared {
    pub upstream: String,
    pub client_tls: Option<tokio_rustls::TlsAcceptor>,
    pub upstream_tls: Option<tokio_rustls::TlsConnector>,
    pub events: tokio::sync::mpsc::Sender<Event>,
    /// Where every event is written ahead of the answers it carries.
    pub journal: Arc<JournalWriter>,
    pub next_connection: AtomicU64,
}

trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}
type BoxIo = Box<dyn Io>;

/// A socket as it is, or wrapped in TLS.
type Stream = Either<TcpStream, BoxIo>;
type ReadSide = Either<OwnedReadHalf, ReadHalf<BoxIo>>;
type WriteSide = Either<OwnedWriteHalf, WriteHalf<BoxIo>>;

fn split(stream: Stream) -> (ReadSide, WriteSide) {
    match stream {
        Either::Left(tcp) => {
            let (r, w) = tcp.into_split();
            (Either::Left(r), Either::Left(w))
        }
        Either::Right(io) => {
            let (r, w) = tokio::io::split(io);
            (Either::Right(r), Either::Right(w))
        }
    }
}

/// Why a connection ended early, and from which side.
#[derive(Debug, Error)]
enum ConnError {
    #[error("client connection failed: {0}")]
    Client(std::io::Error),
    #[error("server connection failed: {0}")]
    Upstream(std::io::Error),
    #[error("malformed message from the client: {0}")]
    Malformed(ProtocolError),
    #[error("could not reach the PostgreSQL server at {addr}: {message}")]
    UpstreamUnreachable { addr: String, message: String },
    #[error("TLS with the client failed: {0}")]
    ClientTls(std::io::Error),
    #[error("the client sent bytes after SSLRequest before the TLS handshake")]
    BytesBeforeTls,
}

enum Ended {
    Closed,
    Shutdown,
}

/// `HOST:PORT` split for the TLS server name; `None` if malformed.
pub(super) fn split_host_port(addr: &str) -> Option<(&str, u16)> {
    let (host, port) = addr.rsplit_once(':')?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let port = port.parse().ok()?;
    (!host.is_empty()).then_some((host, port))
}

/// Serves one client until it leaves, the server leaves, an error, or a
/// shutdown (once its in-flight exchanges are complete).
pub(super) async fn serve(
    tcp: TcpStream,
    peer: SocketAddr,
    shared: std::sync::Arc<Shared>,
    shutdown: watch::Receiver<bool>,
) {
    let mut client: Stream = Either::Left(tcp);
    match serve_inner(&mut client, &shared, shutdown).await {
        Ok(()) => {}
        Err((e, tell_client)) => {
            tracing::warn!(%peer, "closing PostgreSQL client connection: {e}");
            if tell_client {
                let code = match e {
                    ConnError::UpstreamUnreachable { .. } => "08001",
                    _ => "08P01",
                };
                let message = match &e {
                    ConnError::UpstreamUnreachable { .. } => format!(
                        "recplay: {e}; check that the server is running and that --pg-upstream points at it"
                    ),
                    _ => format!("recplay: {e}; closing the connection"),
                };
                let _ = client
                    .write_all(&error_response("FATAL", code, &message))
                    .await;
            }
        }
    }
    let _ = client.shutdown().await;
}

/// The error and whether the client may still be told about it.
type Failure = (ConnError, bool);

async fn serve_inner(
    client: &mut Stream,
    shared: &Shared,
    shutdown: watch::Receiver<bool>,
) -> Result<(), Failure> {
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let startup_ctx = DecodeContext::new();
    let (startup, startup_len) = loop {
        let (msg, used) = loop {
            match FrontendMessage::decode(&buf, &startup_ctx) {
                Ok(Some(found)) => break found,
                Ok(None) => {
                    let n = client
                        .read_buf(&mut buf)
                        .await
                        .map_err(|e| (ConnError::Client(e), false))?;
                    if n == 0 {
                        return Ok(());
                    }
                }
                Err(e) => return Err((ConnError::Malformed(e), true)),
            }
        };
        match msg {
            FrontendMessage::SslRequest => {
                if buf.len() > used {
                    return Err((ConnError::BytesBeforeTls, false));
                }
                buf.clear();
                match &shared.client_tls {
                    Some(acceptor) => {
                        client
                            .write_all(b"S")
                            .await
                            .map_err(|e| (ConnError::Client(e), false))?;
                        let plain = std::mem::replace(client, placeholder());
                        let tls = acceptor
                            .accept(plain)
                            .await
                            .map_err(|e| (ConnError::ClientTls(e), false))?;
                        *client = Either::Right(Box::new(tls));
                    }
                    None => client
                        .write_all(b"N")
                        .await
                        .map_err(|e| (ConnError::Client(e), false))?,
                }
            }
            FrontendMessage::GssEncRequest => {
                buf.advance_to(used);
                client
                    .write_all(b"N")
                    .await
                    .map_err(|e| (ConnError::Client(e), false))?;
            }
            FrontendMessage::CancelRequest { .. } => {
                // Relayed as is; the server closes both ends, nothing recorded.
                let mut upstream = connect_upstream(shared).await.map_err(|e| (e, false))?;
                upstream
                    .write_all(&buf[..used])
                    .await
                    .map_err(|e| (ConnError::Upstream(e), false))?;
                let _ = upstream.shutdown().await;
                return Ok(());
            }
            startup @ FrontendMessage::Startup { .. } => break (startup, used),
            other => {
                // decode() in start-up context yields only the four above.
                tracing::debug!("unexpected start-up message {other:?}");
                return Ok(());
            }
        }
    };

    let mut upstream = connect_upstream(shared).await.map_err(|e| (e, true))?;
    upstream
        .write_all(&buf[..startup_len])
        .await
        .map_err(|e| (ConnError::Upstream(e), true))?;
    buf.advance_to(startup_len);

    let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
    let feed = Arc::new(Feed::new(
        id,
        shared.events.clone(),
        Arc::clone(&shared.journal),
    ));
    feed.send(Event::Opened {
        connection: id,
        startup: Box::new(startup),
        at: SystemTime::now(),
        progress: Arc::clone(feed.progress()),
    })
    .await;
    let handshake = Arc::new(Mutex::new(Handshake::new()));

    let (client_r, client_w) = split(std::mem::replace(client, placeholder()));
    let (upstream_r, mut upstream_w) = split(upstream);
    let mut answers = tokio::spawn(pump_server(
        upstream_r,
        client_w,
        Arc::clone(&feed),
        Arc::clone(&handshake),
    ));
    // Which side ended first: the client's (with how it ended) or the
    // server's (with the pump's own outcome and the client's write half).
    let (client_ended, answered) = tokio::select! {
        r = pump_client(client_r, &mut upstream_w, buf, &feed, &handshake, shutdown.clone()) => (Some(r), None),
        answered = &mut answers => (None, Some(answered)),
        () = idle_after_shutdown(feed.progress(), shutdown) => (Some(Ok(Ended::Shutdown)), None),
    };
    // The server, told the client's side is over, finishes what it is
    // sending and closes, which ends the server's pump between two writes:
    // whatever the client is told next starts on a message boundary.
    let _ = upstream_w.shutdown().await;
    let answered = match answered {
        Some(answered) => Some(answered),
        None => match tokio::time::timeout(UPSTREAM_DRAIN_TIMEOUT, &mut answers).await {
            Ok(answered) => Some(answered),
            Err(_) => {
                // Cut mid-answer, maybe: the client can only be hung up on.
                answers.abort();
                let _ = answers.await;
                None
            }
        },
    };
    close(feed).await;
    if let Some(Err(e)) = &client_ended {
        tracing::warn!("PostgreSQL connection {id}: {e}");
    }
    let Some(Ok((answered, mut client_w))) = answered else {
        return Ok(());
    };
    if let Err(e) = answered {
        if client_ended.is_some() {
            tracing::debug!("PostgreSQL connection {id}, after the client's side ended: {e}");
        } else {
            tracing::warn!("PostgreSQL connection {id}: {e}");
        }
    }
    if let Some(last_word) = client_ended.as_ref().and_then(last_word) {
        let _ = client_w.write_all(&last_word).await;
    }
    let _ = client_w.shutdown().await;
    Ok(())
}

/// What the client is told after its side ended, before it is hung up on:
/// why, when it is the proxy that ends the connection.
fn last_word(ended: &Result<Ended, ConnError>) -> Option<Vec<u8>> {
    match ended {
        Ok(Ended::Closed) => None,
        Ok(Ended::Shutdown) => Some(error_response(
            "FATAL",
            "57P01",
            "recplay: recording is shutting down; reconnect to the real server",
        )),
        Err(e @ ConnError::Malformed(_)) => Some(error_response(
            "FATAL",
            "08P01",
            &format!("recplay: {e}; closing the connection"),
        )),
        Err(_) => None,
    }
}

/// Tells the writer the connection is over, once both pumps have let go of
/// the feed (a pump that panicked lets go as it unwinds, and the feed's
/// `Drop` tells the writer instead).
async fn close(feed: Arc<Feed>) {
    if let Some(feed) = Arc::into_inner(feed) {
        feed.close().await;
    }
}

/// Stands in for a stream while it is moved out to be wrapped or split.
fn placeholder() -> Stream {
    Either::Right(Box::new(tokio::io::duplex(1).0))
}

fn lock(m: &Mutex<Handshake>) -> std::sync::MutexGuard<'_, Handshake> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// What the client's decoder must know about authentication (which kind of
/// `p` message comes next), learned from the server's requests until its
/// first ReadyForQuery, after which the server asks for nothing more.
struct Handshake {
    ctx: DecodeContext,
    /// Server bytes of a message not yet complete.
    partial: BytesMut,
    done: bool,
}

impl Handshake {
    fn new() -> Self {
        Handshake {
            ctx: DecodeContext::ready(),
            partial: BytesMut::new(),
            done: false,
        }
    }

    /// Follows the server's bytes, in order, until authentication is over.
    /// Returns what of them may be recorded: during authentication only
    /// the whole messages read so far, without the server's authentication
    /// requests other than AuthenticationOk (they carry salts and the
    /// server's SASL messages, which never leave the connection); once it
    /// is over, `None`: everything.
    fn observe(&mut self, bytes: &[u8]) -> Option<BytesMut> {
        if self.done {
            return None;
        }
        self.partial.extend_from_slice(bytes);
        let mut recordable = BytesMut::new();
        loop {
            match BackendMessage::decode(&self.partial) {
                Ok(Some((msg, used))) => {
                    let secret = matches!(
                        msg,
                        BackendMessage::Authentication(ref auth) if *auth != Authentication::Ok
                    );
                    if !secret {
                        recordable.extend_from_slice(&self.partial[..used]);
                    }
                    self.partial.advance(used);
                    match msg {
                        BackendMessage::Authentication(auth) => {
                            self.ctx.auth = auth.reply_expected();
                        }
                        BackendMessage::ReadyForQuery { .. } => break,
                        _ => {}
                    }
                }
                Ok(None) => return Some(recordable),
                // The writer reports the message it cannot decode either;
                // the client's decoder keeps the context it has.
                Err(_) => break,
            }
        }
        self.done = true;
        // What follows the first ReadyForQuery is ordinary traffic.
        recordable.extend_from_slice(&self.partial);
        self.partial = BytesMut::new();
        Some(recordable)
    }
}

async fn idle_after_shutdown(progress: &Progress, mut shutdown: watch::Receiver<bool>) {
    while !*shutdown.borrow_and_update() {
        if shutdown.changed().await.is_err() {
            // The recorder went away without a signal: keep serving.
            std::future::pending::<()>().await;
        }
    }
    progress.wait_until(Progress::is_idle).await;
}

/// Whether a client's new bytes arrive too late to be served: recording is
/// shutting down and, once the writer has caught up with everything sent so
/// far, no exchange is in flight (so the bytes start a new one).
async fn too_late(progress: &Progress, shutdown: &watch::Receiver<bool>) -> bool {
    if !*shutdown.borrow() {
        return false;
    }
    progress.wait_until(Progress::is_caught_up).await;
    progress.is_idle()
}

/// Client → server: check (refusing malformed messages), hand the whole
/// messages' bytes to the writer, then forward the bytes read.
async fn pump_client(
    mut from: ReadSide,
    to: &mut WriteSide,
    mut buf: BytesMut,
    feed: &Feed,
    handshake: &Mutex<Handshake>,
    shutdown: watch::Receiver<bool>,
) -> Result<Ended, ConnError> {
    // How many bytes at the start of `buf` have been forwarded: those of a
    // message still arriving. Bytes pipelined after the start-up packet
    // have not been.
    let mut forwarded = 0;
    loop {
        if buf.len() > forwarded {
            if too_late(feed.progress(), &shutdown).await {
                return Ok(Ended::Shutdown);
            }
            let at = SystemTime::now();
            let ctx = lock(handshake).ctx;
            let mut decoded = 0;
            let mut secrets = Vec::new();
            loop {
                match FrontendMessage::check(&buf[decoded..], &ctx) {
                    Ok(Some(Checked { len, auth })) => {
                        if auth {
                            secrets.push(decoded..decoded + len);
                        }
                        decoded += len;
                    }
                    Ok(None) => break,
                    Err(e) => return Err(ConnError::Malformed(e)),
                }
            }
            if decoded == 0 {
                // Only part of a message so far: forward it, keep it.
                to.write_all(&buf[forwarded..])
                    .await
                    .map_err(ConnError::Upstream)?;
            } else {
                // Only checked here: the writer decodes its own copy, so no
                // allocation crosses threads.
                let read = buf.split().freeze();
                if feed.is_recording() {
                    feed.send(Event::Traffic {
                        connection: feed.connection,
                        from: Side::Client,
                        bytes: without_secrets(&read, decoded, &secrets),
                        at,
                    })
                    .await;
                }
                to.write_all(&read[forwarded..])
                    .await
                    .map_err(ConnError::Upstream)?;
                // A message still arriving: at most this read's bytes.
                buf.extend_from_slice(&read[decoded..]);
            }
            forwarded = buf.len();
        }
        if buf.capacity() - buf.len() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        let n = from.read_buf(&mut buf).await.map_err(ConnError::Client)?;
        if n == 0 {
            return Ok(Ended::Closed);
        }
    }
}

/// The first `len` bytes of `read` without the authentication messages at
/// `secrets` (passwords and SASL messages never leave the connection).
fn without_secrets(read: &Bytes, len: usize, secrets: &[std::ops::Range<usize>]) -> Bytes {
    if secrets.is_empty() {
        return read.slice(..len);
    }
    let mut kept = BytesMut::with_capacity(len);
    let mut from = 0;
    for secret in secrets {
        kept.extend_from_slice(&read[from..secret.start]);
        from = secret.end;
    }
    kept.extend_from_slice(&read[from..len]);
    kept.freeze()
}

/// Server → client: hand the bytes read to the writer as they are (no
/// copy: the read buffer's bytes are shared), then forward them.
/// Returns the client's write half with the outcome, for the connection to
/// say goodbye on.
async fn pump_server(
    from: ReadSide,
    mut to: WriteSide,
    feed: Arc<Feed>,
    handshake: Arc<Mutex<Handshake>>,
) -> (Result<(), ConnError>, WriteSide) {
    let outcome = forward_answers(from, &mut to, &feed, &handshake).await;
    (outcome, to)
}

async fn forward_answers(
    mut from: ReadSide,
    to: &mut WriteSide,
    feed: &Feed,
    handshake: &Mutex<Handshake>,
) -> Result<(), ConnError> {
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    let mut handshaking = true;
    let mut journal_failed = false;
    loop {
        if buf.capacity() < READ_CHUNK / 4 {
            buf.reserve(READ_CHUNK);
        }
        let n = from.read_buf(&mut buf).await.map_err(ConnError::Upstream)?;
        if n == 0 {
            return Ok(());
        }
        let at = SystemTime::now();
        // Both happen before forwarding, so that neither the client's
        // decoder nor the writer can see the client's reply first.
        let mut recordable = None;
        if handshaking {
            let mut state = lock(handshake);
            recordable = state.observe(&buf);
            handshaking = !state.done;
        }
        if feed.is_recording() {
            let read = buf.split().freeze();
            let recordable = recordable.map_or_else(|| read.clone(), BytesMut::freeze);
            let appended = if recordable.is_empty() {
                None
            } else {
                feed.send(Event::Traffic {
                    connection: feed.connection,
                    from: Side::Server,
                    bytes: recordable,
                    at,
                })
                .await
            };
            // Written ahead: the client gets no answer a crash could lose.
            if let Some(appended) = appended {
                let written = match appended {
                    Ok(()) => {
                        // Every connection shares this thread: the others
                        // with answers ready append theirs meanwhile, and
                        // the first to flush writes them all with one
                        // `write`.
                        tokio::task::yield_now().await;
                        feed.flush_journal()
                    }
                    Err(e) => Err(e),
                };
                if let Err(e) = written {
                    if !journal_failed {
                        journal_failed = true;
                        tracing::error!(
                            "PostgreSQL connection {}: {e}; its traffic is forwarded, and what \
                             was journaled before is kept for the next command to recover",
                            feed.connection
                        );
                    }
                }
            }
            to.write_all(&read).await.map_err(ConnError::Client)?;
        } else {
            to.write_all(&buf).await.map_err(ConnError::Client)?;
            buf.clear();
        }
    }
}

async fn connect_upstream(shared: &Shared) -> Result<Stream, ConnError> {
    let unreachable = |message: String| ConnError::UpstreamUnreachable {
        addr: shared.upstream.clone(),
        message,
    };
    let tcp = tokio::time::timeout(
        UPSTREAM_CONNECT_TIMEOUT,
        TcpStream::connect(shared.upstream.as_str()),
    )
    .await
    .map_err(|_| unreachable(format!("no answer within {UPSTREAM_CONNECT_TIMEOUT:?}")))?
    .map_err(|e| unreachable(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let Some(connector) = &shared.upstream_tls else {
        return Ok(Either::Left(tcp));
    };
    let mut tcp = tcp;
    let mut req = BytesMut::with_capacity(8);
    req.put_i32(8);
    req.put_u32(crate::pgwire::frontend::SSL_REQUEST_CODE);
    tcp.write_all(&req)
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    let answer = tcp
        .read_u8()
        .await
        .map_err(|e| unreachable(e.to_string()))?;
    if answer != b'S' {
        return Err(unreachable(
            "the server does not accept TLS connections (it answered SSLRequest with N); \
             drop --pg-upstream-tls or enable ssl on the server"
                .into(),
        ));
    }
    let host = split_host_port(&shared.upstream)
        .map(|(h, _)| h.to_string())
        .unwrap_or_default();
    let name = rustls::pki_types::ServerName::try_from(host)
        .map_err(|e| unreachable(format!("not a valid TLS server name: {e}")))?;
    let tls = connector
        .connect(name, tcp)
        .await
        .map_err(|e| unreachable(format!("TLS handshake failed: {e}")))?;
    Ok(Either::Right(Box::new(tls)))
}

/// Drops the first `n` bytes (`advance` that names its intent).
trait AdvanceTo {
    fn advance_to(&mut self, n: usize);
}

impl AdvanceTo for BytesMut {
    fn advance_to(&mut self, n: usize) {
        bytes::Buf::advance(self, n.min(self.len()));
    }
}
