//! Agents: each agent's clauses (owner, purpose, tier ceiling, mode, credentials), its
//! rules with their targets, routes and typed conditions, autonomy, limits and breakers,
//! then its lifecycle (`lifecycle`) and the `deny` rules that can never decide anything.

use super::diagnostics::repeated_clause;
use super::names::NameKind;
use super::{FileInput, Resolver, lifecycle, loc};
use crate::diagnostics::{Code, Diagnostic, FileId, Label};
use crate::model::*;
use crate::syntax::ast::{self, AgentMemberKind, ItemKind, RuleKind, TextRange};

impl Resolver {
    pub(super) fn resolve_agents(&mut self, files: &[FileInput<'_>]) {
        for file in files {
            for item in &file.tree.items {
                let ItemKind::Agent(a) = &item.kind else {
                    continue;
                };
                let Some(i) = self.owns_slot(&a.name, file.id) else {
                    continue;
                };
                self.agent(AgentId(i), a, file.id);
            }
        }
    }

    fn agent(&mut self, id: AgentId, a: &ast::AgentDecl, file: FileId) {
        let mut seen: Vec<(&'static str, TextRange)> = Vec::new();
        let mut once = |this: &mut Self, clause: &'static str, range: TextRange| {
            if let Some((_, first)) = seen.iter().find(|(c, _)| *c == clause) {
                this.report(repeated_clause(
                    file,
                    &format!("agent `{}`", a.name.text),
                    clause,
                    range,
                    Some(*first),
                ));
                false
            } else {
                seen.push((clause, range));
                true
            }
        };
        let mut rules = Vec::new();
        let mut pending_autonomy = Vec::new();
        let mut lifecycle = lifecycle::Clauses::default();
        for member in &a.members {
            match &member.kind {
                AgentMemberKind::Owner(s) => {
                    if once(self, "owner", member.range) {
                        self.model.agents[id.index()].owner = Some(s.value.clone());
                    }
                }
                AgentMemberKind::Purpose(s) => {
                    if once(self, "purpose", member.range) {
                        self.model.agents[id.index()].purpose = Some(s.value.clone());
                    }
                }
                AgentMemberKind::MaxTier(t) => {
                    if once(self, "max tier", member.range)
                        && let Some(tier) = self.resolve(t, file, &[NameKind::Tier])
                    {
                        self.model.agents[id.index()].max_tier = Some(TierId(tier));
                        if self.model.tiers.len() > 1 && tier as usize + 1 == self.model.tiers.len()
                        {
                            self.report(
                                Diagnostic::new(
                                    Code::MaxTierIsTop,
                                    format!("`{}` is the highest tier, so this ceiling restricts nothing", t.text),
                                    Label::new(file, t.range, "the top tier"),
                                )
                                .with_help("name the highest tier the agent really needs, or remove the line to make the absence of a ceiling explicit"),
                            );
                        }
                    }
                }
                AgentMemberKind::Mode(m) => {
                    if once(self, "mode", member.range) {
                        self.model.agents[id.index()].mode = *m;
                        lifecycle.mode = Some(member.range);
                    }
                }
                AgentMemberKind::Stage(st) => {
                    if once(self, "stage", member.range) {
                        lifecycle.stage = Some((st, member.range));
                    }
                }
                AgentMemberKind::Promote(p) => lifecycle.promotes.push((p, member.range)),
                AgentMemberKind::Rule(r) => {
                    if let Some(rule) = self.rule(id, r, file, member.range) {
                        rules.push(rule);
                    }
                }
                AgentMemberKind::Autonomy(au) => pending_autonomy.push((au, member.range)),
                AgentMemberKind::Limit(specs) => {
                    for spec in specs {
                        self.limit(id, spec, file);
                    }
                }
                AgentMemberKind::Breaker(b) => self.breaker(id, b, file, member.range),
                AgentMemberKind::Credential(c) => {
                    if c.expires_ms.is_none() {
                        self.report(
                            Diagnostic::new(
                                Code::CredentialWithoutExpiry,
                                format!("credential `{}` never expires", c.name.text),
                                Label::new(file, member.range, "no `expires`"),
                            )
                            .with_help(format!(
                                "give it a lifetime: `credential {} expires 1h`",
                                c.name.text
                            )),
                        );
                    }
                    self.model.agents[id.index()]
                        .credentials
                        .push(CredentialDef {
                            name: c.name.text.clone(),
                            expires_ms: c.expires_ms,
                            loc: loc(file, member.range),
                        });
                }
            }
        }
        if self.model.agents[id.index()].owner.is_none() {
            self.report(
                Diagnostic::new(
                    Code::AgentWithoutOwner,
                    format!("agent `{}` has no owner", a.name.text),
                    Label::new(file, a.name.range, "who answers for its actions?"),
                )
                .with_help("add `owner \"team@example.com\"`: the person or team accountable for the agent's outputs"),
            );
        }
        self.model.agents[id.index()].rules = rules;
        self.lifecycle(id, a, &lifecycle, file);
        for (au, range) in pending_autonomy {
            self.autonomy(id, au, file, range);
        }
        self.check_ungranted_denies(id, file);
    }

    fn rule(
        &mut self,
        agent: AgentId,
        r: &ast::RuleDecl,
        file: FileId,
        range: TextRange,
    ) -> Option<RuleId> {
        let target = match &r.target {
            ast::Target::All(_) => Some(RuleTarget::All),
            ast::Target::Tool(n) => self
                .resolve(n, file, &[NameKind::Tool])
                .map(|t| RuleTarget::Tool(ToolId(t))),
        };
        let route = match (&r.route, r.kind) {
            (Some(route), RuleKind::Escalate) => {
                self.resolve(route, file, &[NameKind::Route]).map(RouteId)
            }
            (Some(route), _) => {
                self.report(
                    Diagnostic::new(
                        Code::RouteOnNonEscalate,
                        format!(
                            "only `escalate` rules have a route; this is `{}`",
                            r.kind.keyword()
                        ),
                        Label::new(file, route.range, "route here"),
                    )
                    .with_help(format!(
                        "remove `to {}`, or make the rule `escalate`",
                        route.text
                    )),
                );
                None
            }
            (None, RuleKind::Escalate) => {
                self.report(
                    Diagnostic::new(
                        Code::EscalateWithoutRoute,
                        "this `escalate` rule does not say who decides",
                        Label::new(file, range, "no `to ROUTE`"),
                    )
                    .with_help("add `to ROUTE`, naming an `escalation` that says whom to notify and what happens on timeout"),
                );
                None
            }
            (None, _) => None,
        };
        let target = target?;
        let condition = match &r.condition {
            None => None,
            Some(expr) => Some(self.condition(expr, target, file).ok()?),
        };
        if r.kind == RuleKind::Escalate && route.is_none() {
            return None;
        }
        if let (Some(cond), Some(expr), RuleTarget::Tool(tool)) = (&condition, &r.condition, target)
        {
            self.check_omitted_optionals(r.kind, tool, cond, expr, file);
        }
        let id = RuleId(self.model.rules.len() as u32);
        self.model.rules.push(RuleDef {
            id,
            agent,
            kind: r.kind,
            target,
            route,
            condition,
            loc: loc(file, range),
        });
        Some(id)
    }

    /// AP0039: a `deny` or `escalate` rule whose condition reads an optional argument
    /// outside a presence test matches every call that omits it (missing values fail
    /// safe), which is rarely what its author meant.
    fn check_omitted_optionals(
        &mut self,
        kind: RuleKind,
        tool: ToolId,
        cond: &crate::model::Cond,
        expr: &ast::Expr,
        file: FileId,
    ) {
        if kind == RuleKind::Allow {
            return;
        }
        let Some(def) = self.model.tools.get(tool.index()) else {
            return;
        };
        let optional: Vec<(String, String)> = cond
            .unguarded_args()
            .into_iter()
            .filter_map(|i| def.params.get(i))
            .filter(|p| p.optional)
            .map(|p| (p.name.clone(), def.name.clone()))
            .collect();
        for (arg, tool_name) in optional {
            self.report(
                Diagnostic::new(
                    Code::MatchesWhenOmitted,
                    format!(
                        "this `{}` rule also matches every call of `{tool_name}` without `{arg}`: the condition reads the optional argument, and a missing value fails safe",
                        kind.keyword()
                    ),
                    Label::new(file, expr.range, format!("unknown when `{arg}` is missing")),
                )
                .with_help(format!(
                    "write `{arg} given and (...)` to match only calls that carry it, or `{arg} missing or (...)` to say that calls without it match too"
                )),
            );
        }
    }

    fn autonomy(&mut self, agent: AgentId, au: &ast::AutonomyDecl, file: FileId, range: TextRange) {
        let Some(tool) = self.resolve(&au.tool, file, &[NameKind::Tool]).map(ToolId) else {
            return;
        };
        let typed = self
            .condition(&au.condition, RuleTarget::Tool(tool), file)
            .ok();
        if let Some(condition) = typed {
            self.model.agents[agent.index()].autonomy.push(AutonomyDef {
                tool,
                condition,
                because: au.because.value.clone(),
                loc: loc(file, range),
            });
        }
    }

    fn limit(&mut self, agent: AgentId, spec: &ast::LimitSpec, file: FileId) {
        if spec.count <= 0 {
            self.report(
                Diagnostic::new(
                    Code::InvalidLimit,
                    "a limit of zero allows nothing at all",
                    Label::new(file, spec.range, "zero"),
                )
                .with_help(
                    "to stop an agent, remove its grants or suspend it; a limit must be at least 1",
                ),
            );
            return;
        }
        let existing = self.model.agents[agent.index()]
            .limits
            .iter()
            .find(|l| l.unit == spec.unit && l.window == spec.window)
            .map(|l| l.loc.range);
        if let Some(first) = existing {
            self.report(
                Diagnostic::new(
                    Code::RepeatedMember,
                    "the same limit is given twice",
                    Label::new(file, spec.range, "second one"),
                )
                .with_secondary(Label::new(file, first, "first one"))
                .with_help(
                    "keep one; if you meant a different window, use `per task`, `per minute`, ...",
                ),
            );
            return;
        }
        self.model.agents[agent.index()].limits.push(LimitDef {
            count: spec.count as u64,
            unit: spec.unit,
            window: spec.window,
            loc: loc(file, spec.range),
        });
    }

    fn breaker(&mut self, agent: AgentId, b: &ast::BreakerDecl, file: FileId, range: TextRange) {
        use ast::{BreakerMetric, LiteralValue};
        let value = match (&b.value.value, b.metric) {
            (LiteralValue::Percent(p), BreakerMetric::ErrorRate) if *p <= 1_000_000 => Some(*p),
            (LiteralValue::Number(n), BreakerMetric::ErrorRate) if *n <= 1_000_000 => Some(*n),
            (LiteralValue::Number(n), _) if n % 1_000_000 == 0 => Some(n / 1_000_000),
            _ => None,
        };
        let Some(value) = value else {
            let help = if b.metric == BreakerMetric::ErrorRate {
                "an error rate is a percentage between 0% and 100%: `breaker error_rate > 20% over 5m then suspend`"
            } else {
                "a count is a whole number: `breaker calls > 500 over 1m then suspend`"
            };
            self.report(
                Diagnostic::new(
                    Code::InvalidLimit,
                    "this breaker threshold is out of range or of the wrong kind",
                    Label::new(file, b.value.range, "invalid threshold"),
                )
                .with_help(help),
            );
            return;
        };
        if b.window_ms <= 0 {
            self.report(
                Diagnostic::new(
                    Code::InvalidLimit,
                    "a breaker window must be longer than zero",
                    Label::new(file, range, "zero window"),
                )
                .with_help("use a window such as `over 5m`"),
            );
            return;
        }
        self.model.agents[agent.index()].breakers.push(BreakerDef {
            metric: b.metric,
            op: b.op,
            value,
            window_ms: b.window_ms,
            scope: b.scope,
            loc: loc(file, range),
        });
    }

    fn check_ungranted_denies(&mut self, agent: AgentId, file: FileId) {
        let rules = self.model.agents[agent.index()].rules.clone();
        for r in rules {
            let rule = &self.model.rules[r.index()];
            if rule.kind != RuleKind::Deny {
                continue;
            }
            let RuleTarget::Tool(tool) = rule.target else {
                continue;
            };
            if !self.model.grants(agent, tool) {
                let tool_name = self.model.tools[tool.index()].name.clone();
                let agent_name = self.model.agents[agent.index()].name.clone();
                let range = rule.loc.range;
                self.report(
                    Diagnostic::new(
                        Code::UngrantedDeny,
                        format!("agent `{agent_name}` is never granted `{tool_name}`, so this `deny` never decides anything"),
                        Label::new(file, range, "has no effect"),
                    )
                    .with_help(format!("calls to `{tool_name}` are already denied (default deny); remove the rule, or grant the tool with `allow` or `escalate` if that was intended")),
                );
            }
        }
    }
}
