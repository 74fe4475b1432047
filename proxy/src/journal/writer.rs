//! The group-commit writer: records from every connection are appended to
//! one shared buffer, and one thread writes whatever has gathered with one
//! `write` while the next batch gathers. An exchange waits for the write
//! that carries its record, so under load many exchanges share one system
//! call, and at rest a record is written as soon as it arrives.
//!
//! A recorder whose connections all run on one thread can instead write
//! the batch itself ([`JournalWriter::create_caller_flushed`],
//! [`JournalWriter::flush`]): its connections append during one turn of
//! their event loop and the first to flush writes them all, with no hand
//! over to another thread and back on every round trip. The thread then
//! only writes what is left when the journal closes.

use std::fs::{self, File, OpenOptions};
use std::future::Future;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::oneshot;

use super::record::{frame_into, RecordKind};
use super::{header, io_err, lock, JournalError, HEADER_LEN};

/// A batch larger than this is not kept for reuse once written.
const KEEP_BUFFER: usize = 4 * 1024 * 1024;

type Waiter = oneshot::Sender<Result<(), Arc<str>>>;

#[derive(Default)]
struct State {
    pending: Vec<u8>,
    waiters: Vec<Waiter>,
    closing: bool,
    failed: Option<Arc<str>>,
}

struct Shared {
    state: Mutex<State>,
    wake: Condvar,
    progress: Arc<Progress>,
    /// The file and how far it is written. Whoever writes holds it from
    /// before taking a batch until the batch is written, so batches reach
    /// the file in the order they were taken.
    sink: Mutex<Sink>,
    /// Whether an append wakes the thread; off when callers flush.
    wake_on_append: bool,
}

struct Sink {
    file: File,
    offset: u64,
    path: PathBuf,
    /// The last batch's buffer, kept for the next one.
    spare: Vec<u8>,
}

impl Shared {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn sink(&self) -> MutexGuard<'_, Sink> {
        self.sink.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// How far the journal is written; lets a reader follow the writer
/// without ever reading a record that is only partly written.
#[derive(Default)]
pub struct Progress {
    written: Mutex<Written>,
    moved: Condvar,
    /// Threads waiting in `wait_beyond` (changed under `written`'s lock):
    /// with none, an update skips the wake-up, which is a system call.
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
    fn update(&self, change: impl FnOnce(&mut Written)) {
        let mut written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        change(&mut written);
        if self.waiting.load(Ordering::Relaxed) > 0 {
            self.moved.notify_all();
        }
    }

    /// The current state.
    pub fn now(&self) -> Written {
        self.written
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Waits up to `timeout` for the journal to grow past `offset` or for
    /// the writer to stop; returns the state either way.
    pub fn wait_beyond(&self, offset: u64, timeout: Duration) -> Written {
        let written = self.written.lock().unwrap_or_else(|p| p.into_inner());
        self.waiting.fetch_add(1, Ordering::Relaxed);
        let (written, _) = self
            .moved
            .wait_timeout_while(written, timeout, |w| w.end <= offset && !w.closed)
            .unwrap_or_else(|p| p.into_inner());
        self.waiting.fetch_sub(1, Ordering::Relaxed);
        written.clone()
    }
}

/// Appends framed records to a test set's journal.
pub struct JournalWriter {
    shared: Arc<Shared>,
    thread: Mutex<Option<std::thread::JoinHandle<()>>>,
    path: PathBuf,
}

impl JournalWriter {
    /// Creates `path` (which must not exist), locks it, writes the header
    /// and starts the writer thread. The file appears under its name only
    /// once it is locked and has its header, so a recovery never takes a
    /// journal being set up for an empty leftover.
    pub fn create(path: &Path) -> Result<Self, JournalError> {
        Self::create_with(path, true)
    }

    /// [`JournalWriter::create`] for callers that write their records
    /// themselves with [`JournalWriter::flush`]; the thread writes only what
    /// is left when the journal closes.
    pub fn create_caller_flushed(path: &Path) -> Result<Self, JournalError> {
        Self::create_with(path, false)
    }

    fn create_with(path: &Path, wake_on_append: bool) -> Result<Self, JournalError> {
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
        Self::start_with(file, HEADER_LEN as u64, path, wake_on_append)
    }

    /// Starts the writer thread on an open file positioned at `offset`.
    pub fn start(file: File, offset: u64, path: &Path) -> Result<Self, JournalError> {
        Self::start_with(file, offset, path, true)
    }

    fn start_with(
        file: File,
        offset: u64,
        path: &Path,
        wake_on_append: bool,
    ) -> Result<Self, JournalError> {
        let progress = Arc::new(Progress::default());
        progress.update(|w| w.end = offset);
        let shared = Arc::new(Shared {
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
            progress,
            sink: Mutex::new(Sink {
                file,
                offset,
                path: path.to_path_buf(),
                spare: Vec::new(),
            }),
            wake_on_append,
        });
        let thread = std::thread::Builder::new()
            .name("recplay-journal".to_string())
            .spawn({
                let shared = shared.clone();
                move || write_batches(&shared)
            })
            .map_err(io_err(path))?;
        Ok(JournalWriter {
            shared,
            thread: Mutex::new(Some(thread)),
            path: path.to_path_buf(),
        })
    }

    /// Where the journal is.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// How far the journal is written.
    pub fn progress(&self) -> Arc<Progress> {
        self.shared.progress.clone()
    }

    /// Queues a framed record; the returned future resolves once the write
    /// that carries it has returned. It does not need to be polled for the
    /// record to be written.
    pub fn append(
        &self,
        frame: &[u8],
    ) -> impl Future<Output = Result<(), JournalError>> + Send + 'static {
        let (tx, rx) = oneshot::channel();
        {
            let mut state = self.shared.state();
            if let Some(failed) = &state.failed {
                let _ = tx.send(Err(failed.clone()));
            } else if state.closing {
                let _ = tx.send(Err(Arc::from("the journal was already closed")));
            } else {
                let was_empty = state.pending.is_empty();
                state.pending.extend_from_slice(frame);
                state.waiters.push(tx);
                if was_empty && self.shared.wake_on_append {
                    self.shared.wake.notify_one();
                }
            }
        }
        async move {
            match rx.await {
                Ok(Ok(())) => Ok(()),
                Ok(Err(message)) => Err(JournalError::Stopped(message.to_string())),
                Err(_) => Err(JournalError::Stopped(
                    "the journal writer thread is gone".to_string(),
                )),
            }
        }
    }

    /// Frames a record straight into the shared buffer, for a caller that
    /// flushes ([`JournalWriter::flush`]) instead of waiting on a future.
    pub fn append_in_place(
        &self,
        kind: RecordKind,
        fill: impl FnOnce(&mut Vec<u8>),
    ) -> Result<(), JournalError> {
        let mut state = self.shared.state();
        if let Some(failed) = &state.failed {
            return Err(JournalError::Stopped(failed.to_string()));
        }
        if state.closing {
            return Err(JournalError::Stopped(
                "the journal was already closed".to_string(),
            ));
        }
        let was_empty = state.pending.is_empty();
        frame_into(&mut state.pending, kind, fill);
        if was_empty && self.shared.wake_on_append {
            self.shared.wake.notify_one();
        }
        Ok(())
    }

    /// Writes every record appended so far, on the caller's thread, with
    /// one `write`. `Ok` means all of them are written: those another
    /// caller's flush took were written by it, or the journal would have
    /// stopped.
    pub fn flush(&self) -> Result<(), JournalError> {
        let mut sink = self.shared.sink();
        if write_pending(&self.shared, &mut sink) {
            Ok(())
        } else {
            let failed = self.shared.state().failed.clone();
            Err(JournalError::Stopped(failed.map_or_else(
                || "the journal writer stopped".to_string(),
                |f| f.to_string(),
            )))
        }
    }

    /// Writes what is queued and stops the thread; returns how far the
    /// journal is written, and why it stopped early if it did.
    pub fn close(&self) -> Written {
        {
            let mut state = self.shared.state();
            state.closing = true;
            self.shared.wake.notify_one();
        }
        let thread = self.thread.lock().unwrap_or_else(|p| p.into_inner()).take();
        if let Some(thread) = thread {
            if thread.join().is_err() {
                self.shared.progress.update(|w| {
                    w.closed = true;
                    w.failed = Some(Arc::from("the journal writer thread panicked"));
                });
            }
        }
        self.shared.progress.now()
    }
}

impl Drop for JournalWriter {
    fn drop(&mut self) {
        self.close();
    }
}

/// The writer thread: one `write` per gathered batch until closed.
fn write_batches(shared: &Shared) {
    loop {
        {
            let mut state = shared.state();
            // When callers flush, the thread only writes what is left at
            // the close.
            while !state.closing && (state.pending.is_empty() || !shared.wake_on_append) {
                state = shared.wake.wait(state).unwrap_or_else(|p| p.into_inner());
            }
            if state.pending.is_empty() {
                break;
            }
        }
        let mut sink = shared.sink();
        if !write_pending(shared, &mut sink) {
            break;
        }
    }
    // Exchanges that arrive after the writer stopped are failed at once.
    let mut state = shared.state();
    state.closing = true;
    for waiter in state.waiters.drain(..) {
        let _ = waiter.send(Err(Arc::from("the journal writer stopped")));
    }
    drop(state);
    shared.progress.update(|w| w.closed = true);
}

/// Writes the records gathered so far (if any) with one `write` and tells
/// their waiters; false once the journal cannot be written.
fn write_pending(shared: &Shared, sink: &mut Sink) -> bool {
    let (batch, waiters) = {
        let mut state = shared.state();
        if state.failed.is_some() {
            return false;
        }
        if state.pending.is_empty() {
            return true;
        }
        let batch = std::mem::replace(&mut state.pending, std::mem::take(&mut sink.spare));
        (batch, std::mem::take(&mut state.waiters))
    };
    match sink.file.write_all(&batch) {
        Ok(()) => {
            sink.offset += batch.len() as u64;
            let offset = sink.offset;
            shared.progress.update(|w| w.end = offset);
            for waiter in waiters {
                let _ = waiter.send(Ok(()));
            }
        }
        Err(e) => {
            // A partly written batch is cut off again, so the file ends on
            // a whole record and a recovery finds no torn tail.
            let _ = sink.file.set_len(sink.offset);
            let message: Arc<str> = Arc::from(format!(
                "{}: {e}; the records written before it are kept, and become tests once there is room again",
                sink.path.display()
            ));
            tracing::error!("the journal could not be written: {message}");
            let mut state = shared.state();
            state.failed = Some(message.clone());
            for waiter in waiters.into_iter().chain(state.waiters.drain(..)) {
                let _ = waiter.send(Err(message.clone()));
            }
            state.pending.clear();
            drop(state);
            shared.progress.update(|w| w.failed = Some(message.clone()));
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
