//! Promotion checks: an agent's `promote to` criteria evaluated on the evidence of an
//! audit log (`agentpolicy promote-check`). Takes the model and the log's joined
//! decisions ([`agentpolicy_runtime::audit::evidence`]); returns plain data and changes
//! nothing. The metrics are defined in `docs/lifecycle.md`; every figure is an exact
//! count, and rates are compared in integers (no floating point).
//!
//! The evidence of a stage is the agent's decisions made in that stage's mode: shadow
//! decisions for `stage shadow`, enforced decisions for `stage supervised` (promotion
//! only ever moves an agent forward, so an agent's enforced decisions before it became
//! autonomous were all made under supervision).

use agentpolicy_runtime::Outcome;
use agentpolicy_runtime::audit::DecisionEvidence;
use serde::Serialize;

use crate::model::{AgentDef, CriterionDef, Model, PromoteMetric, PromotionDef, Stage};
use crate::syntax::ast::CompareOp;

/// What the check concluded for one agent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Every criterion holds over a full window: the agent may be promoted.
    Promote,
    /// A full window, and a criterion does not hold.
    Stay,
    /// Fewer decisions in the current stage than the window asks for. Never a pass.
    NotEnoughEvidence,
    /// The agent declares no criteria for its next stage.
    NoCriteria,
    /// The agent is autonomous: there is no later stage.
    FinalStage,
    /// The agent declares no stage.
    NoStage,
}

impl Verdict {
    pub fn describe(self) -> &'static str {
        match self {
            Verdict::Promote => "may be promoted",
            Verdict::Stay => "stays: a criterion is not met",
            Verdict::NotEnoughEvidence => "not enough evidence",
            Verdict::NoCriteria => "no promotion criteria for the next stage",
            Verdict::FinalStage => "autonomous is the last stage",
            Verdict::NoStage => "no stage declared",
        }
    }
}

/// One criterion, measured.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Measured {
    /// The criterion as written (`shadow_agreement >= 98%`).
    pub criterion: String,
    pub metric: &'static str,
    /// The figure: a share in millionths for rates, a count for `denials`; `None` when
    /// the share is undefined (no results reported, no escalations).
    pub value: Option<i64>,
    /// What the figure counts: `49 of 50 decisions`.
    pub basis: String,
    pub pass: bool,
}

/// The check for one agent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentCheck {
    pub agent: String,
    pub stage: Option<&'static str>,
    pub next: Option<&'static str>,
    /// The window the criteria ask for.
    pub window: Option<u64>,
    /// Decisions of the agent in its current stage in the log.
    pub available: u64,
    /// Decisions measured: the most recent `window` of them, or all when fewer.
    pub measured: u64,
    pub criteria: Vec<Measured>,
    pub verdict: Verdict,
}

/// Checks every agent of the model, in declaration order.
pub fn promote_check(model: &Model, decisions: &[DecisionEvidence]) -> Vec<AgentCheck> {
    model
        .agents
        .iter()
        .map(|agent| check_agent(agent, decisions))
        .collect()
}

fn check_agent(agent: &AgentDef, decisions: &[DecisionEvidence]) -> AgentCheck {
    let mut out = AgentCheck {
        agent: agent.name.clone(),
        stage: None,
        next: None,
        window: None,
        available: 0,
        measured: 0,
        criteria: Vec::new(),
        verdict: Verdict::NoStage,
    };
    let Some(stage) = &agent.stage else {
        return out;
    };
    out.stage = Some(stage.stage.keyword());
    let Some(next) = stage.stage.next() else {
        out.verdict = Verdict::FinalStage;
        return out;
    };
    out.next = Some(next.keyword());
    let Some(promotion) = agent.promotions.iter().find(|p| p.to == next) else {
        out.verdict = Verdict::NoCriteria;
        return out;
    };
    let shadow = stage.stage == Stage::Shadow;
    let in_stage: Vec<&DecisionEvidence> = decisions
        .iter()
        .filter(|d| d.agent == agent.name && d.shadow == shadow)
        .collect();
    let window = promotion.window;
    let start = in_stage.len().saturating_sub(window as usize);
    let recent = in_stage.get(start..).unwrap_or_default();
    out.window = Some(window);
    out.available = in_stage.len() as u64;
    out.measured = recent.len() as u64;
    out.criteria = promotion
        .criteria
        .iter()
        .map(|c| measure(c, recent))
        .collect();
    out.verdict = verdict(promotion, &out);
    out
}

fn verdict(promotion: &PromotionDef, check: &AgentCheck) -> Verdict {
    if check.measured < promotion.window {
        Verdict::NotEnoughEvidence
    } else if check.criteria.iter().all(|c| c.pass) {
        Verdict::Promote
    } else {
        Verdict::Stay
    }
}

fn measure(c: &CriterionDef, window: &[&DecisionEvidence]) -> Measured {
    let n = window.len() as u64;
    let count =
        |f: &dyn Fn(&DecisionEvidence) -> bool| window.iter().filter(|d| f(d)).count() as u64;
    let escalated = |d: &DecisionEvidence| d.outcome == Outcome::Escalate;
    let (num, den, basis) = match c.metric {
        PromoteMetric::ShadowAgreement => {
            let agreed = count(&|d| d.human_agrees() == Some(true));
            (
                agreed,
                n,
                format!("{agreed} of {n} decisions agreed with the human"),
            )
        }
        PromoteMetric::Errors => {
            let results = count(&|d| d.result_ok.is_some());
            let errors = count(&|d| d.result_ok == Some(false));
            (
                errors,
                results,
                format!("{errors} of {results} reported results"),
            )
        }
        PromoteMetric::EscalationRate => {
            let e = count(&escalated);
            (e, n, format!("{e} of {n} decisions escalated"))
        }
        PromoteMetric::ApprovalRate => {
            let e = count(&escalated);
            let approved = count(&|d| escalated(d) && d.resolution.as_deref() == Some("approve"));
            (
                approved,
                e,
                format!("{approved} of {e} escalations approved"),
            )
        }
        PromoteMetric::Denials => {
            let denied = count(&|d| d.outcome == Outcome::Deny);
            let criterion = written(c);
            return Measured {
                criterion,
                metric: c.metric.keyword(),
                value: Some(denied as i64),
                basis: format!("{denied} of {n} decisions denied"),
                pass: compare(i128::from(denied), c.op, i128::from(c.value)),
            };
        }
    };
    // A share of nothing is undefined, and undefined is never a pass.
    let (value, pass) = if den == 0 {
        (None, false)
    } else {
        let value = (i128::from(num) * 1_000_000 / i128::from(den)) as i64;
        let pass = compare(
            i128::from(num) * 1_000_000,
            c.op,
            i128::from(c.value) * i128::from(den),
        );
        (Some(value), pass)
    };
    Measured {
        criterion: written(c),
        metric: c.metric.keyword(),
        value,
        basis,
        pass,
    }
}

fn compare(a: i128, op: CompareOp, b: i128) -> bool {
    match op {
        CompareOp::Lt => a < b,
        CompareOp::Le => a <= b,
        CompareOp::Gt => a > b,
        CompareOp::Ge => a >= b,
        CompareOp::Eq => a == b,
        CompareOp::Ne => a != b,
    }
}

/// The criterion as a person writes it.
fn written(c: &CriterionDef) -> String {
    let value = if c.metric.is_rate() {
        percent(c.value)
    } else {
        c.value.to_string()
    };
    format!("{} {} {value}", c.metric.keyword(), c.op.symbol())
}

/// Millionths as a percentage, exact, with up to four decimals: `980000` is `98%`.
pub fn percent(millionths: i64) -> String {
    // 1_000_000 is 100%, so one millionth is 0.0001%.
    let sign = if millionths < 0 { "-" } else { "" };
    let m = millionths.unsigned_abs();
    let (whole, frac) = (m / 10_000, m % 10_000);
    if frac == 0 {
        format!("{sign}{whole}%")
    } else {
        let digits = format!("{frac:04}");
        format!("{sign}{whole}.{}%", digits.trim_end_matches('0'))
    }
}

/// A measured share for people: rounded down to 0.01% (`91.66%` for 11 of 12), so a
/// figure is never shown better than it is. Pass and fail are decided on exact counts.
pub fn figure(millionths: i64) -> String {
    percent(millionths - millionths % 100)
}

#[cfg(test)]
mod tests {
    use super::{figure, percent};

    #[test]
    fn percentages_are_exact() {
        assert_eq!(percent(980_000), "98%");
        assert_eq!(percent(1_000_000), "100%");
        assert_eq!(percent(10_000), "1%");
        assert_eq!(percent(955_000), "95.5%");
        assert_eq!(percent(333_333), "33.3333%");
        assert_eq!(percent(0), "0%");
        assert_eq!(figure(916_666), "91.66%");
        assert_eq!(figure(975_000), "97.5%");
    }
}
