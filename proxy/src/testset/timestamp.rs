//! Timestamps in mocks, written as chrono writes them (RFC 3339, UTC as
//! `Z`, fractions of a second in 3, 6 or 9 digits as needed) without
//! chrono's formatter.
//!
//! Every mock carries two timestamps, and going through `Display` and a
//! `Formatter` one character at a time cost more than the rest of a mock's
//! numbers together.

use chrono::{DateTime, Datelike, SecondsFormat, Timelike, Utc};
use serde::Serializer;

/// `serialize_with` for a `DateTime<Utc>` field; reads back with chrono's
/// own `Deserialize`.
pub fn serialize<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    with_text(at, |text| serializer.serialize_str(text))
}

/// Calls `f` with `at` as chrono's `SecondsFormat::AutoSi` spells it.
pub(crate) fn with_text<R>(at: &DateTime<Utc>, f: impl FnOnce(&str) -> R) -> R {
    let mut buf = [0u8; 30];
    match write_rfc3339(at, &mut buf) {
        Some(text) => f(text),
        // Years outside 0000-9999 need a sign: chrono's own spelling.
        None => f(&at.to_rfc3339_opts(SecondsFormat::AutoSi, true)),
    }
}

/// `YYYY-MM-DDTHH:MM:SS[.fff[fff[fff]]]Z` into `buf`, as chrono's
/// `SecondsFormat::AutoSi` with `Z`; `None` for years it spells with a sign.
fn write_rfc3339<'b>(at: &DateTime<Utc>, buf: &'b mut [u8; 30]) -> Option<&'b str> {
    // Each field read through the DateTime would convert it again.
    let at = at.naive_utc();
    let year = u32::try_from(at.year()).ok().filter(|y| *y <= 9999)?;
    let mut nanos = at.nanosecond();
    let mut second = at.second();
    if nanos >= 1_000_000_000 {
        // A leap second: chrono writes it as second 60.
        second += 1;
        nanos -= 1_000_000_000;
    }
    let mut len = 0;
    let mut put = |value: u32, digits: usize, after: Option<u8>| {
        // Last digit first: dividing by a constant ten is a multiplication.
        let mut rest = value;
        for i in (0..digits).rev() {
            buf[len + i] = b'0' + (rest % 10) as u8;
            rest /= 10;
        }
        len += digits;
        if let Some(c) = after {
            buf[len] = c;
            len += 1;
        }
    };
    put(year, 4, Some(b'-'));
    put(at.month(), 2, Some(b'-'));
    put(at.day(), 2, Some(b'T'));
    put(at.hour(), 2, Some(b':'));
    put(at.minute(), 2, Some(b':'));
    put(second, 2, None);
    match nanos {
        0 => {}
        n if n % 1_000_000 == 0 => {
            put(0, 0, Some(b'.'));
            put(n / 1_000_000, 3, None);
        }
        n if n % 1_000 == 0 => {
            put(0, 0, Some(b'.'));
            put(n / 1_000, 6, None);
        }
        n => {
            put(0, 0, Some(b'.'));
            put(n, 9, None);
        }
    }
    put(0, 0, Some(b'Z'));
    std::str::from_utf8(&buf[..len]).ok()
}

#[cfg(test)]
mod tests {
    use chrono::{NaiveDate, TimeZone};

    use super::*;
    use crate::test_rng::Rng;

    fn ours(at: &DateTime<Utc>) -> String {
        let mut buf = [0u8; 30];
        write_rfc3339(at, &mut buf)
            .map(str::to_string)
            .unwrap_or_else(|| at.to_rfc3339_opts(SecondsFormat::AutoSi, true))
    }

    fn chronos(at: &DateTime<Utc>) -> String {
        // What `DateTime<Utc>`'s own `Serialize` writes.
        serde_json::to_value(at)
            .ok()
            .and_then(|v| v.as_str().map(str::to_string))
            .unwrap_or_default()
    }

    #[test]
    fn every_instant_is_written_as_chrono_writes_it() {
        let mut rng = Rng::new(0x7157);
        let mut instants = vec![
            Utc::now(),
            Utc.timestamp_opt(0, 0).single().expect("instant"),
            Utc.timestamp_opt(1, 5_000_000).single().expect("instant"),
            Utc.timestamp_opt(1, 5_000).single().expect("instant"),
            Utc.timestamp_opt(1, 5).single().expect("instant"),
            Utc.timestamp_opt(253_402_300_799, 999_999_999)
                .single()
                .expect("instant"),
            Utc.from_utc_datetime(
                &NaiveDate::from_ymd_opt(2016, 12, 31)
                    .and_then(|d| d.and_hms_nano_opt(23, 59, 59, 1_500_000_000))
                    .expect("a valid instant"),
            ),
            Utc.from_utc_datetime(
                &NaiveDate::from_ymd_opt(-5, 1, 1)
                    .and_then(|d| d.and_hms_opt(0, 0, 0))
                    .expect("a valid instant"),
            ),
            Utc.from_utc_datetime(
                &NaiveDate::from_ymd_opt(12345, 6, 7)
                    .and_then(|d| d.and_hms_opt(8, 9, 10))
                    .expect("a valid instant"),
            ),
        ];
        for _ in 0..2000 {
            let secs = (rng.next_u64() % 253_402_300_800) as i64;
            let nanos = match rng.next_u64() % 4 {
                0 => 0,
                1 => (rng.next_u64() % 1000) as u32 * 1_000_000,
                2 => (rng.next_u64() % 1_000_000) as u32 * 1_000,
                _ => (rng.next_u64() % 1_000_000_000) as u32,
            };
            instants.push(Utc.timestamp_opt(secs, nanos).single().expect("instant"));
        }
        for at in &instants {
            assert_eq!(ours(at), chronos(at), "{at:?}");
        }
    }
}
