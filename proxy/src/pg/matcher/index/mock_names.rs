//! Mock names, without a string or a number kept per mock.
//!
//! The recorder names its mocks `mock-N` in file order, so along the index
//! N minus the entry's position stays the same over long runs (a mock left
//! out of the index starts a new run). Names are kept as those runs, plus
//! the few spelled otherwise (a hand-written or converted file).

use std::borrow::Cow;

use super::names::numbered;

const PREFIX: &str = "mock-";

/// The names of the entries, in entry order.
#[derive(Debug, Default)]
pub struct MockNames {
    /// (first entry, N minus entry) of each run, by first entry.
    runs: Vec<(u32, i64)>,
    /// Entries named otherwise, by entry.
    odd: Vec<(u32, Box<str>)>,
}

impl MockNames {
    /// Names entry `at`, newer than every entry named before.
    pub fn push(&mut self, at: u32, name: &str) {
        match numbered(PREFIX, name) {
            Some(n) => {
                let delta = i64::from(n) - i64::from(at);
                if self.runs.last().map(|r| r.1) != Some(delta) {
                    self.runs.push((at, delta));
                }
            }
            None => self.odd.push((at, name.into())),
        }
    }

    /// The name of entry `at`, which must have been named.
    pub fn get(&self, at: u32) -> Cow<'_, str> {
        if let Ok(k) = self.odd.binary_search_by_key(&at, |o| o.0) {
            return Cow::Borrowed(&self.odd[k].1);
        }
        let run = self.runs.partition_point(|r| r.0 <= at);
        match run.checked_sub(1).and_then(|r| self.runs.get(r)) {
            Some(&(_, delta)) => Cow::Owned(format!("{PREFIX}{}", i64::from(at) + delta)),
            None => Cow::Borrowed(""),
        }
    }

    pub fn shrink(&mut self) {
        self.runs.shrink_to_fit();
        self.odd.shrink_to_fit();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_read_back_and_runs_stay_few() {
        let given = [
            "mock-0",
            "mock-1",
            "mock-2",
            "odd",
            "mock-4",
            "mock-9",
            "mock-10",
            "mock-011",
            "mock-12",
            "",
            "mock-4294967295",
            "mock-4294967296",
            "mock-3",
        ];
        let mut names = MockNames::default();
        for (at, name) in given.iter().enumerate() {
            names.push(at as u32, name);
        }
        for (at, name) in given.iter().enumerate() {
            assert_eq!(names.get(at as u32), *name, "entry {at}");
        }
        // mock-0 to mock-4 | mock-9 to mock-12 | mock-4294967295 | mock-3:
        // a name spelled otherwise does not break a run.
        assert_eq!(names.runs.len(), 4);
        assert_eq!(MockNames::default().get(0), "");
    }
}
