//! One recorded exchange on a client connection, in phases: the request
//! arrives (its test window opens), its head and body go to the upstream,
//! the response streams back, and before the client gets the response's
//! last bytes the whole exchange goes to the sink (write-ahead).

use std::sync::Arc;

use bytes::{Buf, BytesMut};
use chrono::Utc;
use http::header;
use http::{StatusCode, Version};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

use super::capture::Capture;
use super::connection::{origin_target, read_more, send, Conn};
use super::exchange::{self, Exchange, ExchangeSink};
use super::upstream::UpstreamStream;
use super::wire::framing::{self, Framing};
use super::wire::head::{self, Framed, RequestHead, ResponseHead};
use super::wire::walk::Walk;

/// Reports an exchange as failed if it is dropped before it is handed on
/// (the connection's task cut at the end of the drain), so the test window
/// does not stay open.
struct Pending {
    sink: Arc<dyn ExchangeSink>,
    name: Option<String>,
}

impl Pending {
    /// Fails the exchange now with `reason`.
    fn fail(mut self, reason: &str) {
        if let Some(name) = self.name.take() {
            self.sink.exchange_failed(&name, reason);
        }
    }

    /// The exchange goes on; the caller now owns its outcome.
    fn disarm(mut self) -> String {
        self.name.take().unwrap_or_default()
    }
}

impl Drop for Pending {
    fn drop(&mut self) {
        if let Some(name) = self.name.take() {
            self.sink
                .exchange_failed(&name, "the exchange was cut before it completed");
        }
    }
}

/// Why a request could not be forwarded.
pub(super) enum SendError {
    /// The client's body was broken or cut off (400).
    ClientBody,
    /// The client left before the answer came.
    ClientGone,
    /// The upstream failed (502, with its text).
    Upstream(String),
    /// A reused upstream connection turned out closed before any answer;
    /// the request may be sent again on a new one.
    Stale(String),
}

/// Both sides of a connection at once, borrowed apart.
struct Sides<'a, S> {
    client: &'a mut S,
    from_client: &'a mut BytesMut,
    upstream: &'a mut UpstreamStream,
    from_upstream: &'a mut BytesMut,
}

/// The request as it left for the upstream.
pub(super) struct Sent {
    pub(super) response: ResponseHead,
    pub(super) head_len: usize,
    /// Whether the request body was read whole before the answer came.
    body_complete: bool,
}

impl<S> Conn<S>
where
    S: AsyncRead + AsyncWrite + Unpin + Send,
{
    /// Forwards one request and records it; returns whether the client
    /// connection can carry another request.
    pub(super) async fn exchange(&mut self, head: RequestHead) -> bool {
        let forwarder = self.forwarder.clone();
        let framing = match framing::of_request(&head.headers) {
            Ok(framing) => framing,
            Err(e) => {
                let message = format!("recplay: the request has {e}; not forwarded\n");
                self.answer_and_close(StatusCode::BAD_REQUEST, &message)
                    .await;
                return false;
            }
        };
        let received_at = Utc::now();
        let path_and_query = origin_target(&head.target);
        let request = head::upstream_request(
            &head,
            &forwarder.upstream.origin_form(&path_and_query),
            &forwarder.host,
            Framed::of(framing, false),
        );
        let client_keeps_alive = head::keeps_alive(head.version, &head.headers);
        let client_reads_chunks = head.version != Version::HTTP_10;
        let expects_continue = head::has_token(&head.headers, header::EXPECT, "100-continue");
        let method = head.method.clone();
        let recorded = exchange::RequestHead {
            method: head.method,
            version: head.version,
            url: forwarder.upstream.url_for(&path_and_query),
            path_and_query,
            headers: head.headers,
            received_at,
            client: self.info.client,
            connection: self.info.id,
        };
        let name = forwarder.sink.request_arrived(&recorded);
        let pending = Pending {
            sink: forwarder.sink.clone(),
            name: Some(name),
        };
        let mut request_body = Capture::new(forwarder.body_cap);
        let deadline = Instant::now() + forwarder.limits.response_timeout;
        let sent = tokio::time::timeout_at(
            deadline,
            self.send_request(&request, framing, expects_continue, &mut request_body),
        )
        .await;
        let sent = match sent {
            Ok(Ok(sent)) => sent,
            Ok(Err(SendError::ClientBody)) => {
                let message = format!(
                    "recplay: the request body could not be read (bad chunk encoding, \
                     shorter than its Content-Length, or the client went away); \
                     not forwarded, not recorded: {}\n",
                    recorded.path_and_query
                );
                tracing::warn!("{}", message.trim_end());
                pending.fail(message.trim_end());
                self.answer_and_close(StatusCode::BAD_REQUEST, &message)
                    .await;
                return false;
            }
            Ok(Err(SendError::ClientGone)) => {
                pending.fail("the client went away before the upstream answered");
                return false;
            }
            Ok(Err(SendError::Upstream(message) | SendError::Stale(message))) => {
                tracing::warn!("{}", message.trim_end());
                pending.fail(message.trim_end());
                self.answer_and_close(StatusCode::BAD_GATEWAY, &message)
                    .await;
                return false;
            }
            Err(_) => {
                let message = forwarder.timed_out(&recorded.path_and_query);
                tracing::warn!("{}", message.trim_end());
                pending.fail(message.trim_end());
                self.answer_and_close(StatusCode::GATEWAY_TIMEOUT, &message)
                    .await;
                return false;
            }
        };
        self.from_upstream.advance(sent.head_len);
        let response_framing =
            match framing::of_response(&method, sent.response.status, &sent.response.headers) {
                Ok(framing) => framing,
                Err(e) => {
                    let message = forwarder
                        .bad_answer(&head::HeadError::Malformed(format!("a response with {e}")));
                    tracing::warn!("{}", message.trim_end());
                    pending.fail(message.trim_end());
                    self.answer_and_close(StatusCode::BAD_GATEWAY, &message)
                        .await;
                    return false;
                }
            };
        // A client that cannot read chunks is sent the payload and the
        // close that ends it.
        let dechunk = response_framing == Framing::Chunked && !client_reads_chunks;
        let keep_client = client_keeps_alive
            && client_reads_chunks
            && sent.body_complete
            && response_framing != Framing::UntilClose;
        let keep_upstream = sent.body_complete
            && response_framing != Framing::UntilClose
            && head::keeps_alive(sent.response.version, &sent.response.headers);
        let framed = Framed::of(response_framing, dechunk);
        let out = head::client_response(&sent.response, framed, !keep_client);
        let response_received_at = Utc::now();
        let response = exchange::ResponseHead {
            status: sent.response.status,
            version: sent.response.version,
            headers: sent.response.headers,
            received_at: response_received_at,
        };
        let mut response_body = Capture::new(forwarder.body_cap);
        let streamed = self
            .stream_response(response_framing, dechunk, out, &mut response_body)
            .await;
        let (last, sent_some) = match streamed {
            Ok(streamed) => streamed,
            Err(()) => {
                let reason = "the response body did not complete (upstream reset or client gone)";
                tracing::warn!("not recorded: {reason}");
                pending.fail(reason);
                self.upstream = None;
                return false;
            }
        };
        if !keep_upstream || !self.from_upstream.is_empty() {
            // Bytes past the response's end are not a response to anything.
            self.upstream = None;
            self.from_upstream.clear();
        }
        let exchange = Exchange {
            name: pending.disarm(),
            request: recorded,
            request_body: request_body.finish(sent.body_complete),
            response,
            response_body: response_body.finish(true),
            completed_at: Utc::now(),
        };
        // Written ahead: the record before the response's last bytes.
        if let Some(hold) = forwarder.sink.exchange_complete(exchange) {
            if let Err(why) = hold.await {
                if !sent_some {
                    let message = format!("the exchange could not be recorded: {why}\n");
                    self.answer_and_close(StatusCode::SERVICE_UNAVAILABLE, &message)
                        .await;
                }
                return false;
            }
        }
        send(&mut self.client, &last).await.is_ok() && keep_client
    }

    /// Sends the request head and body upstream and reads the answer's
    /// head. A reused connection that turns out closed before answering is
    /// replaced once, when the whole request is still at hand to resend.
    pub(super) async fn send_request(
        &mut self,
        request: &[u8],
        framing: Framing,
        expects_continue: bool,
        body: &mut Capture,
    ) -> Result<Sent, SendError> {
        // What of the body is here already is walked now and goes out with
        // the head in one write; a request here in full can be sent again.
        let mut walk = Walk::new(framing);
        let here = walk
            .take(&self.from_client, body, None)
            .map_err(|_| SendError::ClientBody)?;
        let mut message = Vec::with_capacity(request.len() + here);
        message.extend_from_slice(request);
        message.extend_from_slice(&self.from_client[..here]);
        self.from_client.advance(here);
        if walk.is_done() {
            return match self.send_whole(&message).await {
                Err(SendError::Stale(_)) => {
                    self.upstream = None;
                    self.send_whole(&message).await
                }
                sent => sent,
            };
        }
        if expects_continue {
            send(&mut self.client, b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .map_err(|_| SendError::ClientGone)?;
        }
        self.send_streaming(&message, walk, body).await
    }

    /// Both sides, once the upstream connection is made.
    fn sides(&mut self) -> Result<Sides<'_, S>, SendError> {
        let Conn {
            client,
            from_client,
            upstream,
            from_upstream,
            forwarder,
            ..
        } = self;
        match upstream.as_mut() {
            Some(upstream) => Ok(Sides {
                client,
                from_client,
                upstream,
                from_upstream,
            }),
            None => Err(SendError::Upstream(format!(
                "recplay: no connection to the upstream {} was open to send on\n",
                forwarder.upstream.base_url()
            ))),
        }
    }

    /// The connection's upstream connection, made if there is none; and
    /// whether it was made before (and so may have been closed since).
    async fn upstream_connection(&mut self) -> Result<bool, SendError> {
        if self.upstream.is_some() {
            return Ok(true);
        }
        let connected = self.forwarder.connector.connect().await;
        let upstream = connected
            .map_err(|e| SendError::Upstream(self.forwarder.failure("before it answered", &e)))?;
        self.upstream = Some(upstream);
        self.from_upstream.clear();
        Ok(false)
    }

    /// Sends a request held whole in `message` and reads the answer's
    /// head.
    async fn send_whole(&mut self, message: &[u8]) -> Result<Sent, SendError> {
        let reused = self.upstream_connection().await?;
        let forwarder = self.forwarder.clone();
        let failed = |e: &std::io::Error| {
            let text = forwarder.failure("before it answered", e);
            if reused {
                SendError::Stale(text)
            } else {
                SendError::Upstream(text)
            }
        };
        let upstream = self.sides()?.upstream;
        send(upstream, message).await.map_err(|e| failed(&e))?;
        self.await_answer(reused, true).await
    }

    /// Sends the head (and the body's part already here), then the rest
    /// of the body as the client sends it; an answer that comes before the
    /// body's end ends the upload.
    async fn send_streaming(
        &mut self,
        request: &[u8],
        mut walk: Walk,
        body: &mut Capture,
    ) -> Result<Sent, SendError> {
        self.upstream_connection().await?;
        let forwarder = self.forwarder.clone();
        let Sides {
            client,
            from_client,
            upstream,
            from_upstream,
        } = self.sides()?;
        let failed =
            |e: std::io::Error| SendError::Upstream(forwarder.failure("before it answered", &e));
        send(upstream, request).await.map_err(failed)?;
        let mut answered_early = false;
        loop {
            let used = walk
                .take(from_client, body, None)
                .map_err(|_| SendError::ClientBody)?;
            if used > 0 {
                send(upstream, &from_client[..used]).await.map_err(failed)?;
                from_client.advance(used);
            }
            if walk.is_done() {
                break;
            }
            tokio::select! {
                read = read_more(client, from_client) => match read {
                    Ok(0) | Err(_) => return Err(SendError::ClientBody),
                    Ok(_) => {}
                },
                read = read_more(upstream, from_upstream) => match read {
                    Ok(0) => return Err(SendError::Upstream(forwarder.closed_early("before it answered"))),
                    Err(e) => return Err(failed(e)),
                    Ok(_) => {
                        answered_early = true;
                        break;
                    }
                },
            }
        }
        let mut sent = self.await_answer(false, !answered_early).await?;
        sent.body_complete = walk.is_done();
        Ok(sent)
    }

    /// Reads the upstream's answer head, passing interim (1xx) answers on
    /// to the client. Watches the client meanwhile: one that leaves ends
    /// the exchange.
    async fn await_answer(&mut self, reused: bool, body_complete: bool) -> Result<Sent, SendError> {
        let forwarder = self.forwarder.clone();
        let limit = forwarder.response_head_limit();
        loop {
            match head::parse_response(&self.from_upstream, limit) {
                Ok(Some((response, head_len))) => {
                    if response.status.is_informational()
                        && response.status != StatusCode::SWITCHING_PROTOCOLS
                    {
                        // 100 Continue was the proxy's to give; others
                        // (103 Early Hints) are the client's to see.
                        if response.status != StatusCode::CONTINUE {
                            send(&mut self.client, &self.from_upstream[..head_len])
                                .await
                                .map_err(|_| SendError::ClientGone)?;
                        }
                        self.from_upstream.advance(head_len);
                        continue;
                    }
                    return Ok(Sent {
                        response,
                        head_len,
                        body_complete,
                    });
                }
                Ok(None) => {}
                Err(e) => return Err(SendError::Upstream(forwarder.bad_answer(&e))),
            }
            let nothing_yet = self.from_upstream.is_empty();
            let Sides {
                client,
                from_client,
                upstream,
                from_upstream,
            } = self.sides()?;
            // Pipelined requests wait in the buffer; past a head's worth the
            // client is no longer read until this exchange is over.
            let watch_client = from_client.len() < forwarder.limits.max_header_bytes;
            tokio::select! {
                read = read_more(upstream, from_upstream) => match read {
                    Ok(0) if reused && nothing_yet => {
                        return Err(SendError::Stale(forwarder.closed_early("before it answered")))
                    }
                    Ok(0) => return Err(SendError::Upstream(forwarder.closed_early("before it answered"))),
                    Err(e) if reused && nothing_yet => {
                        return Err(SendError::Stale(forwarder.failure("before it answered", &e)))
                    }
                    Err(e) => return Err(SendError::Upstream(forwarder.failure("before it answered", &e))),
                    Ok(_) => {}
                },
                read = read_more(client, from_client), if watch_client => match read {
                    Ok(0) | Err(_) => return Err(SendError::ClientGone),
                    Ok(_) => {}
                },
            }
        }
    }

    /// Streams the response body to the client as it arrives, all but its
    /// last piece, which is returned (with the head, when the whole
    /// response came at once) for the caller to send once the exchange is
    /// recorded; also whether anything was sent already. `Err` when the
    /// upstream or the client broke off.
    pub(super) async fn stream_response(
        &mut self,
        framing: Framing,
        dechunk: bool,
        mut out: Vec<u8>,
        capture: &mut Capture,
    ) -> Result<(Vec<u8>, bool), ()> {
        let mut walk = Walk::new(framing);
        let mut sent_some = false;
        loop {
            let used = if dechunk {
                walk.take(&self.from_upstream, capture, Some(&mut out))
            } else {
                let used = walk.take(&self.from_upstream, capture, None);
                if let Ok(used) = used {
                    out.extend_from_slice(&self.from_upstream[..used]);
                }
                used
            }
            .map_err(|e| tracing::warn!("the upstream's chunked body is broken: {e}"))?;
            self.from_upstream.advance(used);
            if walk.is_done() {
                return Ok((out, sent_some));
            }
            if !out.is_empty() {
                send(&mut self.client, &out).await.map_err(|_| ())?;
                out.clear();
                sent_some = true;
            }
            let Some(upstream) = self.upstream.as_mut() else {
                return Err(());
            };
            match read_more(upstream, &mut self.from_upstream).await {
                Ok(0) if matches!(walk, Walk::UntilClose) => return Ok((out, sent_some)),
                Ok(0) | Err(_) => return Err(()),
                Ok(_) => {}
            }
        }
    }
}
