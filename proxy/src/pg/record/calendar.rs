//! Turning clock readings into calendar times on the writer thread.
//!
//! Connections stamp every event with a bare `SystemTime` (a clock read,
//! nothing more): working out the date of a reading costs more than
//! reading the clock, and belongs off the forwarding path. The writer does
//! it once per day and reuses the date for every reading of that day.

use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

const SECONDS_PER_DAY: u64 = 86_400;

/// The date of the last day seen.
#[derive(Debug, Default)]
pub(super) struct Calendar {
    day: Option<(u64, NaiveDate)>,
}

impl Calendar {
    /// `at` as a UTC calendar time, exactly as chrono converts it.
    pub fn at(&mut self, at: SystemTime) -> DateTime<Utc> {
        let Ok(since_epoch) = at.duration_since(UNIX_EPOCH) else {
            return at.into();
        };
        let secs = since_epoch.as_secs();
        let day = secs / SECONDS_PER_DAY;
        let date = match self.day {
            Some((known, date)) if known == day => date,
            _ => {
                let date = DateTime::<Utc>::from(at).date_naive();
                self.day = Some((day, date));
                date
            }
        };
        // Seconds within a day and sub-second nanoseconds are always in
        // range; the fallback only keeps this free of panics.
        let Some(time) = NaiveTime::from_num_seconds_from_midnight_opt(
            (secs % SECONDS_PER_DAY) as u32,
            since_epoch.subsec_nanos(),
        ) else {
            return at.into();
        };
        NaiveDateTime::new(date, time).and_utc()
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    #[test]
    fn readings_convert_as_chrono_converts_them() {
        let mut calendar = Calendar::default();
        let start = UNIX_EPOCH + Duration::from_secs(1_764_806_399);
        // Across midnight (the cached date must change), with nanoseconds,
        // and back to the day before; then before the epoch.
        for offset_ns in [
            0u64,
            999_999_999,
            1_000_000_000,
            1_000_000_001,
            86_400_000_000_000,
        ] {
            let at = start + Duration::from_nanos(offset_ns);
            assert_eq!(calendar.at(at), DateTime::<Utc>::from(at));
        }
        assert_eq!(calendar.at(start), DateTime::<Utc>::from(start));
        let before = UNIX_EPOCH - Duration::from_millis(1500);
        assert_eq!(calendar.at(before), DateTime::<Utc>::from(before));
    }
}
