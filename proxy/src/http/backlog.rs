//! What the journal has yet to write, and waiting for it to shrink.
//!
//! Finished exchanges queue for the journal's writer. When traffic comes
//! faster than the disk takes it, that queue would grow with every request
//! and hold each one's record; instead new requests wait at the door (see
//! [`ExchangeSink::ready`]) until the queue is below both limits again.
//! Memory then stays bounded by the limits plus the exchanges already in
//! flight, and throughput is what the disk can sustain.
//!
//! [`ExchangeSink::ready`]: super::exchange::ExchangeSink::ready

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use tokio::sync::Notify;

/// The queue's limits.
#[derive(Debug, Clone, Copy)]
pub struct BacklogLimits {
    /// Records waiting to be written.
    pub exchanges: u64,
    /// Bytes those records hold.
    pub bytes: u64,
}

impl Default for BacklogLimits {
    fn default() -> Self {
        BacklogLimits {
            exchanges: 4096,
            bytes: 16 * 1024 * 1024,
        }
    }
}

/// Shared by the proxy's tasks (which add and wait) and the writer thread
/// (which removes).
pub struct Backlog {
    limits: BacklogLimits,
    exchanges: AtomicU64,
    bytes: AtomicU64,
    /// Cleared when the writer stops: nobody waits for a queue that will
    /// never shrink (exchanges are then counted as failed instead).
    writer_alive: AtomicBool,
    shrunk: Notify,
}

impl Backlog {
    pub fn new(limits: BacklogLimits) -> Self {
        Backlog {
            limits,
            exchanges: AtomicU64::new(0),
            bytes: AtomicU64::new(0),
            writer_alive: AtomicBool::new(true),
            shrunk: Notify::new(),
        }
    }

    fn has_room(&self) -> bool {
        !self.writer_alive.load(Ordering::Acquire)
            || (self.exchanges.load(Ordering::Acquire) < self.limits.exchanges
                && self.bytes.load(Ordering::Acquire) < self.limits.bytes)
    }

    /// Resolves once the queue is below both limits.
    pub async fn room(&self) {
        // The usual case, checked before registering a waiter (which locks).
        if self.has_room() {
            return;
        }
        loop {
            let shrunk = self.shrunk.notified();
            tokio::pin!(shrunk);
            // Registered before the check, so a removal between the check
            // and the wait still wakes this task.
            shrunk.as_mut().enable();
            if self.has_room() {
                return;
            }
            shrunk.await;
        }
    }

    /// One exchange holding `bytes` of captured bodies joined the queue.
    pub fn added(&self, bytes: u64) {
        self.exchanges.fetch_add(1, Ordering::AcqRel);
        self.bytes.fetch_add(bytes, Ordering::AcqRel);
    }

    /// The writer is done with an exchange that held `bytes`.
    pub fn removed(&self, bytes: u64) {
        let exchanges = self.exchanges.fetch_sub(1, Ordering::AcqRel);
        let held = self.bytes.fetch_sub(bytes, Ordering::AcqRel);
        // Waking costs a lock: only when someone may be waiting.
        if exchanges >= self.limits.exchanges || held >= self.limits.bytes {
            self.shrunk.notify_waiters();
        }
    }

    /// The writer stopped: release every waiter for good.
    pub fn writer_stopped(&self) {
        self.writer_alive.store(false, Ordering::Release);
        self.shrunk.notify_waiters();
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::Duration;

    use super::*;

    fn small() -> BacklogLimits {
        BacklogLimits {
            exchanges: 2,
            bytes: 100,
        }
    }

    async fn admitted_within(backlog: &Backlog, ms: u64) -> bool {
        tokio::time::timeout(Duration::from_millis(ms), backlog.room())
            .await
            .is_ok()
    }

    #[tokio::test]
    async fn waits_while_either_limit_is_reached() {
        let backlog = Backlog::new(small());
        assert!(admitted_within(&backlog, 10).await);
        backlog.added(10);
        backlog.added(10);
        assert!(!admitted_within(&backlog, 20).await, "two exchanges queued");
        backlog.removed(10);
        assert!(admitted_within(&backlog, 10).await);
        backlog.added(500);
        assert!(!admitted_within(&backlog, 20).await, "over the byte limit");
        backlog.removed(500);
        assert!(admitted_within(&backlog, 10).await);
    }

    #[tokio::test]
    async fn a_waiter_wakes_when_the_writer_catches_up() {
        let backlog = Arc::new(Backlog::new(small()));
        backlog.added(1);
        backlog.added(1);
        let waiter = tokio::spawn({
            let backlog = backlog.clone();
            async move { backlog.room().await }
        });
        tokio::time::sleep(Duration::from_millis(20)).await;
        assert!(!waiter.is_finished());
        let writer = std::thread::spawn({
            let backlog = backlog.clone();
            move || backlog.removed(1)
        });
        writer.join().expect("the writer thread ran");
        tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("woken once there is room")
            .expect("the waiter ran to the end");
    }

    #[tokio::test]
    async fn nobody_waits_for_a_writer_that_stopped() {
        let backlog = Backlog::new(small());
        backlog.added(1);
        backlog.added(1);
        backlog.writer_stopped();
        assert!(admitted_within(&backlog, 10).await);
    }
}
