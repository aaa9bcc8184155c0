//! The audit retention schedule: `retain audit PERIOD` and `retain audit for TIER
//! PERIOD` items, checked and collected into `Model::retention`.
//!
//! A period is how long records must be *kept* (a minimum). A tier clause applies to
//! records of that tier and every higher one; a record is kept for the longest period
//! that applies. Checks: a period of zero, under a day or over 100 years (AP0066); the
//! default or one tier given twice (AP0065); a tier clause that can never be the longest
//! that applies, because the default or a lower tier's clause is at least as long
//! (AP0067, a warning: the clause reads as a promise it does not keep).

use agentpolicy_runtime::{MAX_RETENTION_YEARS, Period};

use super::names::NameKind;
use super::{FileInput, Resolver, loc};
use crate::diagnostics::{Code, Diagnostic, Label};
use crate::model::{RetainRule, TierId};
use crate::syntax::ast::{ItemKind, RetainDecl};

const DAY_MS: i64 = 86_400_000;

impl Resolver {
    pub(super) fn resolve_retention(&mut self, files: &[FileInput<'_>]) {
        let mut rules: Vec<RetainRule> = Vec::new();
        for file in files {
            for item in &file.tree.items {
                let ItemKind::Retain(decl) = &item.kind else {
                    continue;
                };
                let Some(period) = self.retention_period(decl, file.id) else {
                    continue;
                };
                let tier = match &decl.tier {
                    None => None,
                    Some(name) => match self.resolve(name, file.id, &[NameKind::Tier]) {
                        Some(t) => Some(TierId(t)),
                        None => continue,
                    },
                };
                let at = loc(file.id, item.range);
                if let Some(first) = rules.iter().find(|r| r.tier == tier) {
                    let what = match &decl.tier {
                        Some(name) => format!("tier `{}` has two retention periods", name.text),
                        None => "the default audit retention is set twice".to_string(),
                    };
                    self.report(
                        Diagnostic::new(
                            Code::RepeatedRetention,
                            what,
                            Label::new(file.id, item.range, "second one"),
                        )
                        .with_secondary(Label::new(first.loc.file, first.loc.range, "first one"))
                        .with_help(
                            "keep one period: the longest the law or your own rules require",
                        ),
                    );
                    continue;
                }
                rules.push(RetainRule {
                    tier,
                    years: period.years,
                    ms: period.ms,
                    loc: at,
                });
            }
        }
        self.check_retention_effect(&rules);
        self.model.retention = rules;
    }

    /// The period of a clause, or `None` (reported) when it is out of range.
    fn retention_period(
        &mut self,
        decl: &RetainDecl,
        file: crate::diagnostics::FileId,
    ) -> Option<Period> {
        let p = &decl.period;
        let problem = if p.years == 0 && p.ms == 0 {
            Some("a retention period of zero keeps nothing")
        } else if p.years == 0 && p.ms < DAY_MS {
            Some("a retention period under a day is not a retention schedule")
        } else if p.years > u64::from(MAX_RETENTION_YEARS)
            || p.ms > i64::from(MAX_RETENTION_YEARS) * 365 * DAY_MS
        {
            Some("a retention period over 100 years is out of range")
        } else {
            None
        };
        if let Some(message) = problem {
            self.report(
                Diagnostic::new(
                    Code::InvalidRetention,
                    format!("{message}: `{}`", p.text),
                    Label::new(file, p.range, "out of range"),
                )
                .with_help("give how long records must be kept, from 1d to 100y: `retain audit 7y`, `retain audit 90d`"),
            );
            return None;
        }
        Some(Period {
            years: u32::try_from(p.years).ok()?,
            ms: p.ms,
        })
    }

    /// AP0067: a tier clause that never decides.
    fn check_retention_effect(&mut self, rules: &[RetainRule]) {
        let period = |r: &RetainRule| Period {
            years: r.years,
            ms: r.ms,
        };
        for r in rules {
            let Some(tier) = r.tier else { continue };
            // The default, or a clause of a lower tier: both apply to every record this
            // clause applies to.
            let covering = rules.iter().find(|o| {
                !std::ptr::eq(*o, r)
                    && o.tier.is_none_or(|t| t < tier)
                    && period(o).never_shorter_than(period(r))
            });
            let Some(o) = covering else { continue };
            let tier_name = self
                .model
                .tiers
                .get(tier.index())
                .map_or("?", |t| t.name.as_str());
            let (what, label): (String, &str) = match o.tier {
                None => (
                    format!(
                        "records of tier `{tier_name}` are kept for the default {} anyway",
                        period(o)
                    ),
                    "the default",
                ),
                Some(t) => (
                    format!(
                        "records of tier `{tier_name}` are kept for {} anyway, by the clause for the lower tier `{}`",
                        period(o),
                        self.model
                            .tiers
                            .get(t.index())
                            .map_or("?", |t| t.name.as_str())
                    ),
                    "a clause for a lower tier",
                ),
            };
            self.report(
                Diagnostic::new(
                    Code::RetentionWithoutEffect,
                    format!(
                        "`retain audit for {tier_name} {}` never decides: {what}",
                        period(r)
                    ),
                    Label::new(r.loc.file, r.loc.range, "never the longest period that applies"),
                )
                .with_secondary(Label::new(o.loc.file, o.loc.range, label))
                .with_help("a record is kept for the longest period that applies to it, and a tier's clause also applies to every higher tier: lengthen this period or remove the clause"),
            );
        }
    }
}
