//! Request and response heads read off the wire with httparse, and the
//! heads the proxy writes on: hop-by-hop headers taken out, the rest in the
//! order and spelling it received them.

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use http::{Method, StatusCode, Version};

use crate::testset::http_form::HOP_BY_HOP;

use super::framing::Framing;

/// More headers than this in one head is answered like an oversized head.
const MAX_HEADERS: usize = 128;

/// Why a head could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum HeadError {
    /// Longer than the limit, or more than [`MAX_HEADERS`] headers (431).
    TooLarge,
    /// Not HTTP/1.x (400 from a client, 502 from the upstream).
    Malformed(String),
}

/// A client's request head.
#[derive(Debug)]
pub(crate) struct RequestHead {
    pub(crate) method: Method,
    /// The request target as sent (origin form, or absolute form from a
    /// client that talks to the proxy as a proxy).
    pub(crate) target: String,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
}

/// An upstream's response head.
#[derive(Debug)]
pub(crate) struct ResponseHead {
    pub(crate) status: StatusCode,
    pub(crate) reason: String,
    pub(crate) version: Version,
    pub(crate) headers: HeaderMap,
}

fn version(minor: Option<u8>) -> Version {
    match minor {
        Some(0) => Version::HTTP_10,
        _ => Version::HTTP_11,
    }
}

fn header_map(parsed: &[httparse::Header<'_>]) -> Result<HeaderMap, HeadError> {
    let mut headers = HeaderMap::with_capacity(parsed.len());
    for h in parsed {
        let name = HeaderName::from_bytes(h.name.as_bytes())
            .map_err(|_| HeadError::Malformed(format!("invalid header name {:?}", h.name)))?;
        let value = HeaderValue::from_bytes(h.value)
            .map_err(|_| HeadError::Malformed(format!("invalid value for header {}", h.name)))?;
        headers.append(name, value);
    }
    Ok(headers)
}

fn parse_error(what: &str, e: httparse::Error) -> HeadError {
    match e {
        httparse::Error::TooManyHeaders => HeadError::TooLarge,
        e => HeadError::Malformed(format!("{what} is not HTTP/1.x: {e}")),
    }
}

/// The head's length once it is complete, within `max` bytes either way.
fn head_len(
    parsed: httparse::Result<usize>,
    buffered: usize,
    max: usize,
    what: &str,
) -> Result<Option<usize>, HeadError> {
    match parsed {
        Ok(httparse::Status::Complete(len)) if len > max => Err(HeadError::TooLarge),
        Ok(httparse::Status::Complete(len)) => Ok(Some(len)),
        Ok(httparse::Status::Partial) if buffered > max => Err(HeadError::TooLarge),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(e) => Err(parse_error(what, e)),
    }
}

/// Parses a request head from the start of `buf`: `Ok(None)` until the
/// head is complete, then the head and its length in bytes.
pub(crate) fn parse_request(
    buf: &[u8],
    max: usize,
) -> Result<Option<(RequestHead, usize)>, HeadError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut slots);
    let Some(len) = head_len(req.parse(buf), buf.len(), max, "the request")? else {
        return Ok(None);
    };
    let method = Method::from_bytes(req.method.unwrap_or_default().as_bytes())
        .map_err(|_| HeadError::Malformed("invalid method".to_string()))?;
    let head = RequestHead {
        method,
        target: req.path.unwrap_or("/").to_string(),
        version: version(req.version),
        headers: header_map(req.headers)?,
    };
    Ok(Some((head, len)))
}

/// Parses a response head from the start of `buf`, like [`parse_request`].
pub(crate) fn parse_response(
    buf: &[u8],
    max: usize,
) -> Result<Option<(ResponseHead, usize)>, HeadError> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut slots);
    let Some(len) = head_len(resp.parse(buf), buf.len(), max, "the response")? else {
        return Ok(None);
    };
    let status = StatusCode::from_u16(resp.code.unwrap_or_default())
        .map_err(|_| HeadError::Malformed("invalid status code".to_string()))?;
    let head = ResponseHead {
        status,
        reason: resp.reason.unwrap_or_default().to_string(),
        version: version(resp.version),
        headers: header_map(resp.headers)?,
    };
    Ok(Some((head, len)))
}

/// Whether `name`'s comma-separated values hold `token`.
pub(crate) fn has_token(headers: &HeaderMap, name: HeaderName, token: &str) -> bool {
    headers
        .get_all(name)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .any(|t| t.trim().eq_ignore_ascii_case(token))
}

/// Whether the request asks to switch protocols (a WebSocket, h2c).
pub(crate) fn is_upgrade(headers: &HeaderMap) -> bool {
    headers.contains_key(header::UPGRADE) && has_token(headers, header::CONNECTION, "upgrade")
}

/// Whether the peer that sent these headers keeps the connection open
/// after this message.
pub(crate) fn keeps_alive(version: Version, headers: &HeaderMap) -> bool {
    if version == Version::HTTP_10 {
        has_token(headers, header::CONNECTION, "keep-alive")
    } else {
        !has_token(headers, header::CONNECTION, "close")
    }
}

/// Header names a message's `Connection` header lists: hop-by-hop too.
fn connection_listed(headers: &HeaderMap) -> Vec<String> {
    headers
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(|name| name.trim().to_ascii_lowercase())
        .filter(|name| !name.is_empty())
        .collect()
}

/// Appends `headers` as wire lines, without the hop-by-hop ones and
/// without those `skip` names (lower case).
fn put_end_to_end(out: &mut Vec<u8>, headers: &HeaderMap, skip: &[&str]) {
    let listed = connection_listed(headers);
    for (name, value) in headers {
        let name = name.as_str();
        if HOP_BY_HOP.contains(&name) || skip.contains(&name) || listed.iter().any(|l| l == name) {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

/// How the head the proxy writes frames its body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Framed {
    /// The headers say it (Content-Length, or nothing for no body).
    AsReceived,
    /// `Transfer-Encoding: chunked`, the chunks passed on as they came.
    Chunked,
    /// A chunked body sent as its plain payload, ended by the close (for
    /// an HTTP/1.0 client).
    Unchunked,
}

impl Framed {
    /// How a body framed as `framing` is written on: as received, chunks
    /// as they came, or (`unchunk`) chunks as their plain payload.
    pub(crate) fn of(framing: Framing, unchunk: bool) -> Self {
        match framing {
            Framing::Chunked if unchunk => Framed::Unchunked,
            Framing::Chunked => Framed::Chunked,
            _ => Framed::AsReceived,
        }
    }
}

/// The request the upstream receives: `target` in origin form, `Host`
/// naming the upstream (like nginx's default `proxy_set_header Host
/// $proxy_host`, so virtual hosts and TLS names see their own name), no
/// `Expect` (the proxy answers it), and for an upgrade the `Upgrade` and
/// `Connection: upgrade` the upgrade needs.
pub(crate) fn upstream_request(
    head: &RequestHead,
    target: &str,
    host: &str,
    framed: Framed,
) -> Vec<u8> {
    let mut out = Vec::with_capacity(256 + head.headers.len() * 48);
    out.extend_from_slice(head.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\nhost: ");
    out.extend_from_slice(host.as_bytes());
    out.extend_from_slice(b"\r\n");
    put_end_to_end(&mut out, &head.headers, &["host", "expect"]);
    if framed == Framed::Chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if is_upgrade(&head.headers) {
        if let Some(protocol) = head.headers.get(header::UPGRADE) {
            out.extend_from_slice(b"connection: upgrade\r\nupgrade: ");
            out.extend_from_slice(protocol.as_bytes());
            out.extend_from_slice(b"\r\n");
        }
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// The response head the client receives; `close` adds
/// `Connection: close`.
pub(crate) fn client_response(head: &ResponseHead, framed: Framed, close: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + head.headers.len() * 48);
    out.extend_from_slice(b"HTTP/1.1 ");
    out.extend_from_slice(head.status.as_str().as_bytes());
    out.push(b' ');
    let reason = match head.reason.as_str() {
        "" => head.status.canonical_reason().unwrap_or(""),
        reason => reason,
    };
    out.extend_from_slice(reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    // A Content-Length beside chunks means nothing (RFC 9112 §6.3) and is
    // not passed on, so no client can be told two different lengths.
    let skip: &[&str] = match framed {
        Framed::AsReceived => &[],
        Framed::Chunked | Framed::Unchunked => &["content-length"],
    };
    put_end_to_end(&mut out, &head.headers, skip);
    if framed == Framed::Chunked {
        out.extend_from_slice(b"transfer-encoding: chunked\r\n");
    }
    if close {
        out.extend_from_slice(b"connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// A switching-protocols answer passed to the client as the upstream
/// gave it, `Connection` and `Upgrade` included.
pub(crate) fn switching_protocols(head: &ResponseHead) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + head.headers.len() * 48);
    out.extend_from_slice(b"HTTP/1.1 101 ");
    out.extend_from_slice(head.reason.as_bytes());
    out.extend_from_slice(b"\r\n");
    for (name, value) in &head.headers {
        out.extend_from_slice(name.as_str().as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(b"\r\n");
    out
}

/// A short answer of the proxy's own, closing the connection.
pub(crate) fn own_answer(status: StatusCode, message: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {} {}\r\ncontent-type: text/plain; charset=utf-8\r\n\
         content-length: {}\r\nconnection: close\r\n\r\n{message}",
        status.as_str(),
        status.canonical_reason().unwrap_or(""),
        message.len()
    )
    .into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_head_is_read_once_complete_and_bounded() {
        let wire = b"POST /a?b=1 HTTP/1.1\r\nHost: x\r\nX-Two: 1\r\nX-Two: 2\r\n\r\nbody";
        assert!(matches!(parse_request(&wire[..10], 1024), Ok(None)));
        let (head, len) = parse_request(wire, 1024)
            .expect("parses")
            .expect("complete");
        assert_eq!(&wire[len..], b"body");
        assert_eq!(head.method, Method::POST);
        assert_eq!(head.target, "/a?b=1");
        assert_eq!(head.headers.get_all("x-two").iter().count(), 2);
        assert!(matches!(
            parse_request(&wire[..20], 10),
            Err(HeadError::TooLarge)
        ));
        assert!(matches!(parse_request(wire, 20), Err(HeadError::TooLarge)));
        assert!(matches!(
            parse_request(b"defgh\r\n\r\n", 1024),
            Err(HeadError::Malformed(_))
        ));
    }

    #[test]
    fn the_upstream_request_drops_hop_by_hop_headers_and_names_the_upstream() {
        let wire = b"GET /x HTTP/1.1\r\nHost: proxy\r\nConnection: keep-alive, x-hop\r\n\
            X-Hop: 1\r\nKeep-Alive: timeout=5\r\nExpect: 100-continue\r\nAccept: */*\r\n\r\n";
        let (head, _) = parse_request(wire, 1024)
            .expect("parses")
            .expect("complete");
        let out = upstream_request(&head, "/base/x", "up:80", Framed::AsReceived);
        assert_eq!(
            String::from_utf8(out).expect("text"),
            "GET /base/x HTTP/1.1\r\nhost: up:80\r\naccept: */*\r\n\r\n"
        );
    }

    #[test]
    fn the_client_response_keeps_end_to_end_headers_and_says_when_it_closes() {
        let wire = b"HTTP/1.1 200 Fine\r\nTransfer-Encoding: chunked\r\nSet-Cookie: a\r\n\
            Content-Length: 99\r\nSet-Cookie: b\r\nConnection: close\r\n\r\n";
        let (head, len) = parse_response(wire, 1024)
            .expect("parses")
            .expect("complete");
        assert_eq!(len, wire.len());
        let out = client_response(&head, Framed::Chunked, true);
        assert_eq!(
            String::from_utf8(out).expect("text"),
            "HTTP/1.1 200 Fine\r\nset-cookie: a\r\nset-cookie: b\r\n\
             transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
        );
    }
}
