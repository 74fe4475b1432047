//! One upstream connection per client connection, driven by the client
//! connection's own task.
//!
//! HTTP/1.1 carries one exchange at a time per connection, so a client
//! connection never needs more than one upstream connection at once.
//! Pairing them replaces a shared pool (a lock and a map look-up per
//! request, and a task of its own per upstream connection) with nothing,
//! and because [`LinkDriver`] polls the upstream connection inside the
//! client connection's task, a request's round trip wakes no other thread:
//! the upstream socket, the response channel and the client socket all wake
//! the same task.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll, Waker};

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use tower_service::Service;

use super::client_body::ClientBody;
use super::tee::TeeBody;
use super::upstream::UpstreamConnector;

/// The body the proxy sends upstream: the client's, with a copy kept.
pub(crate) type RequestBody = TeeBody<ClientBody>;

type ConnectionFuture = Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>;

/// Why a request could not be forwarded. The cause is the error's source,
/// not part of its message: the proxy's 502 names each cause once.
#[derive(Debug, thiserror::Error)]
pub(crate) enum LinkError {
    #[error("could not connect")]
    Connect(#[source] std::io::Error),
    #[error(transparent)]
    Http(hyper::Error),
}

#[derive(Default)]
struct LinkState {
    /// The idle connection's sender, taken out while a request uses it.
    sender: Option<SendRequest<RequestBody>>,
    /// Connections made since the driver last looked.
    new_connections: Vec<ConnectionFuture>,
    driver: Option<Waker>,
}

/// The request side, used by the client connection's service.
#[derive(Clone, Default)]
pub(crate) struct UpstreamLink {
    state: Arc<Mutex<LinkState>>,
}

/// Polls the link's upstream connections; never completes, so the client
/// connection's task selects on it beside the client connection and drops
/// it (closing the upstream side) when the client connection ends.
pub(crate) struct LinkDriver {
    state: Arc<Mutex<LinkState>>,
    connections: Vec<ConnectionFuture>,
}

fn lock(state: &Mutex<LinkState>) -> MutexGuard<'_, LinkState> {
    state.lock().unwrap_or_else(|p| p.into_inner())
}

impl UpstreamLink {
    /// A link with no connection yet, and the driver that must be polled
    /// for it to make progress.
    pub(crate) fn new() -> (Self, LinkDriver) {
        let link = UpstreamLink::default();
        let driver = LinkDriver {
            state: link.state.clone(),
            connections: Vec::new(),
        };
        (link, driver)
    }

    /// Sends `req` on the link's connection, connecting first when there is
    /// none or it was closed. A request that a reused connection could not
    /// even start to send (the upstream closed it while idle) is sent again
    /// on a fresh one, as a pooled client would.
    pub(crate) async fn send(
        &self,
        connector: &UpstreamConnector,
        req: Request<RequestBody>,
    ) -> Result<Response<Incoming>, LinkError> {
        let mut idle = lock(&self.state).sender.take().filter(|s| !s.is_closed());
        let mut req = req;
        loop {
            let reused = idle.is_some();
            let mut sender = match idle.take() {
                Some(sender) => sender,
                None => self.connect(connector).await?,
            };
            if let Err(e) = sender.ready().await {
                if reused {
                    continue;
                }
                return Err(LinkError::Http(e));
            }
            match sender.try_send_request(req).await {
                Ok(resp) => return Ok(self.keep(sender, resp)),
                Err(mut e) => match e.take_message() {
                    // Never written: the next turn sends it on a fresh
                    // connection (a fresh one is not tried twice).
                    Some(unsent) if reused => req = unsent,
                    _ => return Err(LinkError::Http(e.into_error())),
                },
            }
        }
    }

    /// Puts the sender back for the next request on this connection.
    fn keep(
        &self,
        sender: SendRequest<RequestBody>,
        resp: Response<Incoming>,
    ) -> Response<Incoming> {
        lock(&self.state).sender = Some(sender);
        resp
    }

    async fn connect(
        &self,
        connector: &UpstreamConnector,
    ) -> Result<SendRequest<RequestBody>, LinkError> {
        let io = connector.clone().call(http::Uri::default()).await;
        let io = io.map_err(LinkError::Connect)?;
        let (sender, connection) = http1::handshake(io).await.map_err(LinkError::Http)?;
        let mut state = lock(&self.state);
        state.new_connections.push(Box::pin(connection));
        if let Some(driver) = state.driver.take() {
            driver.wake();
        }
        Ok(sender)
    }
}

impl Future for LinkDriver {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        {
            let mut state = lock(&this.state);
            this.connections.append(&mut state.new_connections);
            match &state.driver {
                Some(waker) if waker.will_wake(cx.waker()) => {}
                _ => state.driver = Some(cx.waker().clone()),
            }
        }
        this.connections
            .retain_mut(|connection| match connection.as_mut().poll(cx) {
                Poll::Pending => true,
                Poll::Ready(Ok(())) => false,
                Poll::Ready(Err(e)) => {
                    tracing::debug!("upstream connection ended: {e}");
                    false
                }
            });
        Poll::Pending
    }
}
