//! The recorded event vocabulary: one step of a connection's traffic, as
//! connections queue it for the writer thread ([`super::handover`]) and as
//! the journal holds it ([`super::entry`]), and how far the writer has
//! followed each connection.
//!
//! Its own module so that the queue, the journal form and the writer all
//! import it and none of them imports another for it.

use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use tokio::sync::Notify;

use crate::pgwire::frontend::FrontendMessage;

/// One step of one connection's traffic.
pub(super) enum Event {
    /// The client's start-up packet; the connection's first event.
    Opened {
        connection: u64,
        /// Boxed: every event takes a queue slot of the largest variant's
        /// size, and the writer's core reads each slot from the
        /// connection's.
        startup: Box<FrontendMessage>,
        /// A bare clock reading: the writer works out its date.
        at: SystemTime,
        progress: Arc<Progress>,
    },
    /// Bytes read from one side, in the order they were read.
    Traffic {
        connection: u64,
        from: Side,
        bytes: Bytes,
        at: SystemTime,
    },
    /// The connection ended; exchanges still in flight are dropped.
    Closed { connection: u64 },
}

// A queue slot is an event's size; traffic events need no more than this.
const _: () = assert!(std::mem::size_of::<Event>() <= 64);

/// Which side's bytes an event carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Side {
    /// Whole client messages read together, checked already, without the
    /// authentication messages (which never leave the connection).
    Client,
    /// Server bytes as forwarded, except, during authentication, its
    /// requests other than AuthenticationOk (salts and SASL messages never
    /// leave the connection); messages may span several events.
    Server,
}

/// How far the writer has followed one connection: lets the connection tell,
/// at shutdown, whether an exchange is still in flight.
#[derive(Debug, Default)]
pub(super) struct Progress {
    /// Events the connection has queued (written by the connection only).
    sent: AtomicU64,
    /// Events the writer has taken in, shifted left by one, with the low bit
    /// set when no exchange was in flight after the last of them. One word,
    /// so the connection never sees a count and a flag from different
    /// moments. On a cache line of its own: the writer stores it after
    /// every event, and sharing a line with the counters the connection
    /// updates for every event would move that line between the two
    /// threads' cores twice an event.
    settled: OwnLine<AtomicU64>,
    /// The writer stopped recording this connection (its server traffic
    /// could not be decoded) or is gone: the connection stops sending.
    abandoned: AtomicBool,
    /// The connection waits for the writer (at shutdown): the writer wakes
    /// it through `settled_changed` after each event. Off, the writer skips
    /// the wake-up, so the common case costs one load.
    watched: AtomicBool,
    settled_changed: Notify,
}

impl Progress {
    /// Called by the connection before queuing each event.
    pub fn count_sent(&self) {
        self.sent.fetch_add(1, Ordering::AcqRel);
    }

    /// Called by the writer after taking in the connection's `taken`-th event.
    pub fn settle(&self, taken: u64, idle: bool) {
        self.settled
            .0
            .store(taken << 1 | u64::from(idle), Ordering::Release);
        self.wake_watcher();
    }

    pub fn abandon(&self) {
        self.abandoned.store(true, Ordering::Release);
        self.wake_watcher();
    }

    fn wake_watcher(&self) {
        // Pairs with the fence in `wait_until`: either the waiter sees the
        // new state, or this sees `watched` and wakes it.
        fence(Ordering::SeqCst);
        if self.watched.load(Ordering::Relaxed) {
            self.settled_changed.notify_waiters();
        }
    }

    /// Waits, without polling, until `done` holds; the writer wakes the
    /// connection after every event it takes in.
    pub async fn wait_until(&self, done: impl Fn(&Self) -> bool) {
        if done(self) {
            return;
        }
        self.watched.store(true, Ordering::Relaxed);
        loop {
            let changed = self.settled_changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            fence(Ordering::SeqCst);
            if done(self) {
                return;
            }
            changed.await;
        }
    }

    pub fn is_abandoned(&self) -> bool {
        self.abandoned.load(Ordering::Acquire)
    }

    /// Every event sent has been taken in and left no exchange in flight
    /// (or nothing more is being recorded).
    pub fn is_idle(&self) -> bool {
        let sent = self.sent.load(Ordering::Acquire);
        self.is_abandoned() || self.settled.0.load(Ordering::Acquire) == (sent << 1 | 1)
    }

    /// Every event sent has been taken in (or nothing more is being
    /// recorded).
    pub fn is_caught_up(&self) -> bool {
        let sent = self.sent.load(Ordering::Acquire);
        self.is_abandoned() || self.settled.0.load(Ordering::Acquire) >> 1 == sent
    }
}

/// A value alone on its cache line (and the adjacent one, which x86
/// prefetches in pairs).
#[derive(Debug, Default)]
#[repr(align(128))]
struct OwnLine<T>(T);
