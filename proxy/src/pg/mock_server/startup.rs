//! The answer to a start-up packet.
//!
//! Whatever authentication the recording used, replay runs in trust mode:
//! AuthenticationOk, then the recorded ParameterStatus, BackendKeyData and
//! ReadyForQuery of the recorded start-up whose parameters match best. With
//! no recorded start-up at all (a hand-trimmed mocks.yaml) the server still
//! answers, with the parameters clients insist on.

use std::sync::atomic::{AtomicI32, Ordering};

use crate::testset::pg_mock::{BackendMsg, PgMock};

/// Process ids handed out when nothing was recorded; any value works since
/// cancel requests are ignored at replay.
static NEXT_PID: AtomicI32 = AtomicI32::new(10_000);

/// The messages after AuthenticationOk, from `recorded` when there is one.
pub fn answer(recorded: Option<&PgMock>) -> Vec<BackendMsg> {
    let mut out = vec![BackendMsg::AuthenticationOk];
    if let Some(mock) = recorded {
        out.extend(
            mock.spec
                .responses
                .iter()
                .filter(|m| {
                    matches!(
                        m,
                        BackendMsg::ParameterStatus { .. }
                            | BackendMsg::BackendKeyData { .. }
                            | BackendMsg::NoticeResponse { .. }
                            | BackendMsg::ReadyForQuery { .. }
                    )
                })
                .cloned(),
        );
    } else {
        for (name, value) in [
            ("server_version", "15.0"),
            ("server_encoding", "UTF8"),
            ("client_encoding", "UTF8"),
            ("DateStyle", "ISO, MDY"),
            ("integer_datetimes", "on"),
            ("standard_conforming_strings", "on"),
            ("TimeZone", "UTC"),
        ] {
            out.push(BackendMsg::ParameterStatus {
                name: name.into(),
                value: value.into(),
            });
        }
        out.push(BackendMsg::BackendKeyData {
            process_id: NEXT_PID.fetch_add(1, Ordering::Relaxed),
            secret_key: 0,
        });
    }
    if !matches!(out.last(), Some(BackendMsg::ReadyForQuery { .. })) {
        out.retain(|m| !matches!(m, BackendMsg::ReadyForQuery { .. }));
        out.push(BackendMsg::ReadyForQuery { status: 'I' });
    }
    out
}
