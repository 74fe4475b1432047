//! `CONNECT host:port` through the forward proxy, at record and replay
//! alike: answered 200, then the app's TLS ends here with a certificate for
//! `host` from the project's CA ([`super::ca`]), and the requests inside go
//! to a service of the caller's, as a plain-http call would. The TLS offers
//! ALPN `h2` and `http/1.1` ([`crate::tls::H2_AND_HTTP_1_1`]): a client
//! that picks `h2` is served HTTP/2, any other HTTP/1.1, and the service
//! is given the same requests either way.

use std::error::Error as StdError;

use hyper::body::{Body, Incoming};
use hyper::service::Service;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use tokio::sync::watch;

use super::ca::{CaError, ProjectCa};

/// The target of a `CONNECT`: its host (what the certificate names) and
/// `host:port` (what the calls' URLs carry).
pub struct ConnectTarget {
    pub host: String,
    pub authority: String,
}

/// The `host:port` a `CONNECT` asks for; when it names none, the answer
/// for the client.
pub fn connect_target<B>(req: &Request<B>) -> Result<ConnectTarget, String> {
    let Some(authority) = req.uri().authority() else {
        return Err(format!(
            "recplay forward proxy: CONNECT needs host:port, got {}\n",
            req.uri()
        ));
    };
    let port = authority.port_u16().unwrap_or(443);
    let host = authority
        .host()
        .trim_start_matches('[')
        .trim_end_matches(']');
    Ok(ConnectTarget {
        host: host.to_string(),
        authority: format!("{}:{port}", authority.host()),
    })
}

/// After the 200 goes out: takes the connection over, ends the client's
/// TLS with a certificate for `target.host`, and serves its requests with
/// `service` until the client closes or `stop` turns true (a request under
/// way is finished first). Fails early only when no certificate can be
/// made; what happens on the connection later is logged.
pub fn spawn_tunnel<S, B>(
    req: Request<Incoming>,
    target: &ConnectTarget,
    ca: &ProjectCa,
    service: S,
    mut stop: watch::Receiver<bool>,
) -> Result<(), CaError>
where
    S: Service<Request<Incoming>, Response = Response<B>> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn StdError + Send + Sync>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let config = ca.server_config(&target.host)?;
    let authority = target.authority.clone();
    let mut cancel = stop.clone();
    tokio::spawn(async move {
        // A client that opens the tunnel and never speaks TLS must not
        // hold the stop back.
        let opened = async {
            let upgraded = hyper::upgrade::on(req)
                .await
                .map_err(|e| format!("the tunnel did not open: {e}"))?;
            tokio_rustls::TlsAcceptor::from(config)
                .accept(TokioIo::new(upgraded))
                .await
                // The usual cause: the client does not trust the CA.
                .map_err(|e| format!("TLS with the app failed: {e}"))
        };
        let tls = tokio::select! {
            opened = opened => match opened {
                Ok(tls) => tls,
                Err(e) => {
                    tracing::warn!("CONNECT {authority}: {e}");
                    return;
                }
            },
            _ = cancel.wait_for(|s| *s) => return,
        };
        let builder = auto::Builder::new(TokioExecutor::new());
        let builder = if tls.get_ref().1.alpn_protocol() == Some(crate::tls::H2) {
            builder.http2_only()
        } else {
            builder.http1_only()
        };
        let conn = builder.serve_connection(TokioIo::new(tls), service);
        tokio::pin!(conn);
        tokio::select! {
            _ = conn.as_mut() => {}
            _ = async { let _ = stop.wait_for(|s| *s).await; } => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        }
    });
    Ok(())
}
