//! Hygiene: rules that never decide anything (their condition never matches where the
//! rule applies), rules shadowed by others (they match, but a rule of higher priority
//! always decides first), and tools granted to an agent that no request can ever use.
//! All are warnings: the policy is safe, but does not say what it seems to say.

use agentpolicy_runtime::{self as rt, RuleIndex};
use z3::ast::Bool;

use super::cells::{CellInfo, CellSolver, Found, cell, subject, unknown};
use super::encode::Kind;
use super::{Ctx, Method, Property, PropertyResult, Subject, Verdict, report};

/// Why a rule never decides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Dead {
    /// Its condition matches no request in any cell where it applies.
    NeverMatches,
    /// Every cell where it applies is unusable (the flow check stops every call).
    Unusable,
    /// It matches, but these rules (table indexes) always decide first.
    Shadowed(Vec<usize>),
}

fn position(list: &[rt::Entry], rule: usize) -> Option<usize> {
    list.iter().position(|e| e.rule == RuleIndex(rule as u32))
}

pub fn prove(ctx: &Ctx<'_>, cells: &[CellInfo]) -> Vec<PropertyResult> {
    let mut out = Vec::new();
    // Tools granted but never usable.
    for info in cells.iter().filter(|c| c.granted) {
        let reason = if !info.reachable() {
            Some(
                "the flow check stops every call: the tool reads or writes data the agent may never handle",
            )
        } else {
            match super::cells::permitted(ctx, info) {
                super::cells::Permitted::No => Some("the agent's rules deny every request"),
                super::cells::Permitted::Yes(..) => None,
                super::cells::Permitted::Unknown(reason) => {
                    out.push(unknown(ctx, Property::Hygiene, subject(ctx, info), &reason));
                    None
                }
            }
        };
        if let Some(reason) = reason {
            out.push(PropertyResult {
                property: Property::Hygiene,
                subject: subject(ctx, info),
                verdict: Verdict::Finding,
                method: Method::PerCell,
                assumptions: Vec::new(),
                diagnostic: Some(report::unusable(ctx, info, reason)),
            });
        }
    }
    // The cells each rule applies in, from one pass over the granted cells.
    let mut applies_to: Vec<Vec<&CellInfo>> = vec![Vec::new(); ctx.data.rules.len()];
    for info in cells.iter().filter(|c| c.granted) {
        if let Some(cl) = cell(ctx, info.agent, info.tool) {
            for e in cl.deny.iter().chain(&cl.escalate).chain(&cl.allow) {
                if let Some(v) = applies_to.get_mut(e.rule.index()) {
                    v.push(info);
                }
            }
        }
    }
    for (index, rule) in ctx.data.rules.iter().enumerate() {
        // A deny for a tool never granted is reported by the front end (AP0045).
        let applies = &applies_to[index];
        if applies.is_empty() {
            continue;
        }
        let subject = Subject::Rule {
            id: rule.id.clone(),
            agent: ctx
                .data
                .agents
                .get(rule.agent.index())
                .map(|a| a.name.clone())
                .unwrap_or_default(),
            tool: match rule.target {
                rt::Target::Tool(t) => ctx.data.tools.get(t.index()).map(|t| t.name.clone()),
                rt::Target::All => None,
            },
        };
        match dead(ctx, index, applies) {
            // Reported once, as the unusable tool (AP0107).
            Ok(None) | Ok(Some(Dead::Unusable)) => {}
            Ok(Some(why)) => out.push(PropertyResult {
                property: Property::Hygiene,
                subject,
                verdict: Verdict::Finding,
                method: Method::PerCell,
                assumptions: Vec::new(),
                diagnostic: Some(report::dead_rule(ctx, index, &why)),
            }),
            Err(reason) => out.push(unknown(ctx, Property::Hygiene, subject, &reason)),
        }
    }
    out
}

fn dead(ctx: &Ctx<'_>, rule: usize, applies: &[&CellInfo]) -> Result<Option<Dead>, String> {
    let mut matched_somewhere = false;
    let mut shadows: Vec<usize> = Vec::new();
    let mut any_reachable = false;
    for info in applies.iter().filter(|c| c.reachable()) {
        any_reachable = true;
        let Some(cl) = cell(ctx, info.agent, info.tool) else {
            continue;
        };
        let Some(cs) = super::cells::solver(ctx, info) else {
            return Err("malformed condition".into());
        };
        let (kind, at) = if let Some(i) = position(&cl.deny, rule) {
            (Kind::Deny, i)
        } else if let Some(i) = position(&cl.escalate, rule) {
            (Kind::Escalate, i)
        } else if let Some(i) = position(&cl.allow, rule) {
            (Kind::Allow, i)
        } else {
            continue;
        };
        let entries = cl.deny.len() + cl.escalate.len() + cl.allow.len();
        if entries >= WITNESS_FIRST && witnessed(ctx, info, &cs, kind, at, rule) {
            return Ok(None);
        }
        match cs.find(&cs.stage.decides(kind, at), &[]) {
            Found::Model(_) => return Ok(None),
            Found::Unknown(reason) => return Err(reason),
            Found::Nothing => {}
        }
        let this = matches(&cs, kind, at);
        match cs.find(&this, &[]) {
            Found::Unknown(reason) => return Err(reason),
            Found::Nothing => continue,
            Found::Model(_) => matched_somewhere = true,
        }
        // Who decides instead: higher-priority entries that match whenever this one does,
        // or failing a single one, those that overlap it.
        let before: Vec<(Kind, usize, usize)> = higher(cl, kind, at);
        let mut covering = None;
        let mut overlapping = Vec::new();
        for (k, i, r) in &before {
            let other = matches(&cs, *k, *i);
            match cs.find(&Bool::and(&[this.clone(), other.not()]), &[]) {
                Found::Nothing => {
                    covering = Some(*r);
                    break;
                }
                Found::Unknown(reason) => return Err(reason),
                Found::Model(_) => {}
            }
            if let Found::Model(_) = cs.find(&Bool::and(&[this.clone(), other]), &[]) {
                overlapping.push(*r);
            }
        }
        match covering {
            Some(r) => shadows.push(r),
            None => shadows.extend(overlapping),
        }
    }
    if !any_reachable {
        return Ok(Some(Dead::Unusable));
    }
    if !matched_somewhere {
        return Ok(Some(Dead::NeverMatches));
    }
    shadows.sort_unstable();
    shadows.dedup();
    Ok(Some(Dead::Shadowed(shadows)))
}

/// Cells with at least this many entries look for a witness request first.
const WITNESS_FIRST: usize = 64;

/// Whether a request that matches the entry (found by a question about it alone, which
/// stays small however many rules the cell has), run through the runtime's `decide`, is
/// decided by this rule: then the rule is not dead, and the question over the whole
/// cell need not be asked. Only ever a reason to report nothing; when the request is
/// decided by another rule, the whole question is asked as before.
fn witnessed(
    ctx: &Ctx<'_>,
    info: &CellInfo,
    cs: &CellSolver,
    kind: Kind,
    at: usize,
    rule: usize,
) -> bool {
    let this = matches(cs, kind, at);
    // Every value present: a missing one makes deny and escalate entries match.
    let prefer: Vec<Bool> = cs
        .req
        .slots
        .iter()
        .flatten()
        .map(|s| s.present.clone())
        .collect();
    let Found::Model(model) = cs.find(&this, &prefer) else {
        return false;
    };
    let values = super::cells::values(ctx, &model, &cs.req);
    let Ok(call) = super::cells::concrete_call(ctx, info, values) else {
        return false;
    };
    let Some(id) = ctx.data.rules.get(rule).map(|r| r.id.as_str()) else {
        return false;
    };
    call.rule.as_deref() == Some(id)
}

fn matches(cs: &CellSolver, kind: Kind, at: usize) -> Bool {
    let list = match kind {
        Kind::Deny => &cs.stage.deny,
        Kind::Escalate => &cs.stage.escalate,
        Kind::Allow => &cs.stage.allow,
    };
    list.get(at).cloned().unwrap_or(Bool::from_bool(false))
}

/// Entries that decide before `(kind, at)`: `(kind, index in its list, rule index)`.
fn higher(cl: &rt::Cell, kind: Kind, at: usize) -> Vec<(Kind, usize, usize)> {
    let list = |k: Kind, entries: &[rt::Entry], n: usize| -> Vec<(Kind, usize, usize)> {
        entries
            .iter()
            .take(n)
            .enumerate()
            .map(|(i, e)| (k, i, e.rule.index()))
            .collect()
    };
    match kind {
        Kind::Deny => list(Kind::Deny, &cl.deny, at),
        Kind::Escalate => list(Kind::Deny, &cl.deny, cl.deny.len()),
        Kind::Allow => {
            let mut v = list(Kind::Deny, &cl.deny, cl.deny.len());
            v.extend(list(Kind::Escalate, &cl.escalate, cl.escalate.len()));
            v.extend(list(Kind::Allow, &cl.allow, at));
            v
        }
    }
}
