//! How a connection hands its events ([`super::event`]) to the writer
//! thread and the journal.
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

use std::sync::Arc;

use tokio::sync::mpsc::error::TrySendError;
use tokio::sync::mpsc::Sender;

use super::entry;
use super::event::{Event, Progress};
use crate::journal::{JournalError, JournalWriter, RecordKind};

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
        self.progress.count_sent();
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
