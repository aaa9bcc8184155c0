//! Timestamps of audit records: milliseconds since the Unix epoch, shown as RFC 3339 in
//! UTC with milliseconds (`2026-11-25T09:30:00.000Z`). Parsing and calendar arithmetic are
//! jiff's (a well-kept date-time library, built without time-zone data: every time here is
//! UTC or carries its offset); this module must not read the clock (the engine's `Clock`
//! does).

use jiff::civil::Date;
use jiff::tz::TimeZone;
use jiff::{Span, Timestamp, Zoned};

/// `ms` since the epoch as RFC 3339 UTC with milliseconds. The format of every audit
/// record's `time` (hashed with the record, so it never changes): four-digit year,
/// milliseconds, `Z`. A time outside the years jiff holds (-9999 to 9999) is written as
/// its milliseconds, which [`parse_time`] reads back.
///
/// ```
/// use agentpolicy_runtime::audit::{format_time, parse_time};
/// assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
/// assert_eq!(format_time(1_764_063_000_123), "2025-11-25T09:30:00.123Z");
/// assert_eq!(parse_time("2025-11-25T09:30:00.123Z"), Some(1_764_063_000_123));
/// assert_eq!(parse_time("2025-11-25T10:30:00.123+01:00"), Some(1_764_063_000_123));
/// ```
pub fn format_time(ms: i64) -> String {
    match Timestamp::from_millisecond(ms) {
        Ok(t) => t.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string(),
        Err(_) => ms.to_string(),
    }
}

/// A time given by a person or a tool: milliseconds since the epoch (`1764063000123`), an
/// RFC 3339 time with any offset (`2025-11-25T09:30:00Z`, `2025-11-25T10:30:00+01:00`,
/// fractions of a second allowed; `T` or a space between date and time), or a date
/// (`2025-11-25`, meaning its midnight UTC). A time without an offset is refused: it would
/// mean a different instant on every machine. Fractions finer than a millisecond are cut.
pub fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    if text.len() == 10 {
        let date: Date = text.parse().ok()?;
        return date
            .to_zoned(TimeZone::UTC)
            .ok()
            .map(|z| z.timestamp().as_millisecond());
    }
    // jiff's parser also reads `[Zone/Name]` annotations; without time-zone data only
    // offsets mean anything here, so a bracket is refused rather than half-understood.
    if text.contains('[') {
        return None;
    }
    text.parse::<Timestamp>().ok().map(|t| t.as_millisecond())
}

/// The same time of day and date `years` calendar years earlier (in UTC); 29 February
/// falls back to 28 February when the earlier year has none. `None` outside the range
/// of dates jiff holds.
///
/// ```
/// use agentpolicy_runtime::audit::{minus_years, parse_time};
/// let leap = parse_time("2028-02-29T12:00:00Z").unwrap();
/// assert_eq!(minus_years(leap, 1), parse_time("2027-02-28T12:00:00Z"));
/// assert_eq!(minus_years(leap, 4), parse_time("2024-02-29T12:00:00Z"));
/// ```
pub fn minus_years(ms: i64, years: u32) -> Option<i64> {
    let at: Zoned = Timestamp::from_millisecond(ms)
        .ok()?
        .to_zoned(TimeZone::UTC);
    let years = i64::from(years);
    let earlier = at.checked_sub(Span::new().try_years(years).ok()?).ok()?;
    Some(earlier.timestamp().as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_across_eras_and_leap_days() {
        for ms in [
            0,
            -1,
            951_782_400_000,     // 2000-02-29
            4_107_542_399_999,   // 2100-02-28T23:59:59.999
            -62_135_596_800_000, // 0001-01-01
            253_402_300_799_999, // 9999-12-31T23:59:59.999
        ] {
            assert_eq!(parse_time(&format_time(ms)), Some(ms), "{ms}");
        }
        assert_eq!(format_time(-1), "1969-12-31T23:59:59.999Z");
        assert_eq!(format_time(951_782_400_000), "2000-02-29T00:00:00.000Z");
        assert_eq!(format_time(i64::MAX), i64::MAX.to_string());
        assert_eq!(parse_time(&format_time(i64::MAX)), Some(i64::MAX));
    }

    /// The format every existing audit log holds (and hashes): unchanged by the move to
    /// jiff, down to the padding of years and milliseconds.
    #[test]
    fn the_record_format_is_unchanged() {
        assert_eq!(format_time(-62_135_596_800_000), "0001-01-01T00:00:00.000Z");
        assert_eq!(format_time(1_764_063_000_007), "2025-11-25T09:30:00.007Z");
        assert_eq!(format_time(1_764_063_000_000), "2025-11-25T09:30:00.000Z");
    }

    #[test]
    fn minus_years_keeps_the_time_and_clamps_leap_days() {
        let t = parse_time("2030-06-15T08:00:00.5Z");
        assert_eq!(
            t.and_then(|t| minus_years(t, 7)),
            parse_time("2023-06-15T08:00:00.5Z")
        );
        assert_eq!(minus_years(0, 100_000), None);
    }

    const DAY_MS: i64 = 86_400_000;

    #[test]
    fn parses_the_accepted_forms() {
        assert_eq!(parse_time("1970-01-01T01:00:01+01:00"), Some(1000));
        assert_eq!(parse_time("1969-12-31T19:00:01.25-05:00"), Some(1250));
        assert_eq!(
            parse_time("2026-11-25T10:00:04+01:00"),
            parse_time("2026-11-25T09:00:04Z")
        );
        assert_eq!(parse_time("1970-01-02"), Some(DAY_MS));
        assert_eq!(parse_time("1970-01-01T00:00:01Z"), Some(1000));
        assert_eq!(parse_time("1970-01-01T00:00:01.5Z"), Some(1500));
        assert_eq!(parse_time("1970-01-01 00:01:00+00:00"), Some(60_000));
        assert_eq!(parse_time("42"), Some(42));
    }

    #[test]
    fn rejects_bad_times() {
        for bad in [
            "",
            "yesterday",
            "2025-02-29",
            "2025-13-01",
            "2025-11-25T25:00:00Z",
            "2025-11-25T10:00:00",
            "2025-11-25T10:00:00.Z",
            "2025-11-25T10:00:00Z[Europe/Paris]",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }
}
