//! HTTPS upstreams through rustls (trusting an extra CA) and TLS on the
//! proxy's own listener.

use std::sync::Arc;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::TokioIo;
use recplay_proxy::http::{HttpProxyConfig, Upstream as UpstreamUrl};
use recplay_proxy::tls;
use rustls::pki_types::ServerName;
use tokio::net::TcpStream;

use super::Proxied;
use crate::support::upstream::Upstream;

#[tokio::test]
async fn an_https_upstream_is_recorded_through_a_tls_listener() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let dir = tempfile::tempdir().expect("tempdir");
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).expect("write key");
    let server = tls::server_config(&cert_path, &key_path, tls::HTTP_1_1).expect("server TLS");
    let upstream = Upstream::start_tls(server.clone());

    let upstream_url = format!("https://localhost:{}", upstream.addr.port());
    let mut config = HttpProxyConfig::new(UpstreamUrl::parse(&upstream_url).expect("url"));
    config.upstream_tls =
        Some(tls::client_config(Some(&cert_path), tls::HTTP_1_1).expect("client TLS"));
    config.server_tls = Some(server);
    let proxy = Proxied::start_with(config).await;

    let client_tls = tls::client_config(Some(&cert_path), tls::HTTP_1_1).expect("client TLS");
    let tcp = TcpStream::connect(proxy.addr).await.expect("connect");
    let stream = tokio_rustls::TlsConnector::from(Arc::clone(&client_tls))
        .connect(ServerName::try_from("localhost").expect("name"), tcp)
        .await
        .expect("TLS to the proxy");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .expect("handshake");
    tokio::spawn(conn);
    for path in ["/json", "/echo/secure?x=1"] {
        let req = Request::get(path)
            .header("host", "localhost")
            .body(Empty::<Bytes>::new())
            .expect("request");
        let resp = sender.send_request(req).await.expect("response");
        assert_eq!(resp.status(), 200);
        resp.into_body().collect().await.expect("body");
    }
    let set = proxy.finish().await;
    assert_eq!(set.tests.len(), 2);
    assert_eq!(set.tests[0].spec.req.url, format!("{upstream_url}/json"));
    let echoed: serde_json::Value =
        serde_json::from_str(&set.tests[1].spec.resp.body.body).expect("json");
    assert_eq!(
        echoed["headers"]["host"][0],
        format!("localhost:{}", upstream.addr.port())
    );
}

#[tokio::test]
async fn an_untrusted_https_upstream_is_a_502_that_says_so() {
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).expect("cert");
    let dir = tempfile::tempdir().expect("tempdir");
    let cert_path = dir.path().join("cert.pem");
    let key_path = dir.path().join("key.pem");
    std::fs::write(&cert_path, cert.cert.pem()).expect("write cert");
    std::fs::write(&key_path, cert.key_pair.serialize_pem()).expect("write key");
    let upstream =
        Upstream::start_tls(tls::server_config(&cert_path, &key_path, tls::HTTP_1_1).expect("tls"));
    let url = format!("https://localhost:{}", upstream.addr.port());
    let proxy = Proxied::start(&url).await;
    let got = super::get(&super::client(), &proxy.url("/json")).await;
    assert_eq!(got.status, 502);
    assert!(got.text().contains(&url), "{}", got.text());
    assert!(
        got.text().to_lowercase().contains("certificate"),
        "{}",
        got.text()
    );
    assert!(proxy.finish().await.tests.is_empty());
}
