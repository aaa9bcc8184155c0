//! Turning a model of a bounded-model-checking query into the counterexample a person
//! reads: each call of the trace with its session label, named accesses and key values
//! (equal integers get equal names), every call replayed through the runtime, and one
//! sentence on what went wrong.

use std::collections::HashMap;

use agentpolicy_runtime::{self as rt, Outcome};
use z3::ast::{Bool, Int};

use super::super::Ctx;
use super::super::cells;
use super::super::counterexample::{Access, Call, Counterexample, Session};
use super::{AgentFlows, Cv, FlowProp, SessionState};

fn int(model: &z3::Model, v: &Int) -> i64 {
    model.eval(v, true).and_then(|x| x.as_i64()).unwrap_or(0)
}

fn boolean(model: &z3::Model, v: &Bool) -> bool {
    model
        .eval(v, true)
        .and_then(|x| x.as_bool())
        .unwrap_or(false)
}

/// Names for the key values of one trace: equal integers get equal names.
#[derive(Default)]
struct KeyNames(HashMap<(usize, i64), String>);

impl KeyNames {
    fn name(&mut self, keys: &[String], k: usize, v: i64) -> String {
        let n = self.0.keys().filter(|(kk, _)| *kk == k).count() + 1;
        self.0
            .entry((k, v))
            .or_insert_with(|| format!("{}-{n}", keys.get(k).map_or("key", String::as_str)))
            .clone()
    }
}

pub(super) fn trace(
    flows: &AgentFlows<'_, '_>,
    model: &z3::Model,
    states: &[SessionState],
    calls: &[Cv],
    prop: FlowProp,
) -> Result<Counterexample, String> {
    let ctx = flows.ctx;
    let data = ctx.data;
    let mut names = KeyNames::default();
    let mut out = Vec::new();
    for (i, c) in calls.iter().enumerate() {
        let s = &states[i];
        let tool = int(model, &c.tool) as usize;
        let (_, values) = flows
            .usable
            .iter()
            .find(|(t, _)| *t == tool)
            .cloned()
            .ok_or("the trace uses a tool the agent cannot use")?;
        let lt = int(model, &s.label_tier);
        let mut session = Session {
            tier: (lt >= 0).then(|| data.tiers[lt as usize].clone()),
            bound: Vec::new(),
            tainted: false,
        };
        for k in 0..flows.keys() {
            if boolean(model, &s.bound[k]) {
                let v = names.name(&data.keys, k, int(model, &s.bound_value[k]));
                session.bound.push((data.keys[k].clone(), v));
            }
        }
        let mut access =
            |sel: i64, keyed: &[rt::KeyId], target: String, kv: &[(Bool, Int)]| -> Option<Access> {
                (sel >= 0).then(|| Access {
                    target,
                    keys: keyed
                        .iter()
                        .filter(|k| boolean(model, &kv[k.index()].0))
                        .map(|k| {
                            (
                                data.keys[k.index()].clone(),
                                names.name(&data.keys, k.index(), int(model, &kv[k.index()].1)),
                            )
                        })
                        .collect(),
                })
            };
        let rsel = int(model, &c.rsel);
        let read = if rsel >= 0 {
            let r = &data.resources[rsel as usize];
            access(rsel, &r.keyed, r.name.clone(), &c.rk)
        } else {
            None
        };
        let wsel = int(model, &c.wsel);
        let write = if wsel >= 0 {
            let sk = &data.sinks[wsel as usize];
            access(wsel, &sk.keyed, sk.name.clone(), &c.wk)
        } else {
            None
        };
        let mut call = Call {
            agent: data.agents[flows.agent].name.clone(),
            tool: data.tools[tool].name.clone(),
            args: values.args,
            confidence: values.confidence,
            read,
            write,
            untrusted: values.untrusted,
            sets: values.sets,
            session,
            outcome: Outcome::Deny,
            rule: None,
        };
        cells::decide(ctx, &mut call)?;
        if call.outcome == Outcome::Deny {
            return Err(cells::disagreement("a call that goes through", &call));
        }
        out.push(call);
    }
    let explanation = explain(flows, prop, &out);
    Ok(Counterexample {
        calls: out,
        safer: None,
        explanation,
    })
}

fn explain(flows: &AgentFlows<'_, '_>, prop: FlowProp, calls: &[Call]) -> String {
    let ctx: &Ctx<'_> = flows.ctx;
    let model = ctx.model;
    let Some(last) = calls.last() else {
        return String::new();
    };
    let Some(tool) = model
        .tool_by_name(&last.tool)
        .map(|t| &model.tools[t.index()])
    else {
        return String::new();
    };
    // What entered the session without the runtime seeing it: every resource a call's
    // tool declares but its request did not name.
    let mut unnamed: Vec<String> = Vec::new();
    for call in calls {
        let Some(t) = model
            .tool_by_name(&call.tool)
            .map(|t| &model.tools[t.index()])
        else {
            continue;
        };
        let named = call.read.as_ref().map(|a| a.target.as_str());
        for r in &t.reads {
            let name = &model.resources[r.index()].name;
            if named.is_some() && Some(name.as_str()) != named {
                unnamed.push(format!("`{}` (through `{}`)", name, t.name));
            }
        }
    }
    unnamed.dedup();
    let mut also = if unnamed.is_empty() {
        String::new()
    } else {
        format!(
            "; the session also took in {} without the request naming it, so the runtime never checked it",
            unnamed.join(", ")
        )
    };
    // Data of another key value that came back from a store (isolation only: stores
    // carry key values, and tiers through the sink's clearance).
    let mut stored: Vec<String> = Vec::new();
    for call in calls {
        let Some(t) = model
            .tool_by_name(&call.tool)
            .map(|t| &model.tools[t.index()])
        else {
            continue;
        };
        for r in &t.reads {
            let res = &model.resources[r.index()];
            let Some(sk) = res.store else { continue };
            let how: Vec<&str> = flows.mixed[sk.index()]
                .iter()
                .flatten()
                .map(String::as_str)
                .collect();
            if how.is_empty() || !matches!(prop, FlowProp::Isolation | FlowProp::KeyedInto(..)) {
                continue;
            }
            stored.push(format!(
                "`{}` reads `{}`, which returns what is written to the store `{}`, and {}: it may return another session's key value",
                t.name,
                res.name,
                model.sinks[sk.index()].name,
                how.join("; ")
            ));
        }
    }
    stored.dedup();
    if !stored.is_empty() {
        also.push_str("; ");
        also.push_str(&stored.join("; "));
    }
    match prop {
        FlowProp::Isolation => format!(
            "data of a second isolation-key value can enter the session or leave it through a write{also}"
        ),
        FlowProp::WriteDown => format!(
            "the session holds data above the clearance of a sink `{}` writes to{also}",
            tool.name
        ),
        FlowProp::Ceiling(max) => format!(
            "`{}` reads data above the agent's max tier `{}`{also}",
            tool.name,
            model.tiers[max.index()].name
        ),
        FlowProp::NeverReads(t) => format!(
            "`{}` reads data at or above tier `{}`{also}",
            tool.name,
            model.tiers[t.index()].name
        ),
        FlowProp::NoFlow(t, sink) => format!(
            "data at or above tier `{}` reaches sink `{}`{also}",
            model.tiers[t.index()].name,
            model.sinks[sink.index()].name
        ),
        FlowProp::KeyedInto(sink, k) => format!(
            "`{}` data reaches the store `{}`{also}",
            ctx.data.keys[k],
            model.sinks[sink.index()].name
        ),
    }
}
