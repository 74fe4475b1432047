//! Reading and writing a test-set directory.
//!
//! Test cases are written atomically (a temp file in the same directory,
//! then rename), so a reader never sees half a file. `mocks.yaml` is
//! append-only, one whole document per write, so kill -9 loses at most the
//! exchange in flight; the loader skips a truncated last document and names
//! it instead of failing the whole set.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use super::{HttpTestCase, PgMock};

/// What went wrong reading or writing a test set.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{path}: not a valid recplay/Keploy document: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("{path}: could not serialise: {message}")]
    Serialise { path: PathBuf, message: String },
}

/// A file or document that could not be loaded; the rest of the set still is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LoadProblem {
    /// File, plus `#N` for the Nth document of mocks.yaml.
    pub location: String,
    pub message: String,
}

/// Everything that loaded from one test set.
#[derive(Debug, Default)]
pub struct LoadedTestSet {
    /// `test-set-N`.
    pub name: String,
    /// Sorted by the number in `test-N`.
    pub tests: Vec<HttpTestCase>,
    /// In file order.
    pub mocks: Vec<PgMock>,
    pub problems: Vec<LoadProblem>,
}

/// A `test-set-N` directory.
#[derive(Debug)]
pub struct TestSetDir {
    root: PathBuf,
    mocks: Mutex<Option<fs::File>>,
}

fn io_err(path: &Path) -> impl FnOnce(std::io::Error) -> StoreError + '_ {
    move |source| StoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The number in `prefix-N`, if the name has that shape.
pub fn numbered(name: &str, prefix: &str) -> Option<u64> {
    name.strip_prefix(prefix)?.strip_prefix('-')?.parse().ok()
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

    /// `test-set-N`.
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

    /// Where `case` goes and its YAML. Recorded cases go through the fast
    /// writer; a case carrying free-form YAML (Keploy's `objects`, unknown
    /// assertion keys, which may hold tags or non-string keys) goes through
    /// serde_yaml, which writes any YAML value faithfully.
    fn render_test(&self, case: &HttpTestCase) -> Result<(PathBuf, String), StoreError> {
        let path = self.root.join("tests").join(format!("{}.yaml", case.name));
        let free_form = !case.spec.objects.is_empty() || !case.spec.assertions.other.is_empty();
        let text = if free_form {
            serde_yaml::to_string(case).map_err(|e| e.to_string())
        } else {
            super::yaml::to_yaml(case).map_err(|e| e.to_string())
        };
        let text = text.map_err(|message| StoreError::Serialise {
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
        let path = self.mocks_path();
        let mut text = String::with_capacity(mocks.len() * 1024);
        for mock in mocks {
            // The fast writer: one mock per database exchange must keep up
            // with the traffic (see `yaml`); serde_yaml reads its output back.
            text.push_str("---\n");
            super::yaml::append_yaml(mock, &mut text).map_err(|e| StoreError::Serialise {
                path: path.clone(),
                message: e.to_string(),
            })?;
        }
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
    pub fn load(&self) -> Result<LoadedTestSet, StoreError> {
        let mut set = LoadedTestSet {
            name: self.name(),
            ..Default::default()
        };
        let tests_dir = self.root.join("tests");
        let mut numbered_tests = Vec::new();
        if tests_dir.is_dir() {
            for name in list_names(&tests_dir)? {
                let Some(stem) = name.strip_suffix(".yaml").or(name.strip_suffix(".yml")) else {
                    continue;
                };
                let path = tests_dir.join(&name);
                let text = fs::read_to_string(&path).map_err(io_err(&path))?;
                match serde_yaml::from_str::<HttpTestCase>(&text) {
                    Ok(case) => {
                        let order = numbered(stem, "test").unwrap_or(u64::MAX);
                        numbered_tests.push((order, stem.to_string(), case));
                    }
                    Err(e) => set.problems.push(LoadProblem {
                        location: path.display().to_string(),
                        message: e.to_string(),
                    }),
                }
            }
        }
        numbered_tests.sort_by(|a, b| (a.0, &a.1).cmp(&(b.0, &b.1)));
        set.tests = numbered_tests.into_iter().map(|(_, _, c)| c).collect();

        let mocks_path = self.mocks_path();
        if mocks_path.is_file() {
            let text = fs::read_to_string(&mocks_path).map_err(io_err(&mocks_path))?;
            let (mocks, problems) = parse_mocks(&text, &mocks_path);
            set.mocks = mocks;
            set.problems.extend(problems);
        }
        Ok(set)
    }
}

/// Splits `---`-separated documents and parses each on its own, so one bad
/// document (typically the last, cut by a crash) does not hide the others.
pub fn parse_mocks(text: &str, path: &Path) -> (Vec<PgMock>, Vec<LoadProblem>) {
    let mut mocks = Vec::new();
    let mut problems = Vec::new();
    let documents = split_documents(text)
        .into_iter()
        .filter(|doc| !doc.trim().is_empty());
    for (index, doc) in documents.enumerate() {
        match serde_yaml::from_str::<PgMock>(doc) {
            Ok(mock) => mocks.push(mock),
            Err(e) => problems.push(LoadProblem {
                location: format!("{}#{}", path.display(), index + 1),
                message: e.to_string(),
            }),
        }
    }
    (mocks, problems)
}

fn split_documents(text: &str) -> Vec<&str> {
    let mut docs = Vec::new();
    let mut start = 0;
    let mut offset = 0;
    for line in text.split_inclusive('\n') {
        if line.trim_end() == "---" {
            docs.push(&text[start..offset]);
            start = offset + line.len();
        }
        offset += line.len();
    }
    docs.push(&text[start..]);
    docs
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

/// The `test-set-N` directories under a keploy directory, in numeric order.
pub fn list_test_sets(keploy_dir: &Path) -> Result<Vec<TestSetDir>, StoreError> {
    let mut sets: Vec<(u64, String)> = list_names(keploy_dir)?
        .into_iter()
        .filter_map(|n| numbered(&n, "test-set").map(|k| (k, n)))
        .collect();
    sets.sort();
    Ok(sets
        .into_iter()
        .map(|(_, n)| TestSetDir::open(keploy_dir.join(n)))
        .collect())
}

/// Writes `bytes` to `path` through a temp file in the same directory and a
/// rename, so readers see the old file or the new one, never a mix.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    write_through_temp(path, bytes, true)
}

/// [`write_atomically`] without the fsync: atomic against a crash of the
/// process (the page cache survives it), not against a power cut.
pub fn write_atomically_unsynced(path: &Path, bytes: &[u8]) -> Result<(), StoreError> {
    write_through_temp(path, bytes, false)
}

fn write_through_temp(path: &Path, bytes: &[u8], fsync: bool) -> Result<(), StoreError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let tmp = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    let mut file = fs::File::create(&tmp).map_err(io_err(&tmp))?;
    file.write_all(bytes).map_err(io_err(&tmp))?;
    if fsync {
        file.sync_data().map_err(io_err(&tmp))?;
    }
    drop(file);
    fs::rename(&tmp, path).map_err(io_err(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_truncated_last_mock_is_named_and_the_rest_load() {
        let dir = tempfile::tempdir().expect("tempdir");
        let set = TestSetDir::create_next(dir.path()).expect("create");
        assert_eq!(set.name(), "test-set-0");
        let text = "---\nversion: 1\nkind: Postgres\nname: mock-1\nspec:\n  connection: 1\n  position: 0\n  lifetime: session\n  request_timestamp: 2026-01-01T00:00:00Z\n  response_timestamp: 2026-01-01T00:00:00Z\n  requests:\n  - type: Query\n    query: SELECT 1\n  responses:\n  - type: CommandComplete\n    tag: SELECT 1\n---\nversion: 1\nkind: Postgres\nname: mock-2\nspec:\n  connec";
        fs::write(set.mocks_path(), text).expect("write");
        let loaded = set.load().expect("load");
        assert_eq!(loaded.mocks.len(), 1);
        assert_eq!(loaded.problems.len(), 1);
        assert!(loaded.problems[0].location.ends_with("mocks.yaml#2"));
        let next = TestSetDir::create_next(dir.path()).expect("create");
        assert_eq!(next.name(), "test-set-1");
    }
}
