//! The journal's framing against the ways a crash or a disk can break it.

use std::fs::{self, OpenOptions};
use std::io::Write;

use super::record::{frame, put_bytes, FRAME_HEAD};
use super::*;

fn record(text: &str) -> Vec<u8> {
    frame(RecordKind::HttpExchange, |buf| {
        put_bytes(buf, text.as_bytes())
    })
}

fn journal_with(records: &[Vec<u8>]) -> (tempfile::TempDir, std::path::PathBuf) {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = path_in(dir.path());
    let mut bytes = header().to_vec();
    for r in records {
        bytes.extend_from_slice(r);
    }
    fs::write(&path, bytes).expect("write journal");
    (dir, path)
}

fn read_all(path: &std::path::Path) -> (Vec<Record>, Next) {
    let mut reader = JournalReader::open(path).expect("open");
    let mut records = Vec::new();
    loop {
        match reader.next_record().expect("read") {
            Next::Record(r) => records.push(r),
            other => return (records, other),
        }
    }
}

#[test]
fn whole_records_read_back_in_order_and_the_end_is_clean() {
    let (_dir, path) = journal_with(&[record("one"), record("two")]);
    let (records, end) = read_all(&path);
    assert_eq!(records.len(), 2);
    assert_eq!(records[0].offset, HEADER_LEN as u64);
    assert_eq!(records[1].payload, &record("two")[FRAME_HEAD + 1..]);
    assert_eq!(end, Next::End);
}

#[test]
fn a_record_cut_anywhere_is_a_torn_tail_and_those_before_it_stand() {
    let second = record("the second record, cut by a crash");
    for cut in 1..second.len() {
        let (_dir, path) = journal_with(&[record("one"), second[..cut].to_vec()]);
        let (records, end) = read_all(&path);
        assert_eq!(records.len(), 1, "cut at {cut}");
        match end {
            Next::Torn { offset, bytes, .. } => {
                assert_eq!(offset, (HEADER_LEN + record("one").len()) as u64);
                assert_eq!(bytes, cut as u64, "cut at {cut}");
            }
            other => panic!("cut at {cut}: expected a torn tail, got {other:?}"),
        }
    }
}

#[test]
fn a_changed_byte_fails_the_crc_and_ends_the_journal_there() {
    let mut bad = record("flipped");
    let last = bad.len() - 1;
    bad[last] ^= 0x01;
    let (_dir, path) = journal_with(&[record("one"), bad, record("after")]);
    let (records, end) = read_all(&path);
    assert_eq!(records.len(), 1);
    let Next::Torn { reason, .. } = end else {
        panic!("expected a torn tail, got {end:?}");
    };
    assert!(reason.contains("CRC32C"), "{reason}");
}

#[test]
fn another_format_version_is_an_error_naming_both_versions() {
    let (_dir, path) = journal_with(&[record("one")]);
    let mut bytes = fs::read(&path).expect("read");
    bytes[8..10].copy_from_slice(&7u16.to_le_bytes());
    fs::write(&path, bytes).expect("write");
    let err = JournalReader::open(&path).err().expect("refused");
    let text = err.to_string();
    assert!(
        matches!(
            err,
            JournalError::Version {
                found: 7,
                supported: 1,
                ..
            }
        ),
        "{text}"
    );
    assert!(
        text.contains("version 7") && text.contains("version 1"),
        "{text}"
    );
}

#[test]
fn a_foreign_file_is_refused_and_a_cut_header_holds_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = path_in(dir.path());
    fs::write(&path, b"not a journal at all").expect("write");
    assert!(matches!(
        JournalReader::open(&path),
        Err(JournalError::NotAJournal { .. })
    ));
    fs::write(&path, &header()[..5]).expect("write");
    let (records, end) = read_all(&path);
    assert!(records.is_empty());
    assert!(matches!(end, Next::Torn { bytes: 5, .. }), "{end:?}");
}

/// Appends `text` as a record's payload.
fn append(writer: &JournalWriter, text: &str) -> Result<(), JournalError> {
    writer.append_in_place(RecordKind::PgTraffic, |buf| put_bytes(buf, text.as_bytes()))
}

#[test]
fn appended_records_are_written_in_order_and_a_second_writer_is_locked_out() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = path_in(dir.path());
    let writer = JournalWriter::create(&path).expect("create");
    for i in 0..100 {
        append(&writer, &format!("record {i}")).expect("appended");
        if i % 7 == 0 {
            writer.flush().expect("written");
        }
    }
    // The lock is on the file: a second writer (or a recovery) cannot
    // take it while the first one holds it.
    let again = OpenOptions::new().read(true).open(&path).expect("open");
    assert!(matches!(
        lock(&again, &path),
        Err(JournalError::Locked { .. })
    ));
    assert!(matches!(
        JournalWriter::create(&path),
        Err(JournalError::Exists { .. })
    ));
    let written = writer.close();
    assert!(written.closed && written.failed.is_none());
    let (records, end) = read_all(&path);
    assert_eq!(end, Next::End);
    assert_eq!(records.len(), 100);
    assert_eq!(written.end, fs::metadata(&path).expect("stat").len());
    for (i, r) in records.iter().enumerate() {
        assert_eq!(r.payload, &record(&format!("record {i}"))[FRAME_HEAD + 1..]);
    }
    assert!(append(&writer, "late").is_err());
}

#[cfg(target_os = "linux")]
#[test]
fn a_full_disk_fails_the_exchange_with_a_clear_error_and_stops() {
    let full = OpenOptions::new()
        .write(true)
        .open("/dev/full")
        .expect("/dev/full exists on Linux");
    let writer = JournalWriter::start(full, 0, std::path::Path::new("/dev/full"));
    append(&writer, "no room").expect("appended");
    let err = writer.flush().expect_err("a full disk is an error");
    let text = err.to_string();
    assert!(text.contains("could not be written"), "{text}");
    assert!(text.to_lowercase().contains("no space"), "{text}");
    // Later exchanges fail at once.
    assert!(append(&writer, "later").is_err());
    let written = writer.close();
    assert!(written.failed.is_some() && written.closed);
}

#[test]
fn the_writer_cuts_a_partial_batch_it_could_not_finish() {
    // What the writer does after a failed write: the file ends on a whole
    // record (see `write_pending`), so a reader finds no torn tail.
    let (_dir, path) = journal_with(&[record("kept")]);
    let whole = fs::metadata(&path).expect("stat").len();
    let mut file = OpenOptions::new().append(true).open(&path).expect("open");
    file.write_all(&record("half")[..5]).expect("write");
    file.set_len(whole).expect("cut");
    let (records, end) = read_all(&path);
    assert_eq!((records.len(), end), (1, Next::End));
}

#[test]
fn appended_records_are_written_by_the_next_flush_and_the_rest_at_close() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = path_in(dir.path());
    let writer = JournalWriter::create(&path).expect("create");
    let add = |text: &str| append(&writer, text).expect("append");
    add("one");
    add("two");
    // The records wait for a flush.
    assert_eq!(fs::metadata(&path).expect("stat").len(), HEADER_LEN as u64);
    writer.flush().expect("flush");
    let (records, end) = read_all(&path);
    assert_eq!((records.len(), end), (2, Next::End));
    // One `write` for both: the writer's progress moved once, to the end.
    assert_eq!(
        writer.progress().now().end,
        fs::metadata(&path).expect("stat").len()
    );

    add("three");
    let closed = writer.close();
    assert!(closed.failed.is_none() && closed.closed);
    let (records, _) = read_all(&path);
    let payloads: Vec<_> = records.iter().map(|r| r.payload[4..].to_vec()).collect();
    assert_eq!(
        payloads,
        [b"one".to_vec(), b"two".to_vec(), b"three".to_vec()]
    );
    assert!(append(&writer, "late").is_err());
}
