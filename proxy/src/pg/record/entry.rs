//! One step of a connection's traffic as a journal record, and back.
//!
//! A record holds what the connection read, as it read it: the start-up
//! packet, the client's checked messages (authentication messages already
//! taken out, see `connection::without_secrets`), or the server's bytes,
//! with the connection's number and a clock reading. Writing one is a copy;
//! decoding the messages, grouping exchanges and rendering mocks happen
//! when the records are replayed, away from the traffic.
//!
//! Payload: `[step u8][connection u64][at i64 ns since the epoch][bytes]`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;

use super::event::{Event, Progress, Side};
use crate::journal::record::{put_bytes, put_i64, put_u64, Fields};
use crate::journal::JournalError;
#[cfg(test)]
use crate::journal::RecordKind;
use crate::pgwire::frontend::{DecodeContext, FrontendMessage};
use std::sync::Arc;

const OPENED: u8 = 1;
const FROM_CLIENT: u8 = 2;
const FROM_SERVER: u8 = 3;
const CLOSED: u8 = 4;

/// Frames `event` as a `PgTraffic` record, as the journal holds it.
#[cfg(test)]
pub(super) fn encode_event(event: &Event) -> Vec<u8> {
    crate::journal::record::frame(RecordKind::PgTraffic, |buf| put_event(buf, event))
}

/// Writes the payload of `event`'s record to `buf`.
pub(super) fn put_event(buf: &mut Vec<u8>, event: &Event) {
    match event {
        Event::Opened {
            connection,
            startup,
            at,
            ..
        } => put(buf, OPENED, *connection, *at, &startup_packet(startup)),
        Event::Traffic {
            connection,
            from,
            bytes,
            at,
        } => {
            let step = match from {
                Side::Client => FROM_CLIENT,
                Side::Server => FROM_SERVER,
            };
            put(buf, step, *connection, *at, bytes);
        }
        Event::Closed { connection } => put(buf, CLOSED, *connection, UNIX_EPOCH, &[]),
    }
}

/// The start-up packet as the client sent it: length, protocol, then
/// `name\0value\0` pairs and a final zero. It carries no password (those
/// come later, in messages that are never journaled).
fn startup_packet(startup: &FrontendMessage) -> Vec<u8> {
    let FrontendMessage::Startup {
        protocol,
        parameters,
    } = startup
    else {
        return Vec::new();
    };
    let mut packet = vec![0; 4];
    packet.extend_from_slice(&protocol.to_be_bytes());
    for (name, value) in parameters {
        packet.extend_from_slice(name.as_bytes());
        packet.push(0);
        packet.extend_from_slice(value.as_bytes());
        packet.push(0);
    }
    packet.push(0);
    let len = (packet.len() as u32).to_be_bytes();
    packet[..4].copy_from_slice(&len);
    packet
}

fn put(buf: &mut Vec<u8>, step: u8, connection: u64, at: SystemTime, bytes: &[u8]) {
    buf.reserve(1 + 8 + 8 + 4 + bytes.len());
    buf.push(step);
    put_u64(buf, connection);
    put_i64(buf, nanos_since_epoch(at));
    put_bytes(buf, bytes);
}

fn nanos_since_epoch(at: SystemTime) -> i64 {
    match at.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_nanos()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_nanos())
            .map(|n| -n)
            .unwrap_or(i64::MIN),
    }
}

fn from_nanos(nanos: i64) -> SystemTime {
    let magnitude = Duration::from_nanos(nanos.unsigned_abs());
    let at = if nanos >= 0 {
        UNIX_EPOCH.checked_add(magnitude)
    } else {
        UNIX_EPOCH.checked_sub(magnitude)
    };
    at.unwrap_or(UNIX_EPOCH)
}

/// A record's payload as the event the writer takes in. An `Opened` event
/// gets a `Progress` of its own, which nobody watches: a replay has no
/// connection waiting on it.
pub(super) fn decode(payload: &[u8]) -> Result<Event, JournalError> {
    let mut fields = Fields::new(payload);
    let step = fields.u8("step")?;
    let connection = fields.u64("connection number")?;
    let at = from_nanos(fields.i64("clock reading")?);
    let bytes = fields.bytes("bytes")?;
    let traffic = |from| Event::Traffic {
        connection,
        from,
        bytes: Bytes::copy_from_slice(bytes),
        at,
    };
    match step {
        OPENED => {
            let startup = match FrontendMessage::decode(bytes, &DecodeContext::new()) {
                Ok(Some((startup @ FrontendMessage::Startup { .. }, used)))
                    if used == bytes.len() =>
                {
                    startup
                }
                Ok(_) => {
                    return Err(JournalError::Payload(
                        "does not hold a whole start-up packet".to_string(),
                    ))
                }
                Err(e) => {
                    return Err(JournalError::Payload(format!(
                        "holds a start-up packet that cannot be read: {e}"
                    )))
                }
            };
            Ok(Event::Opened {
                connection,
                startup: Box::new(startup),
                at,
                progress: Arc::new(Progress::default()),
            })
        }
        FROM_CLIENT => Ok(traffic(Side::Client)),
        FROM_SERVER => Ok(traffic(Side::Server)),
        CLOSED => Ok(Event::Closed { connection }),
        other => Err(JournalError::Payload(format!(
            "names step {other}, which this recplay does not know"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::record::FRAME_HEAD;
    use crate::journal::{self, JournalReader, Next};

    fn startup() -> FrontendMessage {
        FrontendMessage::Startup {
            protocol: crate::pgwire::frontend::PROTOCOL_3_0,
            parameters: vec![
                ("user".into(), "app".into()),
                ("database".into(), "shop".into()),
            ],
        }
    }

    fn opened(connection: u64, at: SystemTime) -> Vec<u8> {
        encode_event(&Event::Opened {
            connection,
            startup: Box::new(startup()),
            at,
            progress: Arc::default(),
        })
    }

    fn traffic(connection: u64, from: Side, at: SystemTime, bytes: &[u8]) -> Vec<u8> {
        encode_event(&Event::Traffic {
            connection,
            from,
            bytes: Bytes::copy_from_slice(bytes),
            at,
        })
    }

    fn closed(connection: u64) -> Vec<u8> {
        encode_event(&Event::Closed { connection })
    }

    fn payload(framed: &[u8]) -> &[u8] {
        &framed[FRAME_HEAD + 1..]
    }

    #[test]
    fn every_step_reads_back_as_it_was_written() {
        let at = UNIX_EPOCH + Duration::from_nanos(1_764_806_399_123_456_789);
        match decode(payload(&opened(7, at))) {
            Ok(Event::Opened {
                connection,
                startup,
                at: read_at,
                ..
            }) => {
                assert_eq!((connection, read_at), (7, at));
                assert_eq!(*startup, super::tests::startup());
            }
            _ => panic!("not an Opened event"),
        }
        for side in [Side::Client, Side::Server] {
            match decode(payload(&traffic(8, side, at, b"Q\0\0\0\x0dselect 1\0"))) {
                Ok(Event::Traffic {
                    connection,
                    from,
                    bytes,
                    at: read_at,
                }) => {
                    assert_eq!((connection, from, read_at), (8, side, at));
                    assert_eq!(&bytes[..], b"Q\0\0\0\x0dselect 1\0");
                }
                _ => panic!("not a Traffic event"),
            }
        }
        assert!(matches!(
            decode(payload(&closed(9))),
            Ok(Event::Closed { connection: 9 })
        ));
    }

    #[test]
    fn clock_readings_before_the_epoch_survive() {
        let before = UNIX_EPOCH - Duration::from_millis(1500);
        assert_eq!(from_nanos(nanos_since_epoch(before)), before);
    }

    #[test]
    fn bad_payloads_are_errors_not_panics() {
        let at = SystemTime::now();
        let whole = traffic(1, Side::Server, at, b"Z\0\0\0\x05I");
        for cut in 0..payload(&whole).len() {
            assert!(decode(&payload(&whole)[..cut]).is_err(), "cut at {cut}");
        }
        let mut unknown_step = payload(&whole).to_vec();
        unknown_step[0] = 99;
        assert!(decode(&unknown_step).is_err());
        let opened_with = |packet: &[u8]| {
            crate::journal::record::frame(RecordKind::PgTraffic, |buf| {
                put(buf, OPENED, 1, at, packet)
            })
        };
        assert!(decode(payload(&opened_with(b"not a start-up packet"))).is_err());
        let mut cut_startup = startup_packet(&startup());
        cut_startup.pop();
        assert!(decode(payload(&opened_with(&cut_startup))).is_err());
    }

    #[test]
    fn a_torn_last_record_ends_the_journal_and_the_rest_read_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = journal::pg_path_in(dir.path());
        let at = SystemTime::now();
        let mut bytes = journal::header().to_vec();
        bytes.extend(opened(1, at));
        bytes.extend(traffic(1, Side::Client, at, b"Q\0\0\0\x0dselect 1\0"));
        let last = traffic(1, Side::Server, at, b"Z\0\0\0\x05I");
        bytes.extend(&last[..last.len() - 3]);
        std::fs::write(&path, bytes).expect("write");

        let mut reader = JournalReader::open(&path).expect("open");
        let mut events = Vec::new();
        let torn = loop {
            match reader.next_record().expect("read") {
                Next::Record(record) => {
                    assert_eq!(record.kind, RecordKind::PgTraffic as u8);
                    events.push(decode(&record.payload).expect("decode"));
                }
                Next::End => break None,
                Next::Torn { bytes, .. } => break Some(bytes),
            }
        };
        assert_eq!(events.len(), 2);
        assert_eq!(torn, Some(last.len() as u64 - 3));
    }
}
