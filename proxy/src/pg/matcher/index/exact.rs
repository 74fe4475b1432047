//! Exact identities, as one sorted array of (digest, entry).
//!
//! A look-up is a binary search; each mock costs its 16-byte slot, with no
//! hash-map slack and no allocation of its own. The mocks of one identity
//! lie side by side in recorded order (the entry breaks ties). Most
//! identities are recorded once; one recorded more than once (pgbench's
//! `BEGIN;`, once per transaction) also gets a [`Repeated`] record, which
//! lets each step of the preference order be found without a scan of its
//! run.

use super::consumed::Consumed;
use super::entry::Entry;
use super::Key;

/// No entry.
const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
struct Slot {
    key: Key,
    entry: u32,
}

/// An identity recorded more than once.
#[derive(Debug, Clone, Copy)]
struct Repeated {
    /// Its run of slots.
    start: u32,
    end: u32,
    /// Its first session mock, or [`NONE`].
    first_session: u32,
    /// Every slot of the run before this one is a session mock or
    /// consumed: where the search for the next data mock starts.
    cursor: u32,
    /// Its data mocks recorded in a test's window, in `windowed`.
    windowed_start: u32,
    windowed_end: u32,
    /// The test last served from `windowed`, and the position there
    /// before which every one of that test's mocks is consumed: a test
    /// sending one exact query many times walks its recordings once, not
    /// once per query. Only ever set further on, so reset wherever
    /// consumption can be undone ([`ExactIndex::rewind`]).
    window_test: u32,
    window_cursor: u32,
}

/// The exact index.
#[derive(Debug, Default)]
pub struct ExactIndex {
    /// Sorted by (key, entry) once [`ExactIndex::finish`] ran.
    slots: Vec<Slot>,
    /// By `start`.
    repeated: Vec<Repeated>,
    /// Per repeated identity, its windowed data mocks by (test, entry).
    windowed: Vec<u32>,
}

fn lifetime(entries: &[Entry], e: u32) -> u32 {
    entries
        .get(e as usize)
        .map_or(super::entry::SESSION, |e| e.lifetime)
}

fn is_session(entries: &[Entry], e: u32) -> bool {
    entries.get(e as usize).is_some_and(Entry::is_session)
}

impl ExactIndex {
    pub fn push(&mut self, key: Key, entry: u32) {
        self.slots.push(Slot { key, entry });
    }

    /// Sorts the slots in place and describes the identities recorded more
    /// than once. Runs again from scratch if called again.
    pub fn finish(&mut self, entries: &[Entry]) {
        self.slots.sort_unstable();
        self.slots.shrink_to_fit();
        self.repeated.clear();
        self.windowed.clear();
        let mut start = 0;
        while let Some(first) = self.slots.get(start) {
            let key = first.key;
            let end = start + self.slots[start..].partition_point(|s| s.key == key);
            if end - start > 1 {
                let run = &self.slots[start..end];
                let first_session = run
                    .iter()
                    .map(|s| s.entry)
                    .find(|&e| is_session(entries, e))
                    .unwrap_or(NONE);
                let windowed_start = self.windowed.len();
                self.windowed.extend(
                    run.iter()
                        .map(|s| s.entry)
                        .filter(|&e| entries.get(e as usize).and_then(Entry::test).is_some()),
                );
                self.windowed[windowed_start..]
                    .sort_unstable_by_key(|&e| (lifetime(entries, e), e));
                self.repeated.push(Repeated {
                    start: start as u32,
                    end: end as u32,
                    first_session,
                    cursor: start as u32,
                    windowed_start: windowed_start as u32,
                    windowed_end: self.windowed.len() as u32,
                    window_test: NONE,
                    window_cursor: 0,
                });
            }
            start = end;
        }
        self.repeated.shrink_to_fit();
        self.windowed.shrink_to_fit();
    }

    /// The mock answering an exchange of identity `key` while the test
    /// coded `test` is replayed, and whether it is reused (every recording
    /// of the identity consumed). A data mock chosen is marked consumed.
    ///
    /// In order: a data mock of the test's window; a session mock; any
    /// data mock, in recorded order; the last recording. The first
    /// unconsumed one of each kind, so a rewind needs no more than
    /// clearing `consumed` and the cursors.
    pub fn take(
        &mut self,
        key: &Key,
        test: Option<u32>,
        entries: &[Entry],
        consumed: &mut Consumed,
    ) -> Option<(usize, bool)> {
        let start = self.slots.partition_point(|s| s.key < *key);
        let end = start + self.slots[start..].partition_point(|s| s.key == *key);
        if start == end {
            return None;
        }
        if end - start == 1 {
            let i = self.slots[start].entry;
            if is_session(entries, i) {
                return Some((i as usize, false));
            }
            let reused = consumed.get(i as usize);
            consumed.set(i as usize);
            return Some((i as usize, reused));
        }
        let r = self
            .repeated
            .binary_search_by_key(&(start as u32), |r| r.start)
            .ok()?;
        let rep = &mut self.repeated[r];
        if let Some(t) = test {
            let w = self
                .windowed
                .get(rep.windowed_start as usize..rep.windowed_end as usize)
                .unwrap_or_default();
            let lo = w.partition_point(|&e| lifetime(entries, e) < t);
            let hi = w.partition_point(|&e| lifetime(entries, e) <= t);
            let from = if rep.window_test == t {
                (rep.window_cursor as usize).clamp(lo, hi)
            } else {
                lo
            };
            let found = w[from..hi]
                .iter()
                .position(|&e| !consumed.get(e as usize))
                .map(|p| from + p);
            rep.window_test = t;
            rep.window_cursor = found.map_or(hi, |p| p + 1) as u32;
            if let Some(p) = found {
                let e = w[p];
                consumed.set(e as usize);
                return Some((e as usize, false));
            }
        }
        if rep.first_session != NONE {
            return Some((rep.first_session as usize, false));
        }
        while rep.cursor < rep.end {
            let e = self.slots[rep.cursor as usize].entry;
            rep.cursor += 1;
            if !is_session(entries, e) && !consumed.get(e as usize) {
                consumed.set(e as usize);
                return Some((e as usize, false));
            }
        }
        Some((self.slots[end - 1].entry as usize, true))
    }

    /// Every search for a data mock starts again from the front.
    pub fn rewind(&mut self) {
        for r in &mut self.repeated {
            r.cursor = r.start;
            r.window_test = NONE;
            r.window_cursor = 0;
        }
    }
}
