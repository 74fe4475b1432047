//! What a connection holds to learn that the server is stopping.
//!
//! As in mini-redis: the accept loop keeps the sending side; every
//! connection gets a receiver. A watch channel rather than a broadcast one,
//! so a connection that subscribes after the signal still sees it.

use tokio::sync::watch;

/// A connection's view of the server's stop signal.
#[derive(Debug, Clone)]
pub struct Shutdown {
    notify: watch::Receiver<bool>,
}

impl Shutdown {
    pub(super) fn new(notify: watch::Receiver<bool>) -> Self {
        Shutdown { notify }
    }

    /// Whether the stop signal has been given.
    pub fn is_shutdown(&self) -> bool {
        *self.notify.borrow()
    }

    /// Waits for the stop signal; returns at once if it was given already.
    /// A server dropped without a signal counts as one: nobody is left to
    /// wait for the connection.
    pub async fn recv(&mut self) {
        let _ = self.notify.wait_for(|stop| *stop).await;
    }

    /// The underlying receiver, for connection code written against a
    /// `watch::Receiver<bool>`.
    pub fn into_receiver(self) -> watch::Receiver<bool> {
        self.notify
    }
}
