//! An agent's lifecycle stage and promotion criteria (`stage`, `promote`): checks them
//! and applies the stage to the model. `stage shadow` sets the agent's mode to shadow;
//! `stage supervised to ROUTE` turns every `allow` rule of the agent into an `escalate`
//! rule to `ROUTE`, so codegen, the interpreter and the verifier all see escalations
//! and nothing downstream needs to know about stages. Criteria are only checked here;
//! `agentpolicy promote-check` evaluates them on an audit log.

use super::diagnostics::repeated_clause;
use super::names::NameKind;
use super::{Resolver, loc};
use crate::diagnostics::{Code, Diagnostic, FileId, Label};
use crate::model::{AgentId, CriterionDef, PromotionDef, RouteId, StageDef};
use crate::syntax::ast::{self, LiteralValue, Mode, PromoteMetric, RuleKind, Stage, TextRange};

/// The lifecycle clauses of one agent, gathered while its members are walked.
#[derive(Default)]
pub(super) struct Clauses<'a> {
    pub stage: Option<(&'a ast::StageDecl, TextRange)>,
    pub mode: Option<TextRange>,
    pub promotes: Vec<(&'a ast::PromoteDecl, TextRange)>,
}

impl Resolver {
    pub(super) fn lifecycle(
        &mut self,
        id: AgentId,
        a: &ast::AgentDecl,
        clauses: &Clauses<'_>,
        file: FileId,
    ) {
        let stage = clauses
            .stage
            .and_then(|(decl, range)| self.stage(id, a, decl, range, clauses.mode, file));
        let mut seen: Vec<(Stage, TextRange)> = Vec::new();
        for &(p, range) in &clauses.promotes {
            if let Some((_, first)) = seen.iter().find(|(t, _)| *t == p.target) {
                self.report(
                    repeated_clause(
                        file,
                        &format!("agent `{}`", a.name.text),
                        &format!("promote to {}", p.target.keyword()),
                        range,
                        Some(*first),
                    )
                    .with_help("join their criteria with `and` in one clause"),
                );
                continue;
            }
            seen.push((p.target, range));
            if clauses.stage.is_some() && stage.is_none() {
                // The stage clause itself is in error (reported): nothing to compare with.
                continue;
            }
            if let Some(promotion) = self.promotion(a, stage, p, range, file) {
                self.model.agents[id.index()].promotions.push(promotion);
            }
        }
    }

    /// Checks `stage` and applies it; returns the stage when it is valid.
    fn stage(
        &mut self,
        id: AgentId,
        a: &ast::AgentDecl,
        decl: &ast::StageDecl,
        range: TextRange,
        mode: Option<TextRange>,
        file: FileId,
    ) -> Option<Stage> {
        if let Some(mode_range) = mode {
            self.report(
                Diagnostic::new(
                    Code::StageAndMode,
                    format!("agent `{}` has both `stage` and `mode`", a.name.text),
                    Label::new(file, mode_range, "`mode` here"),
                )
                .with_secondary(Label::new(file, range, "the stage already sets the mode"))
                .with_help("remove `mode`: `stage shadow` runs the agent in shadow mode, `stage supervised` and `stage autonomous` enforce"),
            );
        }
        let route = match (decl.stage, &decl.route) {
            (Stage::Supervised, Some(route)) => {
                Some(RouteId(self.resolve(route, file, &[NameKind::Route])?))
            }
            (Stage::Supervised, None) => {
                self.report(
                    Diagnostic::new(
                        Code::StageRoute,
                        format!(
                            "agent `{}` is supervised, but the stage does not say who approves its calls",
                            a.name.text
                        ),
                        Label::new(file, range, "no `to ROUTE`"),
                    )
                    .with_help("name the escalation route every granted call goes to: `stage supervised to supervising_partner`"),
                );
                return None;
            }
            (other, Some(route)) => {
                self.report(
                    Diagnostic::new(
                        Code::StageRoute,
                        format!(
                            "only `stage supervised` takes a route; this is `stage {}`",
                            other.keyword()
                        ),
                        Label::new(file, route.range, "route here"),
                    )
                    .with_help(format!(
                        "remove `to {}`, or make the stage `supervised`",
                        route.text
                    )),
                );
                return None;
            }
            (_, None) => None,
        };
        let agent = &mut self.model.agents[id.index()];
        agent.mode = if decl.stage == Stage::Shadow {
            Mode::Shadow
        } else {
            Mode::Enforce
        };
        agent.stage = Some(StageDef {
            stage: decl.stage,
            route,
            loc: loc(file, range),
        });
        if let Some(route) = route {
            for &rule in &agent.rules {
                let r = &mut self.model.rules[rule.index()];
                if r.kind == RuleKind::Allow {
                    r.kind = RuleKind::Escalate;
                    r.route = Some(route);
                }
            }
        }
        Some(decl.stage)
    }

    fn promotion(
        &mut self,
        a: &ast::AgentDecl,
        stage: Option<Stage>,
        p: &ast::PromoteDecl,
        range: TextRange,
        file: FileId,
    ) -> Option<PromotionDef> {
        let target_label = Label::new(file, p.target_range, "target stage");
        let Some(stage) = stage else {
            self.report(
                Diagnostic::new(
                    Code::InvalidPromotion,
                    format!(
                        "agent `{}` has promotion criteria but no stage to promote from",
                        a.name.text
                    ),
                    target_label,
                )
                .with_help("declare the agent's current stage: `stage shadow`, `stage supervised to ROUTE` or `stage autonomous`"),
            );
            return None;
        };
        if p.target <= stage {
            self.report(
                Diagnostic::new(
                    Code::InvalidPromotion,
                    format!(
                        "agent `{}` is at stage `{}`; a promotion to `{}` does not widen its authority",
                        a.name.text,
                        stage.keyword(),
                        p.target.keyword()
                    ),
                    target_label,
                )
                .with_help(match stage.next() {
                    Some(next) => format!("promote to a later stage: `promote to {} when ...`", next.keyword()),
                    None => "`autonomous` is the last stage: remove the clause".to_owned(),
                }),
            );
            return None;
        }
        let windows: Vec<(i64, TextRange)> = p.criteria.iter().filter_map(|c| c.window).collect();
        let window = match windows.as_slice() {
            [(n, _)] if *n >= 1 => Some(*n as u64),
            [(_, r)] => {
                self.report(
                    Diagnostic::new(
                        Code::PromotionWindow,
                        "a promotion needs at least one decision of evidence",
                        Label::new(file, *r, "zero decisions"),
                    )
                    .with_help(
                        "count the decisions the criteria are measured over: `over 500 decisions`",
                    ),
                );
                None
            }
            [] => {
                self.report(
                    Diagnostic::new(
                        Code::PromotionWindow,
                        "these promotion criteria do not say how many decisions they are measured over",
                        Label::new(file, range, "no `over N decisions`"),
                    )
                    .with_help("add the window after a criterion: `promote to supervised when shadow_agreement >= 98% over 500 decisions and errors < 1%`"),
                );
                None
            }
            [(_, first), (_, second), ..] => {
                self.report(
                    Diagnostic::new(
                        Code::PromotionWindow,
                        "a promotion clause has one window, but this one has two `over N decisions`",
                        Label::new(file, *second, "second window"),
                    )
                    .with_secondary(Label::new(file, *first, "first window"))
                    .with_help("keep one `over N decisions`: every criterion of the clause is measured over the same decisions"),
                );
                None
            }
        };
        let mut criteria = Vec::new();
        let mut valid = true;
        for c in &p.criteria {
            match criterion_value(c) {
                Some(value) => criteria.push(CriterionDef {
                    metric: c.metric,
                    op: c.op,
                    value,
                    loc: loc(file, c.range),
                }),
                None => {
                    valid = false;
                    let help = if c.metric.is_rate() {
                        format!(
                            "`{}` is a share of decisions: a percentage from 0% to 100%, such as `{} >= 98%`",
                            c.metric.keyword(),
                            c.metric.keyword()
                        )
                    } else {
                        "`denials` counts denied decisions: a whole number, such as `denials <= 5`"
                            .to_owned()
                    };
                    self.report(
                        Diagnostic::new(
                            Code::InvalidCriterion,
                            format!(
                                "`{}` cannot be compared with this value",
                                c.metric.keyword()
                            ),
                            Label::new(file, c.value.range, "out of range or of the wrong kind"),
                        )
                        .with_help(help),
                    );
                }
            }
        }
        let window = window?;
        valid.then_some(PromotionDef {
            to: p.target,
            window,
            criteria,
            loc: loc(file, range),
        })
    }
}

/// The criterion's value in the model's units, `None` when it does not fit the metric.
fn criterion_value(c: &ast::Criterion) -> Option<i64> {
    match (&c.value.value, c.metric) {
        (LiteralValue::Percent(p) | LiteralValue::Number(p), m)
            if m.is_rate() && (0..=1_000_000).contains(p) =>
        {
            Some(*p)
        }
        (LiteralValue::Number(n), PromoteMetric::Denials) if *n >= 0 && n % 1_000_000 == 0 => {
            Some(n / 1_000_000)
        }
        _ => None,
    }
}
