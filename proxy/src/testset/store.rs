//! Reading and writing a test-set directory: creating and listing sets,
//! loading one (its test files through [`super::test_file`], its mocks
//! document by document), writing test files (atomically, through
//! [`super::atomic_write`]) and appending mocks.
//!
//! Test cases are written atomically (a temp file in the same directory,
//! then rename), so a reader never sees half a file. `mocks.yaml` is
//! append-only, one whole document per write, so kill -9 loses at most the
//! exchange in flight; each document ends with YAML's `...` marker, and the
//! loader names a document without it (cut short) instead of loading part of
//! it or failing the whole set.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

pub use super::atomic_write::{write_atomically, write_atomically_unsynced, write_atomically_with};
use super::keploy::{HttpMock, KeployMocks};
pub use super::mock_file::LoadProblem;
use super::mock_file::{scan_mock_documents, MockFile, MockSink};
use super::regular_file::check_regular_file;
use super::store_error::io_err;
pub use super::store_error::StoreError;
pub use super::test_file::{parse_test, read_test, render_test, ReadTest, SkippedTest};
pub use super::test_files::{numbered, TestFile, TestFiles};
use super::{HttpTestCase, PgMock};

/// Everything that loaded from one test set. `M` holds its mocks: every
/// mock whole (what [`TestSetDir::load`] gives), or whatever a
/// [`MockSink`] made of them (see [`LoadedTestSet::with_mocks`]).
#[derive(Debug, Default)]
pub struct LoadedTestSet<M = Vec<PgMock>> {
    /// The folder's name (`test-set-N`, or any other).
    pub name: String,
    /// Sorted by the number in `test-N`.
    pub tests: Vec<HttpTestCase>,
    /// In file order; mocks converted from Keploy's documents follow
    /// recplay's own.
    pub mocks: M,
    pub problems: Vec<LoadProblem>,
    /// Test files of other kinds, in the order of `tests`.
    pub skipped_tests: Vec<SkippedTest>,
    /// From [`TestSetDir::load_listed_with`]: every test file, in replay
    /// order, not read yet (`tests` and `skipped_tests` are then empty);
    /// [`read_test`] reads each when its turn comes.
    pub test_files: TestFiles,
    /// Keploy's `Http` mocks (outgoing calls), not served yet.
    pub http_mocks: Vec<HttpMock>,
    /// Kind → how many of Keploy's mocks of that kind recplay does not
    /// serve. Never a failure: a test fails only when the app asks for one.
    pub unserved: std::collections::BTreeMap<String, u64>,
}

impl<M> LoadedTestSet<M> {
    /// `14 Mongo mocks: not served by recplay`, a line per kind.
    pub fn unserved_notes(&self) -> Vec<String> {
        super::keploy::unserved_notes(&self.unserved)
    }

    /// The same set holding `mocks` instead: what a [`MockSink`] given to
    /// [`TestSetDir::load_with`] built.
    pub fn with_mocks<N>(self, mocks: N) -> LoadedTestSet<N> {
        LoadedTestSet {
            name: self.name,
            tests: self.tests,
            mocks,
            problems: self.problems,
            skipped_tests: self.skipped_tests,
            test_files: self.test_files,
            http_mocks: self.http_mocks,
            unserved: self.unserved,
        }
    }
}

/// A test-set directory: `test-set-N` as recplay records them, or any
/// other name Keploy accepts (see [`list_test_sets`]).
#[derive(Debug)]
pub struct TestSetDir {
    root: PathBuf,
    mocks: Mutex<Option<fs::File>>,
}

impl TestSetDir {
    /// Creates the next free `test-set-N` under `keploy_dir` (creating it).
    pub fn create_next(keploy_dir: &Path) -> Result<Self, StoreError> {
        fs::create_dir_all(keploy_dir).map_err(io_err(keploy_dir))?;
        let mut next = 0;
        for name in list_names(keploy_dir)? {
            if let Some(n) = numbered(&name, "test-set") {
                next = next.max(n + 1);
            }
        }
        // create_dir (not _all) fails if another recorder raced us to it.
        loop {
            let root = keploy_dir.join(format!("test-set-{next}"));
            match fs::create_dir(&root) {
                Ok(()) => {
                    let tests = root.join("tests");
                    fs::create_dir_all(&tests).map_err(io_err(&tests))?;
                    return Ok(TestSetDir::open(root));
                }
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => next += 1,
                Err(e) => return Err(io_err(&root)(e)),
            }
        }
    }

    /// An existing test-set directory.
    pub fn open(root: PathBuf) -> Self {
        TestSetDir {
            root,
            mocks: Mutex::new(None),
        }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder's name: `test-set-N`, or any other.
    pub fn name(&self) -> String {
        self.root
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    }

    pub fn mocks_path(&self) -> PathBuf {
        self.root.join("mocks.yaml")
    }

    /// Writes `tests/<name>.yaml` atomically.
    pub fn write_test(&self, case: &HttpTestCase) -> Result<PathBuf, StoreError> {
        let (path, text) = self.render_test(case)?;
        write_atomically(&path, text.as_bytes())?;
        Ok(path)
    }

    /// Like [`TestSetDir::write_test`] but without waiting for the disk:
    /// still atomic (a crash of the process leaves the old file or the new
    /// one), and made durable by [`TestSetDir::sync`] at the end of a
    /// recording. Recording at thousands of requests per second cannot
    /// afford one fsync per exchange.
    pub fn write_test_unsynced(&self, case: &HttpTestCase) -> Result<PathBuf, StoreError> {
        let (path, text) = self.render_test(case)?;
        write_atomically_unsynced(&path, text.as_bytes())?;
        Ok(path)
    }

    /// Where `case` goes and its YAML (see [`render_test`]).
    fn render_test(&self, case: &HttpTestCase) -> Result<(PathBuf, String), StoreError> {
        let path = self.root.join("tests").join(format!("{}.yaml", case.name));
        let text = render_test(case).map_err(|message| StoreError::Serialise {
            path: path.clone(),
            message,
        })?;
        Ok((path, text))
    }

    /// Appends one document to mocks.yaml in a single write.
    pub fn append_mock(&self, mock: &PgMock) -> Result<(), StoreError> {
        self.append_mocks(std::slice::from_ref(mock))
    }

    /// Appends several documents to mocks.yaml in one write, in order: lets
    /// a busy recorder pay one system call per batch instead of per mock.
    pub fn append_mocks(&self, mocks: &[PgMock]) -> Result<(), StoreError> {
        self.append_rendered_mocks(&render_mocks(mocks))
    }

    /// Appends documents [`render_mocks_into`] wrote, in one write: lets a
    /// recorder render each mock as it completes, while its memory is still
    /// fresh, and write the batch later.
    pub fn append_rendered_mocks(&self, text: &str) -> Result<(), StoreError> {
        let path = self.mocks_path();
        let mut guard = self.mocks.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            let file = fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(io_err(&path))?;
            *guard = Some(file);
        }
        if let Some(file) = guard.as_mut() {
            file.write_all(text.as_bytes()).map_err(io_err(&path))?;
        }
        Ok(())
    }

    /// Flushes mocks.yaml and the tests directory to stable storage.
    pub fn sync(&self) -> Result<(), StoreError> {
        let guard = self.mocks.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(file) = guard.as_ref() {
            file.sync_all().map_err(io_err(&self.mocks_path()))?;
        }
        // Test files written without fsync: syncing the directory commits
        // their renames (and, on ext4's default ordered mode, their data).
        let tests = self.root.join("tests");
        if tests.is_dir() {
            let dir = fs::File::open(&tests).map_err(io_err(&tests))?;
            dir.sync_all().map_err(io_err(&tests))?;
        }
        Ok(())
    }

    /// Loads every test case and mock that is complete; names the rest.
    ///
    /// Only a `tests` directory that cannot be listed is an error. A file
    /// or document that cannot be read or parsed becomes a [`LoadProblem`]
    /// naming it (file, and document and line within mocks.yaml), so one
    /// bad file never hides the others and nothing is skipped unnamed.
    pub fn load(&self) -> Result<LoadedTestSet, StoreError> {
        let mut mocks = Vec::new();
        let mut set = self.load_with(&mut mocks)?;
        set.mocks = mocks;
        Ok(set)
    }

    /// [`TestSetDir::load`], handing every mock to `sink` instead of
    /// keeping it: mocks.yaml is read a document at a time, so a recording
    /// larger than memory still loads (see [`super::mock_file`]). The
    /// returned set's `mocks` is empty.
    pub fn load_with(&self, sink: &mut dyn MockSink) -> Result<LoadedTestSet, StoreError> {
        let mut set = LoadedTestSet {
            name: self.name(),
            ..Default::default()
        };
        self.load_tests(&mut set)?;
        self.load_mocks(&mut set, sink, false);
        Ok(set)
    }

    /// Reads mocks.yaml into `sink`; with `listed`, `set`'s tests are
    /// listed only, and read here just when Keploy's documents need them.
    fn load_mocks(&self, set: &mut LoadedTestSet, sink: &mut dyn MockSink, listed: bool) {
        let mocks_path = self.mocks_path();
        match open_regular_file(&mocks_path) {
            Ok(Some(file)) => {
                let shared = std::sync::Arc::new(file);
                sink.open(shared.clone());
                let reader = std::io::BufReader::with_capacity(256 * 1024, shared.file());
                let scan = scan_mock_documents(reader, &mocks_path, sink);
                set.problems.extend(scan.problems);
                if let Some(torn) = &scan.torn {
                    tracing::warn!(
                        "{}: its last document was cut short by a crash of the recording and is left out ({}); the mocks before it are served",
                        torn.location,
                        torn.message
                    );
                }
                if let Some(message) = scan.error {
                    set.problems.push(LoadProblem {
                        location: mocks_path.display().to_string(),
                        message,
                    });
                }
                if listed && scan.keploy_documents > 0 {
                    set.tests = set
                        .test_files
                        .iter()
                        .filter_map(|f| match read_test(&f) {
                            ReadTest::Http(case) => Some(*case),
                            _ => None,
                        })
                        .collect();
                }
                add_keploy_mocks(set, scan.keploy, scan.next_connection, sink);
                if listed {
                    set.tests = Vec::new();
                }
            }
            // No database traffic was recorded.
            Ok(None) => {}
            Err(message) => set.problems.push(LoadProblem {
                location: mocks_path.display().to_string(),
                message,
            }),
        }
    }

    /// Like [`TestSetDir::load_with`], but the test files are only listed
    /// (in `test_files`), to be read one at a time by [`read_test`]. When
    /// mocks.yaml holds Keploy documents, whose conversion needs the
    /// tests' windows, the tests are read once for that and dropped.
    pub fn load_listed_with(&self, sink: &mut dyn MockSink) -> Result<LoadedTestSet, StoreError> {
        let mut set = LoadedTestSet {
            name: self.name(),
            ..Default::default()
        };
        let (files, problem) = self.list_tests()?;
        set.problems.extend(problem);
        set.test_files = files;
        self.load_mocks(&mut set, sink, true);
        Ok(set)
    }

    /// The test files in replay order (by the number in `test-N`, then by
    /// name), not read; a `tests` that is not a directory is a problem.
    pub fn list_tests(&self) -> Result<(TestFiles, Option<LoadProblem>), StoreError> {
        let tests_dir = self.root.join("tests");
        match fs::metadata(&tests_dir) {
            Ok(meta) if meta.is_dir() => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok((TestFiles::default(), None))
            }
            Ok(_) => {
                let problem = LoadProblem {
                    location: tests_dir.display().to_string(),
                    message: "is not a directory, so no test case could be read".to_string(),
                };
                return Ok((TestFiles::default(), Some(problem)));
            }
            Err(e) => return Err(io_err(&tests_dir)(e)),
        }
        let files = TestFiles::list(&tests_dir).map_err(io_err(&tests_dir))?;
        Ok((files, None))
    }

    fn load_tests(&self, set: &mut LoadedTestSet) -> Result<(), StoreError> {
        let (files, problem) = self.list_tests()?;
        set.problems.extend(problem);
        for file in &files {
            match read_test(&file) {
                ReadTest::Http(case) => set.tests.push(*case),
                ReadTest::Skipped(skipped) => set.skipped_tests.push(skipped),
                ReadTest::Problem(problem) => set.problems.push(problem),
            }
        }
        Ok(())
    }
}

/// [`read_regular_file`]'s checks, then the file opened for reading a
/// document at a time.
fn open_regular_file(path: &Path) -> Result<Option<MockFile>, String> {
    if check_regular_file(path)?.is_none() {
        return Ok(None);
    }
    MockFile::open(path).map(Some).map_err(|e| e.to_string())
}

/// `mocks` as mocks.yaml documents: each opens with `---` and closes with
/// `...`, which tells a whole document from one a crash cut short.
pub fn render_mocks(mocks: &[PgMock]) -> String {
    let mut text = String::with_capacity(mocks.len() * 1024);
    render_mocks_into(mocks, &mut text);
    text
}

/// [`render_mocks`], appending to `text`.
pub fn render_mocks_into(mocks: &[PgMock], text: &mut String) {
    for mock in mocks {
        // The fast writer: one mock per database exchange must keep up
        // with the traffic (see `yaml::mock_doc`); serde_yaml reads its
        // output back.
        text.push_str("---\n");
        super::yaml::append_mock(mock, text);
        text.push_str("...\n");
    }
}

/// Splits `---`-separated documents and parses each on its own, so one bad
/// document (typically the last, cut by a crash) does not hide the others.
pub fn parse_mocks(text: &str, path: &Path) -> (Vec<PgMock>, Vec<LoadProblem>) {
    parse_mock_bytes(text.as_bytes(), path)
}

/// [`parse_mocks`] for the raw file: a document that is not UTF-8 is named
/// on its own instead of failing the whole file.
pub fn parse_mock_bytes(bytes: &[u8], path: &Path) -> (Vec<PgMock>, Vec<LoadProblem>) {
    let mut mocks = Vec::new();
    let scan = scan_mock_documents(bytes, path, &mut mocks);
    let mut set = LoadedTestSet {
        problems: scan.problems,
        ..Default::default()
    };
    // Parsed on its own (not as a test set's file), a cut document is
    // still one the caller should hear about.
    set.problems.extend(scan.torn);
    add_keploy_mocks(&mut set, scan.keploy, scan.next_connection, &mut mocks);
    (mocks, set.problems)
}

/// Keploy's documents, converted, into `sink` (after the set's tests are
/// loaded: their windows attribute the mocks).
fn add_keploy_mocks(
    set: &mut LoadedTestSet,
    keploy: KeployMocks,
    first_connection: u64,
    sink: &mut dyn MockSink,
) {
    let finished = keploy.finish(&set.tests, first_connection);
    for mock in finished.pg_mocks {
        sink.held(mock);
    }
    set.http_mocks = finished.http;
    set.unserved = finished.unserved;
    set.problems.extend(
        finished
            .problems
            .into_iter()
            .map(|(location, message)| LoadProblem { location, message }),
    );
}

fn list_names(dir: &Path) -> Result<Vec<String>, StoreError> {
    let mut names = Vec::new();
    for entry in fs::read_dir(dir).map_err(io_err(dir))? {
        let entry = entry.map_err(io_err(dir))?;
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    Ok(names)
}

/// Folders under a keploy directory that are never test sets: Keploy
/// keeps reports, schemas and generated API tests there, and skips them
/// when it lists test sets.
pub const NOT_TEST_SETS: [&str; 4] = ["reports", "testReports", "schema", "api-tests"];

/// The test sets under a keploy directory. As in Keploy, any folder is one
/// except [`NOT_TEST_SETS`] (and hidden ones), whatever its name:
/// `test-set-N` first, by number (the order `recplay record` made them),
/// then the others by name (byte order).
pub fn list_test_sets(keploy_dir: &Path) -> Result<Vec<TestSetDir>, StoreError> {
    let mut by_number: Vec<(u64, String)> = Vec::new();
    let mut by_name: Vec<String> = Vec::new();
    for name in list_names(keploy_dir)? {
        if name.starts_with('.') || NOT_TEST_SETS.contains(&name.as_str()) {
            continue;
        }
        if !keploy_dir.join(&name).is_dir() {
            continue;
        }
        match numbered(&name, "test-set") {
            Some(n) => by_number.push((n, name)),
            None => by_name.push(name),
        }
    }
    by_number.sort();
    by_name.sort();
    Ok(by_number
        .into_iter()
        .map(|(_, n)| n)
        .chain(by_name)
        .map(|n| TestSetDir::open(keploy_dir.join(n)))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_truncated_last_mock_is_left_out_and_the_rest_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let set = TestSetDir::create_next(dir.path()).expect("create");
        assert_eq!(set.name(), "test-set-0");
        let text = "---\nversion: 1\nkind: Postgres\nname: mock-1\nspec:\n  connection: 1\n  position: 0\n  lifetime: session\n  request_timestamp: 2026-01-01T00:00:00Z\n  response_timestamp: 2026-01-01T00:00:00Z\n  requests:\n  - type: Query\n    query: SELECT 1\n  responses:\n  - type: CommandComplete\n    tag: SELECT 1\n---\nversion: 1\nkind: Postgres\nname: mock-2\nspec:\n  connec";
        fs::write(set.mocks_path(), text).expect("write");
        // Loaded as a test set's file, the torn last document is left out
        // with a warning: it is not a failed test.
        let loaded = set.load().expect("load");
        assert_eq!(loaded.mocks.len(), 1);
        assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
        // Parsed on its own it is named.
        let (mocks, problems) = parse_mocks(text, &set.mocks_path());
        assert_eq!(mocks.len(), 1);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].location.ends_with("mocks.yaml#2"));
        let next = TestSetDir::create_next(dir.path()).expect("create");
        assert_eq!(next.name(), "test-set-1");
    }

    /// Keploy's folder rules: any folder but its reserved and hidden ones,
    /// numbered sets by number, then the rest by name.
    #[test]
    fn test_sets_are_any_folder_numbered_ones_first() {
        let dir = tempfile::tempdir().expect("tempdir");
        for name in [
            "test-set-10",
            "zeta",
            "test-set-2",
            "checkout-flow",
            "reports",
            "testReports",
            "schema",
            "api-tests",
            ".recplay",
            "test-set-x",
        ] {
            fs::create_dir(dir.path().join(name)).expect("mkdir");
        }
        fs::write(dir.path().join("test-set-3"), "a file, not a set").expect("write");
        let names: Vec<String> = list_test_sets(dir.path())
            .expect("list")
            .iter()
            .map(TestSetDir::name)
            .collect();
        assert_eq!(
            names,
            [
                "test-set-2",
                "test-set-10",
                "checkout-flow",
                "test-set-x",
                "zeta"
            ]
        );
        // Recording still takes the next number, past the named sets.
        let next = TestSetDir::create_next(dir.path()).expect("create");
        assert_eq!(next.name(), "test-set-11");
    }

    /// Cut where a line ends, what is left of a mock still parses: only the
    /// missing end marker tells it from a whole one.
    #[test]
    fn a_mock_cut_at_the_end_of_a_line_is_named_not_loaded() {
        let whole = "---\nversion: 2\nkind: Postgres\nname: mock-1\nspec:\n  connection: 1\n  position: 0\n  lifetime: session\n  request_timestamp: 2026-01-01T00:00:00Z\n  response_timestamp: 2026-01-01T00:00:00Z\n  requests:\n  - type: Query\n    query: SELECT 1\n  responses:\n  - type: CommandComplete\n    tag: SELECT 1\n  - type: ReadyForQuery\n    status: I\n...\n";
        let (mocks, problems) = parse_mocks(whole, Path::new("mocks.yaml"));
        assert_eq!((mocks.len(), problems.len()), (1, 0), "{problems:?}");
        let cut = whole.trim_end_matches("  - type: ReadyForQuery\n    status: I\n...\n");
        let (mocks, problems) = parse_mocks(cut, Path::new("mocks.yaml"));
        assert!(mocks.is_empty());
        assert!(problems[0].message.contains("cut short"), "{problems:?}");
    }

    /// Format 3 loads (ahead of being written): plain YAML, its own kind,
    /// the end marker still required.
    #[test]
    fn format_3_mocks_load_and_are_still_held_to_the_end_marker() {
        let whole = "---\nversion: 3\nkind: recplay-Postgres\nname: mock-1\nspec:\n  connection: 1\n  position: 1\n  lifetime:\n    test: test-4\n  request_timestamp: \"2026-01-01T00:00:00Z\"\n  response_timestamp: \"2026-01-01T00:00:00Z\"\n  requests:\n  - type: Query\n    query: SELECT 1\n  responses:\n  - type: ReadyForQuery\n    status: I\n...\n---\nversion: 3\nkind: Postgres\nname: mock-2\nspec:\n  connection: 1\n  position: 2\n  lifetime: session\n  request_timestamp: \"2026-01-01T00:00:00Z\"\n  response_timestamp: \"2026-01-01T00:00:00Z\"\n  requests: []\n  responses: []\n...\n";
        let (mocks, problems) = parse_mocks(whole, Path::new("mocks.yaml"));
        assert_eq!(mocks.len(), 1, "{problems:?}");
        assert_eq!(mocks[0].version, 3);
        assert_eq!(
            mocks[0].spec.lifetime,
            super::super::Lifetime::Test("test-4".into())
        );
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].location.ends_with("#2"), "{problems:?}");
        assert!(
            problems[0].message.contains("recplay-Postgres"),
            "{problems:?}"
        );
        let cut = whole
            .split_once("...\n")
            .map(|(a, _)| a)
            .unwrap_or_default();
        let (mocks, problems) = parse_mocks(cut, Path::new("mocks.yaml"));
        assert!(mocks.is_empty());
        assert!(problems[0].message.contains("cut short"), "{problems:?}");
    }
}
