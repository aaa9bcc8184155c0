//! Exact values as text, both ways: money in cents, numbers and percentages in
//! millionths, durations in milliseconds, read from and written as a person writes them
//! (`$25,000`, `0.85`, `20%`, `15m`). One parser and one formatter, used by the policy
//! language, request and trace JSON, audit records, counterexamples, the access matrix
//! and the language server's hovers, so a value reads the same everywhere and every
//! value written can be read back.

/// `1234567` is `1,234,567`.
pub fn group_thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// Cents as `$1,234.56`, always with the cents (counterexamples, audit figures).
///
/// ```
/// assert_eq!(agentpolicy_runtime::values::money(2_500_000), "$25,000.00");
/// assert_eq!(agentpolicy_runtime::values::money(-5), "-$0.05");
/// ```
pub fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}${}.{:02}", group_thousands(c / 100), c % 100)
}

/// Cents as a policy writes them: `$25,000`, or `$12.50` when there are cents.
///
/// ```
/// assert_eq!(agentpolicy_runtime::values::money_as_written(2_500_000), "$25,000");
/// assert_eq!(agentpolicy_runtime::values::money_as_written(1_250), "$12.50");
/// ```
pub fn money_as_written(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    match c % 100 {
        0 => format!("{sign}${}", group_thousands(c / 100)),
        rest => format!("{sign}${}.{rest:02}", group_thousands(c / 100)),
    }
}

/// Millionths as an exact decimal: `850000` is `0.85`.
///
/// ```
/// assert_eq!(agentpolicy_runtime::values::decimal(850_000), "0.85");
/// assert_eq!(agentpolicy_runtime::values::decimal(-3_000_000), "-3");
/// ```
pub fn decimal(millionths: i64) -> String {
    let sign = if millionths < 0 { "-" } else { "" };
    let m = millionths.unsigned_abs();
    let frac = m % 1_000_000;
    if frac == 0 {
        format!("{sign}{}", m / 1_000_000)
    } else {
        let f = format!("{frac:06}");
        format!("{sign}{}.{}", m / 1_000_000, f.trim_end_matches('0'))
    }
}

/// Millionths as a percentage: `200000` is `20%`, `125000` is `12.5%`.
///
/// ```
/// assert_eq!(agentpolicy_runtime::values::percent(200_000), "20%");
/// assert_eq!(agentpolicy_runtime::values::percent(125_000), "12.5%");
/// ```
pub fn percent(millionths: i64) -> String {
    format!("{}%", decimal(millionths.saturating_mul(100)))
}

/// Milliseconds in the largest unit that divides them exactly, as the language writes
/// durations: `1h`, `90m`, `7y`, `500ms`; zero is `0s`.
///
/// ```
/// assert_eq!(agentpolicy_runtime::values::duration(900_000), "15m");
/// assert_eq!(agentpolicy_runtime::values::duration(1_500), "1500ms");
/// assert_eq!(agentpolicy_runtime::values::duration(0), "0s");
/// ```
pub fn duration(ms: i64) -> String {
    const UNITS: &[(&str, i64)] = &[
        ("y", 365 * 86_400_000),
        ("w", 7 * 86_400_000),
        ("d", 86_400_000),
        ("h", 3_600_000),
        ("m", 60_000),
        ("s", 1_000),
    ];
    if ms == 0 {
        return "0s".to_string();
    }
    for (unit, size) in UNITS {
        if ms % size == 0 {
            return format!("{}{unit}", ms / size);
        }
    }
    format!("{ms}ms")
}

/// `12.5` with `scale` 6 → 12_500_000; `-0.5` → -500_000. `None` on overflow of `i64`,
/// too many decimals, or anything but digits, `_` and `,` separators and one `.`.
pub fn parse_decimal(text: &str, scale: u32) -> Option<i64> {
    let (negative, text) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let magnitude = parse_scaled(text, scale)?;
    i64::try_from(if negative { -magnitude } else { magnitude }).ok()
}

/// The exact value of a decimal text times `10^scale`, computed wide so that scaling
/// does not overflow before the final range check.
fn parse_scaled(text: &str, scale: u32) -> Option<i128> {
    let cleaned: String = text.chars().filter(|c| *c != '_' && *c != ',').collect();
    let (int_part, frac_part) = match cleaned.split_once('.') {
        Some((i, f)) => (i, f),
        None => (cleaned.as_str(), ""),
    };
    if frac_part.len() > scale as usize || int_part.is_empty() || int_part.len() > 30 {
        return None;
    }
    if !int_part
        .bytes()
        .chain(frac_part.bytes())
        .all(|b| b.is_ascii_digit())
    {
        return None;
    }
    let int: i128 = int_part.parse().ok()?;
    let mut frac: i128 = if frac_part.is_empty() {
        0
    } else {
        frac_part.parse().ok()?
    };
    for _ in frac_part.len()..scale as usize {
        frac = frac.checked_mul(10)?;
    }
    int.checked_mul(10i128.checked_pow(scale)?)?
        .checked_add(frac)
}

/// `12.5%` → 125_000 millionths. At most 4 decimals, so the value is exact.
pub fn parse_percent(text: &str) -> Option<i64> {
    // p% is p/100, and millionths of that are p * 10^4.
    parse_decimal(text.trim_end_matches('%'), 4)
}

/// `$10,000` → 1_000_000 cents; `$1.5M` → 150_000_000 cents; `-$0.05` (what [`money`]
/// writes) and `$-0.05` → -5 cents. `None` when the amount is not a whole number of cents
/// or does not fit in an `i64` of cents.
pub fn parse_money(text: &str) -> Option<i64> {
    let (negative, body) = match text.strip_prefix("-$") {
        Some(rest) => (true, rest),
        None => match text.strip_prefix("$-") {
            Some(rest) => (true, rest),
            None => (false, text.strip_prefix('$')?),
        },
    };
    let (digits, multiplier) = match body.chars().last()? {
        'K' => (&body[..body.len() - 1], 1_000i128),
        'M' => (&body[..body.len() - 1], 1_000_000),
        'B' => (&body[..body.len() - 1], 1_000_000_000),
        _ => (body, 1),
    };
    // In hundred-millionths of a dollar, so `$1.25M` and `$99.95` are both exact; the
    // result must still be a whole number of cents.
    let scaled = parse_scaled(digits, 8)?.checked_mul(multiplier)?;
    if scaled % 1_000_000 != 0 {
        return None;
    }
    let cents = scaled / 1_000_000;
    i64::try_from(if negative { -cents } else { cents }).ok()
}

/// `15m` → 900_000 ms. Years are 365 days.
pub fn parse_duration(text: &str) -> Option<i64> {
    let split = text.find(|c: char| c.is_ascii_alphabetic())?;
    let (digits, unit) = text.split_at(split);
    let count: i64 = digits.replace('_', "").parse().ok()?;
    let unit_ms: i64 = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        "w" => 7 * 86_400_000,
        "y" => 365 * 86_400_000,
        _ => return None,
    };
    count.checked_mul(unit_ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the one money formatter prints, the parser reads back, and one sign only.
    #[test]
    fn signed_money_reads_what_money_prints() {
        for cents in [
            0,
            1,
            -1,
            99,
            -100,
            123_456_789,
            -123_456_789,
            i64::MAX,
            i64::MIN,
            i64::MIN + 1,
        ] {
            assert_eq!(parse_money(&money(cents)), Some(cents), "{}", money(cents));
            let written = money_as_written(cents);
            assert_eq!(parse_money(&written), Some(cents), "{written}");
        }
        assert_eq!(money(-1), "-$0.01");
        assert_eq!(parse_money("$-0.01"), Some(-1));
        assert_eq!(parse_money("-$1.5K"), Some(-150_000));
        for bad in [
            "--$1", "$--1", "-$-1", "$+1", "-$+1", "-1", "$", "-$", "$1.001",
        ] {
            assert_eq!(parse_money(bad), None, "{bad}");
        }
    }

    #[test]
    fn what_is_written_reads_back() {
        for cents in [
            0,
            1,
            -1,
            5,
            -5,
            99,
            1_250,
            2_500_000,
            -2_500_000,
            i64::MAX,
            i64::MIN + 1,
        ] {
            assert_eq!(parse_money(&money(cents)), Some(cents), "{}", money(cents));
            assert_eq!(
                parse_money(&money_as_written(cents)),
                Some(cents),
                "{}",
                money_as_written(cents)
            );
        }
        for m in [0, 1, -1, 850_000, 1_000_000, -3_000_000, 123_456_789] {
            assert_eq!(parse_decimal(&decimal(m), 6), Some(m), "{}", decimal(m));
        }
        for m in [0, 1, 200_000, 125_000, 1_000_000] {
            assert_eq!(parse_percent(&percent(m)), Some(m), "{}", percent(m));
        }
        for ms in [0, 1, 1_500, 900_000, 3_600_000, 7 * 365 * 86_400_000] {
            assert_eq!(parse_duration(&duration(ms)), Some(ms), "{}", duration(ms));
        }
    }

    #[test]
    fn money_is_exact_in_cents() {
        assert_eq!(parse_money("$10,000"), Some(1_000_000));
        assert_eq!(parse_money("$99.95"), Some(9_995));
        assert_eq!(parse_money("$1.5M"), Some(150_000_000));
        assert_eq!(parse_money("$2K"), Some(200_000));
        assert_eq!(parse_money("$0.001"), None);
        assert_eq!(parse_money("$99999999999999999999"), None);
        assert_eq!(parse_money("$92,233,720,368,547,758.07"), Some(i64::MAX));
        assert_eq!(parse_percent("12.5%"), Some(125_000));
        assert_eq!(parse_percent("0.0001%"), Some(1));
        assert_eq!(parse_percent("0.00001%"), None);
    }

    #[test]
    fn decimals_and_durations() {
        assert_eq!(parse_decimal("0.85", 6), Some(850_000));
        assert_eq!(parse_decimal("50_000", 6), Some(50_000_000_000));
        assert_eq!(parse_decimal("0.1234567", 6), None);
        assert_eq!(parse_duration("15m"), Some(900_000));
        assert_eq!(parse_duration("7y"), Some(7 * 365 * 86_400_000));
    }
}
