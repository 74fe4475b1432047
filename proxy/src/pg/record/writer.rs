//! The writer thread: turns every connection's traffic into mocks and
//! appends them to mocks.yaml.
//!
//! It keeps each connection's [`ConnFramer`] and the server bytes that do
//! not yet make a whole message, decodes the answers, groups exchanges, names
//! the mocks in the order they complete across connections (`mock-1`,
//! `mock-2`, ...) and writes them in batches. What a crash keeps it from
//! writing (the traffic still queued for it, which runs at a lower priority
//! than the traffic, see [`yield_to_traffic`], and the batch being
//! written) is in the journal, and a [`Replay`] of the journal names the
//! same mocks the same way.

use std::sync::Arc;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use chrono::{DateTime, Utc};
use tokio::sync::mpsc::Receiver;

use super::calendar::Calendar;
use super::event::{Event, Progress, Side};
use crate::pgwire::backend::BackendMessage;
use crate::pgwire::frontend::{DecodeContext, FrontendMessage};
use crate::pgwire::wire::ProtocolError;
use crate::testset::pg_exchange::by_name::FastMap;
use crate::testset::pg_exchange::ConnFramer;
use crate::testset::pg_mock::{MockSpec, PgMock};
use crate::testset::store::render_mocks_into;
use crate::testset::TestSetDir;
use crate::window::TestWindows;

/// Most events taken in before a write: bounds what a crash can lose to what
/// completed in the last few milliseconds.
const EVENT_BATCH: usize = 512;

/// Pause between batches; bounds how stale mocks.yaml is while recording.
/// Under load, waking for every event would cost more than the work itself.
const WRITE_PAUSE: Duration = Duration::from_millis(2);

/// What the writer produced.
#[derive(Debug, Default, Clone, Copy)]
pub(super) struct Written {
    pub mocks: u64,
    pub failures: u64,
    /// Connections forwarded without being recorded to the end (each was
    /// logged with the reason).
    pub unrecorded_connections: u64,
}

/// One connection as the writer follows it.
struct Followed {
    recorder: ConnFramer,
    /// Server bytes of a message not yet complete.
    partial: BytesMut,
    progress: Arc<Progress>,
    /// Events taken in so far.
    taken: u64,
}

pub(super) use crate::priority::yield_to_traffic;
#[cfg(all(test, target_os = "linux"))]
use crate::priority::BACKGROUND_NICE as WRITER_NICE;

/// Runs until every connection's sending end is gone and the queue is empty.
pub(super) fn run(
    mut queue: Receiver<Event>,
    test_set: &TestSetDir,
    windows: TestWindows,
) -> Written {
    let mut written = Written::default();
    let mut connections: FastMap<u64, Followed> = FastMap::default();
    let mut completed: Vec<MockSpec> = Vec::new();
    let mut batch = Batch::default();
    let mut calendar = Calendar::default();
    while let Some(first) = queue.blocking_recv() {
        let mut next = Some(first);
        let mut taken = 0;
        while let Some(event) = next {
            let taken_in = take(
                event,
                &mut connections,
                &windows,
                &mut calendar,
                &mut completed,
            );
            if taken_in == Taken::UnrecordedClosed {
                written.unrecorded_connections += 1;
            }
            for spec in completed.drain(..) {
                let number = written.mocks + written.failures + batch.mocks + 1;
                // Rendered at once and dropped: the next exchange reuses
                // its memory while it is still in cache.
                let mock = PgMock::new(mock_name(number), spec);
                render_mocks_into(std::slice::from_ref(&mock), &mut batch.text);
                batch.mocks += 1;
            }
            taken += 1;
            next = if taken < EVENT_BATCH {
                queue.try_recv().ok()
            } else {
                None
            };
        }
        if batch.mocks > 0 {
            batch.append_to(test_set, &mut written);
        }
        std::thread::sleep(WRITE_PAUSE);
    }
    written
}

/// The writer's state run over a journal's events, in the order they were
/// written: the mocks come out in the writer's order, under the names it
/// gave them, whether or not it got to write them.
pub(super) struct Replay {
    connections: FastMap<u64, Followed>,
    windows: TestWindows,
    calendar: Calendar,
    completed: Vec<MockSpec>,
    named: u64,
}

impl Replay {
    pub fn new(windows: TestWindows) -> Self {
        Replay {
            connections: FastMap::default(),
            windows,
            calendar: Calendar::default(),
            completed: Vec::new(),
            named: 0,
        }
    }

    /// Takes in one event; adds the mocks it completes to `mocks`.
    pub fn take(&mut self, event: Event, mocks: &mut Vec<PgMock>) {
        take(
            event,
            &mut self.connections,
            &self.windows,
            &mut self.calendar,
            &mut self.completed,
        );
        for spec in self.completed.drain(..) {
            self.named += 1;
            mocks.push(PgMock::new(mock_name(self.named), spec));
        }
    }
}

/// `mock-N`, without the formatting machinery (one per exchange).
fn mock_name(number: u64) -> String {
    let mut buffer = itoa::Buffer::new();
    let digits = buffer.format(number);
    let mut name = String::with_capacity("mock-".len() + digits.len());
    name.push_str("mock-");
    name.push_str(digits);
    name
}

/// Mocks rendered since the last write.
#[derive(Default)]
struct Batch {
    text: String,
    mocks: u64,
}

impl Batch {
    /// Writes the batch in one append and starts the next (keeping the
    /// buffer).
    fn append_to(&mut self, test_set: &TestSetDir, written: &mut Written) {
        match test_set.append_rendered_mocks(&self.text) {
            Ok(()) => written.mocks += self.mocks,
            Err(e) => {
                let first = written.mocks + written.failures + 1;
                written.failures += self.mocks;
                let last = written.mocks + written.failures;
                tracing::error!(
                    "could not record mock-{first} to mock-{last} to {}: {e}",
                    test_set.mocks_path().display()
                );
            }
        }
        self.text.clear();
        self.mocks = 0;
    }
}

#[derive(PartialEq, Eq)]
enum Taken {
    Followed,
    /// The event closed a connection that stopped being recorded early.
    UnrecordedClosed,
}

/// Takes in one event, adding the mocks it completes to `completed`.
fn take(
    event: Event,
    connections: &mut FastMap<u64, Followed>,
    windows: &TestWindows,
    calendar: &mut Calendar,
    completed: &mut Vec<MockSpec>,
) -> Taken {
    let followed = match event {
        Event::Opened {
            connection,
            startup,
            at,
            progress,
        } => {
            let mut recorder = ConnFramer::new(connection, windows.clone());
            recorder.on_frontend(*startup, calendar.at(at));
            connections.entry(connection).or_insert(Followed {
                recorder,
                partial: BytesMut::new(),
                progress,
                taken: 0,
            })
        }
        Event::Traffic {
            connection,
            from,
            bytes,
            at,
        } => {
            let Some(followed) = connections.get_mut(&connection) else {
                return Taken::Followed;
            };
            let at = calendar.at(at);
            match from {
                Side::Client => on_client(connection, followed, &bytes, at),
                Side::Server => on_server(connection, followed, &bytes, at, completed),
            }
            followed
        }
        Event::Closed { connection } => {
            return match connections.remove(&connection) {
                Some(gone) if !gone.recorder.is_recording() => Taken::UnrecordedClosed,
                _ => Taken::Followed,
            };
        }
    };
    followed.taken += 1;
    followed
        .progress
        .settle(followed.taken, followed.recorder.idle());
    Taken::Followed
}

/// Decodes the client's messages (whole, and checked by the connection)
/// and feeds them to the recorder.
fn on_client(connection: u64, followed: &mut Followed, bytes: &[u8], at: DateTime<Utc>) {
    let ctx = DecodeContext::ready();
    let mut decoded = 0;
    while followed.recorder.is_recording() && decoded < bytes.len() {
        match FrontendMessage::decode(&bytes[decoded..], &ctx) {
            Ok(Some((msg, used))) => {
                decoded += used;
                followed.recorder.on_frontend(msg, at);
            }
            // The connection checks text for its structure only; mocks hold
            // text as UTF-8.
            Err(e @ ProtocolError::InvalidUtf8 { .. }) => {
                tracing::warn!(
                    "PostgreSQL connection {connection}: {e} (is the client's client_encoding \
                     other than UTF8?); forwarding this connection's traffic without recording \
                     it, so its exchanges are missing from mocks.yaml"
                );
                abandon(followed);
            }
            // The connection hands over whole messages it has checked with
            // the same rules; anything else is a bug, not the client's.
            Ok(None) | Err(_) => {
                tracing::error!(
                    "PostgreSQL connection {connection}: client messages handed over \
                     incomplete; not recording this connection any further"
                );
                abandon(followed);
            }
        }
    }
}

/// Stops recording a connection whose traffic cannot be followed.
fn abandon(followed: &mut Followed) {
    followed.recorder.abandon();
    followed.progress.abandon();
    followed.partial = BytesMut::new();
}

/// Decodes the server's bytes and feeds the messages to the recorder. A
/// message this decoder cannot read stops recording the connection; its
/// traffic flows on regardless.
fn on_server(
    connection: u64,
    followed: &mut Followed,
    bytes: &[u8],
    at: DateTime<Utc>,
    completed: &mut Vec<MockSpec>,
) {
    if !followed.recorder.is_recording() {
        return;
    }
    // Most reads end on a message boundary: decode straight from them and
    // copy only a trailing partial message.
    let joined = !followed.partial.is_empty();
    if joined {
        followed.partial.extend_from_slice(bytes);
    }
    let data: &[u8] = if joined { &followed.partial } else { bytes };
    let mut decoded = 0;
    loop {
        match BackendMessage::decode(&data[decoded..]) {
            Ok(Some((msg, used))) => {
                decoded += used;
                completed.extend(followed.recorder.on_backend(msg, at));
            }
            Ok(None) => break,
            Err(e) => {
                tracing::warn!(
                    "PostgreSQL connection {connection}: the server sent a message recplay \
                     cannot decode ({e}); forwarding this connection's traffic without recording it"
                );
                abandon(followed);
                return;
            }
        }
    }
    if joined {
        followed.partial.advance(decoded);
    } else {
        followed.partial.extend_from_slice(&bytes[decoded..]);
    }
}

#[cfg(test)]
mod tests;
