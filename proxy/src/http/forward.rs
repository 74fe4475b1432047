//! One request through the proxy: the phases between the client's request
//! and the recorder.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Request, Response, StatusCode, Uri, Version};
use http_body::Body as _;
use http_body_util::{Either, Full};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use tokio::sync::{mpsc, oneshot};

use crate::testset::http_form::HOP_BY_HOP;

use super::client_body::ClientBody;
use super::exchange::{Exchange, ExchangeSink, Hold, RequestHead, ResponseHead};
use super::link::UpstreamLink;
use super::tee::{CaptureReport, CapturedBody, TeeBody};
use super::upstream::{Upstream, UpstreamClient, UpstreamConnector};

/// What the proxy sends back: a streamed upstream body, or a short body of
/// its own (400, 502, 504).
pub type ProxyBody = Either<TeeBody<Incoming, ResponseEnd>, Full<Bytes>>;

/// What becomes of a response body's copy when the body is over: it
/// completes the recorded exchange, or (for a passed-through upgrade) is
/// dropped.
pub struct ResponseEnd(Option<Finisher>);

/// Everything but the response body of an exchange in progress.
struct Finisher {
    name: String,
    request: RequestHead,
    request_copy: oneshot::Receiver<CapturedBody>,
    response: ResponseHead,
    sink: Arc<dyn ExchangeSink>,
    /// Keeps the proxy from reporting itself drained while this exchange
    /// has not been handed over.
    in_flight: mpsc::Sender<()>,
}

impl CaptureReport for ResponseEnd {
    fn report(self, response_body: CapturedBody) -> Option<Hold> {
        self.0.and_then(|finisher| finisher.finish(response_body))
    }
}

/// How long a response that came before its request body was fully read
/// waits for that body to end before it is recorded without it.
const REQUEST_BODY_WAIT: Duration = Duration::from_secs(5);

fn incomplete_body() -> CapturedBody {
    CapturedBody {
        complete: false,
        ..CapturedBody::default()
    }
}

impl Finisher {
    /// Runs as the response body ends, inside the task that forwarded it;
    /// the returned hold keeps the response's last bytes back.
    fn finish(self, response_body: CapturedBody) -> Option<Hold> {
        let completed_at = Utc::now();
        if !response_body.complete {
            let reason = "the response body did not complete (upstream reset or client gone)";
            tracing::warn!(test = %self.name, "not recorded: {reason}");
            self.sink.exchange_failed(&self.name, reason);
            return None;
        }
        let Finisher {
            name,
            request,
            mut request_copy,
            response,
            sink,
            in_flight,
        } = self;
        let complete = move |request_body: CapturedBody| {
            sink.exchange_complete(Exchange {
                name,
                request,
                request_body,
                response,
                response_body,
                completed_at,
            })
        };
        match request_copy.try_recv() {
            Ok(request_body) => complete(request_body),
            Err(oneshot::error::TryRecvError::Closed) => complete(incomplete_body()),
            // The upstream answered before reading the whole request body;
            // what it does read is what the exchange was. The response's
            // end waits for it (bounded), so the record is still written
            // ahead.
            Err(oneshot::error::TryRecvError::Empty) => {
                match tokio::runtime::Handle::try_current() {
                    Ok(runtime) => {
                        let (done, written) = oneshot::channel();
                        runtime.spawn(async move {
                            let _in_flight = in_flight;
                            let body = tokio::time::timeout(REQUEST_BODY_WAIT, request_copy).await;
                            let hold = complete(
                                body.ok()
                                    .and_then(Result::ok)
                                    .unwrap_or_else(incomplete_body),
                            );
                            let outcome = match hold {
                                Some(hold) => hold.await,
                                None => Ok(()),
                            };
                            let _ = done.send(outcome);
                        });
                        Some(Box::pin(async move {
                            written.await.unwrap_or_else(|_| {
                                Err("the exchange's record was abandoned".to_string())
                            })
                        }))
                    }
                    Err(_) => complete(incomplete_body()),
                }
            }
        }
    }
}

/// Shared by every connection of one proxy.
pub(crate) struct Forwarder {
    /// Makes each client connection's own upstream connection.
    pub(crate) connector: UpstreamConnector,
    /// Pooled client for upgrades, which need hyper's upgrade plumbing.
    pub(crate) client: UpstreamClient<TeeBody<Incoming>>,
    pub(crate) upstream: Upstream,
    pub(crate) body_cap: u64,
    /// Time the upstream has to start answering.
    pub(crate) response_timeout: Duration,
    pub(crate) sink: Arc<dyn ExchangeSink>,
    /// Every recording task holds a clone; the proxy is drained when the
    /// last one is dropped.
    pub(crate) in_flight: mpsc::Sender<()>,
}

/// Where a request came from.
#[derive(Debug, Clone, Copy)]
pub(crate) struct ConnInfo {
    pub(crate) client: SocketAddr,
    pub(crate) id: u64,
}

fn strip_hop_by_hop(headers: &mut HeaderMap) {
    let listed: Vec<HeaderName> = headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in &listed {
        headers.remove(name);
    }
    for name in HOP_BY_HOP {
        headers.remove(name);
    }
}

fn is_upgrade<B>(req: &Request<B>) -> bool {
    req.headers().contains_key(header::UPGRADE)
        && req
            .headers()
            .get_all(header::CONNECTION)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','))
            .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
}

fn own_answer(status: StatusCode, message: String) -> Response<ProxyBody> {
    let mut resp = Response::new(Either::Right(Full::new(Bytes::from(message))));
    *resp.status_mut() = status;
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    resp
}

fn bad_gateway(message: String) -> Response<ProxyBody> {
    own_answer(StatusCode::BAD_GATEWAY, message)
}

/// The client's request body was broken; the connection cannot carry
/// another request, so it is closed after the answer.
fn bad_request(message: String) -> Response<ProxyBody> {
    let mut resp = own_answer(StatusCode::BAD_REQUEST, message);
    resp.headers_mut()
        .insert(header::CONNECTION, HeaderValue::from_static("close"));
    resp
}

/// The answer when an exchange could not be recorded (the journal failed):
/// the client is not given a response the recording does not have.
fn not_recorded(message: String) -> Response<ProxyBody> {
    own_answer(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("the exchange could not be recorded: {message}"),
    )
}

/// The error and its causes on one line: hyper's top-level messages
/// ("client error (Connect)") say little on their own.
fn describe(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Reports an exchange as failed if it is dropped before it is handed on:
/// hyper drops the request future when the client disconnects while the
/// upstream is still thinking, and the test window must not stay open.
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
                .exchange_failed(&name, "the client went away before the upstream answered");
        }
    }
}

impl Forwarder {
    /// Rewrites the client's request into the one the upstream receives.
    /// An upgrade goes through the pooled client, which wants an absolute
    /// URI; everything else goes on the connection's own link, which sends
    /// the target as it is given.
    fn prepare(&self, parts: &mut http::request::Parts, keep_upgrade: bool) -> Result<(), String> {
        let path_and_query = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .to_string();
        let target = if keep_upgrade {
            self.upstream.url_for(&path_and_query)
        } else {
            self.upstream.origin_form(&path_and_query)
        };
        parts.uri = Uri::try_from(target)
            .map_err(|e| format!("could not build the upstream URL for {path_and_query}: {e}"))?;
        let upgrade = keep_upgrade
            .then(|| parts.headers.get(header::UPGRADE).cloned())
            .flatten();
        strip_hop_by_hop(&mut parts.headers);
        // The proxy already answered `Expect: 100-continue` to the client.
        parts.headers.remove(header::EXPECT);
        if let Some(protocol) = upgrade {
            parts
                .headers
                .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            parts.headers.insert(header::UPGRADE, protocol);
        }
        // Like nginx's default `proxy_set_header Host $proxy_host`: virtual
        // hosts and TLS names on the upstream see their own name.
        if let Ok(host) = HeaderValue::from_str(&self.upstream.authority()) {
            parts.headers.insert(header::HOST, host);
        }
        parts.version = Version::HTTP_11;
        Ok(())
    }

    fn failure(&self, what: &str, err: &dyn std::error::Error) -> String {
        format!(
            "recplay: the upstream {} failed {what}: {}\n",
            self.upstream.base_url(),
            describe(err)
        )
    }

    /// Phase 1–4 of a recorded exchange.
    pub(crate) async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        conn: ConnInfo,
        link: UpstreamLink,
    ) -> Response<ProxyBody> {
        if is_upgrade(&req) {
            return self.pass_through_upgrade(req).await;
        }
        let received_at = Utc::now();
        let (mut parts, body) = req.into_parts();
        let path_and_query = parts
            .uri
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/")
            .to_string();
        let head = RequestHead {
            method: parts.method.clone(),
            version: parts.version,
            url: self.upstream.url_for(&path_and_query),
            path_and_query,
            headers: parts.headers.clone(),
            received_at,
            client: conn.client,
            connection: conn.id,
        };
        let name = self.sink.request_arrived(&head);
        let pending = Pending {
            sink: self.sink.clone(),
            name: Some(name.clone()),
        };
        if let Err(message) = self.prepare(&mut parts, false) {
            pending.fail(&message);
            return bad_gateway(message);
        }
        let (body, client_failed) = ClientBody::new(body);
        let (request_body, request_copy) = TeeBody::new(body, self.body_cap);
        let sent = tokio::time::timeout(
            self.response_timeout,
            link.send(&self.connector, Request::from_parts(parts, request_body)),
        )
        .await;
        let upstream_resp = match sent {
            Ok(Ok(resp)) => resp,
            Ok(Err(_)) if client_failed.load(Ordering::Acquire) => {
                let message = format!(
                    "recplay: the request body could not be read (bad chunk encoding, \
                     shorter than its Content-Length, or the client went away); \
                     not forwarded, not recorded: {}\n",
                    head.path_and_query
                );
                tracing::warn!(test = %name, "{}", message.trim_end());
                pending.fail(message.trim_end());
                return bad_request(message);
            }
            Ok(Err(e)) => {
                let message = self.failure("before it answered", &e);
                tracing::warn!(test = %name, "{}", message.trim_end());
                pending.fail(message.trim_end());
                return bad_gateway(message);
            }
            Err(_) => {
                let message = format!(
                    "recplay: the upstream {} did not answer {} within {}s \
                     (--http-response-timeout); not recorded\n",
                    self.upstream.base_url(),
                    head.path_and_query,
                    self.response_timeout.as_secs_f64()
                );
                tracing::warn!(test = %name, "{}", message.trim_end());
                pending.fail(message.trim_end());
                return own_answer(StatusCode::GATEWAY_TIMEOUT, message);
            }
        };
        let (mut resp_parts, resp_body) = upstream_resp.into_parts();
        let response = ResponseHead {
            status: resp_parts.status,
            version: resp_parts.version,
            headers: resp_parts.headers.clone(),
            received_at: Utc::now(),
        };
        strip_hop_by_hop(&mut resp_parts.headers);
        let finisher = Finisher {
            name: pending.disarm(),
            request: head,
            request_copy,
            response,
            sink: self.sink.clone(),
            in_flight: self.in_flight.clone(),
        };
        if resp_body.is_end_stream() {
            // No body (204, 304, HEAD, length 0): the head is the last of
            // the response, so it waits for the record.
            let ended = CapturedBody {
                complete: true,
                ..CapturedBody::default()
            };
            if let Some(hold) = finisher.finish(ended) {
                if let Err(message) = hold.await {
                    return not_recorded(message);
                }
            }
            let response_body = TeeBody::reporting_to(resp_body, 0, ResponseEnd(None));
            return Response::from_parts(resp_parts, Either::Left(response_body));
        }
        let response_body =
            TeeBody::reporting_to(resp_body, self.body_cap, ResponseEnd(Some(finisher)));
        Response::from_parts(resp_parts, Either::Left(response_body))
    }

    /// WebSocket and other upgrades: forwarded, then bytes are copied both
    /// ways untouched. Not recorded: the schema has no place for them.
    async fn pass_through_upgrade(&self, mut req: Request<Incoming>) -> Response<ProxyBody> {
        let protocol = req
            .headers()
            .get(header::UPGRADE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or("?")
            .to_string();
        let client_side = hyper::upgrade::on(&mut req);
        let (mut parts, body) = req.into_parts();
        if let Err(message) = self.prepare(&mut parts, true) {
            return bad_gateway(message);
        }
        let (body, _) = TeeBody::new(body, 0);
        let mut resp = match self.client.request(Request::from_parts(parts, body)).await {
            Ok(resp) => resp,
            Err(e) => {
                let message = self.failure("before it answered an upgrade", &e);
                tracing::warn!("{}", message.trim_end());
                return bad_gateway(message);
            }
        };
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            tracing::info!(
                protocol,
                "passing an upgraded connection through untouched; it is not recorded"
            );
            let upstream_side = hyper::upgrade::on(&mut resp);
            tokio::spawn(async move {
                match (client_side.await, upstream_side.await) {
                    (Ok(client), Ok(upstream)) => {
                        let mut client = TokioIo::new(client);
                        let mut upstream = TokioIo::new(upstream);
                        if let Err(e) =
                            tokio::io::copy_bidirectional(&mut client, &mut upstream).await
                        {
                            tracing::debug!("upgraded connection ended: {e}");
                        }
                    }
                    (Err(e), _) | (_, Err(e)) => {
                        tracing::warn!("an upgraded connection could not be joined: {e}")
                    }
                }
            });
        } else {
            tracing::info!(
                protocol,
                status = resp.status().as_u16(),
                "the upstream declined an upgrade; passed through, not recorded"
            );
        }
        let (parts, body) = resp.into_parts();
        let body = TeeBody::reporting_to(body, 0, ResponseEnd(None));
        Response::from_parts(parts, Either::Left(body))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hop_by_hop_headers_and_those_connection_names_are_dropped() {
        let mut headers = HeaderMap::new();
        headers.insert(
            header::CONNECTION,
            HeaderValue::from_static("keep-alive, x-hop"),
        );
        headers.insert("x-hop", HeaderValue::from_static("1"));
        headers.insert("keep-alive", HeaderValue::from_static("timeout=5"));
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/plain"));
        strip_hop_by_hop(&mut headers);
        assert_eq!(headers.len(), 1);
        assert!(headers.contains_key(header::CONTENT_TYPE));
    }
}
