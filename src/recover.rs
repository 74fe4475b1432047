//! The first step of every command on a keploy directory: a recording that
//! crashed left a journal; its exchanges become test files before anything
//! else reads or adds to the test sets.

use std::path::Path;

use anyhow::{Context, Result};
use recplay_proxy::pg::record::recover::PgRecovered;
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
        if set.in_use {
            tracing::warn!(
                test_set = %set.set,
                "a recording into it is still running; left alone"
            );
            continue;
        }
        if set.had_journal {
            eprintln!(
                "recplay: recovered {} from an unfinished recording: {} test{} written from its journal{}",
                set.set,
                set.written,
                if set.written == 1 { "" } else { "s" },
                if set.already_there > 0 {
                    format!(" ({} were there already)", set.already_there)
                } else {
                    String::new()
                }
            );
        }
        if let Some((bytes, reason)) = &set.torn {
            tracing::warn!(
                test_set = %set.set,
                "cut a torn tail of {bytes} bytes from its journal ({reason}): an exchange being written when the recording died, which no client had received in full"
            );
        }
        for why in &set.skipped {
            tracing::warn!(test_set = %set.set, "a journal record was not turned into a test: {why}");
        }
        report_pg(&set.set, &set.pg);
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

/// What recovery did with a test set's PostgreSQL journal.
fn report_pg(set: &str, pg: &PgRecovered) {
    if pg.in_use {
        tracing::warn!(
            test_set = %set,
            "a PostgreSQL recording into it is still running; left alone"
        );
        return;
    }
    if !pg.had_journal {
        return;
    }
    eprintln!(
        "recplay: recovered {set} from an unfinished PostgreSQL recording: {} mock{} added to mocks.yaml from its journal{}",
        pg.written,
        if pg.written == 1 { "" } else { "s" },
        if pg.already_there > 0 {
            format!(" ({} were there already)", pg.already_there)
        } else {
            String::new()
        }
    );
    if pg.mocks_cut > 0 {
        tracing::warn!(
            test_set = %set,
            "cut {} bytes of a document a crash left unfinished from the end of mocks.yaml",
            pg.mocks_cut
        );
    }
    if let Some((bytes, reason)) = &pg.torn {
        tracing::warn!(
            test_set = %set,
            "cut a torn tail of {bytes} bytes from its PostgreSQL journal ({reason}): traffic being written when the recording died, which no client had received"
        );
    }
    for why in &pg.skipped {
        tracing::warn!(test_set = %set, "a PostgreSQL journal record was not replayed: {why}");
    }
}
