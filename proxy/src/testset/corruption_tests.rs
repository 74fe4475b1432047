//! Damaged test sets: whatever happened to the files, the loader never
//! panics, loads every intact test case and mock exactly, and names every
//! file or document it could not load. Nothing is dropped unnamed, and
//! nothing damaged loads as if it were what was recorded.
//!
//! Every set is written by the project's own writer first, then damaged.

use std::fs;
use std::path::Path;

use super::samples::{mock, test_case};
use super::store::{parse_mock_bytes, LoadProblem};
use super::test_rng::Rng;
use super::{HttpTestCase, PgMock, TestSetDir};

/// A set with `tests` test cases and `mocks` mocks, written in batches.
fn written_set(
    seed: u64,
    tests: u64,
    mocks: u64,
) -> (
    tempfile::TempDir,
    TestSetDir,
    Vec<HttpTestCase>,
    Vec<PgMock>,
) {
    let mut rng = Rng::new(seed);
    let dir = tempfile::tempdir().expect("tempdir");
    let set = TestSetDir::create_next(dir.path()).expect("create");
    let cases: Vec<HttpTestCase> = (1..=tests).map(|n| test_case(&mut rng, n).0).collect();
    for case in &cases {
        set.write_test(case).expect("write test");
    }
    let all: Vec<PgMock> = (1..=mocks).map(|n| mock(&mut rng, n)).collect();
    for batch in all.chunks(2) {
        set.append_mocks(batch).expect("append");
    }
    set.sync().expect("sync");
    (dir, set, cases, all)
}

/// Byte offsets where each mock document of `text` starts (its `---`).
fn document_starts(text: &[u8]) -> Vec<usize> {
    let mut starts = Vec::new();
    let mut offset = 0;
    for line in text.split_inclusive(|&b| b == b'\n') {
        if line == b"---\n" {
            starts.push(offset);
        }
        offset += line.len();
    }
    starts
}

fn locations(problems: &[LoadProblem]) -> Vec<&str> {
    problems.iter().map(|p| p.location.as_str()).collect()
}

/// mocks.yaml cut at every offset, as a crash in the middle of an append
/// leaves it: the documents before the cut load exactly, and the cut one
/// is named, never loaded in part.
#[test]
fn a_mocks_file_cut_anywhere_loads_what_is_whole_and_names_the_cut_document() {
    let (_dir, set, _, mocks) = written_set(11, 0, 3);
    let text = fs::read(set.mocks_path()).expect("read");
    let starts = document_starts(&text);
    assert_eq!(starts.len(), mocks.len());
    for cut in 0..text.len() {
        let (loaded, problems) = parse_mock_bytes(&text[..cut], Path::new("mocks.yaml"));
        // Documents whose every byte survived.
        let whole = starts
            .iter()
            .enumerate()
            .filter(|&(i, _)| starts.get(i + 1).copied().unwrap_or(text.len()) <= cut)
            .count();
        assert_eq!(loaded[..], mocks[..loaded.len()], "cut at {cut}");
        assert!(
            loaded.len() >= whole,
            "cut at {cut}: a whole mock was lost: {problems:?}"
        );
        let started = starts.iter().filter(|&&s| s + 4 < cut).count();
        let named = problems.len();
        assert!(
            loaded.len() + named >= started,
            "cut at {cut}: a document was dropped unnamed: {problems:?}"
        );
        if loaded.len() < started {
            let expected = format!("mocks.yaml#{}", loaded.len() + 1);
            assert_eq!(locations(&problems), [expected.as_str()], "cut at {cut}");
        }
    }
}

/// One flipped byte anywhere: no panic, every other document loads
/// exactly, and the damaged one loads or is named.
#[test]
fn a_flipped_byte_damages_at_most_its_own_document() {
    let (_dir, set, _, mocks) = written_set(12, 0, 4);
    let text = fs::read(set.mocks_path()).expect("read");
    let starts = document_starts(&text);
    let mut rng = Rng::new(12);
    for _ in 0..1500 {
        let at = rng.below(text.len());
        let mut damaged = text.clone();
        damaged[at] ^= (rng.below(255) + 1) as u8;
        let (loaded, problems) = parse_mock_bytes(&damaged, Path::new("mocks.yaml"));
        if document_starts(&damaged) != starts {
            // A separator was made or unmade; the count still holds.
            assert!(!loaded.is_empty() || !problems.is_empty(), "at {at}");
            continue;
        }
        let hit = starts.iter().rposition(|&s| s <= at).unwrap_or(0);
        assert_eq!(loaded.len() + problems.len(), mocks.len(), "at {at}");
        for (i, original) in mocks.iter().enumerate() {
            if i != hit {
                assert!(loaded.contains(original), "at {at}: mock {i} lost");
            }
        }
        if loaded.len() < mocks.len() {
            let expected = format!("mocks.yaml#{}", hit + 1);
            assert_eq!(locations(&problems), [expected.as_str()], "at {at}");
        }
    }
}

#[test]
fn extra_separators_lose_nothing_and_a_separator_inside_a_document_names_both_halves() {
    let (_dir, set, _, mocks) = written_set(13, 0, 3);
    let text = String::from_utf8(fs::read(set.mocks_path()).expect("read")).expect("utf8");
    let doubled = text.replace("---\n", "---\n---\n\n--- \n");
    let (loaded, problems) = parse_mock_bytes(doubled.as_bytes(), Path::new("mocks.yaml"));
    assert_eq!(loaded, mocks);
    assert!(problems.is_empty(), "{problems:?}");

    let split = text.replacen("  requests:\n", "---\n  requests:\n", 2);
    let split = split.replacen("---\n  requests:\n", "  requests:\n", 1);
    let (loaded, problems) = parse_mock_bytes(split.as_bytes(), Path::new("mocks.yaml"));
    assert_eq!(loaded, [mocks[0].clone(), mocks[2].clone()]);
    assert_eq!(locations(&problems), ["mocks.yaml#2", "mocks.yaml#3"]);
}

#[test]
fn a_value_turned_into_a_mapping_or_indented_with_a_tab_is_named_with_its_line() {
    let (_dir, set, _, mocks) = written_set(14, 0, 3);
    let text = String::from_utf8(fs::read(set.mocks_path()).expect("read")).expect("utf8");
    let second = document_starts(text.as_bytes())[1];
    let (head, tail) = text.split_at(second);
    for damaged_tail in [
        tail.replacen("  connection: ", "  connection: {a: 1}\n  x: ", 1),
        tail.replacen("\n  position:", "\n\tposition:", 1),
        tail.replacen("  requests:\n", "  requests: {}\n", 1),
    ] {
        let damaged = format!("{head}{damaged_tail}");
        let (loaded, problems) = parse_mock_bytes(damaged.as_bytes(), Path::new("mocks.yaml"));
        assert_eq!(loaded, [mocks[0].clone(), mocks[2].clone()], "{problems:?}");
        assert_eq!(locations(&problems), ["mocks.yaml#2"]);
        // The line is the file's, not the document's.
        let first_line = head.lines().count() + 1;
        let message = &problems[0].message;
        let line: usize = message
            .split("at line ")
            .nth(1)
            .and_then(|rest| rest.split(' ').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("no line in {message:?}"));
        assert!(line > first_line, "{message}");
    }
}

#[test]
fn a_document_that_is_not_utf8_is_named_and_the_others_load() {
    let (_dir, set, _, mocks) = written_set(15, 2, 3);
    let mut text = fs::read(set.mocks_path()).expect("read");
    let second = document_starts(&text)[1];
    text[second + 10] = 0xff;
    fs::write(set.mocks_path(), &text).expect("write");
    let loaded = set.load().expect("load");
    assert_eq!(loaded.mocks, [mocks[0].clone(), mocks[2].clone()]);
    assert_eq!(loaded.problems.len(), 1, "{:?}", loaded.problems);
    assert!(loaded.problems[0].location.ends_with("mocks.yaml#2"));
    assert!(loaded.problems[0].message.contains("not UTF-8"));
}

/// A test file cut anywhere (a copy that stopped, a full disk) is named,
/// never loaded with the fields it lost left at their defaults.
#[test]
fn a_test_file_cut_anywhere_is_named() {
    let (_dir, set, cases, _) = written_set(21, 1, 0);
    let path = set.root().join("tests/test-1.yaml");
    let text = fs::read(&path).expect("read");
    for cut in 0..text.len() {
        match super::store::parse_test(&text[..cut]) {
            Ok(case) => assert_eq!(case, cases[0], "cut at {cut}"),
            Err(message) => assert!(!message.is_empty()),
        }
    }
    assert_eq!(super::store::parse_test(&text), Ok(cases[0].clone()));
}

#[test]
fn empty_files_hold_nothing_and_lose_nothing() {
    let (_dir, set, cases, _) = written_set(16, 2, 2);
    fs::write(set.mocks_path(), b"").expect("truncate");
    let loaded = set.load().expect("load");
    assert!(loaded.mocks.is_empty());
    assert!(loaded.problems.is_empty(), "{:?}", loaded.problems);
    assert_eq!(loaded.tests, cases);

    fs::write(set.root().join("tests/test-2.yaml"), b"").expect("truncate");
    let loaded = set.load().expect("load");
    assert_eq!(loaded.tests, cases[..1]);
    assert_eq!(loaded.problems.len(), 1);
    assert!(loaded.problems[0].location.ends_with("test-2.yaml"));
}

/// A way to break a file, and what it is called in a failure.
type Damage = (&'static str, fn(&Path));

/// The others load, and the file that did not is named: the promise a
/// replay holds to (a test file that does not load fails the run).
#[test]
fn a_broken_test_file_is_named_and_the_others_load() {
    let (_dir, set, cases, mocks) = written_set(17, 4, 2);
    let tests = set.root().join("tests");
    let damage: [Damage; 4] = [
        ("not UTF-8", |p| {
            let mut bytes = fs::read(p).expect("read");
            bytes[20] = 0xfe;
            fs::write(p, bytes).expect("write");
        }),
        ("a directory", |p| {
            fs::remove_file(p).expect("rm");
            fs::create_dir(p).expect("mkdir");
        }),
        ("a dangling link", |p| {
            fs::remove_file(p).expect("rm");
            std::os::unix::fs::symlink("nowhere.yaml", p).expect("symlink");
        }),
        ("a mapping for a string", |p| {
            let text = fs::read_to_string(p).expect("read");
            fs::write(p, text.replacen("kind: Http", "kind: {a: b}", 1)).expect("write");
        }),
    ];
    for (what, damage) in damage {
        let (_dir, set, cases, mocks) = written_set(17, 4, 2);
        let victim = set.root().join("tests/test-3.yaml");
        damage(&victim);
        let loaded = set.load().unwrap_or_else(|e| panic!("{what}: {e}"));
        assert_eq!(
            loaded.tests,
            [cases[0].clone(), cases[1].clone(), cases[3].clone()],
            "{what}"
        );
        assert_eq!(loaded.mocks, mocks, "{what}");
        assert_eq!(loaded.problems.len(), 1, "{what}: {:?}", loaded.problems);
        assert!(
            loaded.problems[0].location.ends_with("test-3.yaml"),
            "{what}: {:?}",
            loaded.problems
        );
    }
    // Files that are not test cases at all are still left alone.
    fs::write(tests.join(".test-9.yaml.tmp-1"), b"half").expect("write");
    let loaded = set.load().expect("load");
    assert_eq!(loaded.tests, cases);
    assert_eq!(loaded.mocks, mocks);
    assert!(loaded.problems.is_empty());
}

#[test]
fn a_mocks_file_or_tests_directory_of_the_wrong_kind_is_named() {
    let (_dir, set, cases, _) = written_set(18, 2, 2);
    fs::remove_file(set.mocks_path()).expect("rm");
    fs::create_dir(set.mocks_path()).expect("mkdir");
    let loaded = set.load().expect("load");
    assert_eq!(loaded.tests, cases);
    assert_eq!(locations(&loaded.problems).len(), 1);
    assert!(loaded.problems[0].location.ends_with("mocks.yaml"));

    let (_dir, set, _, mocks) = written_set(19, 2, 2);
    let tests = set.root().join("tests");
    fs::remove_dir_all(&tests).expect("rm");
    fs::write(&tests, b"not a directory").expect("write");
    let loaded = set.load().expect("load");
    assert_eq!(loaded.mocks, mocks);
    assert_eq!(loaded.problems.len(), 1, "{:?}", loaded.problems);
    assert!(loaded.problems[0].location.ends_with("tests"));
}

#[test]
fn files_from_a_newer_recplay_are_named_not_misread() {
    let (_dir, set, cases, mocks) = written_set(20, 2, 2);
    let mut newer = cases[1].clone();
    newer.recplay_format = super::NEWEST_READ_VERSION + 1;
    set.write_test(&newer).expect("write");
    let mut newer_mock = mocks[1].clone();
    newer_mock.version = super::NEWEST_READ_VERSION + 1;
    set.append_mock(&newer_mock).expect("append");
    let loaded = set.load().expect("load");
    assert_eq!(loaded.tests, cases[..1]);
    assert_eq!(loaded.mocks, mocks);
    let problems = locations(&loaded.problems);
    assert!(problems[0].ends_with("test-2.yaml"), "{problems:?}");
    assert!(problems[1].ends_with("mocks.yaml#3"), "{problems:?}");
    assert!(loaded.problems[0].message.contains("newer recplay"));
}

/// Test files as Keploy writes them (no recplay format, so no end marker):
/// cut or flipped anywhere, they load or are named, and never panic. A cut
/// that leaves valid YAML cannot be told from a whole file in this format.
#[test]
fn damaged_keploy_written_test_files_load_or_are_named() {
    let fixtures = [
        include_str!("../../../tests/fixtures/keploy/test-set-0/tests/test-1.yaml"),
        include_str!("../../../tests/fixtures/keploy-test-set/test-set-0/tests/test-1.yaml"),
        include_str!("../../../tests/fixtures/keploy-test-set/test-set-0/tests/test-2.yaml"),
    ];
    let mut rng = Rng::new(22);
    for fixture in fixtures {
        let whole = super::store::parse_test(fixture.as_bytes()).expect("fixture loads");
        assert_eq!(whole.recplay_format, 0);
        for cut in 0..fixture.len() {
            let _ = super::store::parse_test(&fixture.as_bytes()[..cut]);
        }
        for _ in 0..500 {
            let mut bytes = fixture.as_bytes().to_vec();
            let at = rng.below(bytes.len());
            bytes[at] ^= (rng.below(255) + 1) as u8;
            if let Err(message) = super::store::parse_test(&bytes) {
                assert!(!message.is_empty());
            }
        }
    }
}

/// A file the reader may not open is named; the rest loads. (Running as
/// root, permissions do not stop a read, and there is nothing to check.)
#[test]
fn an_unreadable_file_is_named_and_the_others_load() {
    use std::os::unix::fs::PermissionsExt as _;
    let (_dir, set, cases, mocks) = written_set(23, 3, 2);
    let victim = set.root().join("tests/test-2.yaml");
    fs::set_permissions(&victim, fs::Permissions::from_mode(0o000)).expect("chmod");
    fs::set_permissions(set.mocks_path(), fs::Permissions::from_mode(0o000)).expect("chmod");
    if fs::read(&victim).is_ok() {
        return;
    }
    let loaded = set.load().expect("load");
    assert_eq!(loaded.tests, [cases[0].clone(), cases[2].clone()]);
    assert!(loaded.mocks.is_empty() && !mocks.is_empty());
    let problems = locations(&loaded.problems);
    assert_eq!(problems.len(), 2, "{problems:?}");
    assert!(problems[0].ends_with("test-2.yaml"), "{problems:?}");
    assert!(problems[1].ends_with("mocks.yaml"), "{problems:?}");
}
