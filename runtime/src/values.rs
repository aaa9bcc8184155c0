//! Exact values as a person writes them: money with thousands separators, numbers in
//! millionths as decimals, durations in the largest unit the language has that divides
//! them. One implementation for counterexamples, the access matrix and the language
//! server's hovers.

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
/// assert_eq!(agentpolicy::values::money(2_500_000), "$25,000.00");
/// assert_eq!(agentpolicy::values::money(-5), "-$0.05");
/// ```
pub fn money(cents: i64) -> String {
    let sign = if cents < 0 { "-" } else { "" };
    let c = cents.unsigned_abs();
    format!("{sign}${}.{:02}", group_thousands(c / 100), c % 100)
}

/// Cents as a policy writes them: `$25,000`, or `$12.50` when there are cents.
///
/// ```
/// assert_eq!(agentpolicy::values::money_as_written(2_500_000), "$25,000");
/// assert_eq!(agentpolicy::values::money_as_written(1_250), "$12.50");
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
/// assert_eq!(agentpolicy::values::decimal(850_000), "0.85");
/// assert_eq!(agentpolicy::values::decimal(-3_000_000), "-3");
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

/// Milliseconds in the largest unit that divides them exactly, as the language writes
/// durations: `1h`, `90m`, `7y`, `500ms`; zero is `0s`.
///
/// ```
/// assert_eq!(agentpolicy::values::duration(900_000), "15m");
/// assert_eq!(agentpolicy::values::duration(1_500), "1500ms");
/// assert_eq!(agentpolicy::values::duration(0), "0s");
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
