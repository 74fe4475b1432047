//! One client connection: its requests read one after another (pipelined
//! ones included, answered in order), each forwarded on the connection's
//! own upstream connection, and the answers the proxy gives itself when a
//! request cannot go on.
//!
//! Bytes are moved as they arrive; only the heads are parsed (httparse) and
//! only the framing is followed, which is what lets recording keep up with
//! a plain reverse proxy.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use http::StatusCode;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant;

use crate::serve::Shutdown;

use super::capture::Capture;
use super::exchange::ExchangeSink;
use super::forward::SendError;
use super::limits::{HttpLimits, MIN_HEADER_BYTES};
use super::upstream::{Upstream, UpstreamConnector, UpstreamStream};
use super::wire::framing::{self, Framing};
use super::wire::head::{self, HeadError, RequestHead};

/// Room made in a buffer before each read.
pub(super) const READ_SIZE: usize = 16 * 1024;

/// Longest response head accepted from the upstream: generous, because a
/// response head that is too long is the upstream's doing, not the
/// client's.
const MAX_RESPONSE_HEAD: usize = 256 * 1024;

/// How long a connection being closed after an answer keeps reading (and
/// dropping) what its client still sends, so the close is not a reset that
/// destroys the answer before the client reads it.
const LINGER: Duration = Duration::from_secs(2);

/// Shared by every connection of one proxy.
pub(crate) struct Forwarder {
    /// Makes each client connection's own upstream connection.
    pub(crate) connector: UpstreamConnector,
    pub(crate) upstream: Upstream,
    /// `Host` of every forwarded request.
    pub(crate) host: String,
    pub(crate) body_cap: u64,
    pub(crate) limits: HttpLimits,
    pub(crate) sink: Arc<dyn ExchangeSink>,
}

/// Where a request came from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnInfo {
    pub(crate) client: SocketAddr,
    pub(crate) id: u64,
}

/// A client connection and the upstream connection paired with it.
///
/// HTTP/1.1 carries one exchange at a time, so a client connection never
/// needs more than one upstream connection at once; pairing them needs no
/// pool, and a round trip wakes no task but this one.
pub(super) struct Conn<S> {
    pub(super) forwarder: Arc<Forwarder>,
    pub(super) info: ConnInfo,
    pub(super) client: S,
    /// Bytes read from the client and not yet forwarded.
    pub(super) from_client: BytesMut,
    pub(super) upstream: Option<UpstreamStream>,
    /// Bytes read from the upstream and not yet forwarded.
    pub(super) from_upstream: BytesMut,
}

/// Reads once into `buf`, making room first.
pub(super) async fn read_more<R: AsyncRead + Unpin>(
    reader: &mut R,
    buf: &mut BytesMut,
) -> std::io::Result<usize> {
    if buf.capacity() - buf.len() < READ_SIZE / 4 {
        buf.reserve(READ_SIZE);
    }
    reader.read_buf(buf).await
}

/// Writes `bytes` whole and pushes them out (a TLS stream keeps them until
/// flushed).
pub(super) async fn send<W: AsyncWrite + Unpin>(
    writer: &mut W,
    bytes: &[u8],
) -> std::io::Result<()> {
    writer.write_all(bytes).await?;
    writer.flush().await
}

/// Serves one client connection until it closes, breaks, idles out, or the
/// proxy stops (an exchange in progress is finished first).
pub(crate) async fn serve<S>(
    client: S,
    forwarder: Arc<Forwarder>,
    info: ConnInfo,
    mut stop: Shutdown,
) where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    let mut conn = Conn {
        forwarder,
        info,
        client,
        from_client: BytesMut::with_capacity(READ_SIZE),
        upstream: None,
        from_upstream: BytesMut::with_capacity(READ_SIZE),
    };
    loop {
        let Some((head, len)) = conn.next_request(&mut stop).await else {
            return;
        };
        conn.from_client.advance(len);
        let keep_open = if head::is_upgrade(&head.headers) {
            conn.pass_through_upgrade(head).await;
            false
        } else {
            conn.exchange(head).await
        };
        if !keep_open || stop.is_shutdown() {
            conn.close().await;
            return;
        }
    }
}

impl<S> Conn<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// The next request's head, or `None` once the connection is over:
    /// closed by the client, silent past the header or idle timeout, a head
    /// that is too large (431) or not HTTP (400), or the proxy stopping
    /// while no request is under way.
    async fn next_request(&mut self, stop: &mut Shutdown) -> Option<(RequestHead, usize)> {
        let limits = self.forwarder.limits;
        let max = limits.max_header_bytes.max(MIN_HEADER_BYTES);
        // Both clocks start now: the previous exchange is over.
        let deadline = Instant::now() + limits.header_timeout.min(limits.idle_timeout);
        loop {
            if !self.from_client.is_empty() {
                match head::parse_request(&self.from_client, max) {
                    Ok(Some(parsed)) => return Some(parsed),
                    Ok(None) => {}
                    Err(HeadError::TooLarge) => {
                        let message = format!(
                            "recplay: the request head is over {max} bytes \
                             (--http-max-header-bytes); not forwarded\n"
                        );
                        self.answer_and_close(
                            StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                            &message,
                        )
                        .await;
                        return None;
                    }
                    Err(HeadError::Malformed(why)) => {
                        let message = format!("recplay: {why}; not forwarded\n");
                        self.answer_and_close(StatusCode::BAD_REQUEST, &message)
                            .await;
                        return None;
                    }
                }
            }
            let between_requests = self.from_client.is_empty();
            let read = tokio::select! {
                read = read_more(&mut self.client, &mut self.from_client) => read,
                () = tokio::time::sleep_until(deadline) => {
                    tracing::debug!(
                        client = %self.info.client,
                        "closing a connection that sent no whole request head in {:?}",
                        limits.header_timeout.min(limits.idle_timeout)
                    );
                    return None;
                }
                () = stop.recv(), if between_requests => return None,
            };
            match read {
                Ok(0) => return None,
                Ok(_) => {}
                Err(e) => {
                    tracing::debug!(client = %self.info.client, "connection ended: {e}");
                    return None;
                }
            }
        }
    }

    /// Answers with a short text of the proxy's own and closes.
    pub(super) async fn answer_and_close(&mut self, status: StatusCode, message: &str) {
        if send(&mut self.client, &head::own_answer(status, message))
            .await
            .is_ok()
        {
            self.close().await;
        }
    }

    /// Closes the client side: shuts down writing, then reads what the
    /// client still sends for a moment, so the close does not become a
    /// reset that destroys an answer the client has not read yet.
    pub(super) async fn close(&mut self) {
        self.upstream = None;
        if self.client.shutdown().await.is_err() {
            return;
        }
        let mut sink = [0u8; 8192];
        let _ = tokio::time::timeout(LINGER, async {
            while matches!(self.client.read(&mut sink).await, Ok(n) if n > 0) {}
        })
        .await;
    }

    /// WebSocket and other upgrades: forwarded on the connection's upstream
    /// connection; once the upstream switches, bytes are copied both ways
    /// untouched. Not recorded: the schema has no place for them.
    async fn pass_through_upgrade(&mut self, head: RequestHead) {
        let protocol = head
            .headers
            .get(http::header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("?")
            .to_string();
        let target = self
            .forwarder
            .upstream
            .origin_form(&origin_target(&head.target));
        let request = head::upstream_request(
            &head,
            &target,
            &self.forwarder.host,
            head::Framed::AsReceived,
        );
        // Sent like any request without a body, on the connection's own
        // upstream connection, which the tunnel then takes over.
        let sent = tokio::time::timeout(
            self.forwarder.limits.response_timeout,
            self.send_request(&request, Framing::Empty, false, &mut Capture::new(0)),
        )
        .await;
        let answer = match sent {
            Ok(Ok(sent)) => {
                self.from_upstream.advance(sent.head_len);
                Ok(sent.response)
            }
            Ok(Err(SendError::Upstream(message) | SendError::Stale(message))) => Err(message),
            Ok(Err(SendError::ClientGone | SendError::ClientBody)) => return,
            Err(_) => Err(self.forwarder.timed_out("an upgrade")),
        };
        let response = match answer {
            Ok(response) => response,
            Err(message) => {
                tracing::warn!("{}", message.trim_end());
                self.answer_and_close(StatusCode::BAD_GATEWAY, &message)
                    .await;
                return;
            }
        };
        let Some(mut upstream) = self.upstream.take() else {
            return;
        };
        if response.status != StatusCode::SWITCHING_PROTOCOLS {
            tracing::info!(
                protocol,
                status = response.status.as_u16(),
                "the upstream declined an upgrade; passed through, not recorded"
            );
            // Answered like any response, to its end by its framing (not
            // to the upstream's close, which a keep-alive upstream may
            // never send), then the connection is closed.
            let framing = framing::of_response(&head.method, response.status, &response.headers)
                .unwrap_or(Framing::UntilClose);
            let out = head::client_response(&response, head::Framed::of(framing, false), true);
            self.upstream = Some(upstream);
            let streamed = self
                .stream_response(framing, false, out, &mut Capture::new(0))
                .await;
            if let Ok((last, _)) = streamed {
                let _ = send(&mut self.client, &last).await;
            }
            return;
        }
        tracing::info!(
            protocol,
            "passing an upgraded connection through untouched; it is not recorded"
        );
        let mut out = head::switching_protocols(&response);
        out.extend_from_slice(&self.from_upstream);
        self.from_upstream.clear();
        let early = std::mem::take(&mut self.from_client);
        if send(&mut self.client, &out).await.is_err() || send(&mut upstream, &early).await.is_err()
        {
            return;
        }
        if let Err(e) = tokio::io::copy_bidirectional(&mut self.client, &mut upstream).await {
            tracing::debug!("upgraded connection ended: {e}");
        }
    }
}

/// The path and query of a request target: the target itself in origin
/// form, the part after the authority in absolute form (a client that
/// talks to the proxy as to a forward proxy).
pub(super) fn origin_target(target: &str) -> String {
    if target.starts_with('/') || target == "*" {
        return target.to_string();
    }
    target
        .parse::<http::Uri>()
        .ok()
        .and_then(|uri| uri.path_and_query().map(|p| p.as_str().to_string()))
        .unwrap_or_else(|| "/".to_string())
}

/// The error and its causes on one line: an I/O error's own message
/// ("invalid peer certificate") often says little on its own.
fn describe(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.contains(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

impl Forwarder {
    /// The text of a 502 for an upstream that failed.
    pub(super) fn failure(&self, what: &str, err: &dyn std::error::Error) -> String {
        format!(
            "recplay: the upstream {} failed {what}: {}\n",
            self.upstream.base_url(),
            describe(err)
        )
    }

    /// The text of a 502 for an upstream that closed too soon.
    pub(super) fn closed_early(&self, when: &str) -> String {
        format!(
            "recplay: the upstream {} closed the connection {when}\n",
            self.upstream.base_url()
        )
    }

    /// The longest response head read from the upstream.
    pub(super) fn response_head_limit(&self) -> usize {
        self.limits.max_header_bytes.max(MAX_RESPONSE_HEAD)
    }

    /// The text of a 502 for an answer that is not HTTP/1.x.
    pub(super) fn bad_answer(&self, err: &HeadError) -> String {
        let why = match err {
            HeadError::TooLarge => {
                format!("a response head over {} bytes", self.response_head_limit())
            }
            HeadError::Malformed(why) => why.clone(),
        };
        format!(
            "recplay: the upstream {} sent {why}\n",
            self.upstream.base_url()
        )
    }

    /// The text of a 504.
    pub(super) fn timed_out(&self, what: &str) -> String {
        format!(
            "recplay: the upstream {} did not answer {what} within {}s \
             (--http-response-timeout); not recorded\n",
            self.upstream.base_url(),
            self.limits.response_timeout.as_secs_f64()
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_in_absolute_form_is_forwarded_as_its_path() {
        assert_eq!(origin_target("/a?b=1"), "/a?b=1");
        assert_eq!(origin_target("http://h:1/a?b=1"), "/a?b=1");
        assert_eq!(origin_target("http://h:1"), "/");
        assert_eq!(origin_target("*"), "*");
    }
}
