//! A crashed PostgreSQL recording's journal into mocks.yaml.
//!
//! The journal holds every event of the recording in the order the writer
//! took them in, so replaying it names each mock as the writer did. The
//! mocks whose names mocks.yaml holds already were written before the
//! crash and are kept as they are; the others are appended. Each complete
//! exchange thus ends up in mocks.yaml exactly once. A document the crash
//! cut short at the end of mocks.yaml is cut off first, and written again
//! from the journal.
//!
//! Recovered mocks name no test: the HTTP test windows that attributed
//! mocks while recording lived in memory only.

use std::collections::HashSet;
use std::fs::{self, File, OpenOptions};
use std::io::{ErrorKind, Seek, SeekFrom, Write};
use std::path::Path;

use super::entry;
use super::writer::Replay;
use crate::journal::{
    self, JournalError, JournalReader, JournalRecovery, LeftBehind, Next, RecordKind,
};
use crate::testset::pg_mock::PgMock;
use crate::testset::store::{parse_mock_bytes, render_mocks};
use crate::testset::{StoreError, TestSetDir};
use crate::window::TestWindows;

/// Why a PostgreSQL journal could not be recovered: reading the journal,
/// or writing the mocks it holds to mocks.yaml.
#[derive(Debug, thiserror::Error)]
pub enum PgRecoveryError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// What recovery did with one test set's PostgreSQL journal.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct PgRecovered {
    /// The journal's records and what became of them as mocks.
    pub journal: JournalRecovery,
    /// Bytes of a document cut short, cut from the end of mocks.yaml.
    pub mocks_cut: u64,
}

/// Recovers the PostgreSQL journal of `dir`, if there is one.
pub fn recover_pg_journal(dir: &TestSetDir) -> Result<PgRecovered, PgRecoveryError> {
    let mut done = PgRecovered::default();
    let path = journal::pg_path_in(dir.root());
    let file = match journal::take_left_behind(&path)? {
        LeftBehind::Nothing => return Ok(done),
        LeftBehind::InUse => {
            done.journal.in_use = true;
            return Ok(done);
        }
        LeftBehind::Taken(file) => file,
    };
    done.journal.had_journal = true;
    let read = file.try_clone().map_err(journal::io_err(&path))?;
    let mocks = replay(JournalReader::from_file(read, &path)?, &mut done)?;
    append_missing(dir, &mocks, &mut done)?;
    // The mocks are on disk before the journal that vouches for them goes.
    fs::remove_file(&path).map_err(journal::io_err(&path))?;
    drop(file);
    Ok(done)
}

/// Every mock the journal's complete records make, in the writer's order.
fn replay(mut reader: JournalReader, done: &mut PgRecovered) -> Result<Vec<PgMock>, JournalError> {
    let mut replay = Replay::new(TestWindows::new());
    let mut mocks = Vec::new();
    loop {
        match reader.next_record()? {
            Next::Record(record) => {
                if RecordKind::from_byte(record.kind) != Some(RecordKind::PgTraffic) {
                    done.journal.skipped.push(format!(
                        "the record at byte {} is of kind {}, which is not PostgreSQL traffic",
                        record.offset, record.kind
                    ));
                    continue;
                }
                match entry::decode(&record.payload) {
                    Ok(event) => replay.take(event, &mut mocks),
                    Err(e) => done
                        .journal
                        .skipped
                        .push(format!("the record at byte {}: {e}", record.offset)),
                }
            }
            Next::End => break,
            Next::Torn { bytes, reason, .. } => {
                done.journal.torn = Some((bytes, reason));
                break;
            }
        }
    }
    Ok(mocks)
}

/// Cuts a document cut short from the end of mocks.yaml, and appends the
/// mocks it does not hold yet; synced before returning.
fn append_missing(
    dir: &TestSetDir,
    mocks: &[PgMock],
    done: &mut PgRecovered,
) -> Result<(), StoreError> {
    let path = dir.mocks_path();
    let io = |source| StoreError::Io {
        path: path.clone(),
        source,
    };
    let existing = match fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(io(e)),
    };
    let whole = whole_documents_len(&existing);
    done.mocks_cut = (existing.len() - whole) as u64;
    let present: HashSet<String> = parse_mock_bytes(&existing[..whole], &path)
        .0
        .into_iter()
        .map(|mock| mock.name)
        .collect();
    let missing: Vec<PgMock> = mocks
        .iter()
        .filter(|mock| !present.contains(&mock.name))
        .cloned()
        .collect();
    done.journal.already_there = (mocks.len() - missing.len()) as u64;
    done.journal.written = missing.len() as u64;
    if missing.is_empty() && done.mocks_cut == 0 {
        return Ok(());
    }
    let mut file: File = OpenOptions::new()
        .create(true)
        .write(true)
        .truncate(false)
        .open(&path)
        .map_err(io)?;
    file.set_len(whole as u64).map_err(io)?;
    file.seek(SeekFrom::Start(whole as u64)).map_err(io)?;
    file.write_all(render_mocks(&missing).as_bytes())
        .map_err(io)?;
    file.sync_all().map_err(io)?;
    sync_dir(dir.root()).map_err(|source| StoreError::Io {
        path: dir.root().to_path_buf(),
        source,
    })
}

/// How much of mocks.yaml is whole documents: all of it, unless it ends in
/// one document recplay started (`---`) that a crash cut before its `...`.
fn whole_documents_len(bytes: &[u8]) -> usize {
    let whole = bytes
        .windows(5)
        .rposition(|w| w == b"\n...\n")
        .map_or(0, |at| at + 5);
    let tail = &bytes[whole..];
    let one_started_document = if tail.len() >= 4 {
        tail.starts_with(b"---\n") && !tail.windows(5).any(|w| w == b"\n---\n")
    } else {
        b"---\n".starts_with(tail)
    };
    if one_started_document {
        whole
    } else {
        bytes.len()
    }
}

fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::SystemTime;

    use bytes::{Bytes, BytesMut};

    use super::super::event::{Event, Side};
    use super::*;
    use crate::pgwire::backend::encode_backend;
    use crate::pgwire::frontend::FrontendMessage;
    use crate::testset::pg_mock::BackendMsg;

    /// A connection's start-up and `queries` simple queries, as journal
    /// records.
    fn journaled(queries: usize) -> Vec<Vec<u8>> {
        let wire = |messages: &[BackendMsg]| {
            let mut buf = BytesMut::new();
            for m in messages {
                encode_backend(m, &mut buf).expect("encode");
            }
            Bytes::from(buf.to_vec())
        };
        let ready = BackendMsg::ReadyForQuery { status: 'I' };
        let traffic = |from, bytes| Event::Traffic {
            connection: 1,
            from,
            bytes,
            at: SystemTime::now(),
        };
        let mut events = vec![
            Event::Opened {
                connection: 1,
                startup: Box::new(FrontendMessage::Startup {
                    protocol: crate::pgwire::frontend::PROTOCOL_3_0,
                    parameters: vec![("user".into(), "app".into())],
                }),
                at: SystemTime::now(),
                progress: Arc::default(),
            },
            traffic(
                Side::Server,
                wire(&[BackendMsg::AuthenticationOk, ready.clone()]),
            ),
        ];
        for n in 0..queries {
            let mut query = BytesMut::new();
            postgres_protocol::message::frontend::query(&format!("SELECT {n}"), &mut query)
                .expect("encode");
            events.push(traffic(Side::Client, query.freeze()));
            let done = BackendMsg::CommandComplete {
                tag: "SELECT 1".into(),
            };
            events.push(traffic(Side::Server, wire(&[done, ready.clone()])));
        }
        events.iter().map(entry::encode_event).collect()
    }

    #[test]
    fn every_complete_exchange_ends_up_in_mocks_yaml_once() {
        let keploy = tempfile::tempdir().expect("tempdir");
        let set = TestSetDir::create_next(keploy.path()).expect("set");
        let records = journaled(4);
        let mut bytes = journal::header().to_vec();
        // The last answer's record is torn: its exchange is not recovered.
        let (last, whole) = records.split_last().expect("records");
        whole.iter().for_each(|r| bytes.extend(r));
        bytes.extend(&last[..last.len() / 2]);
        fs::write(journal::pg_path_in(set.root()), bytes).expect("journal");
        // Before the crash the writer wrote the start-up exchange and the
        // first query, and began the second.
        let mut replay = Replay::new(TestWindows::new());
        let mut mocks = Vec::new();
        for record in whole {
            let event = entry::decode(&record[9..]).expect("decode");
            replay.take(event, &mut mocks);
        }
        assert_eq!(mocks.len(), 4);
        let mut before = render_mocks(&mocks[..2]);
        let third = render_mocks(&mocks[2..3]);
        before.push_str(&third[..third.len() / 2]);
        fs::write(set.mocks_path(), &before).expect("mocks.yaml");

        let done = recover_pg_journal(&set).expect("recover");
        assert!(done.journal.had_journal && done.journal.skipped.is_empty());
        assert_eq!((done.journal.written, done.journal.already_there), (2, 2));
        assert!(done.journal.torn.is_some());
        assert_eq!(done.mocks_cut as usize, third.len() / 2);
        assert!(!journal::pg_path_in(set.root()).exists());
        let text = fs::read_to_string(set.mocks_path()).expect("mocks.yaml");
        assert_eq!(text, render_mocks(&mocks));

        // Nothing left to do the second time.
        assert_eq!(
            recover_pg_journal(&set).expect("again"),
            PgRecovered::default()
        );
    }

    #[test]
    fn only_a_document_recplay_started_and_a_crash_cut_is_cut() {
        let two = b"---\na: 1\n...\n---\nb: 2\n...\n";
        assert_eq!(whole_documents_len(two), two.len());
        let mut torn = two.to_vec();
        torn.extend_from_slice(b"---\nc: ");
        assert_eq!(whole_documents_len(&torn), two.len());
        let mut torn_marker = two.to_vec();
        torn_marker.extend_from_slice(b"--");
        assert_eq!(whole_documents_len(&torn_marker), two.len());
        assert_eq!(whole_documents_len(b"---\nonly: cut"), 0);
        assert_eq!(whole_documents_len(b""), 0);
        // Written by hand or by Keploy, without end markers: left alone.
        let foreign = b"version: api.keploy.io/v1beta1\nkind: Postgres\n";
        assert_eq!(whole_documents_len(foreign), foreign.len());
        let foreign = b"---\nkind: Postgres\n---\nkind: Postgres\n";
        assert_eq!(whole_documents_len(foreign), foreign.len());
    }
}
