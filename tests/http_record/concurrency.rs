//! Many clients at once: every exchange recorded exactly once, none mixed
//! up, with the recorder's queue at its usual bound and at the tightest one.

use std::collections::HashSet;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use recplay_proxy::http::HttpProxyConfig;
use tokio::net::TcpStream;

use super::Proxied;
use crate::support::upstream::Upstream;

const CLIENTS: usize = 200;
const REQUESTS_PER_CLIENT: usize = 5;

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_hundred_keep_alive_clients_are_each_recorded_once_and_unmixed() {
    let upstream = Upstream::start();
    let config = HttpProxyConfig::new(
        recplay_proxy::http::Upstream::parse(&upstream.url()).expect("upstream URL"),
    );
    let proxy = Proxied::start_with(config).await;
    let addr = proxy.addr;
    let mut clients = Vec::new();
    for client in 0..CLIENTS {
        clients.push(tokio::spawn(async move {
            // One keep-alive connection per client, several requests on it.
            let stream = TcpStream::connect(addr).await.expect("connect");
            let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
                .await
                .expect("handshake");
            tokio::spawn(conn);
            for request in 0..REQUESTS_PER_CLIENT {
                let id = format!("c{client}-r{request}");
                let req = Request::post(format!("/echo/{id}?id={id}"))
                    .header("host", "proxy")
                    .header("x-id", &id)
                    .body(Full::new(Bytes::from(format!("body of {id}"))))
                    .expect("request");
                let resp = sender.send_request(req).await.expect("response");
                assert_eq!(resp.status(), 200);
                let body = resp.into_body().collect().await.expect("body").to_bytes();
                let echoed: serde_json::Value = serde_json::from_slice(&body).expect("json");
                assert_eq!(
                    echoed["body"],
                    format!("body of {id}"),
                    "the client got its own answer"
                );
            }
        }));
    }
    for c in clients {
        c.await.expect("client");
    }
    let set = proxy.finish().await;
    assert_eq!(set.tests.len(), CLIENTS * REQUESTS_PER_CLIENT);
    let mut seen = HashSet::new();
    let mut names = HashSet::new();
    for case in &set.tests {
        assert!(
            names.insert(case.name.clone()),
            "{} written twice",
            case.name
        );
        let id = case.spec.req.header["X-Id"].clone();
        assert!(
            case.spec.req.url.ends_with(&format!("/echo/{id}?id={id}")),
            "{id}: {}",
            case.spec.req.url
        );
        assert_eq!(case.spec.req.url_params["id"], id);
        assert_eq!(case.spec.req.body.body, format!("body of {id}"));
        let echoed: serde_json::Value =
            serde_json::from_str(&case.spec.resp.body.body).expect("json");
        assert_eq!(
            echoed["body"],
            format!("body of {id}"),
            "{id}: response mixed up"
        );
        assert_eq!(echoed["path"], format!("/echo/{id}"));
        assert!(seen.insert(id.clone()), "{id} recorded twice");
    }
    assert_eq!(seen.len(), CLIENTS * REQUESTS_PER_CLIENT);
    let expected: HashSet<String> = (1..=CLIENTS * REQUESTS_PER_CLIENT)
        .map(|n| format!("test-{n}"))
        .collect();
    assert_eq!(names, expected, "numbered test-1..test-N without gaps");
}
