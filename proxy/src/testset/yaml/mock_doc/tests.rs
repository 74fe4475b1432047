//! The direct writer against the serde emitter, byte for byte.

use std::path::Path;
use std::sync::Arc;

use super::append_mock;
use crate::testset::pg_mock::{Lifetime, PgMock};
use crate::testset::samples::mock_with_every_message;
use crate::testset::store::parse_mock_bytes;
use crate::testset::test_rng::Rng;
use crate::testset::yaml::to_yaml;

fn direct(mock: &PgMock) -> String {
    let mut out = String::new();
    append_mock(mock, &mut out);
    out
}

fn assert_same(mock: &PgMock, what: &str) {
    let reference = to_yaml(mock).expect("the emitter writes every mock");
    let ours = direct(mock);
    if ours != reference {
        let first = ours
            .bytes()
            .zip(reference.bytes())
            .position(|(a, b)| a != b)
            .unwrap_or(ours.len().min(reference.len()));
        let from = first.saturating_sub(200);
        panic!(
            "{what}: the writers part at byte {first}\n--- direct:\n{}\n--- emitter:\n{}",
            &ours[from.min(ours.len())..(first + 200).min(ours.len())],
            &reference[from.min(reference.len())..(first + 200).min(reference.len())],
        );
    }
}

#[test]
fn every_message_kind_is_written_as_the_emitter_writes_it() {
    let mut rng = Rng::new(0x6d6f_636b);
    for n in 0..3000 {
        let mut mock = mock_with_every_message(&mut rng, n);
        if n % 3 == 0 {
            mock.spec.startup = Arc::default();
        }
        assert_same(&mock, &format!("case {n}"));
    }
}

#[test]
fn lifetimes_and_long_keys_are_written_as_the_emitter_writes_them() {
    let mut rng = Rng::new(7);
    let mut mock = mock_with_every_message(&mut rng, 1);
    for lifetime in [
        Lifetime::Session,
        Lifetime::Unattributed,
        Lifetime::Test("test-12".into()),
        Lifetime::Test("two\nlines: \"quoted\"".into()),
        Lifetime::Test(String::new()),
    ] {
        mock.spec.lifetime = lifetime;
        mock.spec.startup = Arc::new(
            [
                ("k".repeat(1001), "v".to_string()),
                ("on".into(), "multi\nline\n".into()),
            ]
            .into_iter()
            .collect(),
        );
        assert_same(&mock, &format!("{:?}", mock.spec.lifetime));
    }
}

/// Mocks recorded from the sample app through the real proxy.
#[test]
fn recorded_mocks_are_written_as_the_emitter_writes_them() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/doccano");
    let mut seen = 0;
    for format in ["format-1", "format-2", "format-3"] {
        let path = fixtures.join(format).join("test-set-0/mocks.yaml");
        let bytes = std::fs::read(&path).expect("the recorded fixture is in the tree");
        let (mocks, problems) = parse_mock_bytes(&bytes, &path);
        assert!(problems.is_empty(), "{problems:?}");
        for mock in &mocks {
            assert_same(mock, &format!("{format} {}", mock.name));
        }
        seen += mocks.len();
    }
    assert!(seen > 900, "only {seen} recorded mocks read");
}

/// The format-3 fixture (the format-2 recording in format 3's spelling) is
/// byte for byte what this build writes for the mocks it holds, and plain
/// YAML: no tag anywhere.
#[test]
fn the_current_formats_fixture_is_what_this_build_writes() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "../tests/fixtures/doccano/format-{}/test-set-0/mocks.yaml",
        crate::testset::FORMAT_VERSION
    ));
    let text = std::fs::read_to_string(&path).expect("the fixture is in the tree");
    let (mocks, problems) = parse_mock_bytes(text.as_bytes(), &path);
    assert!(problems.is_empty(), "{problems:?}");
    assert!(mocks.len() > 300);
    assert!(mocks
        .iter()
        .any(|m| matches!(m.spec.lifetime, Lifetime::Test(_))));
    let written = crate::testset::store::render_mocks(&mocks);
    assert!(written == text, "the fixture differs from what is written");
    assert!(
        !text.lines().any(|l| l.contains(": !")),
        "a tag was written"
    );
}

/// Years chrono spells with a sign, year zero and a leap second.
#[test]
fn timestamps_of_any_year_are_written_as_the_emitter_writes_them() {
    use chrono::{DateTime, NaiveDate, TimeZone, Utc};
    let mut rng = Rng::new(11);
    let mut mock = mock_with_every_message(&mut rng, 1);
    let leap = NaiveDate::from_ymd_opt(2016, 12, 31)
        .and_then(|d| d.and_hms_nano_opt(23, 59, 59, 1_500_000_000))
        .map(|t| Utc.from_utc_datetime(&t))
        .expect("a leap second");
    let year_zero = Utc
        .with_ymd_and_hms(0, 1, 1, 0, 0, 0)
        .single()
        .expect("year 0");
    for at in [
        DateTime::<Utc>::MIN_UTC,
        DateTime::<Utc>::MAX_UTC,
        year_zero,
        leap,
    ] {
        mock.spec.request_timestamp = at;
        mock.spec.response_timestamp = at;
        assert_same(&mock, &at.to_rfc3339());
    }
}

/// Mocks of many connections, interleaved, more than the remembered
/// start-up blocks: each keeps its own parameters, whichever block was
/// remembered or replaced in between.
#[test]
fn interleaved_connections_keep_their_startup_parameters() {
    let mut rng = Rng::new(12);
    let startups: Vec<_> = (0..80)
        .map(|i| {
            Arc::new(
                [
                    ("user".to_string(), format!("user-{i}")),
                    ("application_name".to_string(), rng.awkward_string()),
                ]
                .into_iter()
                .collect::<std::collections::BTreeMap<_, _>>(),
            )
        })
        .collect();
    let mut mock = mock_with_every_message(&mut rng, 1);
    for round in 0..5 {
        for _ in 0..200 {
            mock.spec.startup = Arc::clone(rng.pick(&startups));
            assert_same(&mock, &format!("round {round}"));
        }
    }
}
