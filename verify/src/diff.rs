//! The semantic diff of two policies: for every agent and tool (matched by name, so
//! renamed files and reordered rules do not matter), the requests the new table treats
//! more permissively than the old (widening: Deny -> Escalate or Allow, Escalate ->
//! Allow) and less permissively (narrowing), each with a witness request that both
//! runtimes replay. Arguments are matched by name and type; texts through one dictionary.

use agentpolicy_runtime::{self as rt, DecisionTable, Outcome};
use z3::ast::{Bool, Int};

use super::cells::{self, CellInfo};
use super::counterexample::Call;
use super::encode::{ALLOW, DENY, ESCALATE, RuleStage, SlotVar, SymRequest, TextDomain};
use super::solver::{self, Check};
use super::{Config, Ctx, access};
use agentpolicy::model::Model;

/// One way the permissions of an (agent, tool) pair changed, with a witness.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub agent: String,
    pub tool: String,
    pub old: Outcome,
    pub new: Outcome,
    /// The witness as the old policy decides it.
    pub old_call: Call,
    /// The same request as the new policy decides it.
    pub new_call: Call,
}

impl Change {
    pub fn is_widening(&self) -> bool {
        self.new < self.old
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct DiffReport {
    pub widening: Vec<Change>,
    pub narrowing: Vec<Change>,
    /// `(agent, tool, reason)` for pairs the solver could not decide.
    pub unknown: Vec<(String, String, String)>,
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
pub fn diff(
    old_model: &Model,
    old_table: &DecisionTable,
    new_model: &Model,
    new_table: &DecisionTable,
    config: &Config,
) -> Result<DiffReport, String> {
    let (texts, remap) =
        TextDomain::unified(old_table.data(), new_table.data(), [old_model, new_model]);
    let old = Side::new(old_model, old_table, config, texts.clone())
        .ok_or("the old policy's table does not match its model")?;
    let new = Side::new(new_model, new_table, config, texts.clone())
        .ok_or("the new policy's table does not match its model")?;
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
     -> Option<(Int, Option<SymRequest>)> {
        match info {
            Some(i) if i.reachable() => {
                let tool = &side.ctx.data.tools[i.tool];
                let mut req = side_request(tool, shared, &witnesses);
                req.strings = old.ctx.strings || new.ctx.strings;
                let cell = cells::cell(&side.ctx, i.agent, i.tool)?;
                let stage = RuleStage::new(cell, &req, map, side.ctx.tests(i.tool))?;
                Some((stage.rank(), Some(req)))
            }
            _ => Some((Int::from_i64(DENY), None)),
        }
    };
    let Some((old_rank, old_req)) = rank(old, &oi, &mut shared, &identity) else {
        report
            .unknown
            .push((agent.into(), tool.into(), "malformed condition".into()));
        return;
    };
    let Some((new_rank, new_req)) = rank(new, &ni, &mut shared, &renumber) else {
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
    let prefs = Bool::and(&all_slots.preferences());
    let outcome = |r: i64| match r {
        ALLOW => Outcome::Allow,
        ESCALATE => Outcome::Escalate,
        _ => Outcome::Deny,
    };
    for from in [DENY, ESCALATE, ALLOW] {
        for to in [DENY, ESCALATE, ALLOW] {
            if from == to {
                continue;
            }
            sv.push();
            sv.assert(old_rank.eq(Int::from_i64(from)));
            sv.assert(new_rank.eq(Int::from_i64(to)));
            let found = match solver::check(&sv, &[]) {
                Check::Sat(m) => match solver::check(&sv, std::slice::from_ref(&prefs)) {
                    Check::Sat(better) => Some(better),
                    _ => Some(m),
                },
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
                agent: agent.into(),
                tool: tool.into(),
                old: outcome(from),
                new: outcome(to),
                old_call,
                new_call,
            };
            if change.is_widening() {
                report.widening.push(change);
            } else {
                report.narrowing.push(change);
            }
        }
    }
}
