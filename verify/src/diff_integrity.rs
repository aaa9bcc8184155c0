//! The diff of integrity labels (`untrusted` on resources and tools): a label is
//! reported where it decides whether a call taints the session (a tool all of whose
//! reads are untrusted taints it anyway), widening when removed and narrowing when added,
//! and the other way round where a rule is more permissive in a tainted session. The
//! witness is a session of two calls replayed on both tables: one that taints on one
//! side only, then a request decided differently in the session it left.
//!
//! Must not: assume the first call's label away: the second call is decided in the
//! session the first left (tier, keys and taint), as the engine's `absorb_read` sets it.

use agentpolicy_runtime::{self as rt, Mode, Outcome};
use z3::ast::{Ast, Bool};

use super::cells::{self, Found};
use super::counterexample::{Access, Call};
use super::diff_decls::{ChangeKind, DeclChange, Witness, cell_info, change, tier_name};
use super::{Ctx, access};
use agentpolicy::model::{Cond, Term};

/// The rules of `ctx` whose condition reads `tainted`, by id.
fn rules_reading_taint(ctx: &Ctx<'_>) -> Vec<String> {
    let mut ids = Vec::new();
    for (i, rule) in ctx.model.rules.iter().enumerate() {
        let mut reads = false;
        if let Some(c) = &rule.condition {
            c.visit(&mut |c: &Cond| {
                reads |= c.terms().iter().any(|t| matches!(t, Term::Tainted));
            });
        }
        if reads && let Some(r) = ctx.data.rules.get(i) {
            ids.push(r.id.clone());
        }
    }
    ids
}

#[derive(Clone, Copy)]
enum Label<'a> {
    Resource(&'a str),
    Tool(&'a str),
}

/// Whether a call that goes through taints the session in `ctx`, as the engine's
/// `absorb_read` decides it.
fn taints(ctx: &Ctx<'_>, call: &Call) -> bool {
    let data = ctx.data;
    let Some(t) = data.tools.iter().position(|t| t.name == call.tool) else {
        return false;
    };
    let untrusted = |r: usize| data.untrusted_resources.contains(&rt::ResourceId(r as u32));
    data.untrusted_tools.contains(&rt::ToolId(t as u32))
        || match &call.read {
            Some(a) => data
                .resources
                .iter()
                .position(|r| r.name == a.target)
                .is_some_and(untrusted),
            None => data.tools[t].reads.iter().any(|r| untrusted(r.index())),
        }
}

/// A session of two calls: the first is allowed on both sides and taints the session
/// on `tainted`'s side only (through `label`), the second is decided more strictly on
/// `tainted`'s side because of the taint. Replayed through both runtimes.
fn taint_witness(
    tainted: &Ctx<'_>,
    clean: &Ctx<'_>,
    label: Label<'_>,
    tainted_is_old: bool,
    stricter: bool,
) -> Option<Witness> {
    for (a, agent) in tainted.data.agents.iter().enumerate() {
        if !clean.data.agents.iter().any(|x| x.name == agent.name) {
            continue;
        }
        // In shadow mode every call runs (the engine reports allow), so it taints the
        // session whatever the rules decide.
        let shadow = |c: &Ctx<'_>| {
            c.data
                .agents
                .iter()
                .any(|x| x.name == agent.name && x.mode == Mode::Shadow)
        };
        let runs = |c: &Ctx<'_>, call: &Call| call.outcome == Outcome::Allow || shadow(c);
        let firsts: Vec<Call> = (0..tainted.data.tools.len())
            .filter_map(|t| {
                let tool = &tainted.data.tools[t];
                let mut info = cell_info(tainted, a, t);
                if !info.reachable() && !shadow(tainted) {
                    return None;
                }
                let read = match label {
                    Label::Tool(name) if tool.name != name => return None,
                    Label::Resource(name) => {
                        let r = tool
                            .reads
                            .iter()
                            .map(|r| &tainted.data.resources[r.index()])
                            .find(|r| r.name == name)?;
                        Some(Access {
                            target: r.name.clone(),
                            keys: r
                                .keyed
                                .iter()
                                .filter_map(|k| tainted.data.keys.get(k.index()))
                                .map(|k| (k.clone(), access::first_value(k)))
                                .collect(),
                        })
                    }
                    Label::Tool(_) => info.access.clone().and_then(|(r, _)| r),
                };
                info.access = Some((read.clone(), None));
                let allowed = || -> Option<Call> {
                    let cs = cells::solver(tainted, &info)?;
                    let untainted = cs.req.tainted.not();
                    let Found::Model(m) =
                        cs.find(&Bool::and(&[cs.stage.is_allow(), untainted]), &[])
                    else {
                        return None;
                    };
                    cells::concrete_call(tainted, &info, cells::values(tainted, &m, &cs.req)).ok()
                };
                let call = match allowed() {
                    Some(call) => call,
                    None if shadow(tainted) => {
                        let mut call = Call {
                            agent: agent.name.clone(),
                            tool: tool.name.clone(),
                            args: Vec::new(),
                            confidence: None,
                            read,
                            write: None,
                            untrusted: Vec::new(),
                            sets: Vec::new(),
                            session: super::Session::default(),
                            outcome: Outcome::Deny,
                            rule: None,
                        };
                        cells::decide(tainted, &mut call).ok()?;
                        call
                    }
                    None => return None,
                };
                let mut there = call.clone();
                cells::decide(clean, &mut there).ok()?;
                (runs(tainted, &call)
                    && runs(clean, &there)
                    && taints(tainted, &call)
                    && !taints(clean, &call))
                .then_some(call)
            })
            .collect();
        for first in &firsts {
            for t in 0..tainted.data.tools.len() {
                let info = cell_info(tainted, a, t);
                if !info.reachable() {
                    continue;
                }
                let Some(cs) = cells::solver(tainted, &info) else {
                    continue;
                };
                let rank = cs.stage.rank();
                let yes = rank.substitute(&[(&cs.req.tainted, &Bool::from_bool(true))]);
                let no = rank.substitute(&[(&cs.req.tainted, &Bool::from_bool(false))]);
                let goal = if stricter { yes.gt(&no) } else { yes.lt(&no) };
                let Found::Model(m) = cs.find(&goal, &[]) else {
                    continue;
                };
                let Ok(mut in_taint) =
                    cells::concrete_call(tainted, &info, cells::values(tainted, &m, &cs.req))
                else {
                    continue;
                };
                // The second call runs in the session the first left: its tier and keys
                // too, as each side labels them.
                in_taint.session = after(tainted, first, true);
                let mut in_clean = in_taint.clone();
                in_clean.session = after(clean, first, false);
                if cells::decide(tainted, &mut in_taint).is_err()
                    || cells::decide(clean, &mut in_clean).is_err()
                    || (in_taint.outcome > in_clean.outcome) != stricter
                    || in_taint.outcome == in_clean.outcome
                {
                    continue;
                }
                let (old_side, new_side) = if tainted_is_old {
                    (in_taint, in_clean)
                } else {
                    (in_clean, in_taint)
                };
                return Some(Witness {
                    trace: format!(
                        "a session that first calls `{}` ({}{}), then this request: OLD decides {}, NEW decides {}",
                        first.tool,
                        first
                            .read
                            .as_ref()
                            .map_or("allowed".to_string(), |r| format!("reads `{}`", r.target)),
                        if first.outcome == Outcome::Allow {
                            ""
                        } else {
                            "; it runs in shadow mode"
                        },
                        old_side.outcome,
                        new_side.outcome
                    ),
                    request: Some(new_side),
                });
            }
        }
    }
    None
}

/// The session after `first` ran in a fresh one, as the engine's `absorb_read` labels
/// it: the tier of the resource it names (of every resource its tool declares when it
/// names none) and the key values it names.
fn after(ctx: &Ctx<'_>, first: &Call, tainted: bool) -> super::Session {
    let data = ctx.data;
    let tiers: Vec<rt::TierId> = match &first.read {
        Some(access) => data
            .resources
            .iter()
            .filter(|r| r.name == access.target)
            .map(|r| r.tier)
            .collect(),
        None => data
            .tools
            .iter()
            .filter(|t| t.name == first.tool)
            .flat_map(|t| t.reads.iter())
            .filter_map(|r| data.resources.get(r.index()))
            .map(|r| r.tier)
            .collect(),
    };
    super::Session {
        tier: tiers.into_iter().max().map(|t| tier_name(ctx, t)),
        bound: first
            .read
            .as_ref()
            .map(|a| a.keys.clone())
            .unwrap_or_default(),
        tainted,
    }
}

pub(super) fn integrity(old: &Ctx<'_>, new: &Ctx<'_>, out: &mut Vec<DeclChange>) {
    let readers = rules_reading_taint(new);
    let consequence = |widening: bool| {
        let effect = if widening {
            "a session that reads it is no longer tainted"
        } else {
            "a session that reads it is tainted from then on"
        };
        if readers.is_empty() {
            format!(
                "{effect} (no rule reads `tainted` now; the audit record and `escalates when tainted` do)"
            )
        } else {
            format!(
                "{effect}; rules that read `tainted`: {}",
                readers.join(", ")
            )
        }
    };
    let mut compare_label = |label: Label<'_>, was: bool, now: bool| {
        if was != now {
            let (what, name) = match label {
                Label::Resource(r) => ("resource", r),
                Label::Tool(t) => ("tool", t),
            };
            let mut c = change(
                ChangeKind::Integrity,
                was,
                format!("{what} `{name}`"),
                format!(
                    "{} untrusted: {}",
                    if was { "no longer" } else { "now" },
                    consequence(was)
                ),
            );
            // The side with the label taints the session.
            let (with, without) = if was { (old, new) } else { (new, old) };
            c.witness = taint_witness(with, without, label, was, true);
            out.push(c);
            // A rule that is more permissive in a tainted session turns the label's
            // effect around for the requests it decides.
            if let Some(w) = taint_witness(with, without, label, was, false) {
                let mut c = change(
                    ChangeKind::Integrity,
                    !was,
                    format!("{what} `{name}`"),
                    format!(
                        "{} untrusted, and a rule decides more permissively in a tainted session",
                        if was { "no longer" } else { "now" }
                    ),
                );
                c.witness = Some(w);
                out.push(c);
            }
        }
    };
    for (i, r) in new.data.resources.iter().enumerate() {
        let Some(o) = old.data.resources.iter().position(|x| x.name == r.name) else {
            continue;
        };
        let was = old
            .data
            .untrusted_resources
            .contains(&rt::ResourceId(o as u32));
        let now = new
            .data
            .untrusted_resources
            .contains(&rt::ResourceId(i as u32));
        // Only through a tool that does not taint the session by itself (judged by NEW's
        // tool labels) does the resource's own label decide anything.
        let read_plainly = new.data.tools.iter().enumerate().any(|(t, tool)| {
            tool.reads.contains(&rt::ResourceId(i as u32))
                && !new.data.untrusted_tools.contains(&rt::ToolId(t as u32))
        });
        if read_plainly {
            compare_label(Label::Resource(&r.name), was, now);
        }
    }
    for (i, t) in new.data.tools.iter().enumerate() {
        let Some(o) = old.data.tools.iter().position(|x| x.name == t.name) else {
            continue;
        };
        let was = old.data.untrusted_tools.contains(&rt::ToolId(o as u32));
        let now = new.data.untrusted_tools.contains(&rt::ToolId(i as u32));
        // A tool all of whose declared reads are untrusted taints the session anyway.
        let reads_untrusted_only = !t.reads.is_empty()
            && t.reads
                .iter()
                .all(|r| new.data.untrusted_resources.contains(r));
        if !reads_untrusted_only {
            compare_label(Label::Tool(&t.name), was, now);
        }
    }
}
