//! The first step of every command on a keploy directory: a recording that
//! crashed left a journal; its exchanges become test files before anything
//! else reads or adds to the test sets.

use std::path::Path;

use anyhow::{Context, Result};
use recplay_proxy::journal::JournalRecovery;
use recplay_proxy::recovery::recover_all;
use recplay_proxy::testset::redact::RedactConfig;

/// Recovers every test set under `keploy_dir` and says what it did;
/// recovered tests are redacted by `redact` (keploy.yml `record.redact`).
pub fn recover(keploy_dir: &Path, redact: &RedactConfig) -> Result<()> {
    let recovered = recover_all(keploy_dir, redact).with_context(|| {
        format!(
            "could not recover the unfinished recording under {}",
            keploy_dir.display()
        )
    })?;
    for set in recovered {
        if !report(&set.set, &set.journal, &HTTP) {
            continue;
        }
        if report(&set.set, &set.pg.journal, &POSTGRES) && set.pg.mocks_cut > 0 {
            tracing::warn!(
                test_set = %set.set,
                "cut {} bytes of a document a crash left unfinished from the end of mocks.yaml",
                set.pg.mocks_cut
            );
        }
        if set.temp_files_removed > 0 {
            tracing::info!(
                test_set = %set.set,
                "removed {} temp file(s) of interrupted writes",
                set.temp_files_removed
            );
        }
    }
    Ok(())
}

/// How one recorder's journal is spoken of.
struct Words {
    recording: &'static str,
    journal: &'static str,
    /// What a record becomes, singular.
    item: &'static str,
    /// Where the items went.
    written: &'static str,
    /// What a torn tail held.
    torn: &'static str,
    /// What did not happen to a record that was skipped.
    skipped: &'static str,
}

const HTTP: Words = Words {
    recording: "recording",
    journal: "journal",
    item: "test",
    written: "written from its journal",
    torn: "an exchange being written when the recording died, which no client had received in full",
    skipped: "turned into a test",
};

const POSTGRES: Words = Words {
    recording: "PostgreSQL recording",
    journal: "PostgreSQL journal",
    item: "mock",
    written: "added to mocks.yaml from its journal",
    torn: "traffic being written when the recording died, which no client had received",
    skipped: "replayed",
};

/// Says what recovery did with one journal of `set`; false when a
/// recording still holds it (it was left alone).
fn report(set: &str, done: &JournalRecovery, words: &Words) -> bool {
    if done.in_use {
        tracing::warn!(
            test_set = %set,
            "a {} into it is still running; left alone",
            words.recording
        );
        return false;
    }
    if done.had_journal {
        eprintln!(
            "recplay: recovered {set} from an unfinished {}: {} {}{} {}{}",
            words.recording,
            done.written,
            words.item,
            if done.written == 1 { "" } else { "s" },
            words.written,
            if done.already_there > 0 {
                format!(" ({} were there already)", done.already_there)
            } else {
                String::new()
            }
        );
    }
    if let Some((bytes, reason)) = &done.torn {
        tracing::warn!(
            test_set = %set,
            "cut a torn tail of {bytes} bytes from its {} ({reason}): {}",
            words.journal,
            words.torn
        );
    }
    for why in &done.skipped {
        tracing::warn!(
            test_set = %set,
            "a {} record was not {}: {why}",
            words.journal,
            words.skipped
        );
    }
    true
}
