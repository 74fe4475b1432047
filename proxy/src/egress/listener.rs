//! An outgoing-call listener on recplay's one server skeleton
//! ([`crate::serve`]): the recording forward proxy and the replay
//! listeners differ only in how they answer a request, so the accepting,
//! the connection cap, the drain at the stop and the refusal live here
//! once.
//!
//! Connections are HTTP/1.1 with upgrades, since a `CONNECT` turns its
//! connection into a tunnel. A tunnel runs on a task of its own, so it is
//! told to stop through the handler's own stop signal, given by
//! [`serve_until`] once the skeleton has stopped accepting.

use std::convert::Infallible;
use std::error::Error as StdError;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use hyper::body::{Body, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::http::refuse_with_503;
use crate::serve::{self, ServeLimits, Service, Shutdown};

/// Connections an outgoing-call listener serves at once. An app's client
/// pool holds a few; a flood beyond this is refused with a 503 rather
/// than holding descriptors.
pub const MAX_CONNECTIONS: usize = 1024;

const REFUSAL: &str =
    "recplay: too many connections to the outgoing-call listener; retry in a second.\n";

/// How a listener answers one request.
pub trait Handler: Send + Sync + 'static {
    type Body: Body<Data = Bytes> + Send + 'static;

    fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
    ) -> impl Future<Output = Response<Self::Body>> + Send;
}

struct HttpListener<H> {
    handler: Arc<H>,
}

impl<H> Service for HttpListener<H>
where
    H: Handler,
    <H::Body as Body>::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    async fn serve(
        self: Arc<Self>,
        stream: TcpStream,
        _peer: SocketAddr,
        _id: u64,
        mut stop: Shutdown,
    ) {
        let handler = self.handler.clone();
        let service = service_fn(move |req| {
            let handler = handler.clone();
            async move { Ok::<_, Infallible>(handler.handle(req).await) }
        });
        let conn = http1::Builder::new()
            .serve_connection(TokioIo::new(stream), service)
            .with_upgrades();
        tokio::pin!(conn);
        // An idle keep-alive connection closes at the stop; one
        // mid-exchange finishes it first.
        tokio::select! {
            _ = conn.as_mut() => {}
            () = stop.recv() => {
                conn.as_mut().graceful_shutdown();
                let _ = conn.await;
            }
        }
    }

    async fn refuse(self: Arc<Self>, stream: TcpStream) {
        refuse_with_503(stream, REFUSAL).await;
    }
}

/// Serves `listener` with `handler` until `shutdown`, then gives
/// `stop_tx` (the handler's tunnels close on it) and lets connections
/// finish for `grace`.
pub async fn serve_until<H>(
    listener: TcpListener,
    handler: Arc<H>,
    stop_tx: watch::Sender<bool>,
    grace: Duration,
    shutdown: impl Future<Output = ()>,
) -> serve::DrainReport
where
    H: Handler,
    <H::Body as Body>::Error: Into<Box<dyn StdError + Send + Sync>>,
{
    let limits = ServeLimits {
        max_connections: MAX_CONNECTIONS,
        grace: Some(grace),
    };
    let shutdown = async move {
        shutdown.await;
        let _ = stop_tx.send(true);
    };
    serve::run(
        listener,
        Arc::new(HttpListener { handler }),
        limits,
        shutdown,
    )
    .await
}
