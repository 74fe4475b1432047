//! An exchange as a journal record, and back.
//!
//! The heads are kept in their HTTP/1.1 wire form (request or status line,
//! one `name: value` line per header in the order the proxy saw them), the
//! bodies as the proxy captured them (de-chunked, capped), each with its
//! size, completeness and digest; then the timestamps and the connection.
//! Writing one is a few copies; nothing is decoded or rendered until the
//! materializer reads it back, away from the traffic.

use chrono::{DateTime, Utc};
use http::{HeaderMap, HeaderName, HeaderValue, Method, StatusCode, Version};

use crate::journal::record::{frame, put_bytes, put_i64, put_u64, Fields};
use crate::journal::{JournalError, RecordKind};

use super::capture::CapturedBody;
use super::exchange::{Exchange, RequestHead, ResponseHead};

/// Frames `exchange` as an [`RecordKind::HttpExchange`] record.
pub fn encode(exchange: &Exchange, body_cap: u64) -> Vec<u8> {
    frame(RecordKind::HttpExchange, |buf| {
        put_exchange(buf, exchange, body_cap)
    })
}

/// Appends an [`RecordKind::HttpExchange`] record's payload to `buf`. The
/// test's name is kept so a recovery writes each test once under the same
/// name; `body_cap` is what the proxy capped bodies at.
pub fn put_exchange(buf: &mut Vec<u8>, exchange: &Exchange, body_cap: u64) {
    put_bytes(buf, exchange.name.as_bytes());
    put_u64(buf, exchange.request.connection);
    put_u64(buf, body_cap);
    put_bytes(buf, exchange.request.client.to_string().as_bytes());
    put_i64(buf, nanos(exchange.request.received_at));
    put_i64(buf, nanos(exchange.response.received_at));
    put_i64(buf, nanos(exchange.completed_at));
    put_bytes(buf, exchange.request.url.as_bytes());
    let mut head = Vec::with_capacity(256);
    head.extend_from_slice(exchange.request.method.as_str().as_bytes());
    head.push(b' ');
    head.extend_from_slice(exchange.request.path_and_query.as_bytes());
    head.push(b' ');
    head.extend_from_slice(version_text(exchange.request.version).as_bytes());
    head.extend_from_slice(b"\r\n");
    put_headers(&mut head, &exchange.request.headers);
    put_bytes(buf, &head);
    put_body(buf, &exchange.request_body);
    head.clear();
    head.extend_from_slice(version_text(exchange.response.version).as_bytes());
    head.push(b' ');
    head.extend_from_slice(exchange.response.status.as_str().as_bytes());
    head.push(b' ');
    let reason = exchange.response.status.canonical_reason().unwrap_or("");
    head.extend_from_slice(reason.as_bytes());
    head.extend_from_slice(b"\r\n");
    put_headers(&mut head, &exchange.response.headers);
    put_bytes(buf, &head);
    put_body(buf, &exchange.response_body);
}

/// An exchange read back, and the body cap it was recorded with.
pub struct Decoded {
    pub exchange: Exchange,
    pub body_cap: u64,
}

/// Reads back what [`encode`] wrote (the payload, after the kind byte).
pub fn decode(payload: &[u8]) -> Result<Decoded, JournalError> {
    let mut f = Fields::new(payload);
    let name = f.text("test name")?.to_string();
    let connection = f.u64("connection id")?;
    let body_cap = f.u64("body cap")?;
    let client = f
        .text("client address")?
        .parse()
        .map_err(|e| bad(format!("has a bad client address: {e}")))?;
    let request_at = time(f.i64("request time")?);
    let response_at = time(f.i64("response time")?);
    let completed_at = time(f.i64("completion time")?);
    let url = f.text("URL")?.to_string();

    let (line, headers) = split_head(f.bytes("request head")?)?;
    let mut parts = line.splitn(3, ' ');
    let (Some(method), Some(target), Some(version)) = (parts.next(), parts.next(), parts.next())
    else {
        return Err(bad(format!("has a bad request line {line:?}")));
    };
    let method = Method::from_bytes(method.as_bytes())
        .map_err(|e| bad(format!("has a bad method {method:?}: {e}")))?;
    let request = RequestHead {
        method,
        version: parse_version(version)?,
        url,
        path_and_query: target.to_string(),
        headers,
        received_at: request_at,
        client,
        connection,
    };
    let request_body = get_body(&mut f, "request body")?;

    let (line, headers) = split_head(f.bytes("response head")?)?;
    let mut parts = line.splitn(3, ' ');
    let (Some(version), Some(status)) = (parts.next(), parts.next()) else {
        return Err(bad(format!("has a bad status line {line:?}")));
    };
    let status = status
        .parse::<u16>()
        .ok()
        .and_then(|s| StatusCode::from_u16(s).ok())
        .ok_or_else(|| bad(format!("has a bad status {status:?}")))?;
    let response = ResponseHead {
        status,
        version: parse_version(version)?,
        headers,
        received_at: response_at,
    };
    let response_body = get_body(&mut f, "response body")?;
    Ok(Decoded {
        exchange: Exchange {
            name,
            request,
            request_body,
            response,
            response_body,
            completed_at,
        },
        body_cap,
    })
}

fn bad(message: String) -> JournalError {
    JournalError::Payload(message)
}

fn nanos(at: DateTime<Utc>) -> i64 {
    at.timestamp_nanos_opt().unwrap_or(0)
}

fn time(nanos: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_nanos(nanos)
}

fn version_text(version: Version) -> &'static str {
    match version {
        Version::HTTP_09 => "HTTP/0.9",
        Version::HTTP_10 => "HTTP/1.0",
        Version::HTTP_2 => "HTTP/2.0",
        Version::HTTP_3 => "HTTP/3.0",
        _ => "HTTP/1.1",
    }
}

fn parse_version(text: &str) -> Result<Version, JournalError> {
    match text {
        "HTTP/0.9" => Ok(Version::HTTP_09),
        "HTTP/1.0" => Ok(Version::HTTP_10),
        "HTTP/1.1" => Ok(Version::HTTP_11),
        "HTTP/2.0" => Ok(Version::HTTP_2),
        "HTTP/3.0" => Ok(Version::HTTP_3),
        other => Err(bad(format!("has an unknown HTTP version {other:?}"))),
    }
}

fn put_headers(head: &mut Vec<u8>, headers: &HeaderMap) {
    for (name, value) in headers {
        head.extend_from_slice(name.as_str().as_bytes());
        head.extend_from_slice(b": ");
        head.extend_from_slice(value.as_bytes());
        head.extend_from_slice(b"\r\n");
    }
    head.extend_from_slice(b"\r\n");
}

/// The first line and the headers of a head [`put_headers`] ended.
fn split_head(head: &[u8]) -> Result<(&str, HeaderMap), JournalError> {
    let mut lines = head
        .split(|&b| b == b'\n')
        .map(|l| l.strip_suffix(b"\r").unwrap_or(l));
    let first = lines.next().unwrap_or_default();
    let first = std::str::from_utf8(first)
        .map_err(|e| bad(format!("has a first line that is not UTF-8: {e}")))?;
    let mut headers = HeaderMap::new();
    for line in lines.take_while(|l| !l.is_empty()) {
        let at = line
            .windows(2)
            .position(|w| w == b": ")
            .ok_or_else(|| bad("has a header line without `: `".to_string()))?;
        let name = HeaderName::from_bytes(&line[..at])
            .map_err(|e| bad(format!("has a bad header name: {e}")))?;
        let value = HeaderValue::from_bytes(&line[at + 2..])
            .map_err(|e| bad(format!("has a bad value for {name}: {e}")))?;
        headers.append(name, value);
    }
    Ok((first, headers))
}

fn put_body(buf: &mut Vec<u8>, body: &CapturedBody) {
    put_u64(buf, body.size);
    buf.push(u8::from(body.complete));
    put_bytes(buf, body.sha256.as_deref().unwrap_or("").as_bytes());
    put_bytes(buf, &body.bytes);
}

fn get_body(f: &mut Fields<'_>, what: &str) -> Result<CapturedBody, JournalError> {
    let size = f.u64(what)?;
    let complete = f.u8(what)? != 0;
    let sha256 = f.text(what)?;
    let bytes = f.bytes(what)?.to_vec();
    Ok(CapturedBody {
        bytes,
        size,
        sha256: (!sha256.is_empty()).then(|| sha256.to_string()),
        complete,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::record::FRAME_HEAD;

    fn exchange() -> Exchange {
        let mut req_headers = HeaderMap::new();
        req_headers.append("host", HeaderValue::from_static("example.test"));
        req_headers.append("x-b", HeaderValue::from_static("1"));
        req_headers.append("x-b", HeaderValue::from_static("two: 2"));
        req_headers.append(
            "x-a",
            HeaderValue::from_bytes(b"caf\xc3\xa9").unwrap_or(HeaderValue::from_static("?")),
        );
        let mut resp_headers = HeaderMap::new();
        resp_headers.append("content-type", HeaderValue::from_static("application/json"));
        let at = DateTime::from_timestamp_nanos(1_780_000_000_123_456_789);
        Exchange {
            name: "test-12".to_string(),
            request: RequestHead {
                method: Method::PATCH,
                version: Version::HTTP_10,
                url: "http://127.0.0.1:9/a?b=c d".to_string(),
                path_and_query: "/a?b=c%20d".to_string(),
                headers: req_headers,
                received_at: at,
                client: "127.0.0.1:5555".parse().expect("addr"),
                connection: 3,
            },
            request_body: CapturedBody {
                bytes: b"\x00\xffbin".to_vec(),
                size: 900,
                sha256: Some("ab".repeat(32)),
                complete: true,
            },
            response: ResponseHead {
                status: StatusCode::IM_A_TEAPOT,
                version: Version::HTTP_11,
                headers: resp_headers,
                received_at: at,
            },
            response_body: CapturedBody {
                bytes: b"{}".to_vec(),
                size: 2,
                sha256: None,
                complete: false,
            },
            completed_at: at,
        }
    }

    #[test]
    fn an_exchange_reads_back_as_it_was_written() {
        let original = exchange();
        let framed = encode(&original, 4096);
        let decoded = decode(&framed[FRAME_HEAD + 1..]).expect("decodes");
        assert_eq!(decoded.body_cap, 4096);
        let back = decoded.exchange;
        assert_eq!(format!("{original:?}"), format!("{back:?}"));
    }

    #[test]
    fn a_payload_cut_short_is_an_error_not_a_panic() {
        let framed = encode(&exchange(), 10);
        let payload = &framed[FRAME_HEAD + 1..];
        for cut in 0..payload.len() {
            assert!(decode(&payload[..cut]).is_err(), "cut at {cut}");
        }
    }
}
