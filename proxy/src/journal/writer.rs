//! The group-commit writer, with no thread of its own: records from every
//! connection are framed into one shared buffer, and whoever flushes
//! writes everything gathered so far with one `write`, on its own thread.
//! Exchanges that finish together share that system call (a flush that
//! finds its record already taken by another caller's write only waits for
//! that write), and no record is handed to another thread and back: two
//! wake-ups and two context switches per exchange cost more than the write.
//! The journal is never fsynced; the page cache survives the recorder's
//! death, which is what write-ahead here protects against.

use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use super::record::{frame_into, RecordKind};
use super::{header, io_err, lock, JournalError, HEADER_LEN};

/// A batch larger than this is not kept for reuse once written.
const KEEP_BUFFER: usize = 4 * 1024 * 1024;

#[derive(Default)]
struct State {
    pending: Vec<u8>,
    closing: bool,
    failed: Option<Arc<str>>,
}

struct Sink {
    file: File,
    offset: u64,
    /// The last batch's buffer, kept for the next one.
    spare: Vec<u8>,
}

/// How far the journal is written; lets a reader follow the writer
/// without ever reading a record that is only partly written.
///
/// The writer's side takes no lock (but to record a failure): the reader,
/// the materializer, runs at a background priority, and a connection
/// waiting on a lock it holds would wait for whatever CPU the traffic
/// leaves it.
#[derive(Default)]
pub struct Progress {
    end: AtomicU64,
    closed: AtomicBool,
    failed: Mutex<Option<Arc<str>>>,
    /// Held by a reader from checking to sleeping on `moved`.
    gate: Mutex<()>,
    moved: Condvar,
    /// Threads waiting in `wait_beyond`: with none, an update skips the
    /// wake-up, which is a system call.
    waiting: AtomicUsize,
}

/// A snapshot of [`Progress`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Written {
    /// File offset up to which whole records are written.
    pub end: u64,
    /// The writer has stopped: `end` will not move again.
    pub closed: bool,
    /// Why the writer stopped early, if it did.
    pub failed: Option<Arc<str>>,
}

impl Progress {
    fn moved_to(&self, end: u64) {
        self.end.store(end, Ordering::Release);
        self.wake();
    }

    fn failed_with(&self, why: Arc<str>) {
        *self.failed.lock().unwrap_or_else(|p| p.into_inner()) = Some(why);
        self.wake();
    }

    fn close(&self) {
        self.closed.store(true, Ordering::Release);
        self.wake();
    }

    /// A wake-up that races a reader between its check and its sleep is
    /// lost; that reader looks again after its timeout.
    fn wake(&self) {
        if self.waiting.load(Ordering::Acquire) > 0 {
            self.moved.notify_all();
        }
    }

    /// The current state.
    pub fn now(&self) -> Written {
        // `closed` before `end`: once closed, `end` is final.
        let closed = self.closed.load(Ordering::Acquire);
        Written {
            end: self.end.load(Ordering::Acquire),
            closed,
            failed: self
                .failed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone(),
        }
    }

    /// Waits up to `timeout` for the journal to grow past `offset` or for
    /// the writer to stop; returns the state either way.
    pub fn wait_beyond(&self, offset: u64, timeout: Duration) -> Written {
        let moved = |p: &Progress| {
            p.end.load(Ordering::Acquire) > offset || p.closed.load(Ordering::Acquire)
        };
        if !moved(self) {
            let gate = self.gate.lock().unwrap_or_else(|p| p.into_inner());
            self.waiting.fetch_add(1, Ordering::AcqRel);
            let _ = self
                .moved
                .wait_timeout_while(gate, timeout, |_| !moved(self))
                .unwrap_or_else(|p| p.into_inner());
            self.waiting.fetch_sub(1, Ordering::AcqRel);
        }
        self.now()
    }
}

/// Appends framed records to a test set's journal.
pub struct JournalWriter {
    state: Mutex<State>,
    progress: Arc<Progress>,
    /// The file and how far it is written. Whoever writes holds it from
    /// before taking a batch until the batch is written, so batches reach
    /// the file in the order they were taken.
    sink: Mutex<Sink>,
    path: PathBuf,
}

impl JournalWriter {
    /// Creates `path` (which must not exist), locks it and writes the
    /// header. The file appears under its name only once it is locked and
    /// has its header, so a recovery never takes a journal being set up for
    /// an empty leftover.
    pub fn create(path: &Path) -> Result<Self, JournalError> {
        if path.exists() {
            return Err(JournalError::Exists {
                path: path.to_path_buf(),
            });
        }
        let file_name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let tmp = path.with_file_name(format!("{file_name}.tmp-{}", std::process::id()));
        let mut file = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .open(&tmp)
            .map_err(io_err(&tmp))?;
        let set_up = lock(&file, &tmp).and_then(|()| {
            file.write_all(&header()).map_err(io_err(&tmp))?;
            fs::rename(&tmp, path).map_err(io_err(path))
        });
        if let Err(e) = set_up {
            let _ = fs::remove_file(&tmp);
            return Err(e);
        }
        Ok(Self::start(file, HEADER_LEN as u64, path))
    }

    /// A writer appending to an open file positioned at `offset`.
    pub fn start(file: File, offset: u64, path: &Path) -> Self {
        let progress = Arc::new(Progress::default());
        progress.moved_to(offset);
        JournalWriter {
            state: Mutex::new(State::default()),
            progress,
            sink: Mutex::new(Sink {
                file,
                offset,
                spare: Vec::new(),
            }),
            path: path.to_path_buf(),
        }
    }

    /// Where the journal is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How far the journal is written.
    pub fn progress(&self) -> Arc<Progress> {
        self.progress.clone()
    }

    /// Frames a record into the shared buffer; it is written by the next
    /// [`JournalWriter::flush`], the caller's or another's.
    pub fn append_in_place(
        &self,
        kind: RecordKind,
        fill: impl FnOnce(&mut Vec<u8>),
    ) -> Result<(), JournalError> {
        let mut state = self.state();
        if let Some(failed) = &state.failed {
            return Err(JournalError::Stopped(failed.to_string()));
        }
        if state.closing {
            return Err(JournalError::Stopped(
                "the journal was already closed".to_string(),
            ));
        }
        frame_into(&mut state.pending, kind, fill);
        Ok(())
    }

    /// Writes every record appended so far, on the caller's thread, with
    /// one `write`. `Ok` means all of them are written: those another
    /// caller's flush took were written by it, or the journal would have
    /// stopped.
    pub fn flush(&self) -> Result<(), JournalError> {
        let mut sink = self.sink();
        if self.write_pending(&mut sink) {
            Ok(())
        } else {
            let failed = self.state().failed.clone();
            Err(JournalError::Stopped(failed.map_or_else(
                || "the journal writer stopped".to_string(),
                |f| f.to_string(),
            )))
        }
    }

    /// Writes what is queued and refuses further records; returns how far
    /// the journal is written, and why it stopped early if it did.
    pub fn close(&self) -> Written {
        let mut sink = self.sink();
        let first = !std::mem::replace(&mut self.state().closing, true);
        if first {
            // Appends are refused from here on; what came before is written.
            self.write_pending(&mut sink);
            self.progress.close();
        }
        drop(sink);
        self.progress.now()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sink(&self) -> MutexGuard<'_, Sink> {
        self.sink.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Writes the records gathered so far (if any) with one `write`; false
    /// once the journal cannot be written.
    fn write_pending(&self, sink: &mut Sink) -> bool {
        let batch = {
            let mut state = self.state();
            if state.failed.is_some() {
                return false;
            }
            if state.pending.is_empty() {
                return true;
            }
            std::mem::replace(&mut state.pending, std::mem::take(&mut sink.spare))
        };
        match sink.file.write_all(&batch) {
            Ok(()) => {
                sink.offset += batch.len() as u64;
                let offset = sink.offset;
                self.progress.moved_to(offset);
            }
            Err(e) => {
                // A partly written batch is cut off again, so the file ends on
                // a whole record and a recovery finds no torn tail.
                let _ = sink.file.set_len(sink.offset);
                let message: Arc<str> = Arc::from(format!(
                    "{}: {e}; the records written before it are kept, and become tests once there is room again",
                    self.path.display()
                ));
                tracing::error!("the journal could not be written: {message}");
                let mut state = self.state();
                state.failed = Some(message.clone());
                state.pending.clear();
                drop(state);
                self.progress.failed_with(message.clone());
                return false;
            }
        }
        sink.spare = batch;
        sink.spare.clear();
        if sink.spare.capacity() > KEEP_BUFFER {
            sink.spare = Vec::new();
        }
        true
    }
}

impl Drop for JournalWriter {
    fn drop(&mut self) {
        self.close();
    }
}
