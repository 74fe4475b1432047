//! A body wrapper that forwards frames unchanged while keeping a capped copy.
//!
//! The proxy never buffers a body to forward it: each frame goes on as soon
//! as it arrives. Recording only needs the first `cap` bytes (and, past the
//! cap, the full size and a sha256 so a reviewer can still tell bodies
//! apart), so memory per exchange is bounded by the cap whatever the body's
//! size. When the body ends — or is dropped before its end — the copy is
//! handed to a [`CaptureReport`]: a oneshot channel, or (for responses) the
//! code that completes the exchange right there, so finishing an exchange
//! costs no task and no wake-up.
//!
//! A report may answer with a [`Hold`]: the body's last frame (or its end,
//! for a body whose end comes after its last data) is then kept back until
//! the hold resolves, which is how the recorder gets an exchange's record
//! written before the client has the whole response.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body::{Body, Frame, SizeHint};
use sha2::{Digest, Sha256};
use tokio::sync::oneshot;

/// Resolves once a completed exchange is safe with the sink (its record
/// written); until then the proxy holds back the response's last bytes,
/// so a client never has a whole response whose record a crash can lose.
/// An error says why it was not kept; the client's response is then cut.
pub type Hold = Pin<Box<dyn Future<Output = Result<(), String>> + Send + 'static>>;

/// The error a tee yields: the inner body's, or a hold that failed.
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// What the recorder learns about one body.
#[derive(Debug, Clone, Default)]
pub struct CapturedBody {
    /// The first `cap` bytes (all of them when the body fit).
    pub bytes: Vec<u8>,
    /// Total bytes that crossed the proxy.
    pub size: u64,
    /// Hex sha256 of every byte; computed only once the cap was exceeded,
    /// so small bodies cost nothing extra.
    pub sha256: Option<String>,
    /// False when the body stopped early (client or upstream went away, or
    /// the peer never read it).
    pub complete: bool,
}

impl CapturedBody {
    /// True when `bytes` holds only a prefix of the body.
    pub fn truncated(&self) -> bool {
        self.size > self.bytes.len() as u64
    }
}

/// Accumulates a capped copy; shared by [`TeeBody`] and tests.
#[derive(Debug)]
struct Capture {
    cap: usize,
    bytes: Vec<u8>,
    size: u64,
    hasher: Option<Sha256>,
}

impl Capture {
    fn new(cap: u64) -> Self {
        Capture {
            cap: usize::try_from(cap).unwrap_or(usize::MAX),
            bytes: Vec::new(),
            size: 0,
            hasher: None,
        }
    }

    fn push(&mut self, chunk: &[u8]) {
        self.size += chunk.len() as u64;
        if let Some(hasher) = self.hasher.as_mut() {
            hasher.update(chunk);
            return;
        }
        let room = self.cap - self.bytes.len();
        if chunk.len() <= room {
            self.bytes.extend_from_slice(chunk);
            return;
        }
        // Crossing the cap: from here on only the hash grows.
        let mut hasher = Sha256::new();
        hasher.update(&self.bytes);
        hasher.update(chunk);
        self.bytes.extend_from_slice(&chunk[..room]);
        self.hasher = Some(hasher);
    }

    fn finish(self, complete: bool) -> CapturedBody {
        CapturedBody {
            bytes: self.bytes,
            size: self.size,
            sha256: self.hasher.map(|h| hex::encode(h.finalize())),
            complete,
        }
    }
}

/// Whoever receives the copy once the body ended or was dropped. It is
/// called exactly once, from the task that polled or dropped the body, so
/// it must not block.
pub trait CaptureReport: Send + 'static {
    /// The body is over; `body.complete` says whether it ended normally.
    /// A returned hold keeps the body's last frame back until it resolves.
    fn report(self, body: CapturedBody) -> Option<Hold>;
}

impl CaptureReport for oneshot::Sender<CapturedBody> {
    fn report(self, body: CapturedBody) -> Option<Hold> {
        // The receiver is gone only when the exchange was abandoned.
        let _ = self.send(body);
        None
    }
}

/// The last frame (or the end, `None`) kept back until its hold resolves.
struct Held {
    hold: Hold,
    last: Option<Frame<Bytes>>,
}

/// Forwards an inner body frame by frame and reports a capped copy when done.
pub struct TeeBody<B, R: CaptureReport = oneshot::Sender<CapturedBody>> {
    inner: B,
    capture: Option<Capture>,
    done: Option<R>,
    /// The inner body said it was empty before any poll (GET, 204, HEAD).
    known_empty: bool,
    held: Option<Held>,
    /// The end was yielded after a hold: nothing more comes.
    ended: bool,
}

impl<B: Body> TeeBody<B> {
    /// Wraps `inner`; the returned receiver yields the copy once the body
    /// ended or was dropped.
    pub fn new(inner: B, cap: u64) -> (Self, oneshot::Receiver<CapturedBody>) {
        let (tx, rx) = oneshot::channel();
        (TeeBody::reporting_to(inner, cap, tx), rx)
    }
}

impl<B: Body, R: CaptureReport> TeeBody<B, R> {
    /// Wraps `inner`; `report` receives the copy once the body ended or was
    /// dropped.
    pub fn reporting_to(inner: B, cap: u64, report: R) -> Self {
        let known_empty = inner.is_end_stream();
        TeeBody {
            inner,
            known_empty,
            capture: Some(Capture::new(cap)),
            done: Some(report),
            held: None,
            ended: false,
        }
    }
}

impl<B, R: CaptureReport> TeeBody<B, R> {
    fn report(&mut self, complete: bool) -> Option<Hold> {
        if let (Some(capture), Some(done)) = (self.capture.take(), self.done.take()) {
            return done.report(capture.finish(complete));
        }
        None
    }

    /// Yields `last` now, or once `hold` (if any) resolves.
    fn release(
        &mut self,
        hold: Option<Hold>,
        last: Option<Frame<Bytes>>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match hold {
            None => Poll::Ready(last.map(Ok)),
            Some(hold) => {
                self.held = Some(Held { hold, last });
                self.poll_held(cx)
            }
        }
    }

    fn poll_held(&mut self, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let Some(held) = self.held.as_mut() else {
            return Poll::Ready(None);
        };
        let outcome = match held.hold.as_mut().poll(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(outcome) => outcome,
        };
        let last = self.held.take().and_then(|h| h.last);
        match outcome {
            Ok(()) => {
                self.ended = last.is_none();
                Poll::Ready(last.map(Ok))
            }
            Err(message) => {
                self.ended = true;
                Poll::Ready(Some(Err(message.into())))
            }
        }
    }
}

impl<B, R> Body for TeeBody<B, R>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<BoxError>,
    R: CaptureReport + Unpin,
{
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        let this = &mut *self;
        if this.held.is_some() {
            return this.poll_held(cx);
        }
        if this.ended {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let (Some(data), Some(capture)) = (frame.data_ref(), this.capture.as_mut()) {
                    capture.push(data);
                }
                if this.inner.is_end_stream() {
                    let hold = this.report(true);
                    return this.release(hold, Some(frame), cx);
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => {
                // Nothing to keep back: the client gets no whole response.
                drop(this.report(false));
                Poll::Ready(Some(Err(e.into())))
            }
            Poll::Ready(None) => {
                let hold = this.report(true);
                this.release(hold, None, cx)
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.held.is_none() && (self.ended || self.inner.is_end_stream())
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B, R: CaptureReport> Drop for TeeBody<B, R> {
    fn drop(&mut self) {
        // An empty body that nobody polled still ended normally.
        let complete = self.known_empty;
        // Nobody is left to hold back; the record is still written.
        drop(self.report(complete));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn past_the_cap_only_size_and_hash_grow() {
        let mut capture = Capture::new(4);
        capture.push(b"abc");
        capture.push(b"defg");
        let body = capture.finish(true);
        assert_eq!(body.bytes, b"abcd");
        assert_eq!(body.size, 7);
        assert!(body.truncated());
        let expected = hex::encode(Sha256::digest(b"abcdefg"));
        assert_eq!(body.sha256.as_deref(), Some(expected.as_str()));
    }

    #[test]
    fn a_body_at_the_cap_is_whole_and_unhashed() {
        let mut capture = Capture::new(3);
        capture.push(b"abc");
        let body = capture.finish(true);
        assert!(!body.truncated());
        assert_eq!(body.sha256, None);
    }
}
