//! The semantic diff of two policies: for every agent and tool (matched by name, so
//! renamed files and reordered rules do not matter), the requests the new table treats
//! more permissively than the old (widening: Deny -> Escalate or Allow, Escalate ->
//! Allow) and less permissively (narrowing), each with a witness request that both
//! runtimes replay. Arguments are matched by name and type; texts through one dictionary.
//! A request both tables escalate is compared by what happens when nobody answers (the
//! timeout outcome and deadline of the routes it escalates to); every other declaration
//! is compared in `diff_decls`.

use agentpolicy_runtime::{self as rt, DecisionTable, Outcome};
use z3::ast::{Bool, Int};

use super::cells::{self, CellInfo};
use super::counterexample::Call;
use super::diff_decls::{self, ChangeKind, DeclChange};
use super::encode::{ALLOW, DENY, ESCALATE, Kind, RuleStage, SlotVar, SymRequest, TextDomain};
use super::solver::{self, Check};
use super::{Config, Ctx, access};
use agentpolicy::model::Model;

/// One way the permissions of an (agent, tool) pair changed, with a witness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// [`ChangeKind::Rule`] for a different outcome, [`ChangeKind::RouteTimeout`] for an
    /// escalation that ends differently when nobody answers.
    pub kind: ChangeKind,
    pub agent: String,
    pub tool: String,
    pub old: Outcome,
    pub new: Outcome,
    /// The witness as the old policy decides it.
    pub old_call: Call,
    /// The same request as the new policy decides it.
    pub new_call: Call,
    /// For a route timeout: how the unanswered escalation ends on each side.
    pub detail: Option<String>,
    widening: bool,
}

impl Change {
    pub fn is_widening(&self) -> bool {
        self.widening
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiffReport {
    pub widening: Vec<Change>,
    pub narrowing: Vec<Change>,
    /// `(agent, tool, reason)` for pairs the solver could not decide.
    pub unknown: Vec<(String, String, String)>,
    /// Changed declarations besides the rules, widening and narrowing.
    pub declarations: Vec<DeclChange>,
}

impl DiffReport {
    /// Whether NEW lets anything through that OLD did not, or keeps less of the record.
    pub fn widens(&self) -> bool {
        !self.widening.is_empty() || self.declarations.iter().any(|d| d.widening)
    }
}

struct Side<'a> {
    ctx: Ctx<'a>,
}

impl<'a> Side<'a> {
    fn new(
        model: &'a Model,
        table: &'a DecisionTable,
        config: &Config,
        texts: TextDomain,
    ) -> Option<Side<'a>> {
        let mut ctx = Ctx::new(model, table, config)?;
        ctx.texts = texts;
        Some(Side { ctx })
    }

    fn info(&self, agent: &str, tool: &str) -> Option<CellInfo> {
        let data = self.ctx.data;
        let a = data.agents.iter().position(|x| x.name == agent)?;
        let t = data.tools.iter().position(|x| x.name == tool)?;
        let granted = cells::cell(&self.ctx, a, t).is_some_and(|c| c.granted);
        let access = if granted {
            access::passing(self.ctx.table, a, t)
        } else {
            None
        };
        Some(CellInfo {
            agent: a,
            tool: t,
            granted,
            access,
        })
    }
}

/// Compares two policies' tables.
/// Why two policies could not be compared at all (their differences, including the
/// ones the solver could not decide, are in the [`DiffReport`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiffError {
    /// A table was not built from the model given with it (`side` is `old` or `new`).
    TableDoesNotMatchModel { side: &'static str },
}

impl std::fmt::Display for DiffError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DiffError::TableDoesNotMatchModel { side } => {
                write!(f, "the {side} policy's table does not match its model")
            }
        }
    }
}

impl std::error::Error for DiffError {}

pub fn diff(
    old_model: &Model,
    old_table: &DecisionTable,
    new_model: &Model,
    new_table: &DecisionTable,
    config: &Config,
) -> Result<DiffReport, DiffError> {
    let (texts, remap) =
        TextDomain::unified(old_table.data(), new_table.data(), [old_model, new_model]);
    let old = Side::new(old_model, old_table, config, texts.clone())
        .ok_or(DiffError::TableDoesNotMatchModel { side: "old" })?;
    let new = Side::new(new_model, new_table, config, texts.clone())
        .ok_or(DiffError::TableDoesNotMatchModel { side: "new" })?;
    let mut agents: Vec<String> = old.ctx.data.agents.iter().map(|a| a.name.clone()).collect();
    for a in &new.ctx.data.agents {
        if !agents.contains(&a.name) {
            agents.push(a.name.clone());
        }
    }
    let mut tools: Vec<String> = old.ctx.data.tools.iter().map(|t| t.name.clone()).collect();
    for t in &new.ctx.data.tools {
        if !tools.contains(&t.name) {
            tools.push(t.name.clone());
        }
    }
    let mut report = DiffReport::default();
    for agent in &agents {
        for tool in &tools {
            pair(&old, &new, &texts, &remap, agent, tool, config, &mut report);
        }
    }
    report.declarations = diff_decls::compare(&old.ctx, &new.ctx);
    Ok(report)
}

/// A symbolic request for one side, sharing the variables of arguments both sides have.
fn side_request(
    tool: &rt::Tool,
    shared: &mut Vec<SlotVar>,
    witnesses: &dyn Fn(&str) -> usize,
) -> SymRequest {
    let fresh = SymRequest::new("diff", tool, &|p| {
        tool.params.get(p).map_or(0, |p| witnesses(&p.name))
    });
    let mut slots = fresh.slots.clone();
    for slot in slots.iter_mut().flatten() {
        match shared
            .iter()
            .find(|s| s.name == slot.name && s.ty == slot.ty)
        {
            Some(s) => {
                slot.value = s.value.clone();
                slot.present = s.present.clone();
                slot.strings = s.strings.clone();
                slot.untrusted = s.untrusted.clone();
            }
            None => {
                let name = format!("{}:{}", slot.name, slot.ty.keyword());
                slot.value = Int::new_const(format!("diff.{name}"));
                slot.present = Bool::new_const(format!("diff.{name}?"));
                slot.strings = (0..slot.strings.len())
                    .map(|j| z3::ast::String::new_const(format!("diff.{name}${j}")))
                    .collect();
                slot.untrusted = Bool::new_const(format!("diff.{name}!untrusted"));
                shared.push(slot.clone());
            }
        }
    }
    SymRequest {
        slots,
        tainted: fresh.tainted,
        strings: true,
        members: false,
    }
}

#[expect(
    clippy::too_many_arguments,
    reason = "one call site; the pieces are independent"
)]
fn pair(
    old: &Side<'_>,
    new: &Side<'_>,
    texts: &TextDomain,
    remap: &[i64],
    agent: &str,
    tool: &str,
    config: &Config,
    report: &mut DiffReport,
) {
    let oi = old.info(agent, tool);
    let ni = new.info(agent, tool);
    let usable = |i: &Option<CellInfo>| i.as_ref().is_some_and(CellInfo::reachable);
    if !usable(&oi) && !usable(&ni) {
        return;
    }
    let mut shared: Vec<SlotVar> = Vec::new();
    // Both tables' tests on a list argument, so the witnesses cover every atom.
    let witnesses = |param: &str| {
        [old, new]
            .iter()
            .map(|side| {
                let data = side.ctx.data;
                let Some(t) = data.tools.iter().position(|t| t.name == tool) else {
                    return 0;
                };
                data.tools[t]
                    .param(param)
                    .map_or(0, |p| cells::witnesses(&side.ctx, t, p))
            })
            .sum::<usize>()
    };
    let identity = |v: i64| v;
    let renumber = |v: i64| remap.get(v as usize).copied().unwrap_or(v);
    let rank = |side: &Side<'_>,
                info: &Option<CellInfo>,
                shared: &mut Vec<SlotVar>,
                map: &dyn Fn(i64) -> i64|
     -> Option<(Int, Option<SymRequest>, Unanswered)> {
        match info {
            Some(i) if i.reachable() => {
                let tool = &side.ctx.data.tools[i.tool];
                let mut req = side_request(tool, shared, &witnesses);
                req.strings = old.ctx.strings || new.ctx.strings;
                let cell = cells::cell(&side.ctx, i.agent, i.tool)?;
                let stage = RuleStage::new(cell, &req, map, side.ctx.tests(i.tool))?;
                let unanswered = Unanswered::new(side.ctx.data, cell, &stage);
                Some((stage.rank(), Some(req), unanswered))
            }
            _ => Some((Int::from_i64(DENY), None, Unanswered::never())),
        }
    };
    let Some((old_rank, old_req, old_end)) = rank(old, &oi, &mut shared, &identity) else {
        report
            .unknown
            .push((agent.into(), tool.into(), "malformed condition".into()));
        return;
    };
    let Some((new_rank, new_req, new_end)) = rank(new, &ni, &mut shared, &renumber) else {
        report
            .unknown
            .push((agent.into(), tool.into(), "malformed condition".into()));
        return;
    };
    let sv = solver::solver_for(config.budget, old.ctx.strings || new.ctx.strings);
    let all_slots = SymRequest {
        slots: shared.iter().cloned().map(Some).collect(),
        tainted: Bool::new_const("diff.tainted"),
        strings: old.ctx.strings || new.ctx.strings,
        members: false,
    };
    if all_slots.strings && !texts.alphabet.has_room(&all_slots) {
        report.unknown.push((
            agent.into(),
            tool.into(),
            "too many text variables for the string solver's alphabet".into(),
        ));
        return;
    }
    sv.assert(all_slots.domain(texts));
    sv.assert(all_slots.set_consistency(&old.ctx.data.sets));
    sv.assert(all_slots.set_consistency(&new.ctx.data.sets));
    let prefs = all_slots.preferences();
    let outcome = |r: i64| match r {
        ALLOW => Outcome::Allow,
        ESCALATE => Outcome::Escalate,
        _ => Outcome::Deny,
    };
    let mut goals: Vec<Goal> = Vec::new();
    for from in [DENY, ESCALATE, ALLOW] {
        for to in [DENY, ESCALATE, ALLOW] {
            if from != to {
                goals.push(Goal {
                    formula: Bool::and(&[
                        old_rank.eq(Int::from_i64(from)),
                        new_rank.eq(Int::from_i64(to)),
                    ]),
                    from,
                    to,
                    kind: ChangeKind::Rule,
                    widening: outcome(to) < outcome(from),
                });
            }
        }
    }
    goals.extend(timeout_goals(&old_rank, &new_rank, &old_end, &new_end));
    for goal in goals {
        let (from, to) = (goal.from, goal.to);
        {
            sv.push();
            sv.assert(&goal.formula);
            let found = match solver::check(&sv, &[]) {
                Check::Sat(m) => Some(solver::model_preferring(&sv, &prefs, m)),
                Check::Unsat => None,
                Check::Unknown(reason) => {
                    report.unknown.push((agent.into(), tool.into(), reason));
                    None
                }
            };
            sv.pop(1);
            let Some(model) = found else { continue };
            let call = |side: &Side<'_>,
                        info: &Option<CellInfo>,
                        req: &Option<SymRequest>|
             -> Result<Call, String> {
                let values = match req {
                    Some(r) => cells::values(&side.ctx, &model, r),
                    None => {
                        // This side has no usable cell: show the other side's values.
                        let other = old_req.as_ref().or(new_req.as_ref());
                        other
                            .map(|r| cells::values(&side.ctx, &model, r))
                            .unwrap_or_default()
                    }
                };
                match info {
                    Some(i) => {
                        let mut values = values;
                        let has = |n: &String| side.ctx.data.tools[i.tool].param(n).is_some();
                        values.args.retain(|(n, _)| has(n));
                        values.untrusted.retain(has);
                        cells::concrete_call(&side.ctx, i, values)
                    }
                    None => Ok(Call {
                        agent: agent.into(),
                        tool: tool.into(),
                        args: values.args,
                        confidence: values.confidence,
                        read: None,
                        write: None,
                        untrusted: values.untrusted,
                        sets: values.sets,
                        session: super::Session {
                            tainted: values.tainted,
                            ..super::Session::default()
                        },
                        outcome: Outcome::Deny,
                        rule: None,
                    }),
                }
            };
            let (old_call, new_call) = match (call(old, &oi, &old_req), call(new, &ni, &new_req)) {
                (Ok(o), Ok(n)) => (o, n),
                (Err(e), _) | (_, Err(e)) => {
                    report.unknown.push((agent.into(), tool.into(), e));
                    continue;
                }
            };
            let mut detail = None;
            if goal.kind == ChangeKind::RouteTimeout {
                let ends = (
                    unanswered(old.ctx.data, old.ctx.table, &old_call),
                    unanswered(new.ctx.data, new.ctx.table, &new_call),
                );
                match ends {
                    (Some(a), Some(b)) if timeout_widens(a, b) == Some(goal.widening) => {
                        detail = Some(format!(
                            "unanswered, it ends {} -> {}",
                            end_text(a),
                            end_text(b)
                        ));
                    }
                    _ => {
                        report.unknown.push((
                            agent.into(),
                            tool.into(),
                            "internal check failed: the runtimes do not end the witness escalation as the encoding predicts".into(),
                        ));
                        continue;
                    }
                }
            }
            if old_call.outcome != outcome(from) || new_call.outcome != outcome(to) {
                report.unknown.push((
                    agent.into(),
                    tool.into(),
                    format!(
                        "internal check failed: the encoding predicts {} -> {}, the runtimes decide {} -> {}",
                        outcome(from),
                        outcome(to),
                        old_call.outcome,
                        new_call.outcome
                    ),
                ));
                continue;
            }
            let change = Change {
                kind: goal.kind,
                agent: agent.into(),
                tool: tool.into(),
                old: outcome(from),
                new: outcome(to),
                old_call,
                new_call,
                detail,
                widening: goal.widening,
            };
            if change.is_widening() {
                report.widening.push(change);
            } else {
                report.narrowing.push(change);
            }
        }
    }
}

/// One question asked of a pair: a request on which the two tables differ this way.
struct Goal {
    formula: Bool,
    from: i64,
    to: i64,
    kind: ChangeKind,
    widening: bool,
}

/// A deadline that never comes: an escalation none of whose routes has a timeout.
const NEVER: i64 = i64::MAX / 4;

/// What happens to a request the cell escalates when nobody answers, as the engine's
/// `raise` computes it from the routes of every matching escalate entry: the earliest
/// timeout, and allow only when every route with a timeout says allow.
struct Unanswered {
    allows: Bool,
    deadline: Int,
}

impl Unanswered {
    fn never() -> Unanswered {
        Unanswered {
            allows: Bool::from_bool(false),
            deadline: Int::from_i64(NEVER),
        }
    }

    fn new(data: &rt::TableData, cell: &rt::Cell, stage: &RuleStage) -> Unanswered {
        let mut timed = Vec::new();
        let mut timed_deny = Vec::new();
        let mut deadline = Int::from_i64(NEVER);
        for (i, entry) in cell.escalate.iter().enumerate() {
            let route = data
                .rules
                .get(entry.rule.index())
                .and_then(|r| r.route)
                .and_then(|r| data.routes.get(r.index()));
            let Some((ms, route)) = route.and_then(|r| r.timeout_ms.map(|ms| (ms, r))) else {
                continue;
            };
            let part = stage.decides(Kind::Escalate, i);
            deadline = Bool::and(&[part.clone(), deadline.gt(Int::from_i64(ms))])
                .ite(&Int::from_i64(ms), &deadline);
            if route.timeout_outcome != Some(rt::TimeoutOutcome::Allow) {
                timed_deny.push(part.not());
            }
            timed.push(part);
        }
        timed_deny.push(Bool::or(&timed));
        Unanswered {
            allows: Bool::and(&timed_deny),
            deadline,
        }
    }
}

/// Requests both tables escalate whose unanswered end differs: allow instead of deny is
/// a widening; with the same outcome, a later deadline before a deny (more time for an
/// approval) or an earlier one before an allow (less time to refuse) is a widening.
fn timeout_goals(old_rank: &Int, new_rank: &Int, old: &Unanswered, new: &Unanswered) -> Vec<Goal> {
    let both = Bool::and(&[
        old_rank.eq(Int::from_i64(ESCALATE)),
        new_rank.eq(Int::from_i64(ESCALATE)),
    ]);
    let goal = |parts: &[Bool], widening: bool| Goal {
        formula: Bool::and(&[std::slice::from_ref(&both), parts].concat()),
        from: ESCALATE,
        to: ESCALATE,
        kind: ChangeKind::RouteTimeout,
        widening,
    };
    let (oa, na) = (old.allows.clone(), new.allows.clone());
    let (od, nd) = (&old.deadline, &new.deadline);
    vec![
        goal(&[oa.not(), na.clone()], true),
        goal(&[oa.clone(), na.not()], false),
        goal(&[oa.not(), na.not(), nd.gt(od)], true),
        goal(&[oa.not(), na.not(), nd.lt(od)], false),
        goal(&[oa.clone(), na.clone(), nd.lt(od)], true),
        goal(&[oa, na, nd.gt(od)], false),
    ]
}

/// How an escalated call ends unanswered: `(deadline, outcome)`, `None` deadline for
/// never; `None` when the call is not escalated.
fn unanswered(
    data: &rt::TableData,
    table: &DecisionTable,
    call: &Call,
) -> Option<(Option<i64>, Outcome)> {
    let t = call.table(table).ok()?;
    let request = call
        .to_request(&t, &mut rt::KeyValueInterner::default())
        .ok()?;
    let decision = rt::decide(&t, &request);
    if decision.outcome != Outcome::Escalate {
        return None;
    }
    let routes: Vec<&rt::Route> = decision
        .routes
        .as_slice()
        .iter()
        .filter_map(|r| data.routes.get(r.index()))
        .collect();
    let deadline = routes.iter().filter_map(|r| r.timeout_ms).min();
    let allows = deadline.is_some()
        && routes
            .iter()
            .filter(|r| r.timeout_ms.is_some())
            .all(|r| r.timeout_outcome == Some(rt::TimeoutOutcome::Allow));
    Some((
        deadline,
        if allows {
            Outcome::Allow
        } else {
            Outcome::Deny
        },
    ))
}

/// Whether ending `b` instead of `a` is a widening (`Some(true)`), a narrowing, or no
/// change (`None`).
fn timeout_widens(a: (Option<i64>, Outcome), b: (Option<i64>, Outcome)) -> Option<bool> {
    let at = |d: Option<i64>| d.unwrap_or(NEVER);
    match (a.1, b.1) {
        (Outcome::Deny, Outcome::Allow) => Some(true),
        (Outcome::Allow, Outcome::Deny) => Some(false),
        (Outcome::Deny, _) if at(b.0) != at(a.0) => Some(at(b.0) > at(a.0)),
        (_, _) if at(b.0) != at(a.0) => Some(at(b.0) < at(a.0)),
        _ => None,
    }
}

fn end_text(end: (Option<i64>, Outcome)) -> String {
    match end.0 {
        None => "never (no route has a timeout)".to_string(),
        Some(ms) => format!("{} after {}", end.1, agentpolicy::values::duration(ms)),
    }
}
