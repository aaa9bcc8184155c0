//! The policy's audit retention schedule as the decision table carries it
//! (`retain audit 7y`, `retain audit for restricted 10y`), and the one question asked of
//! it: until when must a record be kept. Compaction ([`crate::audit::compact`]) and
//! verification of checkpoints read it; `decide` never does.
//!
//! A period is a *minimum*: a record must be kept at least that long after its time.
//! Years are calendar years (the same date N years on, 29 February falling back to
//! 28 February), not 365-day blocks, so `7y` never ends before seven calendar years
//! have passed; every other unit is exact milliseconds.

use serde::{Deserialize, Serialize};

use crate::ids::TierId;

/// Most years a retention period may hold (the compiler refuses longer ones).
pub const MAX_RETENTION_YEARS: u32 = 100;

const DAY_MS: i64 = 86_400_000;

/// A retention period: calendar years plus exact milliseconds (the language writes one
/// of the two: `7y`, or `90d`).
///
/// ```
/// use agentpolicy_runtime::Period;
/// let p = Period { years: 7, ms: 0 };
/// assert_eq!(p.to_string(), "7y");
/// assert_eq!(Period { years: 0, ms: 90 * 86_400_000 }.to_string(), "90d");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Period {
    pub years: u32,
    pub ms: i64,
}

impl Period {
    /// The latest record time that has been kept for this period at `now_ms`: a record
    /// at or before it may go, a later one must stay. `None` when no time qualifies (the
    /// arithmetic left the range of dates).
    ///
    /// ```
    /// use agentpolicy_runtime::Period;
    /// use agentpolicy_runtime::audit::parse_time;
    /// let now = parse_time("2031-03-01T00:00:00Z").unwrap();
    /// let one_year = Period { years: 1, ms: 0 };
    /// assert_eq!(one_year.cutoff(now), parse_time("2030-03-01T00:00:00Z"));
    /// ```
    pub fn cutoff(self, now_ms: i64) -> Option<i64> {
        let back = crate::audit::minus_years(now_ms, self.years)?;
        back.checked_sub(self.ms)
    }

    /// The shortest this period can be, in ms (a year as 365 days).
    pub fn min_ms(self) -> i64 {
        i64::from(self.years)
            .saturating_mul(365 * DAY_MS)
            .saturating_add(self.ms)
    }

    /// The longest this period can be, in ms (a year as 366 days).
    pub fn max_ms(self) -> i64 {
        i64::from(self.years)
            .saturating_mul(366 * DAY_MS)
            .saturating_add(self.ms)
    }

    /// Whether this period is at least as long as `other` whatever the dates.
    pub fn never_shorter_than(self, other: Period) -> bool {
        self.min_ms() >= other.max_ms()
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut parts = Vec::new();
        if self.years > 0 {
            parts.push(format!("{}y", self.years));
        }
        if self.ms != 0 || self.years == 0 {
            let units: [(i64, &str); 6] = [
                (7 * DAY_MS, "w"),
                (DAY_MS, "d"),
                (3_600_000, "h"),
                (60_000, "m"),
                (1_000, "s"),
                (1, "ms"),
            ];
            let (size, unit) = units
                .iter()
                .copied()
                .find(|(size, _)| self.ms % size == 0 && self.ms != 0)
                .unwrap_or((1, "ms"));
            parts.push(format!("{}{unit}", self.ms / size));
        }
        f.write_str(&parts.join(" + "))
    }
}

/// One `retain audit for TIER PERIOD` clause: records of `tier` or a higher tier are
/// kept at least `period`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct TierRetention {
    pub tier: TierId,
    pub period: Period,
}

/// The policy's retention schedule: a default for every record, and per-tier periods.
/// A record is kept for the longest period that applies to it; a record no clause
/// applies to is kept for ever.
///
/// ```
/// use agentpolicy_runtime::{Period, Retention, TierId, TierRetention};
/// use agentpolicy_runtime::audit::parse_time;
/// let schedule = Retention {
///     default: Some(Period { years: 1, ms: 0 }),
///     tiers: vec![TierRetention { tier: TierId(2), period: Period { years: 7, ms: 0 } }],
/// };
/// let now = parse_time("2033-01-01").unwrap();
/// // A record of tier 3 falls under the tier-2 clause and the default: 7 years wins.
/// let rule = schedule.rule_for(Some(TierId(3)), now).unwrap();
/// assert_eq!(rule.period.years, 7);
/// assert_eq!(rule.clause, Some(0));
/// assert_eq!(Some(rule.cutoff_ms), parse_time("2026-01-01"));
/// // A record of tier 1, or with no tier, only under the default.
/// assert_eq!(schedule.rule_for(Some(TierId(1)), now).unwrap().clause, None);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Retention {
    /// `retain audit PERIOD`: every record.
    pub default: Option<Period>,
    /// `retain audit for TIER PERIOD`, in source order, one per tier.
    pub tiers: Vec<TierRetention>,
}

/// The clause that decides how long a record is kept, at a given time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppliedRule {
    pub period: Period,
    /// `None` for the default, `Some(i)` for `tiers[i]`.
    pub clause: Option<usize>,
    /// Records at or before this time have been kept long enough.
    pub cutoff_ms: i64,
}

/// Which tier a record is of, as far as retention can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordTier {
    /// The record names no tier (it touched no labelled data, or is not about a call).
    None,
    Known(TierId),
    /// The record names a tier this table does not have (it was written under another
    /// table): every clause applies, so it is never removed early.
    Unknown,
}

impl Retention {
    /// Whether the schedule has any clause at all.
    pub fn is_empty(&self) -> bool {
        self.default.is_none() && self.tiers.is_empty()
    }

    /// The clause that keeps a record of `tier` longest at `now_ms` (the earliest
    /// cutoff); `None` when no clause applies, or no time qualifies. Ties go to the
    /// default, then to the first clause.
    pub fn rule_for(&self, tier: Option<TierId>, now_ms: i64) -> Option<AppliedRule> {
        let tier = match tier {
            Some(t) => RecordTier::Known(t),
            None => RecordTier::None,
        };
        self.rule_for_record(tier, now_ms)
    }

    /// [`Retention::rule_for`] for a record whose tier may be unknown to the table.
    pub fn rule_for_record(&self, tier: RecordTier, now_ms: i64) -> Option<AppliedRule> {
        let applies = |clause: &TierRetention| match tier {
            RecordTier::None => false,
            RecordTier::Known(t) => t >= clause.tier,
            RecordTier::Unknown => true,
        };
        let candidates = self.default.map(|p| (p, None)).into_iter().chain(
            self.tiers
                .iter()
                .enumerate()
                .filter(|(_, c)| applies(c))
                .map(|(i, c)| (c.period, Some(i))),
        );
        let mut best: Option<AppliedRule> = None;
        for (period, clause) in candidates {
            let cutoff_ms = period.cutoff(now_ms)?;
            if best.is_none_or(|b| cutoff_ms < b.cutoff_ms) {
                best = Some(AppliedRule {
                    period,
                    clause,
                    cutoff_ms,
                });
            }
        }
        best
    }

    /// The clause as the policy writes it: `retain audit 7y`, `retain audit for
    /// restricted 10y`.
    pub fn clause_text(&self, clause: Option<usize>, tiers: &[String]) -> String {
        match clause.and_then(|i| self.tiers.get(i)) {
            None => match self.default {
                Some(p) => format!("retain audit {p}"),
                None => "retain audit (none)".to_string(),
            },
            Some(c) => format!(
                "retain audit for {} {}",
                tiers.get(c.tier.index()).map_or("?", String::as_str),
                c.period
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::audit::parse_time;

    fn years(n: u32) -> Period {
        Period { years: n, ms: 0 }
    }

    fn days(n: i64) -> Period {
        Period {
            years: 0,
            ms: n * DAY_MS,
        }
    }

    #[test]
    fn periods_read_as_written() {
        assert_eq!(years(7).to_string(), "7y");
        assert_eq!(days(90).to_string(), "90d");
        assert_eq!(days(14).to_string(), "2w");
        assert_eq!(
            Period {
                years: 1,
                ms: 3_600_000
            }
            .to_string(),
            "1y + 1h"
        );
    }

    #[test]
    fn a_year_is_never_shorter_than_a_calendar_year() {
        // 2024 is a leap year: one year before 2025-01-01 is 366 days back.
        let now = parse_time("2025-01-01").unwrap();
        assert_eq!(years(1).cutoff(now), parse_time("2024-01-01"));
        assert_eq!(days(365).cutoff(now), parse_time("2024-01-02"));
        assert!(days(366).never_shorter_than(years(1)));
        assert!(!days(365).never_shorter_than(years(1)));
        assert!(years(1).never_shorter_than(days(365)));
    }

    #[test]
    fn the_longest_applicable_clause_wins_and_unknown_tiers_get_the_longest() {
        let schedule = Retention {
            default: Some(years(1)),
            tiers: vec![
                TierRetention {
                    tier: TierId(1),
                    period: years(3),
                },
                TierRetention {
                    tier: TierId(2),
                    period: years(10),
                },
            ],
        };
        let now = parse_time("2030-06-01").unwrap();
        let clause = |tier| schedule.rule_for_record(tier, now).map(|r| r.clause);
        assert_eq!(clause(RecordTier::None), Some(None));
        assert_eq!(clause(RecordTier::Known(TierId(0))), Some(None));
        assert_eq!(clause(RecordTier::Known(TierId(1))), Some(Some(0)));
        assert_eq!(clause(RecordTier::Known(TierId(5))), Some(Some(1)));
        assert_eq!(clause(RecordTier::Unknown), Some(Some(1)));
        // Without a default, a record no clause applies to is kept for ever.
        let tiers_only = Retention {
            default: None,
            tiers: schedule.tiers.clone(),
        };
        assert_eq!(tiers_only.rule_for(None, now), None);
        assert_eq!(tiers_only.rule_for(Some(TierId(0)), now), None);
    }
}
