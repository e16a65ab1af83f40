//! Dates and times of messages in local time: the machine's zone when the
//! UI runs (with its daylight-saving rules, so each message gets the offset
//! in force at its own time), a fixed offset in tests so snapshots do not
//! depend on where they run.

use jiff::Timestamp;
use jiff::tz::{Offset, TimeZone};

/// The zone message times are shown in.
#[derive(Debug, Clone)]
pub(crate) struct Zone(TimeZone);

impl Zone {
    /// The machine's zone (`TZ`, else `/etc/localtime`); UTC when it cannot
    /// be found.
    pub(crate) fn system() -> Self {
        Self(TimeZone::try_system().unwrap_or(TimeZone::UTC))
    }

    /// A fixed offset from UTC, in whole hours (tests).
    #[cfg(test)]
    pub(crate) fn fixed_hours(hours: i8) -> Self {
        Self(TimeZone::fixed(Offset::constant(hours)))
    }

    /// UTC.
    #[cfg(test)]
    pub(crate) fn utc() -> Self {
        Self(TimeZone::UTC)
    }

    /// A named IANA zone from the system database (tests).
    #[cfg(test)]
    pub(crate) fn named(name: &str) -> Option<Self> {
        TimeZone::get(name).ok().map(Self)
    }

    /// `ts_ms` (Unix milliseconds) moved to local wall-clock milliseconds.
    fn local_ms(&self, ts_ms: i64) -> i64 {
        let offset = Timestamp::from_millisecond(ts_ms)
            .map_or(Offset::UTC, |ts| self.0.to_offset(ts))
            .seconds();
        ts_ms.saturating_add(i64::from(offset) * 1000)
    }

    /// The local date of a Unix time in milliseconds, `YYYY-MM-DD`.
    pub(crate) fn day_of(&self, ts_ms: i64) -> String {
        let days = self.local_ms(ts_ms).div_euclid(86_400_000);
        // Howard Hinnant's civil_from_days.
        let z = days + 719_468;
        let era = z.div_euclid(146_097);
        let doe = z - era * 146_097;
        let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
        let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        let mp = (5 * doy + 2) / 153;
        let d = doy - (153 * mp + 2) / 5 + 1;
        let m = if mp < 10 { mp + 3 } else { mp - 9 };
        let y = yoe + era * 400 + i64::from(m <= 2);
        format!("{y:04}-{m:02}-{d:02}")
    }

    /// Local `HH:MM` of a Unix time in milliseconds.
    pub(crate) fn time_of(&self, ts_ms: i64) -> String {
        let mins = self.local_ms(ts_ms).div_euclid(60_000).rem_euclid(24 * 60);
        format!("{:02}:{:02}", mins / 60, mins % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utc_dates_and_times() {
        let z = Zone::utc();
        assert_eq!(z.day_of(0), "1970-01-01");
        assert_eq!(z.day_of(1_700_000_000_000), "2023-11-14");
        assert_eq!(z.time_of(1_700_000_000_000), "22:13");
        assert_eq!(z.day_of(-1), "1969-12-31");
    }

    #[test]
    fn a_fixed_offset_moves_the_time_and_the_day() {
        let tokyo = Zone::fixed_hours(9);
        assert_eq!(tokyo.time_of(1_700_000_000_000), "07:13");
        assert_eq!(tokyo.day_of(1_700_000_000_000), "2023-11-15");
        let west = Zone::fixed_hours(-5);
        assert_eq!(west.time_of(1_700_000_000_000), "17:13");
        assert_eq!(west.day_of(0), "1969-12-31");
    }

    #[test]
    fn a_named_zone_follows_daylight_saving() {
        // Skipped where the system has no zone database.
        let Some(berlin) = Zone::named("Europe/Berlin") else { return };
        // 2024-01-15 12:00 UTC is 13:00 CET; 2024-07-15 12:00 UTC is 14:00 CEST.
        assert_eq!(berlin.time_of(1_705_320_000_000), "13:00");
        assert_eq!(berlin.time_of(1_721_044_800_000), "14:00");
    }
}
