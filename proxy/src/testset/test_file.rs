//! One test file: read and parsed (an Http test case, a test of another
//! kind left out, or a problem naming the file), and rendered.

use super::mock_file::{newer_format, utf8, LoadProblem};
use super::regular_file::read_regular_file;
use super::test_files::TestFile;
use super::HttpTestCase;

/// A test file of a kind recplay does not replay (Keploy's `gRPC` and
/// `Http2` tests): left out of the run and named in its summary, never a
/// failure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SkippedTest {
    /// The file's name without `.yaml`.
    pub name: String,
    /// Its `kind:`.
    pub kind: String,
}

/// What reading one test file gave.
#[derive(Debug)]
pub enum ReadTest {
    Http(Box<HttpTestCase>),
    /// A test of a kind recplay does not replay.
    Skipped(SkippedTest),
    /// A file that could not be read or parsed.
    Problem(LoadProblem),
}

/// Reads one listed test file (see [`TestSetDir::list_tests`]).
pub fn read_test(file: &TestFile) -> ReadTest {
    let parsed = match read_regular_file(&file.path) {
        Ok(Some(bytes)) => parse_test(&bytes).map_err(|message| {
            // A test of another protocol fails to read as Http; its kind
            // says so.
            let kind = utf8(&bytes).ok().and_then(super::http_case::other_kind);
            (message, kind)
        }),
        Ok(None) => Err((
            "vanished while the test set was being read".to_string(),
            None,
        )),
        Err(message) => Err((message, None)),
    };
    let skipped = |kind| {
        ReadTest::Skipped(SkippedTest {
            name: file.name.clone(),
            kind,
        })
    };
    match parsed {
        Ok(case) if case.kind != super::http_case::HTTP_KIND => skipped(case.kind),
        Ok(case) => ReadTest::Http(Box::new(case)),
        Err((_, Some(kind))) => skipped(kind),
        Err((message, None)) => ReadTest::Problem(LoadProblem {
            location: file.path.display().to_string(),
            message,
        }),
    }
}

/// Parses one test-case file, refusing one written by a newer recplay
/// (its meaning may have changed in ways this reader would get wrong).
pub fn parse_test(bytes: &[u8]) -> Result<HttpTestCase, String> {
    let case: HttpTestCase = serde_yaml::from_str(utf8(bytes)?).map_err(|e| e.to_string())?;
    newer_format(u64::from(case.recplay_format))?;
    let last_line = bytes
        .trim_ascii_end()
        .rsplit(|&b| b == b'\n')
        .next()
        .unwrap_or_default();
    if case.recplay_format >= super::END_MARKER_VERSION && last_line.trim_ascii_end() != b"..." {
        return Err(
            "is cut short: it lacks the closing `...` every test file of its format ends with"
                .to_string(),
        );
    }
    Ok(case)
}

/// `case` as a test file. Recorded cases go through the fast writer; a case
/// carrying free-form YAML (Keploy's `objects`, unknown assertion keys,
/// which may hold tags or non-string keys) goes through serde_yaml, which
/// writes any YAML value faithfully. Either way the file closes with `...`,
/// which tells a whole file from one cut short.
pub fn render_test(case: &HttpTestCase) -> Result<String, String> {
    let free_form = !case.spec.objects.is_empty() || !case.spec.assertions.other.is_empty();
    let mut text = if free_form {
        serde_yaml::to_string(case).map_err(|e| e.to_string())?
    } else {
        super::yaml::to_yaml(case).map_err(|e| e.to_string())?
    };
    text.push_str("...\n");
    Ok(text)
}
