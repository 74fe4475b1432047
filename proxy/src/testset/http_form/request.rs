//! A recorded request as it goes back on the wire.

use super::body::{encode_content, stored_bytes};
use super::headers::is_transfer_header;
use super::FormError;
use crate::testset::http_case::HttpRequest;

/// The headers, in order, and the body bytes of a request to replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayRequest {
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// The recorded request's headers and body as they are sent again to the
/// app at `authority`.
///
/// Headers go in their recorded order, since apps that echo, sign or hash
/// headers answer by it; repeated ones go value by value. `Host` keeps its
/// place and takes the target's authority. Hop-by-hop headers are the
/// transport's business, except the body's framing: a chunked request is
/// sent chunked, and a recorded `Content-Length` (an empty body's `0`
/// among them) is sent whenever the body is the recorded bytes — when a
/// compressed body had to be compressed anew, the length is the new one.
pub fn replay_request(recorded: &HttpRequest, authority: &str) -> Result<ReplayRequest, FormError> {
    if recorded.body.body_truncated.is_some() {
        return Err(FormError::Truncated);
    }
    let mut body = stored_bytes(&recorded.body)?;
    // The body was stored decoded; the app expects it as it was sent.
    if recorded.body.content_encoding.is_some() {
        if let Some((_, sent)) = recorded
            .header
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-encoding"))
        {
            body = encode_content(sent, &body)?;
        }
    }
    let chunked = recorded
        .header
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
        .map(|(_, v)| v.as_str())
        .filter(|v| ends_chunked(v));
    let mut headers = Vec::with_capacity(recorded.header.len());
    for (name, value) in &recorded.header {
        if name.eq_ignore_ascii_case("host") {
            headers.push((name.clone(), authority.to_string()));
            continue;
        }
        let keep = if name.eq_ignore_ascii_case("transfer-encoding") {
            chunked.is_some()
        } else if name.eq_ignore_ascii_case("content-length") {
            chunked.is_none() && value.trim().parse::<u64>().ok() == Some(body.len() as u64)
        } else {
            !is_transfer_header(name)
        };
        if !keep {
            continue;
        }
        match recorded.body.header_repeated.get(name) {
            Some(values) => {
                headers.extend(values.iter().map(|v| (name.clone(), v.clone())));
            }
            None => headers.push((name.clone(), value.clone())),
        }
    }
    Ok(ReplayRequest { headers, body })
}

/// Whether a Transfer-Encoding value's last coding is `chunked`.
fn ends_chunked(value: &str) -> bool {
    value
        .rsplit(',')
        .next()
        .is_some_and(|last| last.trim().eq_ignore_ascii_case("chunked"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testset::http_form::decode_content;

    fn req(headers: &[(&str, &str)], body: &str) -> HttpRequest {
        let mut r = HttpRequest {
            method: "PUT".into(),
            url: "http://recorded:9/x".into(),
            ..Default::default()
        };
        for (k, v) in headers {
            r.header.insert(k.to_string(), v.to_string());
        }
        r.body.body = body.into();
        r
    }

    fn names(sent: &ReplayRequest) -> Vec<&str> {
        sent.headers.iter().map(|(n, _)| n.as_str()).collect()
    }

    #[test]
    fn headers_keep_their_order_and_host_its_place() {
        let r = req(
            &[
                ("Host", "recorded:9"),
                ("User-Agent", "ua"),
                ("Connection", "keep-alive"),
                ("Accept", "*/*"),
            ],
            "",
        );
        let sent = replay_request(&r, "127.0.0.1:8080").expect("request");
        assert_eq!(names(&sent), ["Host", "User-Agent", "Accept"]);
        assert_eq!(sent.headers[0].1, "127.0.0.1:8080");
    }

    #[test]
    fn repeated_headers_go_value_by_value() {
        let mut r = req(&[("Accept", "a, b"), ("X-B", "1")], "");
        r.body
            .header_repeated
            .insert("Accept".into(), vec!["a".into(), "b".into()]);
        let sent = replay_request(&r, "t:1").expect("request");
        assert_eq!(names(&sent), ["Accept", "Accept", "X-B"]);
    }

    #[test]
    fn framing_is_replayed_when_the_body_is_the_recorded_one() {
        let empty = req(&[("Content-Length", "0")], "");
        let sent = replay_request(&empty, "t:1").expect("request");
        assert_eq!(sent.headers, [("Content-Length".into(), "0".into())]);

        let chunked = req(&[("Transfer-Encoding", "chunked")], "abc");
        let sent = replay_request(&chunked, "t:1").expect("request");
        assert_eq!(names(&sent), ["Transfer-Encoding"]);

        let wrong = req(&[("Content-Length", "9")], "abc");
        assert!(replay_request(&wrong, "t:1")
            .expect("request")
            .headers
            .is_empty());
    }

    #[test]
    fn a_compressed_body_is_compressed_again_with_its_own_length() {
        let mut r = req(
            &[("Content-Encoding", "gzip"), ("Content-Length", "27")],
            "{\"a\":1}",
        );
        r.body.content_encoding = Some("gzip".into());
        let sent = replay_request(&r, "t:1").expect("request");
        assert_eq!(
            decode_content("gzip", &sent.body, 64).expect("gzip"),
            b"{\"a\":1}"
        );
        if let Some((_, length)) = sent.headers.iter().find(|(n, _)| n == "Content-Length") {
            assert_eq!(length, &sent.body.len().to_string());
        }
    }

    #[test]
    fn a_cut_body_is_refused() {
        let mut r = req(&[], "abc");
        r.body.body_truncated = Some(crate::testset::http_case::Truncation {
            size: 10,
            sha256: "00".into(),
        });
        assert!(matches!(
            replay_request(&r, "t:1"),
            Err(FormError::Truncated)
        ));
    }
}
