//! Every HTTP feature the recording proxy must carry, checked on the wire
//! and in the recorded test case.

use std::io::Read;

use base64::Engine;
use bytes::Bytes;
use futures_util::stream;
use http::{header, Method, Request, StatusCode};
use http_body_util::{BodyExt, StreamBody};
use hyper::body::Frame;
use hyper_util::rt::TokioIo;
use recplay_proxy::http::{HttpProxyConfig, Upstream as UpstreamUrl};
use recplay_proxy::testset::http_case::{BodyEncoding, KEPLOY_API_VERSION};
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::{by_url, client, get, raw, send, Proxied};
use crate::support::upstream::{RawUpstream, Upstream, COMPRESSED_JSON};

#[tokio::test]
async fn a_json_exchange_is_recorded_with_every_field() {
    let upstream = Upstream::start();
    let proxy = Proxied::start(&upstream.url()).await;
    let c = client();
    let got = send(
        &c,
        Method::POST,
        &proxy.url("/echo/items?x=1&x=2&q=a%20b"),
        &[
            ("x-tag", "a"),
            ("x-tag", "b"),
            ("content-type", "application/json"),
        ],
        r#"{"name":"n1"}"#,
    )
    .await;
    assert_eq!(got.status, StatusCode::OK);
    let echoed = got.json();
    assert_eq!(echoed["query"], "x=1&x=2&q=a%20b", "query string preserved");
    assert_eq!(
        echoed["headers"]["x-tag"],
        serde_json::json!(["a", "b"]),
        "repeats preserved"
    );
    assert_eq!(echoed["body"], r#"{"name":"n1"}"#);
    let set = proxy.finish().await;

    assert_eq!(set.tests.len(), 1);
    let case = &set.tests[0];
    assert_eq!(case.version, KEPLOY_API_VERSION);
    assert_eq!(case.kind, "Http");
    assert_eq!(case.name, "test-1");
    assert_eq!(case.recplay_format, recplay_proxy::testset::FORMAT_VERSION);
    let req = &case.spec.req;
    assert_eq!(req.method, "POST");
    assert_eq!((req.proto_major, req.proto_minor), (1, 1));
    assert_eq!(
        req.url,
        format!("{}/echo/items?x=1&x=2&q=a%20b", upstream.url())
    );
    assert_eq!(req.url_params["x"], "1, 2");
    assert_eq!(req.url_params["q"], "a b");
    assert_eq!(req.header["X-Tag"], "a, b");
    assert_eq!(req.body.header_repeated["X-Tag"], ["a", "b"]);
    assert_eq!(req.header["Content-Type"], "application/json");
    assert_eq!(req.body.body, r#"{"name":"n1"}"#);
    let resp = &case.spec.resp;
    assert_eq!(resp.status_code, 200);
    assert_eq!(resp.status_message, "OK");
    assert_eq!((resp.proto_major, resp.proto_minor), (1, 1));
    assert!(resp.header.contains_key("Date"), "{:?}", resp.header);
    let recorded: serde_json::Value = serde_json::from_str(&resp.body.body).expect("JSON body");
    assert_eq!(recorded, echoed, "the recorded body is what the client got");
    assert!(req.timestamp <= resp.timestamp);
    assert!(case.spec.created >= req.timestamp.timestamp());
    let noise: Vec<&str> = case
        .spec
        .assertions
        .noise
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(noise, ["body.created_at", "header.Date"]);
    assert!(
        case.curl.starts_with("curl --request POST"),
        "{}",
        case.curl
    );
    assert!(case.curl.contains(&format!(
        "--url '{}/echo/items?x=1&x=2&q=a%20b'",
        upstream.url()
    )));
    assert!(
        case.curl.contains(r#"--data '{"name":"n1"}'"#),
        "{}",
        case.curl
    );
    assert_eq!(case.spec.metadata["connection"], "1");
    assert!(case.spec.objects.is_empty());
}

#[tokio::test]
async fn pipelined_requests_on_one_keep_alive_connection_keep_their_order() {
    let upstream = Upstream::start();
    let proxy = Proxied::start(&upstream.url()).await;
    let text = raw(
        proxy.addr,
        b"GET /echo/p1 HTTP/1.1\r\nHost: x\r\n\r\n\
          GET /echo/p2?k=v HTTP/1.1\r\nHost: x\r\n\r\n\
          POST /echo/p3 HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nConnection: close\r\n\r\nabc",
    )
    .await;
    assert_eq!(text.matches("HTTP/1.1 200 OK").count(), 3, "{text}");
    let p1 = text.find(r#""path":"/echo/p1""#).expect("p1");
    let p2 = text.find(r#""path":"/echo/p2""#).expect("p2");
    let p3 = text.find(r#""path":"/echo/p3""#).expect("p3");
    assert!(p1 < p2 && p2 < p3, "responses in request order");
    let set = proxy.finish().await;
    let urls: Vec<(&str, &str)> = set
        .tests
        .iter()
        .map(|t| {
            (
                t.name.as_str(),
                t.spec.req.url.rsplit('/').next().unwrap_or(""),
            )
        })
        .collect();
    assert_eq!(
        urls,
        [("test-1", "p1"), ("test-2", "p2?k=v"), ("test-3", "p3")]
    );
    assert_eq!(set.tests[2].spec.req.body.body, "abc");
    assert!(set
        .tests
        .iter()
        .all(|t| t.spec.metadata["connection"] == "1"));
}

#[tokio::test]
async fn chunked_and_content_length_bodies_pass_both_ways() {
    let upstream = Upstream::start();
    let proxy = Proxied::start(&upstream.url()).await;

    // Chunked request body (no length known up front).
    let stream = TcpStream::connect(proxy.addr).await.expect("connect");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    let chunks = ["one-", "two-", "three"]
        .map(|c| Ok::<_, std::convert::Infallible>(Frame::data(Bytes::from(c))));
    let req = Request::post(format!("http://{}/echo/chunked-up", proxy.addr))
        .body(StreamBody::new(stream::iter(chunks)))
        .expect("request");
    let resp = sender.send_request(req).await.expect("response");
    let body = resp.into_body().collect().await.expect("body").to_bytes();
    let echoed: serde_json::Value = serde_json::from_slice(&body).expect("json");
    assert_eq!(echoed["framing"], "chunked");
    assert_eq!(echoed["body"], "one-two-three");

    let c = client();
    let got = send(&c, Method::PUT, &proxy.url("/echo/length-up"), &[], "fixed").await;
    assert_eq!(got.json()["framing"], "content-length");

    // Chunked and Content-Length responses.
    let got = get(&c, &proxy.url("/chunked")).await;
    assert_eq!(got.text(), "first,second,third");
    assert!(!got.headers.contains_key(header::CONTENT_LENGTH));
    let got = get(&c, &proxy.url("/json")).await;
    assert_eq!(
        got.headers[header::CONTENT_LENGTH].to_str().expect("cl"),
        got.body.len().to_string()
    );

    let set = proxy.finish().await;
    assert_eq!(
        by_url(&set, "/echo/chunked-up").spec.req.body.body,
        "one-two-three"
    );
    assert_eq!(by_url(&set, "/echo/length-up").spec.req.body.body, "fixed");
    assert_eq!(
        by_url(&set, "/chunked").spec.resp.body.body,
        "first,second,third"
    );
}

#[tokio::test]
async fn head_204_and_304_carry_no_body() {
    let upstream = Upstream::start();
    let proxy = Proxied::start(&upstream.url()).await;
    let c = client();
    let full = get(&c, &proxy.url("/json")).await;
    let head = send(&c, Method::HEAD, &proxy.url("/json"), &[], "").await;
    assert_eq!(head.status, StatusCode::OK);
    assert!(head.body.is_empty());
    assert_eq!(
        head.headers[header::CONTENT_LENGTH],
        full.headers[header::CONTENT_LENGTH]
    );
    let no_content = get(&c, &proxy.url("/status/204")).await;
    assert_eq!(no_content.status, StatusCode::NO_CONTENT);
    let not_modified = send(
        &c,
        Method::GET,
        &proxy.url("/status/304"),
        &[("if-none-match", "\"v1\"")],
        "",
    )
    .await;
    assert_eq!(not_modified.status, StatusCode::NOT_MODIFIED);
    assert_eq!(not_modified.headers[header::ETAG], "\"v1\"");
    // The connection is still good after bodiless responses.
    assert_eq!(get(&c, &proxy.url("/json")).await.body, full.body);

    let set = proxy.finish().await;
    assert_eq!(set.tests.len(), 5);
    let head_case = set
        .tests
        .iter()
        .find(|t| t.spec.req.method == "HEAD")
        .expect("HEAD recorded");
    assert_eq!(head_case.spec.resp.body.body, "");
    assert_eq!(by_url(&set, "/status/204").spec.resp.status_code, 204);
    let nm = by_url(&set, "/status/304");
    assert_eq!(nm.spec.resp.status_code, 304);
    assert_eq!(nm.spec.resp.status_message, "Not Modified");
    assert_eq!(nm.spec.req.header["If-None-Match"], "\"v1\"");
}

#[tokio::test]
async fn expect_100_continue_is_answered_before_the_body_is_sent() {
    let upstream = Upstream::start();
    let proxy = Proxied::start(&upstream.url()).await;
    let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
    stream
        .write_all(b"POST /echo/expect HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nExpect: 100-continue\r\nConnection: close\r\n\r\n")
        .await
        .expect("write head");
    let mut interim = vec![0u8; 25];
    stream
        .read_exact(&mut interim)
        .await
        .expect("interim response");
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"hello").await.expect("write body");
    let mut rest = String::new();
    stream.read_to_string(&mut rest).await.expect("read");
    assert!(rest.starts_with("HTTP/1.1 200 OK"), "{rest}");
    assert!(rest.contains(r#""body":"hello""#), "{rest}");
    let set = proxy.finish().await;
    let case = by_url(&set, "/echo/expect");
    assert_eq!(case.spec.req.body.body, "hello");
    assert_eq!(case.spec.req.header["Expect"], "100-continue");
}

#[tokio::test]
async fn compressed_bodies_are_stored_decoded_and_binary_as_base64() {
    let upstream = Upstream::start();
    let proxy = Proxied::start(&upstream.url()).await;
    let c = client();
    for enc in ["gzip", "deflate", "br"] {
        let got = get(&c, &proxy.url(&format!("/{enc}"))).await;
        assert_eq!(
            got.headers[header::CONTENT_ENCODING],
            enc,
            "passed through encoded"
        );
        let mut decoded = String::new();
        match enc {
            "gzip" => flate2::read::GzDecoder::new(&got.body[..]).read_to_string(&mut decoded),
            "deflate" => flate2::read::ZlibDecoder::new(&got.body[..]).read_to_string(&mut decoded),
            _ => brotli::Decompressor::new(&got.body[..], 4096).read_to_string(&mut decoded),
        }
        .expect("decode");
        assert_eq!(decoded, COMPRESSED_JSON);
    }
    let binary = get(&c, &proxy.url("/binary")).await;
    assert_eq!(binary.body.len(), 256);
    let set = proxy.finish().await;
    for enc in ["gzip", "deflate", "br"] {
        let body = &by_url(&set, &format!("/{enc}")).spec.resp.body;
        assert_eq!(body.body, COMPRESSED_JSON, "{enc} stored decoded");
        assert_eq!(body.content_encoding.as_deref(), Some(enc));
        assert_eq!(body.body_encoding, None);
    }
    let body = &by_url(&set, "/binary").spec.resp.body;
    assert_eq!(body.body_encoding, Some(BodyEncoding::Base64));
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(&body.body)
        .expect("base64");
    assert_eq!(bytes, (0..=255u8).collect::<Vec<u8>>());
}

#[tokio::test]
async fn bodies_over_the_cap_keep_size_and_sha256_only() {
    let upstream = Upstream::start();
    let mut config = HttpProxyConfig::new(UpstreamUrl::parse(&upstream.url()).expect("url"));
    config.body_cap = 1024;
    let proxy = Proxied::start_with(config).await;
    let c = client();
    let got = get(&c, &proxy.url("/bytes?size=100000")).await;
    assert_eq!(got.body.len(), 100_000, "the client gets the whole body");
    let upload = "u".repeat(5000);
    let sunk = send(&c, Method::POST, &proxy.url("/sink"), &[], &upload)
        .await
        .json();
    assert_eq!(sunk["size"], 5000);
    let small = send(&c, Method::POST, &proxy.url("/echo/small"), &[], "tiny").await;
    assert_eq!(small.status, StatusCode::OK);

    let set = proxy.finish().await;
    let big = &by_url(&set, "/bytes?size=100000").spec.resp.body;
    let cut = big.body_truncated.as_ref().expect("marked truncated");
    assert_eq!(cut.size, 100_000);
    assert_eq!(cut.sha256, hex::encode(Sha256::digest(&got.body)));
    assert_eq!(
        big.body.as_bytes(),
        &got.body[..1024],
        "the first cap bytes are kept"
    );
    let up = &by_url(&set, "/sink").spec.req.body;
    assert_eq!(up.body_truncated.as_ref().map(|t| t.size), Some(5000));
    assert_eq!(up.body.len(), 1024);
    assert!(by_url(&set, "/echo/small")
        .spec
        .req
        .body
        .body_truncated
        .is_none());
}

#[tokio::test]
async fn repeated_response_headers_are_joined_and_kept_exactly() {
    let upstream = Upstream::start();
    let proxy = Proxied::start(&upstream.url()).await;
    let got = get(&client(), &proxy.url("/cookies")).await;
    let cookies: Vec<_> = got.headers.get_all(header::SET_COOKIE).iter().collect();
    assert_eq!(cookies, ["a=1", "b=2"], "both reach the client separately");
    let set = proxy.finish().await;
    let resp = &by_url(&set, "/cookies").spec.resp;
    // Cookie values are secrets: each repeat is redacted on its own.
    let (a, b) = (
        "a={{recplay.secret.cookie_a_1}}",
        "b={{recplay.secret.cookie_b_1}}",
    );
    assert_eq!(resp.header["Set-Cookie"], format!("{a}, {b}"));
    assert_eq!(resp.body.header_repeated["Set-Cookie"], [a, b]);
}

#[tokio::test]
async fn a_websocket_upgrade_passes_through_untouched_and_unrecorded() {
    let upstream = Upstream::start();
    let proxy = Proxied::start(&upstream.url()).await;
    let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
    stream
        .write_all(
            b"GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n",
        )
        .await
        .expect("write");
    let mut head = Vec::new();
    while !head.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        stream.read_exact(&mut byte).await.expect("read head");
        head.push(byte[0]);
    }
    let head = String::from_utf8_lossy(&head).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    for message in [&b"ping-123"[..], &[0x81, 0x00, 0xff][..]] {
        stream.write_all(message).await.expect("write frame");
        let mut echo = vec![0u8; message.len()];
        stream.read_exact(&mut echo).await.expect("echo");
        assert_eq!(echo, message, "bytes pass untouched both ways");
    }
    drop(stream);
    assert_eq!(
        get(&client(), &proxy.url("/json")).await.status,
        StatusCode::OK
    );
    let set = proxy.finish().await;
    assert_eq!(set.tests.len(), 1, "only the plain exchange is recorded");
    assert!(set.tests[0].spec.req.url.ends_with("/json"));
}

#[tokio::test]
async fn an_upstream_that_is_down_gets_a_502_naming_it_and_the_proxy_keeps_serving() {
    let spare = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = spare.local_addr().expect("addr");
    drop(spare);
    let proxy = Proxied::start(&format!("http://{addr}")).await;
    let c = client();
    for _ in 0..2 {
        let got = get(&c, &proxy.url("/json")).await;
        assert_eq!(got.status, StatusCode::BAD_GATEWAY);
        assert!(
            got.text().contains(&format!("http://{addr}")),
            "{}",
            got.text()
        );
        let refused = got.text().matches("refused").count();
        assert_eq!(refused, 1, "the cause is named once: {}", got.text());
    }
    let upstream = crate::support::upstream::Upstream::start_on(addr, None);
    let got = get(&c, &proxy.url("/json?after=up")).await;
    assert_eq!(
        got.status,
        StatusCode::OK,
        "the proxy recovers when the upstream comes up"
    );
    let set = proxy.finish().await;
    assert_eq!(set.tests.len(), 1, "failed exchanges are not recorded");
    assert!(set.tests[0].spec.req.url.ends_with("/json?after=up"));
    drop(upstream);
}

#[tokio::test]
async fn an_upstream_that_closes_idle_connections_gets_each_request_on_a_fresh_one() {
    let upstream = RawUpstream::one_shot();
    let proxy = Proxied::start(&format!("http://{}", upstream.addr)).await;
    // One client keep-alive connection; the upstream closes its side after
    // every answer, so each request after the first finds the proxy's
    // upstream connection closed while idle and must not fail for it.
    let c = client();
    for n in 0..3 {
        let got = get(&c, &proxy.url(&format!("/item/{n}"))).await;
        assert_eq!(got.status, StatusCode::OK, "request {n}: {}", got.text());
        assert_eq!(got.json()["connection"], n, "request {n}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let set = proxy.finish().await;
    assert_eq!(set.tests.len(), 3);
}

#[tokio::test]
async fn an_answer_that_comes_before_the_request_body_is_read_is_recorded() {
    let upstream = RawUpstream::early_answer();
    let proxy = Proxied::start(&format!("http://{}", upstream.addr)).await;
    // The upstream answers as soon as the head arrives, so the response is
    // over while most of the request body is still on its way.
    let body = "x".repeat(4 << 20);
    let got = send(&client(), Method::POST, &proxy.url("/upload"), &[], &body).await;
    assert_eq!(got.status, StatusCode::PAYLOAD_TOO_LARGE);
    let set = proxy.finish().await;
    assert_eq!(set.tests.len(), 1);
    assert_eq!(set.tests[0].spec.resp.status_code, 413);
    assert_eq!(set.tests[0].spec.req.method, "POST");
    // The record holds what crossed the proxy. The client may stop sending
    // once it has its answer, so that is the upload or a prefix of it.
    let recorded = &set.tests[0].spec.req.body;
    assert!(
        body.starts_with(recorded.body.as_str()),
        "recorded {} bytes that are not a prefix of the upload",
        recorded.body.len()
    );
}

#[tokio::test]
async fn an_interim_answer_reaches_the_client_and_the_final_one_is_recorded() {
    let upstream = RawUpstream::early_hints();
    let proxy = Proxied::start(&format!("http://{}", upstream.addr)).await;
    let reply = raw(
        proxy.addr,
        b"GET /page HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 103 Early Hints\r\n"), "{reply}");
    assert!(reply.contains("link: </style.css>; rel=preload"), "{reply}");
    assert!(reply.contains("HTTP/1.1 200 OK\r\n"), "{reply}");
    assert!(reply.ends_with("\r\n\r\nfinal"), "{reply}");
    let set = proxy.finish().await;
    assert_eq!(set.tests.len(), 1);
    assert_eq!(set.tests[0].spec.resp.status_code, 200);
    assert_eq!(set.tests[0].spec.resp.body.body, "final");
}

#[tokio::test]
async fn an_upstream_that_resets_gets_a_502_and_nothing_is_recorded() {
    let resetting = RawUpstream::resetting();
    let proxy = Proxied::start(&format!("http://{}", resetting.addr)).await;
    let c = client();
    for _ in 0..3 {
        let got = send(&c, Method::POST, &proxy.url("/echo"), &[], "payload").await;
        assert_eq!(got.status, StatusCode::BAD_GATEWAY);
        assert!(
            got.text().contains(&resetting.addr.to_string()),
            "{}",
            got.text()
        );
    }
    let set = proxy.finish().await;
    assert!(set.tests.is_empty());
}

#[tokio::test]
async fn the_test_window_is_open_while_the_request_is_in_flight() {
    let upstream = Upstream::start();
    let proxy = Proxied::start(&upstream.url()).await;
    let windows = proxy.windows.clone();
    let url = proxy.url("/slow?ms=400");
    let pending = tokio::spawn(async move { get(&client(), &url).await });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(windows.current().as_deref(), Some("test-1"));
    assert_eq!(pending.await.expect("request").status, StatusCode::OK);
    let set = proxy.finish().await;
    assert_eq!(
        windows.current(),
        None,
        "closed once the response completed"
    );
    let case = &set.tests[0];
    assert_eq!(
        windows.test_at(case.spec.req.timestamp).as_deref(),
        Some("test-1")
    );
}

#[tokio::test]
async fn a_client_that_leaves_before_the_answer_closes_its_window_and_records_nothing() {
    let upstream = Upstream::start();
    let proxy = Proxied::start(&upstream.url()).await;
    let mut stream = TcpStream::connect(proxy.addr).await.expect("connect");
    stream
        .write_all(b"GET /slow?ms=600 HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    assert_eq!(proxy.windows.current().as_deref(), Some("test-1"));
    drop(stream);
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    assert_eq!(
        proxy.windows.current(),
        None,
        "the window closed with the exchange"
    );
    assert_eq!(
        get(&client(), &proxy.url("/json")).await.status,
        StatusCode::OK
    );
    let set = proxy.finish().await;
    assert_eq!(set.tests.len(), 1);
    assert_eq!(set.tests[0].name, "test-2");
}
