//! Sessions as a transition system, for the flow properties: isolation, no write-down,
//! the tier ceiling, and the flow asserts (`AGENT never reads TIER`, `no flow from TIER to
//! SINK`).
//!
//! The state is the runtime's session label (tier, bound key values) next to a ghost of
//! what really entered the session: the highest tier of data read, and one witness value
//! per isolation key. The runtime part follows the table's flow check; the ghost follows
//! the model's tool declarations (a call may read every resource its tool declares and
//! write every sink it declares), so a table that checks less than the tools do is
//! caught. A call moves the session only when it is not denied; an escalated call counts
//! as made.
//!
//! A property is first tried by induction with its invariant ("every key value read is
//! the bound one" for isolation, "the label's tier dominates the ghost's" for the tier
//! properties). Where that fails, bounded model checking from a fresh session finds the
//! shortest trace; it is complete at the property's threshold (`FlowProp::threshold`),
//! because a step that changes none of the state the property depends on can be cut from
//! any trace, and that state changes a bounded number of times.

mod bmc;
mod induction;
mod stores;
mod trace;

pub use stores::{Mixed, stores};

use agentpolicy_runtime as rt;
use z3::ast::{Bool, Int};

use super::cells::{self, CellInfo};
use super::counterexample::Counterexample;
use super::{Ctx, Method, Property, PropertyResult, Subject, Verdict, report};
use agentpolicy::model::{SinkId, TierId};

/// Assumption behind the isolation and write-down verdicts.
pub const NAMED_ACCESS: &str = "a call of a tool that reads keyed data names one of its keyed resources and its key values (the runtime checks keys only of the access a request names; a call of a tool that writes keyed data is denied unless it names one of its keyed sinks and its key values)";
/// Assumption behind the isolation, write-down and no-flow verdicts: stores are followed
/// only where the policy says a resource reads a sink back.
pub const STORES_DECLARED: &str = "a resource that returns data written to a sink (memory, a shared drive, a vector index) is declared with `from SINK`; a store not declared so is treated as unrelated data";
/// Assumption behind every flow verdict.
pub const ESCALATION_MAY_PASS: &str = "an escalated call counts as made: a human may approve it";

/// A flow property for one agent's sessions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FlowProp {
    Isolation,
    WriteDown,
    /// Never read a resource above this tier.
    Ceiling(TierId),
    /// Never read a resource at or above this tier.
    NeverReads(TierId),
    /// Never write to the sink while holding data at or above the tier.
    NoFlow(TierId, SinkId),
    /// Never write to the sink (a store some resource reads back, `from SINK`) while
    /// holding data keyed by this key: the store would then carry data of one key value
    /// to sessions of another. Computed for every agent before the others (see
    /// [`stores`]); not reported on its own.
    KeyedInto(SinkId, usize),
}

/// A flow property's outcome for one agent.
#[derive(Debug, Clone)]
pub struct FlowOutcome {
    pub verdict: Result<Option<Counterexample>, String>,
    pub method: Method,
}

/// A session's state: the runtime's label (what `decide` sees) next to a ghost of what
/// really entered the session (what the model's tool declarations say was read).
struct SessionState {
    /// The label's tier: the highest tier the runtime has recorded (`-1`: none).
    label_tier: Int,
    /// Per isolation key: the label binds the session to a value.
    bound: Vec<Bool>,
    /// Per isolation key: the value the session is bound to.
    bound_value: Vec<Int>,
    /// Ghost: the highest tier of data really read (`-1`: none).
    read_tier: Int,
    /// Ghost, per isolation key: keyed data has been read.
    seen: Vec<Bool>,
    /// Ghost, per isolation key: one witness value of the keyed data read.
    seen_value: Vec<Int>,
}

struct Cv {
    /// Key values of data read back from a store: `[resource][key]`.
    stored: Vec<Vec<Int>>,
    tool: Int,
    rsel: Int,
    rk: Vec<(Bool, Int)>,
    wsel: Int,
    wk: Vec<(Bool, Int)>,
    /// Key values of keyed data the request does not name: `[resource][key]`.
    ur: Vec<Vec<Int>>,
    us: Vec<Vec<Int>>,
    pick: Vec<Bool>,
    w: Vec<Int>,
}

/// One tool's effect on the session, for a given state and call.
struct ToolStep {
    tool: usize,
    ok: Bool,
    next: SessionState,
    /// Constraints on the witness choice.
    side: Bool,
    gt_mid: Int,
    read_vals: Vec<Vec<Int>>,
    write_vals: Vec<Vec<Int>>,
}

fn max(a: &Int, b: i64) -> Int {
    a.ge(Int::from_i64(b)).ite(a, &Int::from_i64(b))
}

fn all(parts: Vec<Bool>) -> Bool {
    Bool::and(&parts)
}

fn any(parts: Vec<Bool>) -> Bool {
    Bool::or(&parts)
}

/// A tool the agent's rules let through, with the values of one such request.
type Usable = (usize, cells::Values);

struct AgentFlows<'c, 'a> {
    ctx: &'c Ctx<'a>,
    agent: usize,
    /// Which stores may hold data of several key values.
    mixed: &'c Mixed,
    /// Tools whose rules let some request through, with those arguments.
    usable: Vec<Usable>,
}

impl AgentFlows<'_, '_> {
    fn keys(&self) -> usize {
        self.ctx.data.keys.len()
    }

    fn state(&self, name: &str) -> SessionState {
        let k = self.keys();
        SessionState {
            label_tier: Int::new_const(format!("{name}.tier")),
            bound: (0..k)
                .map(|i| Bool::new_const(format!("{name}.bound{i}")))
                .collect(),
            bound_value: (0..k)
                .map(|i| Int::new_const(format!("{name}.value{i}")))
                .collect(),
            read_tier: Int::new_const(format!("{name}.ghost_tier")),
            seen: (0..k)
                .map(|i| Bool::new_const(format!("{name}.seen{i}")))
                .collect(),
            seen_value: (0..k)
                .map(|i| Int::new_const(format!("{name}.seen_value{i}")))
                .collect(),
        }
    }

    fn call(&self, name: &str) -> Cv {
        let k = self.keys();
        let pair = |what: &str, i: usize| {
            (
                Bool::new_const(format!("{name}.{what}{i}?")),
                Int::new_const(format!("{name}.{what}{i}")),
            )
        };
        let unnamed = |what: &str, n: usize| -> Vec<Vec<Int>> {
            (0..n)
                .map(|r| {
                    (0..k)
                        .map(|i| Int::new_const(format!("{name}.{what}{r}.{i}")))
                        .collect()
                })
                .collect()
        };
        Cv {
            stored: unnamed("stored", self.ctx.data.resources.len()),
            tool: Int::new_const(format!("{name}.tool")),
            rsel: Int::new_const(format!("{name}.read")),
            rk: (0..k).map(|i| pair("read_key", i)).collect(),
            wsel: Int::new_const(format!("{name}.write")),
            wk: (0..k).map(|i| pair("write_key", i)).collect(),
            ur: unnamed("unnamed_read", self.ctx.data.resources.len()),
            us: unnamed("unnamed_write", self.ctx.data.sinks.len()),
            pick: (0..k)
                .map(|i| Bool::new_const(format!("{name}.pick{i}")))
                .collect(),
            w: (0..k)
                .map(|i| Int::new_const(format!("{name}.witness{i}")))
                .collect(),
        }
    }

    fn state_domain(&self, s: &SessionState) -> Bool {
        let top = self.ctx.data.tiers.len() as i64 - 1;
        all(vec![
            s.label_tier.ge(Int::from_i64(-1)),
            s.label_tier.le(Int::from_i64(top)),
            s.read_tier.ge(Int::from_i64(-1)),
            s.read_tier.le(Int::from_i64(top)),
        ])
    }

    fn call_domain(&self, c: &Cv) -> Bool {
        let tools: Vec<Bool> = self
            .usable
            .iter()
            .map(|(t, _)| c.tool.eq(Int::from_i64(*t as i64)))
            .collect();
        all(vec![
            any(tools),
            c.rsel.ge(Int::from_i64(-1)),
            c.rsel
                .lt(Int::from_i64(self.ctx.data.resources.len() as i64)),
            c.wsel.ge(Int::from_i64(-1)),
            c.wsel.lt(Int::from_i64(self.ctx.data.sinks.len() as i64)),
        ])
    }

    fn init(&self, s: &SessionState) -> Bool {
        let mut parts = vec![
            s.label_tier.eq(Int::from_i64(-1)),
            s.read_tier.eq(Int::from_i64(-1)),
        ];
        parts.extend(s.seen.iter().map(Bool::not));
        all(parts)
    }

    /// The label dominates the ghost: the runtime's tier is at least what was read, and
    /// every key value read is the one the session is bound to.
    /// The label's tier dominates the ghost's: the runtime's tier is at least the
    /// highest tier of anything read.
    fn tier_invariant(&self, s: &SessionState) -> Bool {
        s.label_tier.ge(&s.read_tier)
    }

    /// Every key value read is the value the session is bound to.
    fn key_invariant(&self, s: &SessionState) -> Bool {
        all((0..self.keys())
            .map(|k| {
                s.seen[k].implies(Bool::and(&[
                    s.bound[k].clone(),
                    s.bound_value[k].eq(&s.seen_value[k]),
                ]))
            })
            .collect())
    }

    fn tool_step(&self, t: usize, s: &SessionState, c: &Cv) -> ToolStep {
        let data = self.ctx.data;
        let tool = &data.tools[t];
        let mtool = &self.ctx.model.tools[t];
        let max_tier = data.agents[self.agent].max_tier.map(|m| i64::from(m.0));
        let above = |tier: i64| max_tier.is_some_and(|m| tier > m);
        let rtier = |r: &rt::ResourceId| i64::from(data.resources[r.index()].tier.0);
        let keys = self.keys();

        // The runtime's read check (table data).
        let none_ok = !tool.reads.iter().any(|r| above(rtier(r)));
        let none_tier = tool
            .reads
            .iter()
            .fold(s.label_tier.clone(), |acc, r| max(&acc, rtier(r)));
        let mut read_ok = vec![Bool::and(&[
            c.rsel.eq(Int::from_i64(-1)),
            Bool::from_bool(none_ok),
        ])];
        let mut tier_mid = none_tier;
        let mut lb_mid: Vec<Bool> = s.bound.clone();
        let mut lv_mid: Vec<Int> = s.bound_value.clone();
        for r in &tool.reads {
            let res = &data.resources[r.index()];
            let sel = c.rsel.eq(Int::from_i64(r.index() as i64));
            let mut ok = vec![Bool::from_bool(!above(rtier(r)))];
            for k in &res.keyed {
                let k = k.index();
                ok.push(c.rk[k].0.clone());
                ok.push(s.bound[k].implies(s.bound_value[k].eq(&c.rk[k].1)));
            }
            read_ok.push(Bool::and(&[sel.clone(), all(ok)]));
            tier_mid = sel.ite(&max(&s.label_tier, rtier(r)), &tier_mid);
            for k in &res.keyed {
                let k = k.index();
                lb_mid[k] = sel.ite(&Bool::from_bool(true), &lb_mid[k]);
                lv_mid[k] = sel.ite(&s.bound[k].ite(&s.bound_value[k], &c.rk[k].1), &lv_mid[k]);
            }
        }
        // The runtime's write check, after the reads.
        let clearance = |sk: &rt::SinkId| i64::from(data.sinks[sk.index()].clearance.0);
        // A call of a tool with a keyed sink passes only naming a keyed sink (fail closed).
        let keyed_sink = tool
            .writes
            .iter()
            .any(|sk| !data.sinks[sk.index()].keyed.is_empty());
        let mut write_ok = vec![Bool::and(&[
            c.wsel.eq(Int::from_i64(-1)),
            Bool::from_bool(!keyed_sink),
            all(tool
                .writes
                .iter()
                .map(|sk| tier_mid.le(Int::from_i64(clearance(sk))))
                .collect()),
        ])];
        for sk in &tool.writes {
            let sink = &data.sinks[sk.index()];
            let mut ok = vec![
                c.wsel.eq(Int::from_i64(sk.index() as i64)),
                tier_mid.le(Int::from_i64(clearance(sk))),
                Bool::from_bool(!keyed_sink || !sink.keyed.is_empty()),
            ];
            for k in &sink.keyed {
                let k = k.index();
                ok.push(c.wk[k].0.clone());
                ok.push(lb_mid[k].implies(lv_mid[k].eq(&c.wk[k].1)));
            }
            write_ok.push(all(ok));
        }

        // The ghost (model data): everything the tool declares.
        let model = self.ctx.model;
        // Data read back from a store may be anything written to it: up to the sink's
        // clearance, whatever the resource's own tier.
        let ghost_tier = |r: &agentpolicy::model::ResourceId| {
            let res = &model.resources[r.index()];
            let stored = res
                .store
                .map_or(0, |sk| model.sinks[sk.index()].clearance.0);
            i64::from(res.tier.0.max(stored))
        };
        let gt_mid = mtool
            .reads
            .iter()
            .fold(s.read_tier.clone(), |acc, r| max(&acc, ghost_tier(r)));
        let mut read_vals: Vec<Vec<Int>> = vec![Vec::new(); keys];
        let mut keyed_reads = Vec::new();
        for r in &mtool.reads {
            let res = &model.resources[r.index()];
            // A store that sessions of other key values write to returns their data:
            // any value of the key, unless both the sink and the resource are keyed by
            // it (then the runtime checks the key on the way in and on the way out).
            if let Some(sk) = res.store {
                let sink = &model.sinks[sk.index()];
                for (k, vals) in read_vals.iter_mut().enumerate() {
                    let checked = sink.keyed.iter().any(|x| x.index() == k)
                        && res.keyed.iter().any(|x| x.index() == k);
                    if !checked && self.mixed[sk.index()][k].is_some() {
                        vals.push(c.stored[r.index()][k].clone());
                    }
                }
            }
            if res.keyed.is_empty() {
                continue;
            }
            let sel = c.rsel.eq(Int::from_i64(r.index() as i64));
            keyed_reads.push(sel.clone());
            for k in &res.keyed {
                let k = k.index();
                let named = Bool::and(&[sel.clone(), c.rk[k].0.clone()]);
                read_vals[k].push(named.ite(&c.rk[k].1, &c.ur[r.index()][k]));
            }
        }
        let mut write_vals: Vec<Vec<Int>> = vec![Vec::new(); keys];
        for sk in &mtool.writes {
            let sink = &model.sinks[sk.index()];
            if sink.keyed.is_empty() {
                continue;
            }
            let sel = c.wsel.eq(Int::from_i64(sk.index() as i64));
            for k in &sink.keyed {
                let k = k.index();
                let named = Bool::and(&[sel.clone(), c.wk[k].0.clone()]);
                write_vals[k].push(named.ite(&c.wk[k].1, &c.us[sk.index()][k]));
            }
        }
        // The assumption `NAMED_ACCESS`: a call of a tool that reads keyed data names one
        // of its keyed resources. (Writes need no assumption: the runtime denies a call
        // of a tool that writes keyed data unless it names one keyed sink.)
        let mut assume = Vec::new();
        if !keyed_reads.is_empty() {
            assume.push(any(keyed_reads));
        }

        let mut sb = Vec::new();
        let mut sv = Vec::new();
        let mut side = Vec::new();
        for (k, vals) in read_vals.iter().enumerate() {
            if vals.is_empty() {
                sb.push(s.seen[k].clone());
                sv.push(s.seen_value[k].clone());
            } else {
                sb.push(Bool::or(&[s.seen[k].clone(), c.pick[k].clone()]));
                sv.push(s.seen[k].ite(&s.seen_value[k], &c.w[k]));
                side.push(any(vals.iter().map(|v| c.w[k].eq(v)).collect()));
            }
        }
        let mut ok = vec![any(read_ok), any(write_ok)];
        ok.extend(assume);
        ToolStep {
            tool: t,
            ok: all(ok),
            next: SessionState {
                label_tier: tier_mid,
                bound: lb_mid,
                bound_value: lv_mid,
                read_tier: gt_mid.clone(),
                seen: sb,
                seen_value: sv,
            },
            side: all(side),
            gt_mid,
            read_vals,
            write_vals,
        }
    }

    fn steps(&self, s: &SessionState, c: &Cv) -> Vec<ToolStep> {
        self.usable
            .iter()
            .map(|(t, _)| self.tool_step(*t, s, c))
            .collect()
    }

    /// Some tool's call goes through and moves the session from `s` to `s2`.
    fn transition(&self, steps: &[ToolStep], c: &Cv, s2: &SessionState) -> Bool {
        any(steps
            .iter()
            .map(|st| {
                let mut parts = vec![
                    c.tool.eq(Int::from_i64(st.tool as i64)),
                    st.ok.clone(),
                    st.side.clone(),
                    s2.label_tier.eq(&st.next.label_tier),
                    s2.read_tier.eq(&st.next.read_tier),
                ];
                for k in 0..self.keys() {
                    parts.push(s2.bound[k].iff(&st.next.bound[k]));
                    parts.push(s2.bound_value[k].eq(&st.next.bound_value[k]));
                    parts.push(s2.seen[k].iff(&st.next.seen[k]));
                    parts.push(s2.seen_value[k].eq(&st.next.seen_value[k]));
                }
                all(parts)
            })
            .collect())
    }

    /// A call that goes through from `s` and breaks the property.
    fn bad(&self, prop: FlowProp, steps: &[ToolStep], s: &SessionState, c: &Cv) -> Bool {
        let model = self.ctx.model;
        any(steps
            .iter()
            .filter_map(|st| {
                let mtool = &model.tools[st.tool];
                let tier = |r: &agentpolicy::model::ResourceId| {
                    i64::from(model.resources[r.index()].tier.0)
                };
                let wrong = match prop {
                    FlowProp::Isolation => {
                        let mut per_key = Vec::new();
                        for k in 0..self.keys() {
                            let mut vals: Vec<(Bool, Int)> =
                                vec![(s.seen[k].clone(), s.seen_value[k].clone())];
                            vals.extend(
                                st.read_vals[k]
                                    .iter()
                                    .map(|v| (Bool::from_bool(true), v.clone())),
                            );
                            vals.extend(
                                st.write_vals[k]
                                    .iter()
                                    .map(|v| (Bool::from_bool(true), v.clone())),
                            );
                            for i in 0..vals.len() {
                                for j in i + 1..vals.len() {
                                    per_key.push(all(vec![
                                        vals[i].0.clone(),
                                        vals[j].0.clone(),
                                        vals[i].1.eq(&vals[j].1).not(),
                                    ]));
                                }
                            }
                        }
                        if per_key.is_empty() {
                            return None;
                        }
                        any(per_key)
                    }
                    FlowProp::WriteDown => {
                        if mtool.writes.is_empty() {
                            return None;
                        }
                        any(mtool
                            .writes
                            .iter()
                            .map(|sk| {
                                st.gt_mid.gt(Int::from_i64(i64::from(
                                    model.sinks[sk.index()].clearance.0,
                                )))
                            })
                            .collect())
                    }
                    FlowProp::Ceiling(max) => {
                        if !mtool.reads.iter().any(|r| tier(r) > i64::from(max.0)) {
                            return None;
                        }
                        Bool::from_bool(true)
                    }
                    FlowProp::NeverReads(t) => {
                        if !mtool.reads.iter().any(|r| tier(r) >= i64::from(t.0)) {
                            return None;
                        }
                        Bool::from_bool(true)
                    }
                    FlowProp::NoFlow(t, sink) => {
                        if !mtool.writes.contains(&sink) {
                            return None;
                        }
                        st.gt_mid.ge(Int::from_i64(i64::from(t.0)))
                    }
                    FlowProp::KeyedInto(sink, k) => {
                        if !mtool.writes.contains(&sink) {
                            return None;
                        }
                        if st.read_vals[k].is_empty() {
                            s.seen[k].clone()
                        } else {
                            Bool::from_bool(true)
                        }
                    }
                };
                Some(all(vec![
                    c.tool.eq(Int::from_i64(st.tool as i64)),
                    st.ok.clone(),
                    st.side.clone(),
                    wrong,
                ]))
            })
            .collect())
    }
}

/// Which invariant a property is proved by induction with.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Invariant {
    Tier,
    Keys,
    /// The bad call does not depend on what the session read: no induction needed.
    None,
}

impl FlowProp {
    fn invariant(self) -> Invariant {
        match self {
            FlowProp::Isolation | FlowProp::KeyedInto(..) => Invariant::Keys,
            FlowProp::WriteDown | FlowProp::NoFlow(..) => Invariant::Tier,
            FlowProp::Ceiling(_) | FlowProp::NeverReads(_) => Invariant::None,
        }
    }

    /// The completeness threshold of bounded model checking for this property: how many
    /// calls before the bad one a shortest trace can need. A call that changes none of
    /// the state the property depends on can be cut from a trace (the calls after it only
    /// get more permissive without it: labels only grow), and each part of the state
    /// changes a bounded number of times: the label and ghost tiers at most `tiers` times
    /// each, a key's binding and witness once each. Where the bad call depends on no
    /// state at all, a fresh session is the most permissive and the bound is 0.
    fn threshold(self, ctx: &Ctx<'_>) -> usize {
        match self.invariant() {
            Invariant::Tier => 2 * ctx.data.tiers.len(),
            Invariant::Keys => 2 * ctx.data.keys.len(),
            Invariant::None => 0,
        }
    }
}

/// Tools the agent's rules let some request through, with such a request's values.
fn usable(ctx: &Ctx<'_>, cells: &[CellInfo], agent: usize) -> Result<Vec<Usable>, String> {
    let mut out = Vec::new();
    for info in cells.iter().filter(|c| c.agent == agent && c.granted) {
        match cells::permitted(ctx, info) {
            cells::Permitted::No => {}
            cells::Permitted::Unknown(reason) => return Err(reason),
            cells::Permitted::Yes(values) => out.push((info.tool, *values)),
        }
    }
    Ok(out)
}

/// Proves `props` for the sessions of `agent`.
pub fn check_agent(
    ctx: &Ctx<'_>,
    cells: &[CellInfo],
    agent: usize,
    props: &[FlowProp],
) -> Vec<FlowOutcome> {
    let mixed = stores(ctx);
    check_agent_with(ctx, cells, agent, props, &mixed, &ctx.shared)
}

fn check_agent_with(
    ctx: &Ctx<'_>,
    cells: &[CellInfo],
    agent: usize,
    props: &[FlowProp],
    mixed: &Mixed,
    solver: &std::rc::Rc<z3::Solver>,
) -> Vec<FlowOutcome> {
    let fail = |reason: String| {
        props
            .iter()
            .map(|_| FlowOutcome {
                verdict: Err(reason.clone()),
                method: Method::Induction,
            })
            .collect()
    };
    let usable = match usable(ctx, cells, agent) {
        Ok(u) => u,
        Err(reason) => return fail(reason),
    };
    if usable.is_empty() {
        return props
            .iter()
            .map(|_| FlowOutcome {
                verdict: Ok(None),
                method: Method::Induction,
            })
            .collect();
    }
    let flows = AgentFlows {
        ctx,
        agent,
        mixed,
        usable,
    };
    let (mut outcomes, _step) = induction::prove(&flows, props, solver);
    if outcomes.iter().all(Option::is_some) {
        return outcomes.into_iter().flatten().collect();
    }

    bmc::check(&flows, props, &mut outcomes, solver);
    outcomes
        .into_iter()
        .zip(props)
        .map(|(o, p)| {
            o.unwrap_or(FlowOutcome {
                verdict: Ok(None),
                method: Method::Bmc {
                    depth: p.threshold(ctx),
                    complete: true,
                },
            })
        })
        .collect()
}

/// The flow properties the policy's asserts ask of `agent`.
fn assert_props(ctx: &Ctx<'_>, agent: usize) -> Vec<FlowProp> {
    ctx.model
        .asserts
        .iter()
        .filter_map(|a| match a {
            agentpolicy::model::AssertDef::NeverReads { agent: x, tier, .. }
                if x.index() == agent =>
            {
                Some(FlowProp::NeverReads(*tier))
            }
            agentpolicy::model::AssertDef::NoFlow { tier, sink, .. } => {
                Some(FlowProp::NoFlow(*tier, *sink))
            }
            _ => None,
        })
        .collect()
}

/// The outcome of `prop` for `agent`: from the cache [`prove`] fills, or proved now.
pub fn outcome(ctx: &Ctx<'_>, cells: &[CellInfo], agent: usize, prop: FlowProp) -> FlowOutcome {
    if let Some(o) = ctx.flows.borrow().get(&(agent, prop)) {
        return o.clone();
    }
    let o = check_agent(ctx, cells, agent, &[prop])
        .into_iter()
        .next()
        .unwrap_or(FlowOutcome {
            verdict: Err("no outcome".into()),
            method: Method::Induction,
        });
    ctx.flows.borrow_mut().insert((agent, prop), o.clone());
    o
}

/// Isolation, no write-down and the tier ceiling, for every agent `in_scope` selects; the
/// asserts' flow properties of those agents are proved in the same pass and kept for
/// `asserts`. With `with_asserts`, agents outside the scope that an assert names are
/// checked in the same way (their own results are not reported), so the asserts' outcomes
/// are exactly those of a run over every agent.
pub fn prove(
    ctx: &Ctx<'_>,
    cells: &[CellInfo],
    in_scope: &dyn Fn(usize) -> bool,
    with_asserts: bool,
) -> Vec<PropertyResult> {
    let mut out = Vec::new();
    for (a, agent) in ctx.model.agents.iter().enumerate() {
        let emit = in_scope(a);
        let for_asserts = assert_props(ctx, a);
        if !emit && (!with_asserts || for_asserts.is_empty()) {
            continue;
        }
        let mut props = Vec::new();
        if !ctx.model.keys.is_empty() {
            props.push((Some(Property::Isolation), FlowProp::Isolation));
        }
        if !ctx.model.sinks.is_empty() {
            props.push((Some(Property::WriteDown), FlowProp::WriteDown));
        }
        if let Some(max) = agent.max_tier {
            props.push((Some(Property::TierCeiling), FlowProp::Ceiling(max)));
        }
        for p in for_asserts {
            if !props.iter().any(|(_, q)| *q == p) {
                props.push((None, p));
            }
        }
        if props.is_empty() {
            continue;
        }
        let only: Vec<FlowProp> = props.iter().map(|(_, p)| *p).collect();
        let outcomes = check_agent(ctx, cells, a, &only);
        for ((property, prop), outcome) in props.into_iter().zip(outcomes) {
            match property {
                Some(property) if emit => {
                    let subject = Subject::Agent {
                        agent: agent.name.clone(),
                    };
                    out.push(result(ctx, property, prop, subject, outcome, None));
                }
                Some(_) => {}
                None => {
                    ctx.flows.borrow_mut().insert((a, prop), outcome);
                }
            }
        }
    }
    out
}

/// A flow outcome as a property result with its diagnostic.
pub fn result(
    ctx: &Ctx<'_>,
    property: Property,
    prop: FlowProp,
    subject: Subject,
    outcome: FlowOutcome,
    assert_loc: Option<agentpolicy::model::Loc>,
) -> PropertyResult {
    let assumptions = match prop {
        FlowProp::Isolation | FlowProp::WriteDown | FlowProp::NoFlow(..) => {
            vec![NAMED_ACCESS, ESCALATION_MAY_PASS]
        }
        FlowProp::Ceiling(_) | FlowProp::NeverReads(_) => vec![ESCALATION_MAY_PASS],
        FlowProp::KeyedInto(..) => vec![NAMED_ACCESS, STORES_DECLARED, ESCALATION_MAY_PASS],
    };
    let mut assumptions = assumptions;
    if matches!(
        prop,
        FlowProp::Isolation | FlowProp::WriteDown | FlowProp::NoFlow(..)
    ) {
        assumptions.insert(1, STORES_DECLARED);
    }
    let (verdict, diagnostic) = match outcome.verdict {
        Ok(None) => (Verdict::Proved, None),
        Ok(Some(cex)) => {
            let d = report::flow(ctx, property, prop, &cex, assert_loc);
            (Verdict::Counterexample(Box::new(cex)), Some(d))
        }
        Err(reason) => {
            let d = report::unknown(ctx, property, &subject.to_string(), &reason);
            (Verdict::Unknown(reason), Some(d))
        }
    };
    PropertyResult {
        property,
        subject,
        verdict,
        method: outcome.method,
        assumptions,
        diagnostic,
    }
}
