//! Dates and times of messages in local time: the machine's zone when the
//! UI runs (with its daylight-saving rules, so each message gets the offset
//! in force at its own time), a fixed offset in tests so snapshots do not
//! depend on where they run.

use jiff::Timestamp;
use jiff::fmt::strtime;
use jiff::tz::{Offset, TimeZone};

/// Message times unless the config says otherwise.
pub(crate) const TIME_FORMAT: &str = "%H:%M";
/// Day separators unless the config says otherwise.
pub(crate) const DATE_FORMAT: &str = "%Y-%m-%d";

/// The zone message times are shown in, and how they are written.
#[derive(Debug, Clone)]
pub(crate) struct Zone {
    tz: TimeZone,
    /// strftime format of message times.
    time_format: String,
    /// strftime format of the day separators.
    date_format: String,
    /// Columns a time takes (computed once per format).
    time_w: usize,
}

impl Zone {
    fn new(tz: TimeZone) -> Self {
        let mut z = Self {
            tz,
            time_format: TIME_FORMAT.to_owned(),
            date_format: DATE_FORMAT.to_owned(),
            time_w: 0,
        };
        z.time_w = z.measure_time();
        z
    }

    /// The machine's zone (`TZ`, else `/etc/localtime`); UTC when it cannot
    /// be found.
    pub(crate) fn system() -> Self {
        Self::new(TimeZone::try_system().unwrap_or(TimeZone::UTC))
    }

    /// A fixed offset from UTC, in whole hours (tests).
    #[cfg(test)]
    pub(crate) fn fixed_hours(hours: i8) -> Self {
        Self::new(TimeZone::fixed(Offset::constant(hours)))
    }

    /// UTC.
    #[cfg(test)]
    pub(crate) fn utc() -> Self {
        Self::new(TimeZone::UTC)
    }

    /// A named IANA zone from the system database (tests).
    #[cfg(test)]
    pub(crate) fn named(name: &str) -> Option<Self> {
        TimeZone::get(name).ok().map(Self::new)
    }

    /// The same zone writing times and dates with these strftime formats
    /// (`%H:%M`, `%Y-%m-%d`).
    ///
    /// # Errors
    /// A format jiff cannot write a time with, or one that writes nothing.
    pub(crate) fn with_formats(mut self, time: &str, date: &str) -> Result<Self, String> {
        let sample = Timestamp::from_second(1_700_000_000).unwrap_or(Timestamp::UNIX_EPOCH);
        let zoned = sample.to_zoned(self.tz.clone());
        for (what, f) in [("time_format", time), ("date_format", date)] {
            match strtime::format(f, &zoned) {
                Ok(s) if !s.trim().is_empty() && !s.contains('\n') => {}
                Ok(_) => return Err(format!("{what} {f:?} writes nothing on one line")),
                Err(e) => return Err(format!("{what} {f:?}: {e}")),
            }
        }
        time.clone_into(&mut self.time_format);
        date.clone_into(&mut self.date_format);
        self.time_w = self.measure_time();
        Ok(self)
    }

    /// `ts_ms` (Unix milliseconds) as a time in this zone.
    fn zoned(&self, ts_ms: i64) -> jiff::Zoned {
        Timestamp::from_millisecond(ts_ms)
            .unwrap_or(Timestamp::UNIX_EPOCH)
            .to_zoned(self.tz.clone())
    }

    /// The local day of a Unix time in milliseconds, as days since
    /// 1970-01-01: equal for two times on the same local day.
    pub(crate) fn day_key(&self, ts_ms: i64) -> i64 {
        let offset = Timestamp::from_millisecond(ts_ms)
            .map_or(Offset::UTC, |ts| self.tz.to_offset(ts))
            .seconds();
        ts_ms.saturating_add(i64::from(offset) * 1000).div_euclid(86_400_000)
    }

    /// The local date of a Unix time in milliseconds (`2026-11-25`).
    pub(crate) fn day_of(&self, ts_ms: i64) -> String {
        strtime::format(&self.date_format, &self.zoned(ts_ms))
            .unwrap_or_else(|_| self.zoned(ts_ms).date().to_string())
    }

    /// The local time of a Unix time in milliseconds (`14:05`).
    pub(crate) fn time_of(&self, ts_ms: i64) -> String {
        let z = self.zoned(ts_ms);
        strtime::format(&self.time_format, &z)
            .unwrap_or_else(|_| format!("{:02}:{:02}", z.hour(), z.minute()))
    }

    /// Columns a time takes.
    pub(crate) fn time_width(&self) -> usize {
        self.time_w
    }

    /// The widest of a morning and an evening time (formats with `%p` or
    /// `%l` vary).
    fn measure_time(&self) -> usize {
        let morning = 1_700_000_000_000 - 12 * 3_600_000;
        [morning, morning + 12 * 3_600_000]
            .into_iter()
            .map(|ms| super::wrap::width(&self.time_of(ms)))
            .max()
            .unwrap_or(5)
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
    fn formats_from_the_config() {
        let z = Zone::utc().with_formats("%H:%M:%S", "%a %d %b").expect("valid");
        assert_eq!(z.time_of(1_700_000_000_000), "22:13:20");
        assert_eq!(z.day_of(1_700_000_000_000), "Tue 14 Nov");
        assert_eq!(z.time_width(), 8);
        let twelve = Zone::utc().with_formats("%I:%M %p", DATE_FORMAT).expect("valid");
        assert_eq!(twelve.time_of(1_700_000_000_000), "10:13 PM");
        assert_eq!(Zone::utc().time_width(), 5);
        assert!(Zone::utc().with_formats("%H:%", DATE_FORMAT).is_err());
        assert!(Zone::utc().with_formats("", DATE_FORMAT).is_err());
        assert_eq!(Zone::utc().day_key(86_400_000 - 1), 0);
        assert_eq!(Zone::fixed_hours(2).day_key(86_400_000 - 1), 1);
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
