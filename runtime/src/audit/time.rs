//! Timestamps of audit records: milliseconds since the Unix epoch, shown as RFC 3339 in
//! UTC (`2026-11-25T09:30:00.000Z`). Civil-date arithmetic is done here, exactly, so the
//! runtime needs no date crate; it must not read the clock (the engine's `Clock` does).

/// Days since 1970-01-01 of a proleptic Gregorian date.
fn days_from_civil(year: i64, month: i64, day: i64) -> i64 {
    let y = if month <= 2 { year - 1 } else { year };
    let era = if y >= 0 { y } else { y - 399 } / 400;
    let yoe = y - era * 400;
    let mp = if month > 2 { month - 3 } else { month + 9 };
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// The (year, month, day) of a day count since 1970-01-01.
fn civil_from_days(days: i64) -> (i64, i64, i64) {
    let z = days + 719_468;
    let era = if z >= 0 { z } else { z - 146_096 } / 146_097;
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

const DAY_MS: i64 = 86_400_000;

/// `ms` since the epoch as RFC 3339 UTC with milliseconds.
///
/// ```
/// use agentpolicy_runtime::audit::{format_time, parse_time};
/// assert_eq!(format_time(0), "1970-01-01T00:00:00.000Z");
/// assert_eq!(format_time(1_764_063_000_123), "2025-11-25T09:30:00.123Z");
/// assert_eq!(parse_time("2025-11-25T09:30:00.123Z"), Some(1_764_063_000_123));
/// ```
pub fn format_time(ms: i64) -> String {
    let days = ms.div_euclid(DAY_MS);
    let rest = ms.rem_euclid(DAY_MS);
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, s, milli) = (
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000,
    );
    format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}.{milli:03}Z")
}

/// A time given by a person or a tool: milliseconds since the epoch (`1764063000123`), an
/// RFC 3339 UTC time (`2025-11-25T09:30:00Z`, fractions of a second allowed, `Z` or
/// `+00:00`), or a date (`2025-11-25`, meaning its midnight UTC).
pub fn parse_time(text: &str) -> Option<i64> {
    let text = text.trim();
    if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) {
        return text.parse().ok();
    }
    let date = text.get(..10)?;
    let (y, mo, d) = parse_date(date)?;
    let mut ms = days_from_civil(y, mo, d).checked_mul(DAY_MS)?;
    let rest = &text[10..];
    if rest.is_empty() {
        return Some(ms);
    }
    let rest = rest.strip_prefix('T').or_else(|| rest.strip_prefix(' '))?;
    let rest = rest
        .strip_suffix('Z')
        .or_else(|| rest.strip_suffix("+00:00"))?;
    let (hms, frac) = match rest.split_once('.') {
        Some((a, b)) => (a, Some(b)),
        None => (rest, None),
    };
    let mut parts = hms.split(':');
    let h: i64 = number(parts.next()?, 0, 23)?;
    let mi: i64 = number(parts.next()?, 0, 59)?;
    let s: i64 = number(parts.next()?, 0, 60)?;
    if parts.next().is_some() {
        return None;
    }
    ms += ((h * 60 + mi) * 60 + s) * 1000;
    if let Some(frac) = frac {
        if frac.is_empty() || !frac.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let digits: String = frac.chars().chain("000".chars()).take(3).collect();
        ms += digits.parse::<i64>().ok()?;
    }
    Some(ms)
}

/// The same time of day and date `years` calendar years earlier; 29 February falls
/// back to 28 February when the earlier year has none. `None` outside the range of
/// dates `i64` milliseconds hold.
///
/// ```
/// use agentpolicy_runtime::audit::{minus_years, parse_time};
/// let leap = parse_time("2028-02-29T12:00:00Z").unwrap();
/// assert_eq!(minus_years(leap, 1), parse_time("2027-02-28T12:00:00Z"));
/// assert_eq!(minus_years(leap, 4), parse_time("2024-02-29T12:00:00Z"));
/// ```
pub fn minus_years(ms: i64, years: u32) -> Option<i64> {
    let days = ms.div_euclid(DAY_MS);
    let rest = ms.rem_euclid(DAY_MS);
    let (y, mo, d) = civil_from_days(days);
    let year = y.checked_sub(i64::from(years))?;
    let day = d.min(days_in_month(year, mo));
    days_from_civil(year, mo, day)
        .checked_mul(DAY_MS)?
        .checked_add(rest)
}

fn parse_date(date: &str) -> Option<(i64, i64, i64)> {
    let mut parts = date.split('-');
    let y = number(parts.next()?, 0, 9999)?;
    let mo = number(parts.next()?, 1, 12)?;
    let d = number(parts.next()?, 1, 31)?;
    (parts.next().is_none() && d <= days_in_month(y, mo)).then_some((y, mo, d))
}

fn days_in_month(year: i64, month: i64) -> i64 {
    days_from_civil(if month == 12 { year + 1 } else { year }, month % 12 + 1, 1)
        - days_from_civil(year, month, 1)
}

fn number(text: &str, min: i64, max: i64) -> Option<i64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok().filter(|n| (min..=max).contains(n))
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
    }

    #[test]
    fn parses_the_accepted_forms() {
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
            "2025-11-25T10:00Z",
            "2025-11-25T10:00:00.Z",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }
}
