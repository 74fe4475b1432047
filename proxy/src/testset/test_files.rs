//! The test files of a set, listed in replay order without being read.
//!
//! A set is listed before its first test is replayed, and the list is kept
//! until its last, so a set of 100,000 tests must not hold 100,000 paths.
//! The names recplay records (`test-1.yaml`, `test-2.yaml`, …) collapse
//! into runs of consecutive numbers; any other name is kept once, in one
//! string shared by all of them. Each [`TestFile`] is built when its turn
//! comes.

use std::fs;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// The number in `prefix-N`, if the name has that shape.
pub fn numbered(name: &str, prefix: &str) -> Option<u64> {
    name.strip_prefix(prefix)?.strip_prefix('-')?.parse().ok()
}

/// One listed test file, not read yet (see [`super::store::read_test`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TestFile {
    /// The file's name without `.yaml`.
    pub name: String,
    pub path: PathBuf,
}

/// The test files of one `tests` folder, in replay order: by the number in
/// `test-N`, then by name; names without such a number last.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TestFiles {
    dir: PathBuf,
    entries: Vec<Entry>,
    /// The names of the files `Entry::Named` stands for, one after another.
    names: String,
    len: usize,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    /// `test-{first}.yaml` and the `count - 1` numbers after it, each file
    /// named exactly as recplay names them.
    Numbered { first: u64, count: usize },
    /// Any other file: its name, extension included, is `names[start..end]`.
    Named { start: usize, end: usize },
}

impl Entry {
    fn len(&self) -> usize {
        match self {
            Entry::Numbered { count, .. } => *count,
            Entry::Named { .. } => 1,
        }
    }
}

/// The name without `.yaml` or `.yml`; `None` for any other file.
fn stem(file_name: &str) -> Option<&str> {
    file_name
        .strip_suffix(".yaml")
        .or(file_name.strip_suffix(".yml"))
}

/// N when `file_name` is `test-N.yaml` written as recplay writes it (no
/// sign, no leading zero), so that the name can be built again from N.
fn recorded_number(file_name: &str) -> Option<u64> {
    let digits = file_name.strip_prefix("test-")?.strip_suffix(".yaml")?;
    let plain = !digits.is_empty()
        && digits.bytes().all(|b| b.is_ascii_digit())
        && (digits == "0" || !digits.starts_with('0'));
    plain.then(|| digits.parse().ok()).flatten()
}

/// Where a file goes in replay order: the number in `test-N` (files
/// without one last), then the name without its extension, then the whole
/// name (`test-1.yaml` before `test-1.yml`).
fn order_key(file_name: &str) -> (u64, &str, &str) {
    let stem = stem(file_name).unwrap_or(file_name);
    (numbered(stem, "test").unwrap_or(u64::MAX), stem, file_name)
}

impl TestFiles {
    /// Lists the `.yaml` and `.yml` files in `dir`. While listing, a
    /// recorded name costs eight bytes (its number), freed once the runs
    /// are built.
    pub fn list(dir: &Path) -> std::io::Result<TestFiles> {
        let mut numbers: Vec<u64> = Vec::new();
        let mut others: Vec<String> = Vec::new();
        for entry in fs::read_dir(dir)? {
            let name = entry?.file_name().to_string_lossy().into_owned();
            if stem(&name).is_none() {
                continue;
            }
            match recorded_number(&name) {
                Some(n) => numbers.push(n),
                None => others.push(name),
            }
        }
        numbers.sort_unstable();
        others.sort_by(|a, b| order_key(a).cmp(&order_key(b)));

        let mut files = TestFiles {
            dir: dir.to_path_buf(),
            ..Default::default()
        };
        let mut others = others.into_iter().peekable();
        for n in numbers {
            let name = format!("test-{n}.yaml");
            while let Some(other) = others.next_if(|o| order_key(o) < order_key(&name)) {
                files.push_named(&other);
            }
            files.push_numbered(n);
        }
        for other in others {
            files.push_named(&other);
        }
        Ok(files)
    }

    fn push_numbered(&mut self, n: u64) {
        self.len += 1;
        if let Some(Entry::Numbered { first, count }) = self.entries.last_mut() {
            if u64::try_from(*count).is_ok_and(|c| first.checked_add(c) == Some(n)) {
                *count += 1;
                return;
            }
        }
        self.entries.push(Entry::Numbered { first: n, count: 1 });
    }

    fn push_named(&mut self, file_name: &str) {
        self.len += 1;
        let start = self.names.len();
        self.names.push_str(file_name);
        self.entries.push(Entry::Named {
            start,
            end: self.names.len(),
        });
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Keeps only the files at positions `range` (a shard's piece).
    pub fn keep(&mut self, range: Range<usize>) {
        let mut kept = Vec::new();
        let mut at = 0;
        for entry in self.entries.drain(..) {
            let n = entry.len();
            let (lo, hi) = (range.start.max(at), range.end.min(at + n));
            if lo < hi {
                kept.push(match entry {
                    Entry::Numbered { first, .. } => Entry::Numbered {
                        first: first + (lo - at) as u64,
                        count: hi - lo,
                    },
                    named => named,
                });
            }
            at += n;
        }
        self.len = kept.iter().map(Entry::len).sum();
        self.entries = kept;
    }

    /// Every file, in replay order.
    pub fn iter(&self) -> Iter<'_> {
        Iter {
            files: self,
            entry: 0,
            offset: 0,
        }
    }

    fn file(&self, file_name: &str) -> TestFile {
        TestFile {
            name: stem(file_name).unwrap_or(file_name).to_string(),
            path: self.dir.join(file_name),
        }
    }
}

/// The files of a [`TestFiles`], each built as it is reached.
#[derive(Debug)]
pub struct Iter<'a> {
    files: &'a TestFiles,
    entry: usize,
    /// How many files of the current entry were given out.
    offset: usize,
}

impl Iterator for Iter<'_> {
    type Item = TestFile;

    fn next(&mut self) -> Option<TestFile> {
        loop {
            match *self.files.entries.get(self.entry)? {
                Entry::Numbered { first, count } if self.offset < count => {
                    let n = first + self.offset as u64;
                    self.offset += 1;
                    return Some(self.files.file(&format!("test-{n}.yaml")));
                }
                Entry::Numbered { .. } => {
                    self.entry += 1;
                    self.offset = 0;
                }
                Entry::Named { start, end } => {
                    self.entry += 1;
                    return Some(self.files.file(&self.files.names[start..end]));
                }
            }
        }
    }
}

impl<'a> IntoIterator for &'a TestFiles {
    type Item = TestFile;
    type IntoIter = Iter<'a>;

    fn into_iter(self) -> Iter<'a> {
        self.iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn listed(names: &[&str]) -> (tempfile::TempDir, TestFiles) {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in names {
            fs::write(dir.path().join(name), "").expect("write");
        }
        let files = TestFiles::list(dir.path()).expect("list");
        (dir, files)
    }

    fn names(files: &TestFiles) -> Vec<String> {
        files
            .iter()
            .map(|f| f.path.file_name().expect("name").to_string_lossy().into())
            .collect()
    }

    #[test]
    fn files_come_by_number_then_by_name_as_a_plain_sort_puts_them() {
        let all = [
            "test-10.yaml",
            "test-2.yaml",
            "test-1.yaml",
            "test-3.yml",
            "test-02.yaml",
            "test-2.yml",
            "login.yaml",
            "test-x.yaml",
            "test-4.yaml",
            "notes.txt",
            "test-+5.yaml",
            "test-5.yaml",
            "test-99999999999999999999.yaml",
        ];
        let (_dir, files) = listed(&all);
        // The order the listing had when it kept every name: sorted, then
        // a stable sort by the number in `test-N` and the name without
        // its extension.
        let mut expected: Vec<&str> = all.iter().copied().filter(|n| stem(n).is_some()).collect();
        expected.sort();
        expected.sort_by_key(|n| {
            let s = stem(n).expect("stem");
            (numbered(s, "test").unwrap_or(u64::MAX), s)
        });
        assert_eq!(names(&files), expected);
        assert_eq!(files.len(), expected.len());
        let login = files.iter().find(|f| f.name == "login").expect("login");
        assert_eq!(login.path, _dir.path().join("login.yaml"));
    }

    #[test]
    fn a_recorded_set_is_held_as_runs_of_numbers() {
        let all: Vec<String> = (1..=500)
            .filter(|n| n % 100 != 0)
            .map(|n| format!("test-{n}.yaml"))
            .collect();
        let refs: Vec<&str> = all.iter().map(String::as_str).collect();
        let (_dir, files) = listed(&refs);
        assert_eq!(files.entries.len(), 5, "one run between each gap");
        assert!(files.names.is_empty());
        let mut sorted = all.clone();
        sorted.sort_by_key(|n| order_key(n).0);
        assert_eq!(names(&files), sorted);
        let first = files.iter().next().expect("a file");
        assert_eq!(first.name, "test-1");
    }

    #[test]
    fn keeping_a_range_keeps_those_positions() {
        let (_dir, mut files) = listed(&[
            "test-1.yaml",
            "test-2.yaml",
            "test-3.yaml",
            "b.yaml",
            "a.yaml",
            "test-7.yaml",
        ]);
        let all = names(&files);
        assert_eq!(
            all,
            [
                "test-1.yaml",
                "test-2.yaml",
                "test-3.yaml",
                "test-7.yaml",
                "a.yaml",
                "b.yaml"
            ]
        );
        for (lo, hi) in [(0, 6), (1, 2), (2, 5), (4, 6), (3, 3), (5, 9)] {
            let mut part = files.clone();
            part.keep(lo..hi);
            let hi = hi.min(all.len());
            assert_eq!(names(&part), all[lo.min(hi)..hi], "{lo}..{hi}");
            assert_eq!(part.len(), hi - lo.min(hi));
        }
        files.keep(0..0);
        assert!(files.is_empty());
        assert_eq!(files.iter().count(), 0);
    }
}
