//! Turns a finished [`Exchange`] into a Keploy `Http` test case.

use std::collections::BTreeMap;

use http::{HeaderMap, Version};
use percent_encoding::percent_decode_str;

use crate::testset::http_case::{
    Assertions, Headers, HttpRequest, HttpResponse, HttpSpec, StoredBody, Truncation,
};
use crate::testset::http_form::{header_fields, store_body};
use crate::testset::redact::Redactor;
use crate::testset::HttpTestCase;

use super::capture::CapturedBody;
use super::exchange::Exchange;
use super::noise::record_time_noise;

/// Query parameters, percent-decoded; a repeated key keeps every value,
/// joined with `, ` as repeated headers are.
pub fn url_params(path_and_query: &str) -> BTreeMap<String, String> {
    let mut params: BTreeMap<String, String> = BTreeMap::new();
    let Some((_, query)) = path_and_query.split_once('?') else {
        return params;
    };
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
        let decode = |s: &str| {
            percent_decode_str(&s.replace('+', " "))
                .decode_utf8_lossy()
                .into_owned()
        };
        let (key, value) = (decode(key), decode(value));
        params
            .entry(key)
            .and_modify(|v| {
                v.push_str(", ");
                v.push_str(&value);
            })
            .or_insert(value);
    }
    params
}

fn proto(version: Version) -> (u8, u8) {
    match version {
        Version::HTTP_09 => (0, 9),
        Version::HTTP_10 => (1, 0),
        Version::HTTP_2 => (2, 0),
        Version::HTTP_3 => (3, 0),
        _ => (1, 1),
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

/// The request as a curl command, in the layout Keploy writes. Bodies that
/// are not plain text are left out: they cannot be pasted into a shell.
pub fn curl_command(method: &str, url: &str, header: &Headers, body: &StoredBody) -> String {
    let mut lines = vec![
        format!("curl --request {method}"),
        format!("  --url {}", shell_quote(url)),
    ];
    for (name, value) in header {
        lines.push(format!(
            "  --header {}",
            shell_quote(&format!("{name}: {value}"))
        ));
    }
    if !body.body.is_empty() && body.body_encoding.is_none() && body.body_truncated.is_none() {
        lines.push(format!("  --data {}", shell_quote(&body.body)));
    }
    lines.join(" \\\n")
}

/// A captured body in its stored form; `limit` bounds how far a compressed
/// body is expanded.
fn stored(captured: CapturedBody, encoding: &HeaderMap, limit: u64) -> StoredBody {
    let cut = captured.truncated().then(|| Truncation {
        size: captured.size,
        sha256: captured.sha256.clone().unwrap_or_default(),
    });
    let encoding = encoding
        .get(http::header::CONTENT_ENCODING)
        .and_then(|v| v.to_str().ok());
    store_body(captured.bytes, cut, encoding, limit)
}

/// Builds the test case, its secrets replaced by `redactor`'s placeholders
/// before it leaves memory; `body_cap` also bounds how far a compressed
/// body is expanded.
pub fn build_test_case(exchange: Exchange, body_cap: u64, redactor: &Redactor) -> HttpTestCase {
    let Exchange {
        name,
        request,
        request_body,
        response,
        response_body,
        completed_at,
    } = exchange;

    let (req_header, req_repeated) = header_fields(&request.headers);
    let mut req_body = stored(request_body, &request.headers, body_cap);
    req_body.header_repeated = req_repeated;
    let (req_major, req_minor) = proto(request.version);

    let (resp_header, resp_repeated) = header_fields(&response.headers);
    let mut resp_body = stored(response_body, &response.headers, body_cap);
    resp_body.header_repeated = resp_repeated;
    let (resp_major, resp_minor) = proto(response.version);

    let json_body = (resp_body.body_encoding.is_none() && resp_body.body_truncated.is_none())
        .then_some(resp_body.body.as_str());
    let noise = record_time_noise(&resp_header, json_body);

    let metadata = BTreeMap::from([
        ("client".to_string(), request.client.to_string()),
        ("connection".to_string(), request.connection.to_string()),
        (
            "recorder".to_string(),
            format!("recplay {}", env!("CARGO_PKG_VERSION")),
        ),
    ]);

    let spec = HttpSpec {
        metadata,
        req: HttpRequest {
            method: request.method.to_string(),
            proto_major: req_major,
            proto_minor: req_minor,
            url_params: url_params(&request.path_and_query),
            url: request.url,
            header: req_header,
            body: req_body,
            timestamp: request.received_at,
        },
        resp: HttpResponse {
            status_code: response.status.as_u16(),
            header: resp_header,
            body: resp_body,
            status_message: response.status.canonical_reason().unwrap_or("").to_string(),
            proto_major: resp_major,
            proto_minor: resp_minor,
            timestamp: response.received_at,
        },
        objects: Vec::new(),
        assertions: Assertions {
            noise,
            other: BTreeMap::new(),
        },
        created: completed_at.timestamp(),
    };
    let mut case = HttpTestCase::new(name, spec);
    // Redacted before the curl line is built from the request, so the
    // line holds the placeholders too.
    let tally = redactor.redact_case(&mut case);
    if tally.total() > 0 {
        tracing::debug!(test = %case.name, redacted = tally.total(), "secrets redacted");
    }
    let req = &case.spec.req;
    case.curl = curl_command(&req.method, &req.url, &req.header, &req.body);
    case
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_parameters_are_decoded_and_repeats_kept() {
        let params = url_params("/s?q=a+b%21&tag=x&tag=y&flag");
        assert_eq!(params["q"], "a b!");
        assert_eq!(params["tag"], "x, y");
        assert_eq!(params["flag"], "");
    }

    #[test]
    fn curl_quotes_single_quotes() {
        let header = Headers::from([("X-A".to_string(), "it's".to_string())]);
        let body = StoredBody {
            body: "{}".into(),
            ..StoredBody::default()
        };
        let curl = curl_command("POST", "http://h/x", &header, &body);
        assert_eq!(
            curl,
            "curl --request POST \\\n  --url 'http://h/x' \\\n  --header 'X-A: it'\\''s' \\\n  --data '{}'"
        );
    }
}
