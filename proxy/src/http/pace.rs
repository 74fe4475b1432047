//! How much of the CPU the materializer takes while traffic is heavy.
//!
//! A low scheduling priority is not enough on a machine the traffic keeps
//! busy: the materializer still runs in every gap, and creating files
//! costs the kernel more than forwarding an exchange costs the proxy. So
//! while the journal grows fast, the materializer works in short slices
//! and rests between them. It never stops: files keep appearing at a
//! bounded pace during a burst, and at full speed once the burst is over.

use std::time::{Duration, Instant};

/// Longest stretch of work before the pace is looked at again.
const SLICE: Duration = Duration::from_millis(10);

/// Rest after a slice while traffic is heavy: with [`SLICE`], at most a
/// tenth of one core goes to test files during a burst.
const REST: Duration = Duration::from_millis(90);

/// Journal growth above which traffic counts as heavy: about 2,000 small
/// exchanges a second, a rate at which the materializer alone would take
/// a noticeable share of a core.
const HEAVY_BYTES_PER_SEC: u64 = 2 * 1024 * 1024;

/// Paces one materializer.
#[derive(Debug)]
pub(crate) struct Pace {
    slice_start: Instant,
    /// The journal's end when the slice began.
    end_at_start: u64,
}

impl Pace {
    /// A pace starting now with the journal written up to `end`.
    pub(crate) fn new(end: u64) -> Self {
        Pace {
            slice_start: Instant::now(),
            end_at_start: end,
        }
    }

    /// Called between records with the journal's current end: once a
    /// slice is over, rests if the journal grew fast during it.
    pub(crate) fn between_records(&mut self, end: u64) {
        let elapsed = self.slice_start.elapsed();
        if elapsed < SLICE {
            return;
        }
        if is_heavy(end.saturating_sub(self.end_at_start), elapsed) {
            std::thread::sleep(REST);
        }
        *self = Pace::new(end);
    }

    /// The journal stopped growing for a while: start a new slice.
    pub(crate) fn restart(&mut self, end: u64) {
        *self = Pace::new(end);
    }
}

/// Whether `grown` bytes of journal in `elapsed` is heavy traffic.
fn is_heavy(grown: u64, elapsed: Duration) -> bool {
    let per_sec = grown as f64 / elapsed.as_secs_f64().max(1e-3);
    per_sec > HEAVY_BYTES_PER_SEC as f64
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heavy_is_a_rate_not_an_amount() {
        let second = Duration::from_secs(1);
        assert!(!is_heavy(1024 * 1024, second));
        assert!(is_heavy(3 * 1024 * 1024, second));
        assert!(is_heavy(64 * 1024, Duration::from_millis(10)));
        assert!(!is_heavy(8 * 1024, Duration::from_millis(10)));
    }
}
