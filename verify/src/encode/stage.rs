//! A cell's rule stage: which deny, escalate and allow entries match, and the outcome rank
//! that makes (missing values match deny and escalate entries, not allow entries).
//!
//! It must not know about properties: those live in the verifier's sibling modules.

use agentpolicy_runtime as rt;

use z3::ast::{Bool, Int};

use super::*;

/// Which entries of a cell match, and what that makes the rule stage decide.
#[derive(Debug, Clone)]
pub struct RuleStage {
    pub deny: Vec<Bool>,
    pub escalate: Vec<Bool>,
    pub allow: Vec<Bool>,
    pub any_deny: Bool,
    pub any_escalate: Bool,
    pub any_allow: Bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Deny,
    Escalate,
    Allow,
}

fn entry(
    e: &rt::Entry,
    kind: Kind,
    req: &SymRequest,
    texts: TextMap<'_>,
    tests: TextTests<'_>,
) -> Option<Bool> {
    let Some(cond) = &e.condition else {
        return Some(Bool::from_bool(true));
    };
    let (holds, known) = condition(cond, req, texts, tests)?;
    Some(match kind {
        // Fail safe: an unknown condition matches for deny and escalate.
        Kind::Deny | Kind::Escalate => Bool::or(&[known.not(), holds]),
        Kind::Allow => Bool::and(&[known, holds]),
    })
}

impl RuleStage {
    pub fn new(
        cell: &rt::Cell,
        req: &SymRequest,
        texts: TextMap<'_>,
        tests: TextTests<'_>,
    ) -> Option<RuleStage> {
        let list = |entries: &[rt::Entry], kind| -> Option<Vec<Bool>> {
            entries
                .iter()
                .map(|e| entry(e, kind, req, texts, tests))
                .collect()
        };
        let deny = list(&cell.deny, Kind::Deny)?;
        let escalate = list(&cell.escalate, Kind::Escalate)?;
        let allow = list(&cell.allow, Kind::Allow)?;
        Some(RuleStage {
            any_deny: Bool::or(&deny),
            any_escalate: Bool::or(&escalate),
            any_allow: Bool::or(&allow),
            deny,
            escalate,
            allow,
        })
    }

    pub fn is_allow(&self) -> Bool {
        Bool::and(&[
            self.any_deny.not(),
            self.any_escalate.not(),
            self.any_allow.clone(),
        ])
    }

    pub fn is_escalate(&self) -> Bool {
        Bool::and(&[self.any_deny.not(), self.any_escalate.clone()])
    }

    /// Not a deny: allow or escalate.
    pub fn is_permitted(&self) -> Bool {
        Bool::or(&[self.is_allow(), self.is_escalate()])
    }

    /// The outcome as a rank: [`ALLOW`], [`ESCALATE`] or [`DENY`] (a matching deny, or no
    /// matching rule).
    pub fn rank(&self) -> Int {
        self.any_deny.ite(
            &Int::from_i64(DENY),
            &self.any_escalate.ite(
                &Int::from_i64(ESCALATE),
                &self
                    .any_allow
                    .ite(&Int::from_i64(ALLOW), &Int::from_i64(DENY)),
            ),
        )
    }

    /// The cell escalates, and the escalation ends in an allow if nobody answers: as
    /// the engine resolves timeouts (`engine::unattended`), some matching escalate
    /// entry's route has a timeout, and every matching entry's route that has a timeout
    /// says `then allow`. `cell` is the cell this stage was built from.
    pub fn is_unattended_allow(&self, data: &rt::TableData, cell: &rt::Cell) -> Bool {
        let mut allows = Vec::new();
        let mut denies = Vec::new();
        for (entry, matched) in cell.escalate.iter().zip(&self.escalate) {
            let route = data
                .rules
                .get(entry.rule.index())
                .and_then(|r| r.route)
                .and_then(|id| data.routes.get(id.index()));
            let Some(route) = route.filter(|r| r.timeout_ms.is_some()) else {
                continue;
            };
            if route.timeout_outcome == Some(rt::TimeoutOutcome::Allow) {
                allows.push(matched.clone());
            } else {
                denies.push(matched.not());
            }
        }
        Bool::and(&[self.any_deny.not(), Bool::or(&allows), Bool::and(&denies)])
    }

    /// Allowed without a human: allowed, or escalated to routes whose timeout allows.
    pub fn is_allow_without_human(&self, data: &rt::TableData, cell: &rt::Cell) -> Bool {
        Bool::or(&[self.is_allow(), self.is_unattended_allow(data, cell)])
    }

    /// [`rank`](Self::rank) with an escalation that times out to allow between allow and
    /// an escalation that waits for a person: `ALLOW` 0, unattended allow 1, `ESCALATE`
    /// 2, `DENY` 3 (monotone thresholds compare outcomes by how permissive they are).
    pub fn permissiveness(&self, data: &rt::TableData, cell: &rt::Cell) -> Int {
        self.any_deny.ite(
            &Int::from_i64(3),
            &self.is_unattended_allow(data, cell).ite(
                &Int::from_i64(1),
                &self.any_escalate.ite(
                    &Int::from_i64(2),
                    &self.any_allow.ite(&Int::from_i64(0), &Int::from_i64(3)),
                ),
            ),
        )
    }

    fn matches(&self, kind: Kind) -> &[Bool] {
        match kind {
            Kind::Deny => &self.deny,
            Kind::Escalate => &self.escalate,
            Kind::Allow => &self.allow,
        }
    }

    /// The entry at `index` of the `kind` list takes part in the decision: it is the
    /// deciding deny or allow entry, or a matching escalate entry (whose route is added)
    /// when no deny matches.
    pub fn decides(&self, kind: Kind, index: usize) -> Bool {
        let list = self.matches(kind);
        let Some(this) = list.get(index) else {
            return Bool::from_bool(false);
        };
        let earlier: Vec<Bool> = list.iter().take(index).map(Bool::not).collect();
        let mut parts = vec![this.clone()];
        match kind {
            Kind::Deny => parts.extend(earlier),
            Kind::Escalate => parts.push(self.any_deny.not()),
            Kind::Allow => {
                parts.push(self.any_deny.not());
                parts.push(self.any_escalate.not());
                parts.extend(earlier);
            }
        }
        Bool::and(&parts)
    }
}
