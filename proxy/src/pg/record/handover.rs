//! What a connection hands the writer thread, and what the writer reports
//! back.
//!
//! Connections check the client's bytes in place (a malformed message must
//! be refused before it reaches the server) and pass both directions on as
//! they were read, shared rather than copied: the client's whole messages
//! and the server's bytes.
//!
//! Decoding the answers, grouping exchanges and rendering mocks happen on
//! the writer thread, off every round trip's path.
//!
//! Events of one connection travel through one queue in the order the
//! connection sent them, and a connection queues what it reads from either
//! side before forwarding it, so the writer sees every message before
//! anything sent in reply to it.
//!
//! Every event is also appended to the recorder's journal
//! ([`super::entry`]), in the same order as it is queued: all connections
//! run on one thread, and nothing is awaited between the two. A replay of
//! the journal therefore completes the same exchanges in the same order,
//! and names them as the writer did. The server's bytes are forwarded only
//! once the journal write that carries them has returned, so whatever a
//! client received survives a kill -9 of recplay. That write is made on
//! the connections' own thread, one for every answer ready in the same
//! turn of its event loop (see `forward_answers`).

use std::sync::atomic::{fence, AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::Sender;
use tokio::sync::Notify;

use super::entry;
use crate::journal::{JournalError, JournalWriter, RecordKind};
use crate::pg::frontend::FrontendMessage;

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

/// A connection's sending end of the queue and of the journal.
pub(super) struct Feed {
    pub connection: u64,
    queue: Sender<Event>,
    journal: Arc<JournalWriter>,
    progress: Arc<Progress>,
    closed: bool,
}

impl Feed {
    pub fn new(connection: u64, queue: Sender<Event>, journal: Arc<JournalWriter>) -> Self {
        Feed {
            connection,
            queue,
            journal,
            progress: Arc::default(),
            closed: false,
        }
    }

    pub fn progress(&self) -> &Arc<Progress> {
        &self.progress
    }

    /// Whether events are still wanted.
    pub fn is_recording(&self) -> bool {
        !self.progress.is_abandoned()
    }

    /// Queues an event and appends its journal record, waiting while the
    /// writer is a full queue behind: recording slows traffic down rather
    /// than buffering without bound. The record is written by the next
    /// [`Feed::flush_journal`] of any connection; `None` when the
    /// connection is no longer recorded.
    pub async fn send(&self, event: Event) -> Option<Result<(), JournalError>> {
        if !self.is_recording() {
            return None;
        }
        self.progress.sent.fetch_add(1, Ordering::AcqRel);
        // Trying first spares the waiting machinery while the queue has
        // room, which is nearly always.
        let permit = match self.queue.try_reserve() {
            Ok(permit) => permit,
            Err(TrySendError::Full(())) => match self.queue.reserve().await {
                Ok(permit) => permit,
                Err(_) => return self.writer_gone(),
            },
            Err(TrySendError::Closed(())) => return self.writer_gone(),
        };
        // No await from here on: the record and the event keep the same
        // place among every connection's.
        let appended = self.append(&event);
        permit.send(event);
        Some(appended)
    }

    fn append(&self, event: &Event) -> Result<(), JournalError> {
        self.journal
            .append_in_place(RecordKind::PgTraffic, |buf| entry::put_event(buf, event))
    }

    /// Writes every connection's records appended so far (see
    /// [`JournalWriter::flush`]).
    pub fn flush_journal(&self) -> Result<(), JournalError> {
        self.journal.flush()
    }

    fn writer_gone<T>(&self) -> Option<T> {
        // Nothing more can be recorded.
        self.progress.abandon();
        None
    }

    /// Tells the writer the connection is over, so it lets go of its state.
    pub async fn close(mut self) {
        self.closed = true;
        let closed = Event::Closed {
            connection: self.connection,
        };
        if let Ok(permit) = self.queue.reserve().await {
            // Written with the next flush: nothing waits for it.
            let _ = self.append(&closed);
            permit.send(closed);
        }
    }
}

impl Drop for Feed {
    fn drop(&mut self) {
        if !self.closed {
            // Dropped without `close` (a panic unwinding): best effort.
            if let Ok(permit) = self.queue.try_reserve() {
                let closed = Event::Closed {
                    connection: self.connection,
                };
                let _ = self.append(&closed);
                permit.send(closed);
            }
        }
    }
}
