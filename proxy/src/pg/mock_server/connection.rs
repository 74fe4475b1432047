//! One client connection of the mock server.
//!
//! Client messages are grouped into exchanges by the rule the recorder
//! groups them by ([`request_end`]): a simple Query (or FunctionCall)
//! alone, or extended-protocol messages up to Sync or Flush. Each exchange is matched and answered with
//! the recorded server messages. Responses carry no statement or portal
//! names, so a recorded answer fits the live exchange whatever the client
//! names things now; only the statement texts matter, kept per connection.
//!
//! COPY FROM STDIN is answered in two steps: the recorded answer up to
//! CopyInResponse, then — once the client has sent its rows and CopyDone —
//! the rest. Rows that differ from the recorded ones are reported.
//!
//! Exchanges made only of Close messages are answered CloseComplete
//! without a recording, as PostgreSQL always does.
//!
//! Bad input (malformed messages, a password where none was asked) closes
//! the connection after an ErrorResponse with SQLSTATE 08P01.

use std::collections::BTreeMap;
use std::sync::Arc;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::watch;

use super::{startup, Shared};
use crate::pg::matcher::identity::is_copy_stream;
use crate::pg::matcher::{
    identify, miss_message, Fallback, FallbackReason, IdentityError, Outcome, Statements,
    MISS_SQLSTATE, UNREADABLE_SQLSTATE,
};
use crate::pgwire::backend::{encode_backend, error_response};
use crate::pgwire::frontend::{DecodeContext, FrontendMessage};
use crate::pgwire::wire::ProtocolError;
use crate::testset::pg_exchange::{request_end, RequestEnd};
use crate::testset::pg_mock::{BackendMsg, FrontendMsg, PgMock};

/// SQLSTATE protocol_violation.
const PROTOCOL_VIOLATION: &str = "08P01";
/// SQLSTATE invalid_sql_statement_name.
const UNKNOWN_STATEMENT: &str = "26000";
/// SQLSTATE internal_error: a recorded answer that cannot be encoded.
const BAD_RECORDING: &str = "XX000";

/// How a connection ended abnormally.
#[derive(Debug, thiserror::Error)]
enum ConnError {
    #[error("socket error: {0}")]
    Io(#[from] std::io::Error),
    #[error("malformed client message: {0}")]
    Protocol(#[from] ProtocolError),
    #[error("unexpected {0} after start-up")]
    Unexpected(&'static str),
    #[error("server shutting down")]
    Shutdown,
}

/// Serves one connection to completion; never panics on client input.
pub(super) async fn serve(stream: TcpStream, shared: Arc<Shared>, stop: watch::Receiver<bool>) {
    let _ = stream.set_nodelay(true);
    let mut conn = Connection {
        stream,
        input: BytesMut::with_capacity(8192),
        shared,
        stop,
        statements: Statements::new(),
        status: 'I',
        discard_until_sync: false,
        split_copy: None,
    };
    match conn.run().await {
        Ok(()) | Err(ConnError::Shutdown) => {}
        Err(ConnError::Io(e)) => tracing::debug!(error = %e, "mock connection dropped"),
        Err(e) => {
            tracing::warn!(error = %e, "closing a mock connection");
            let msg = error_response(
                PROTOCOL_VIOLATION,
                &format!("recplay mock server: {e}; closing the connection"),
                None,
            );
            let _ = conn.write(&[msg]).await;
        }
    }
}

/// Whether an exchange began with a simple Query or extended messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Simple,
    Extended,
}

struct Connection {
    stream: TcpStream,
    input: BytesMut,
    shared: Arc<Shared>,
    stop: watch::Receiver<bool>,
    /// Statement texts this connection prepared, by the names it uses now.
    statements: Statements,
    /// Transaction status of the last ReadyForQuery sent.
    status: char,
    /// After an error in a Flush-ended exchange, the backend skips to Sync.
    discard_until_sync: bool,
    /// The recording cut a COPY at CopyInResponse; its rows and the rest of
    /// the answer are a separate mock, served once the rows are complete.
    split_copy: Option<Mode>,
}

impl Connection {
    async fn run(&mut self) -> Result<(), ConnError> {
        let Some(params) = self.startup().await? else {
            return Ok(());
        };
        let recorded = self.shared.matcher().startup(&params);
        self.write(&startup::answer(recorded.as_deref())).await?;

        let ctx = DecodeContext::ready();
        let mut pending: Vec<FrontendMsg> = Vec::new();
        loop {
            let Some(msg) = self.next(&ctx).await? else {
                return Ok(());
            };
            if msg.is_auth() {
                return Err(ConnError::Unexpected("authentication message"));
            }
            let Some(model) = msg.to_model() else {
                return Err(ConnError::Unexpected("start-up or cancel packet"));
            };
            if self.discard_until_sync {
                if matches!(model, FrontendMsg::Sync) {
                    self.discard_until_sync = false;
                    let status = self.idle_status();
                    self.write(&[BackendMsg::ReadyForQuery { status }]).await?;
                }
                continue;
            }
            if matches!(model, FrontendMsg::Terminate) {
                return Ok(());
            }
            let mode = match request_end(&model) {
                RequestEnd::Simple => Some(Mode::Simple),
                RequestEnd::Sync | RequestEnd::Flush => {
                    Some(self.split_copy.take().unwrap_or(Mode::Extended))
                }
                // The rest of a simple COPY cut at CopyInResponse ends
                // with the client's last row.
                RequestEnd::Open
                    if self.split_copy == Some(Mode::Simple)
                        && matches!(
                            model,
                            FrontendMsg::CopyDone | FrontendMsg::CopyFail { .. }
                        ) =>
                {
                    self.split_copy.take()
                }
                RequestEnd::Open => None,
            };
            pending.push(model);
            if let Some(mode) = mode {
                let exchange = std::mem::take(&mut pending);
                self.exchange(exchange, mode).await?;
            }
        }
    }

    /// Answers SSL/GSS requests with `N` until the StartupMessage arrives.
    /// `None` when the client hung up or sent a CancelRequest (cancelling
    /// is meaningless against recorded answers).
    async fn startup(&mut self) -> Result<Option<BTreeMap<String, String>>, ConnError> {
        let ctx = DecodeContext::new();
        loop {
            match self.next(&ctx).await? {
                None | Some(FrontendMessage::CancelRequest { .. }) => return Ok(None),
                Some(FrontendMessage::SslRequest | FrontendMessage::GssEncRequest) => {
                    self.stream.write_all(b"N").await?;
                }
                Some(FrontendMessage::Startup { parameters, .. }) => {
                    return Ok(Some(parameters.into_iter().collect()));
                }
                Some(_) => return Err(ConnError::Unexpected("message before start-up")),
            }
        }
    }

    /// Matches one exchange and writes its answer.
    async fn exchange(&mut self, requests: Vec<FrontendMsg>, mode: Mode) -> Result<(), ConnError> {
        let ends_with_sync =
            mode == Mode::Simple || matches!(requests.last(), Some(FrontendMsg::Sync));
        let identity = match identify(&requests, &mut self.statements) {
            Ok(identity) => identity,
            Err(IdentityError::UnknownStatement(name)) => {
                let msg = error_response(
                    UNKNOWN_STATEMENT,
                    &format!("prepared statement \"{name}\" does not exist"),
                    None,
                );
                return self.fail(msg, ends_with_sync).await;
            }
        };
        if let Some(answer) = self.close_only(&requests) {
            return self.write(&answer).await;
        }
        let test = self.shared.windows.current();
        let outcome = self.shared.matcher().find(&identity, test.as_deref());
        let mock = match outcome {
            Outcome::Answer { mock, .. } => mock,
            Outcome::Miss(miss) => {
                let (message, detail) = miss_message(&miss);
                let msg = error_response(MISS_SQLSTATE, &message, Some(&detail));
                return self.fail(msg, ends_with_sync).await;
            }
            Outcome::Unreadable(reason) => {
                tracing::error!("{reason}");
                let message = format!("recplay: the recorded answer could not be read: {reason}");
                let msg = error_response(UNREADABLE_SQLSTATE, &message, None);
                return self.fail(msg, ends_with_sync).await;
            }
        };
        let responses = &mock.spec.responses;
        let copy_in = responses
            .iter()
            .position(|m| matches!(m, BackendMsg::CopyInResponse { .. }));
        match copy_in {
            Some(at) if at + 1 < responses.len() => {
                self.write(&responses[..=at]).await?;
                let rows = self.copy_rows(mode).await?;
                self.compare_rows(&mock, &rows, &identity.display, test.as_deref());
                self.write(&responses[at + 1..]).await
            }
            Some(_) => {
                // The rest of the COPY was recorded as its own exchange.
                self.split_copy = Some(mode);
                self.write(responses).await
            }
            None => self.write(responses).await,
        }
    }

    /// PostgreSQL answers Close with CloseComplete whatever it names, so an
    /// exchange of only Close messages needs no recording. Clients close
    /// statements lazily (when a handle is dropped), often after the
    /// recording stopped, so such exchanges are answered here directly.
    fn close_only(&self, requests: &[FrontendMsg]) -> Option<Vec<BackendMsg>> {
        let mut answer = Vec::new();
        for msg in requests {
            match msg {
                FrontendMsg::Close { .. } => answer.push(BackendMsg::CloseComplete),
                FrontendMsg::Sync => answer.push(BackendMsg::ReadyForQuery {
                    status: self.status,
                }),
                FrontendMsg::Flush => {}
                _ => return None,
            }
        }
        answer
            .iter()
            .any(|m| matches!(m, BackendMsg::CloseComplete))
            .then_some(answer)
    }

    /// Reads COPY rows up to CopyDone/CopyFail and, in extended mode, the
    /// Sync the client sends after them (the one before was ignored, as
    /// PostgreSQL ignores Sync during COPY IN).
    async fn copy_rows(&mut self, mode: Mode) -> Result<Vec<FrontendMsg>, ConnError> {
        let ctx = DecodeContext::ready();
        let mut rows = Vec::new();
        let mut done = false;
        loop {
            let Some(msg) = self.next(&ctx).await? else {
                return Err(ConnError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            };
            let Some(model) = msg.to_model() else {
                return Err(ConnError::Unexpected("start-up packet during COPY"));
            };
            match model {
                FrontendMsg::Terminate => return Err(ConnError::Shutdown),
                FrontendMsg::CopyData { .. } if !done => rows.push(model),
                FrontendMsg::CopyDone | FrontendMsg::CopyFail { .. } if !done => {
                    rows.push(model);
                    done = true;
                    if mode == Mode::Simple {
                        return Ok(rows);
                    }
                }
                FrontendMsg::Sync if done => return Ok(rows),
                // Flush and the pre-COPY Sync are ignored in copy mode.
                _ => {}
            }
        }
    }

    /// Reports COPY rows that differ from the recording: the answer (row
    /// count) may then be wrong, and the test's report must say so.
    fn compare_rows(&self, mock: &PgMock, rows: &[FrontendMsg], query: &str, test: Option<&str>) {
        let recorded: Vec<&FrontendMsg> = mock
            .spec
            .requests
            .iter()
            .filter(|m| is_copy_stream(m))
            .collect();
        let live: Vec<&FrontendMsg> = rows.iter().collect();
        if recorded != live {
            self.shared.matcher().note_fallback(
                test,
                Fallback {
                    query: query.to_string(),
                    mock: mock.name.clone(),
                    reason: FallbackReason::CopyDataDiffers,
                    differing: Vec::new(),
                },
            );
        }
    }

    /// Answers an exchange with an error, as PostgreSQL would.
    async fn fail(&mut self, error: BackendMsg, ends_with_sync: bool) -> Result<(), ConnError> {
        if ends_with_sync {
            let status = self.idle_status();
            self.write(&[error, BackendMsg::ReadyForQuery { status }])
                .await
        } else {
            self.discard_until_sync = true;
            self.write(&[error]).await
        }
    }

    /// The status after an error: a transaction in progress is now failed.
    fn idle_status(&mut self) -> char {
        if self.status != 'I' {
            self.status = 'E';
        }
        self.status
    }

    /// Encodes and sends `msgs`; a recording that cannot be encoded (bad
    /// base64 from a hand edit) is answered with an error instead.
    async fn write(&mut self, msgs: &[BackendMsg]) -> Result<(), ConnError> {
        let mut out = BytesMut::with_capacity(256);
        for msg in msgs {
            if let Err(e) = encode_backend(msg, &mut out) {
                out.clear();
                let err = error_response(
                    BAD_RECORDING,
                    &format!("recplay: the recorded answer cannot be replayed: {e}"),
                    None,
                );
                encode_backend(&err, &mut out)
                    .map_err(|_| ConnError::Unexpected("unencodable error"))?;
                let rfq = BackendMsg::ReadyForQuery {
                    status: self.idle_status(),
                };
                encode_backend(&rfq, &mut out)
                    .map_err(|_| ConnError::Unexpected("unencodable error"))?;
                break;
            }
            if let BackendMsg::ReadyForQuery { status } = msg {
                self.status = *status;
            }
        }
        self.stream.write_all(&out).await?;
        Ok(())
    }

    /// The next whole client message; `None` at a clean end of stream.
    async fn next(&mut self, ctx: &DecodeContext) -> Result<Option<FrontendMessage>, ConnError> {
        loop {
            if let Some(msg) = FrontendMessage::decode_from(&mut self.input, ctx)? {
                return Ok(Some(msg));
            }
            let read = tokio::select! {
                read = self.stream.read_buf(&mut self.input) => read?,
                _ = self.stop.changed() => return Err(ConnError::Shutdown),
            };
            if read == 0 {
                if self.input.is_empty() {
                    return Ok(None);
                }
                return Err(ConnError::Io(std::io::ErrorKind::UnexpectedEof.into()));
            }
        }
    }
}
