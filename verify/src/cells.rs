//! Properties of single decisions, proved per (agent, tool) cell of the table: the
//! request's arguments and confidence are symbolic, the cell's rule stage is the formula
//! from `encode`. Here: which cells can be used at all, irreversible => escalation, and
//! monotone thresholds. Asserts and hygiene reuse [`CellSolver`].

use std::rc::Rc;

use agentpolicy_runtime::{self as rt, KeyValueInterner, Outcome, ValueType};
use z3::ast::{Bool, Int};

use super::counterexample::{ArgVal, Call, Counterexample, Session};
use super::encode::{RuleStage, SymRequest};
use super::solver::{self, Check};
use super::{Ctx, Method, Property, PropertyResult, Subject, Verdict, access, report};

/// What is known about one cell before any property runs.
#[derive(Debug, Clone)]
pub struct CellInfo {
    pub agent: usize,
    pub tool: usize,
    pub granted: bool,
    /// A read and write the flow check lets through in a fresh session; `None` when
    /// every access is stopped (or the tool is not granted).
    pub access: Option<(Option<super::Access>, Option<super::Access>)>,
}

impl CellInfo {
    /// Granted, and some access passes the flow check: rules can decide here.
    pub fn reachable(&self) -> bool {
        self.granted && self.access.is_some()
    }
}

/// Every cell of the table, agent-major.
pub fn prepare(ctx: &Ctx<'_>) -> Vec<CellInfo> {
    prepare_agents(ctx, &|_| true)
}

/// The cells of the agents `keep` selects, agent-major.
pub fn prepare_agents(ctx: &Ctx<'_>, keep: &dyn Fn(usize) -> bool) -> Vec<CellInfo> {
    let mut out = Vec::new();
    for agent in (0..ctx.data.agents.len()).filter(|a| keep(*a)) {
        for tool in 0..ctx.data.tools.len() {
            let granted = cell(ctx, agent, tool).is_some_and(|c| c.granted);
            let access = if granted {
                access::passing(ctx.table, agent, tool)
            } else {
                None
            };
            out.push(CellInfo {
                agent,
                tool,
                granted,
                access,
            });
        }
    }
    out
}

pub fn cell<'a>(ctx: &Ctx<'a>, agent: usize, tool: usize) -> Option<&'a rt::Cell> {
    ctx.data
        .cell(rt::AgentId(agent as u32), rt::ToolId(tool as u32))
}

/// A solver holding one cell's request and rule stage; properties ask it for requests
/// that satisfy a goal.
pub struct CellSolver {
    pub info: CellInfo,
    pub req: SymRequest,
    pub stage: RuleStage,
    /// The domain of the request's values, asserted with every goal.
    domain: Bool,
    /// One solver for every cell (`Ctx::shared`): each question is asked inside a
    /// push / pop, which is much cheaper than a solver per cell.
    solver: Rc<z3::Solver>,
}

/// The answer to a goal.
pub enum Found {
    Model(z3::Model),
    Nothing,
    Unknown(String),
}

impl CellSolver {
    fn new(ctx: &Ctx<'_>, info: &CellInfo) -> Option<CellSolver> {
        let tool = ctx.data.tools.get(info.tool)?;
        let c = cell(ctx, info.agent, info.tool)?;
        let mut req = SymRequest::new("r", tool, &|p| witnesses(ctx, info.tool, p));
        // Strings only where the cell's formulas test texts: the integer solver is
        // much faster for the rest.
        req.strings = ctx
            .data
            .text_tests
            .iter()
            .any(|t| t.tool.index() == info.tool)
            || super::source_tests_texts_on(ctx.model, Some(info.tool));
        // Sets written in the policy, and nothing else that reads a text's characters:
        // membership is integer arithmetic on ids, without the string theory.
        if req.strings && ids_suffice(ctx, info.tool) {
            req.ids_only();
        }
        if req.strings && !ctx.texts.alphabet.has_room(&req) {
            return None;
        }
        let stage = RuleStage::new(c, &req, &|v| v, ctx.tests(info.tool))?;
        let domain = if req.strings {
            Bool::and(&[req.domain(&ctx.texts), req.set_consistency(&ctx.data.sets)])
        } else {
            req.domain(&ctx.texts)
        };
        let solver = if req.strings {
            ctx.shared_strings.clone()
        } else {
            ctx.shared.clone()
        };
        Some(CellSolver {
            info: info.clone(),
            req,
            stage,
            domain,
            solver,
        })
    }

    /// A model of `goal` (with `extra` domain constraints, e.g. of a second request),
    /// preferring one that satisfies `prefer` when one exists.
    pub fn find(&self, goal: &Bool, prefer: &[Bool]) -> Found {
        self.solver.push();
        self.solver.assert(&self.domain);
        self.solver.assert(goal);
        let first = solver::check(&self.solver, &[]);
        let result = match first {
            Check::Unsat => Found::Nothing,
            Check::Unknown(reason) => Found::Unknown(reason),
            Check::Sat(model) => {
                let mut prefs = self.req.preferences();
                prefs.extend(prefer.iter().cloned());
                Found::Model(solver::model_preferring(&self.solver, &prefs, model))
            }
        };
        self.solver.pop(1);
        result
    }
}

/// Whether every text test of `tool` (in the table, and in the asserts and exemptions
/// that apply to it) is membership of a text argument in a set whose members are known:
/// then text slots can be read as ids alone ([`SymRequest::ids_only`]). A glob, a
/// list's quantifier or a set bound at deploy time needs the strings.
fn ids_suffice(ctx: &Ctx<'_>, tool: usize) -> bool {
    let Some(t) = ctx.data.tools.get(tool) else {
        return false;
    };
    let text_param = |p: usize| t.params.get(p).is_some_and(|p| p.ty == ValueType::Text);
    let table = ctx
        .data
        .text_tests
        .iter()
        .filter(|x| x.tool.index() == tool)
        .all(|x| match &x.kind {
            rt::TextTestKind::InSet(set) => {
                text_param(usize::from(x.param)) && ctx.texts.set_has_ids(*set as usize)
            }
            _ => false,
        });
    if !table {
        return false;
    }
    let model_tool = ctx.model.tools.get(tool);
    let mut ok = true;
    let mut check = |c: &agentpolicy::model::Cond| {
        c.visit(&mut |c| match c {
            agentpolicy::model::Cond::InSet { arg, set } => {
                let table_param = model_tool
                    .and_then(|m| m.params.get(*arg))
                    .and_then(|p| t.param(&p.name));
                ok &= table_param.is_some_and(text_param) && ctx.texts.set_has_ids(set.index());
            }
            agentpolicy::model::Cond::Matches { .. }
            | agentpolicy::model::Cond::Quantified { .. } => ok = false,
            _ => {}
        })
    };
    for agent in &ctx.model.agents {
        for a in agent.autonomy.iter().filter(|a| a.tool.index() == tool) {
            check(&a.condition);
        }
    }
    for a in &ctx.model.asserts {
        if let agentpolicy::model::AssertDef::NeverCalls {
            target,
            condition: Some(c),
            ..
        } = a
        {
            let on = match target {
                agentpolicy::model::RuleTarget::Tool(x) => x.index() == tool,
                agentpolicy::model::RuleTarget::All => true,
            };
            if on {
                check(c);
            }
        }
    }
    ok
}

/// The cell's solver, built once and shared by every property.
pub fn solver(ctx: &Ctx<'_>, info: &CellInfo) -> Option<Rc<CellSolver>> {
    let key = (info.agent, info.tool);
    if let Some(s) = ctx.solvers.borrow().get(&key) {
        return s.clone();
    }
    let s = CellSolver::new(ctx, info).map(Rc::new);
    ctx.solvers.borrow_mut().insert(key, s.clone());
    s
}

/// Whether some request gets past the cell's rules (allowed or escalated), with the
/// values of one; asked once per cell.
#[derive(Debug, Clone)]
pub enum Permitted {
    Yes(Box<Values>),
    No,
    Unknown(String),
}

pub fn permitted(ctx: &Ctx<'_>, info: &CellInfo) -> Permitted {
    let key = (info.agent, info.tool);
    if let Some(p) = ctx.permitted.borrow().get(&key) {
        return p.clone();
    }
    let p = match solver(ctx, info) {
        None => Permitted::Unknown("malformed condition".into()),
        Some(cs) => match cs.find(&cs.stage.is_permitted(), &[]) {
            Found::Nothing => Permitted::No,
            Found::Unknown(reason) => Permitted::Unknown(reason),
            Found::Model(m) => Permitted::Yes(Box::new(values(ctx, &m, &cs.req))),
        },
    };
    ctx.permitted.borrow_mut().insert(key, p.clone());
    p
}

fn int(model: &z3::Model, v: &Int) -> Option<i64> {
    model.eval(v, true).and_then(|x| x.as_i64())
}

fn boolean(model: &z3::Model, v: &Bool) -> bool {
    model
        .eval(v, true)
        .and_then(|x| x.as_bool())
        .unwrap_or(false)
}

/// How many element strings a `list<text>` parameter needs in a cell's formula: one
/// per quantified atom about it (two per text test of the table, two per quantified
/// condition of an assert or exemption on the tool). See `encode`'s module docs.
pub fn witnesses(ctx: &Ctx<'_>, tool: usize, param: usize) -> usize {
    let tests = super::encode::TextTests::count(ctx.data, tool, param);
    let name = ctx
        .data
        .tools
        .get(tool)
        .and_then(|t| t.params.get(param))
        .map(|p| p.name.as_str());
    let model_tool = ctx.model.tools.get(tool);
    let mut source = 0;
    let mut count = |c: &agentpolicy::model::Cond| {
        c.visit(&mut |c| {
            if let agentpolicy::model::Cond::Quantified { arg, .. } = c
                && model_tool
                    .and_then(|t| t.params.get(*arg))
                    .map(|p| p.name.as_str())
                    == name
            {
                source += 1;
            }
        })
    };
    for agent in &ctx.model.agents {
        for a in agent.autonomy.iter().filter(|a| a.tool.index() == tool) {
            count(&a.condition);
        }
    }
    for a in &ctx.model.asserts {
        if let agentpolicy::model::AssertDef::NeverCalls {
            target: agentpolicy::model::RuleTarget::Tool(t),
            condition: Some(c),
            ..
        } = a
            && t.index() == tool
        {
            count(c);
        }
    }
    2 * (tests + source)
}

/// The concrete values of a request in a model.
#[derive(Debug, Clone, Default)]
pub struct Values {
    pub args: Vec<(String, ArgVal)>,
    pub confidence: Option<i64>,
    /// Arguments marked as coming from untrusted content.
    pub untrusted: Vec<String>,
    pub tainted: bool,
    /// Members of the `from deploy` sets that the counterexample assumes: the request's
    /// texts the model puts in each set.
    pub sets: Vec<(String, Vec<String>)>,
}

/// The concrete arguments, confidence, provenance and taint of `req` in `model`.
pub fn values(ctx: &Ctx<'_>, model: &z3::Model, req: &SymRequest) -> Values {
    let mut args = Vec::new();
    let mut confidence = None;
    let mut untrusted = Vec::new();
    for (i, s) in req.slots.iter().enumerate() {
        let Some(s) = s else { continue };
        if !boolean(model, &s.present) {
            continue;
        }
        if i != rt::Slot::CONFIDENCE.0 as usize && boolean(model, &s.untrusted) {
            untrusted.push(s.name.clone());
        }
        let Some(v) = int(model, &s.value) else {
            continue;
        };
        if i == rt::Slot::CONFIDENCE.0 as usize {
            confidence = Some(v);
            continue;
        }
        let value = match s.ty {
            ValueType::Money => ArgVal::Money(v),
            ValueType::Number => ArgVal::Number(v),
            ValueType::Percent => ArgVal::Percent(v),
            ValueType::Duration => ArgVal::Duration(v),
            ValueType::Bool => ArgVal::Bool(v != 0),
            ValueType::Text => match s.strings.first().filter(|_| req.strings) {
                Some(string) => ArgVal::Text(string_value(ctx, model, string)),
                None => ArgVal::Text(ctx.texts.text(v)),
            },
            ValueType::TextList => ArgVal::TextList(
                s.strings
                    .iter()
                    .take(usize::try_from(v).unwrap_or(0))
                    .map(|e| string_value(ctx, model, e))
                    .collect(),
            ),
        };
        args.push((s.name.clone(), value));
    }
    // The strings the request carries (a list's elements below its length).
    let carried: Vec<&z3::ast::String> = req
        .slots
        .iter()
        .flatten()
        .filter(|s| boolean(model, &s.present))
        .flat_map(|s| {
            let n = match s.ty {
                ValueType::TextList => int(model, &s.value).unwrap_or(0).max(0) as usize,
                _ => s.strings.len(),
            };
            s.strings.iter().take(n)
        })
        .collect();
    let sets = ctx
        .data
        .sets
        .iter()
        .filter(|s| s.deploy && !s.bound)
        .map(|set| {
            let mut members: Vec<String> = carried
                .iter()
                .filter(|s| boolean(model, &super::encode::unbound_member(set, s)))
                .map(|s| string_value(ctx, model, s))
                .collect();
            members.sort();
            members.dedup();
            (set.name.clone(), members)
        })
        .collect();
    Values {
        args,
        confidence,
        untrusted,
        tainted: boolean(model, &req.tainted),
        sets,
    }
}

fn string_value(ctx: &Ctx<'_>, model: &z3::Model, s: &z3::ast::String) -> String {
    ctx.texts.alphabet.read(model, s).unwrap_or_default()
}

/// A call of the cell with these values, decided by the runtime.
pub fn concrete_call(ctx: &Ctx<'_>, info: &CellInfo, v: Values) -> Result<Call, String> {
    let (read, write) = info.access.clone().unwrap_or((None, None));
    let mut call = Call {
        agent: ctx.data.agents[info.agent].name.clone(),
        tool: ctx.data.tools[info.tool].name.clone(),
        args: v.args,
        confidence: v.confidence,
        read,
        write,
        untrusted: v.untrusted,
        sets: v.sets,
        session: Session {
            tainted: v.tainted,
            ..Session::default()
        },
        outcome: Outcome::Deny,
        rule: None,
    };
    decide(ctx, &mut call)?;
    Ok(call)
}

/// Runs `call` through the runtime and records what it decides.
pub fn decide(ctx: &Ctx<'_>, call: &mut Call) -> Result<rt::Decision, String> {
    let mut keys = KeyValueInterner::default();
    let table = call.table(ctx.table)?;
    let request = call
        .to_request(&table, &mut keys)
        .map_err(|e| format!("the counterexample is not a valid request: {e}"))?;
    let d = rt::decide(&table, &request);
    call.outcome = d.outcome;
    call.rule = d
        .rule
        .and_then(|r| ctx.data.rules.get(r.index()))
        .map(|r| r.id.clone());
    Ok(d)
}

/// When the runtime escalates `call` to routes whose timeout allows it without a human
/// (as the engine resolves it), the words that say so: "escalates to `owner_phone`,
/// whose timeout after 10m allows without a human".
pub fn unattended_allow(ctx: &Ctx<'_>, call: &Call) -> Result<Option<String>, String> {
    let d = decide(ctx, &mut call.clone())?;
    if d.outcome != Outcome::Escalate {
        return Ok(None);
    }
    let routes = d.routes.as_slice();
    let Some(t) = rt::engine::unattended(ctx.data, routes) else {
        return Ok(None);
    };
    if t.outcome != Outcome::Allow {
        return Ok(None);
    }
    let name = |id: rt::RouteId| {
        ctx.data
            .routes
            .get(id.index())
            .map_or("?", |r| r.name.as_str())
    };
    let after = agentpolicy::values::duration(t.after_ms);
    Ok(Some(if routes.len() == 1 {
        format!(
            "escalates to `{}`, whose timeout after {after} allows without a human",
            name(t.first)
        )
    } else {
        let names: Vec<String> = routes.iter().map(|r| format!("`{}`", name(*r))).collect();
        format!(
            "escalates to {}; every one of them with a timeout allows when it runs out, so after {after} (`{}`'s timeout) it is allowed without a human",
            names.join(", "),
            name(t.first)
        )
    }))
}

/// How permissive the runtime's decision of `call` is, in the order of
/// [`RuleStage::permissiveness`]: allow 0, escalation that times out to allow 1,
/// escalation 2, deny 3.
pub fn permissiveness(ctx: &Ctx<'_>, call: &Call) -> Result<i64, String> {
    Ok(match call.outcome {
        Outcome::Allow => 0,
        Outcome::Escalate if unattended_allow(ctx, call)?.is_some() => 1,
        Outcome::Escalate => 2,
        Outcome::Deny => 3,
    })
}

/// A counterexample whose runtime outcome is not what the encoding promised is a bug in
/// the verifier: reported as Unknown, never as a proof or a counterexample.
pub fn disagreement(expected: &str, call: &Call) -> String {
    format!(
        "internal check failed: the encoding predicts {expected} for {}, but the runtime decides {}",
        call.to_json(),
        call.outcome
    )
}

/// Irreversible tools are never allowed without escalation, unless an `autonomy`
/// exemption of the agent covers the request (its condition known to hold).
pub fn prove_escalation(ctx: &Ctx<'_>, cells: &[CellInfo]) -> Vec<PropertyResult> {
    let mut out = Vec::new();
    for info in cells.iter().filter(|c| c.granted) {
        let tool = &ctx.model.tools[info.tool];
        if !tool.is_irreversible() {
            continue;
        }
        let subject = subject(ctx, info);
        let result = |verdict, diagnostic| PropertyResult {
            property: Property::Escalation,
            subject: subject.clone(),
            verdict,
            method: Method::PerCell,
            assumptions: Vec::new(),
            diagnostic,
        };
        if !info.reachable() {
            out.push(result(Verdict::Proved, None));
            continue;
        }
        let Some(cs) = solver(ctx, info) else {
            out.push(unknown(
                ctx,
                Property::Escalation,
                subject,
                "malformed condition",
            ));
            continue;
        };
        let goal = Bool::and(&[without_human(ctx, &cs), exempt(ctx, &cs).not()]);
        match cs.find(&goal, &[]) {
            Found::Nothing => out.push(result(Verdict::Proved, None)),
            Found::Unknown(reason) => {
                out.push(unknown(ctx, Property::Escalation, subject, &reason))
            }
            Found::Model(model) => match concrete_call(ctx, info, values(ctx, &model, &cs.req))
                .and_then(|call| without_human_words(ctx, &call).map(|w| (call, w)))
            {
                Ok((call, Some(words))) => {
                    let cex = Counterexample {
                        explanation: format!(
                            "`{}` is irreversible, and this request {words}",
                            tool.name
                        ),
                        calls: vec![call],
                        safer: None,
                    };
                    let d = report::escalation(ctx, info, &cex);
                    out.push(result(Verdict::Counterexample(Box::new(cex)), Some(d)));
                }
                Ok((call, None)) => out.push(unknown(
                    ctx,
                    Property::Escalation,
                    subject,
                    &disagreement("an allow without a human", &call),
                )),
                Err(e) => out.push(unknown(ctx, Property::Escalation, subject, &e)),
            },
        }
    }
    out
}

/// The cell's rules let the request run without a person: it is allowed, or escalated
/// to routes whose timeout allows it (nobody has to answer for it to run).
pub fn without_human(ctx: &Ctx<'_>, cs: &CellSolver) -> Bool {
    match cell(ctx, cs.info.agent, cs.info.tool) {
        Some(c) => cs.stage.is_allow_without_human(ctx.data, c),
        None => cs.stage.is_allow(),
    }
}

/// How the runtime lets `call` run without a person ("is allowed without a human", or
/// the escalation that times out to allow), or `None` when it does not.
pub fn without_human_words(ctx: &Ctx<'_>, call: &Call) -> Result<Option<String>, String> {
    if call.outcome == Outcome::Allow {
        return Ok(Some("is allowed without a human".into()));
    }
    unattended_allow(ctx, call)
}

/// The request is covered by an `autonomy` exemption of the cell's agent for its tool:
/// the exemption's condition is known to hold (a value it reads that the request lacks
/// means it does not apply: fail safe).
pub fn exempt(ctx: &Ctx<'_>, cs: &CellSolver) -> Bool {
    let info = &cs.info;
    let tool = &ctx.model.tools[info.tool];
    let exemptions: Vec<Bool> = ctx.model.agents[info.agent]
        .autonomy
        .iter()
        .filter(|a| a.tool.index() == info.tool)
        .map(|a| {
            let (holds, known) = super::encode::source_condition(
                &a.condition,
                Some(tool),
                &ctx.data.tools[info.tool],
                &cs.req,
                &ctx.texts,
                &ctx.data.sets,
            );
            Bool::and(&[holds, known])
        })
        .collect();
    Bool::or(&exemptions)
}

pub fn subject(ctx: &Ctx<'_>, info: &CellInfo) -> Subject {
    Subject::Cell {
        agent: ctx.data.agents[info.agent].name.clone(),
        tool: ctx.data.tools[info.tool].name.clone(),
    }
}

pub fn unknown(
    ctx: &Ctx<'_>,
    property: Property,
    subject: Subject,
    reason: &str,
) -> PropertyResult {
    let d = report::unknown(ctx, property, &subject.to_string(), reason);
    PropertyResult {
        property,
        subject,
        verdict: Verdict::Unknown(reason.to_string()),
        method: Method::PerCell,
        assumptions: Vec::new(),
        diagnostic: Some(d),
    }
}

/// A riskier value (a larger amount of money, a lower confidence) never gets a more
/// permissive outcome than a safer one, all else equal.
pub fn prove_monotone(ctx: &Ctx<'_>, cells: &[CellInfo]) -> Vec<PropertyResult> {
    let mut out = Vec::new();
    for info in cells.iter().filter(|c| c.reachable()) {
        let Some(c) = cell(ctx, info.agent, info.tool) else {
            continue;
        };
        let reads = c
            .deny
            .iter()
            .chain(&c.escalate)
            .chain(&c.allow)
            .filter_map(|e| e.condition.as_ref())
            .fold(0u32, |m, cond| m | cond.reads);
        let tool = &ctx.data.tools[info.tool];
        let mut slots: Vec<usize> = tool
            .params
            .iter()
            .enumerate()
            .filter(|(_, p)| p.ty == ValueType::Money)
            .map(|(i, _)| i)
            .collect();
        slots.push(rt::Slot::CONFIDENCE.0 as usize);
        slots.retain(|s| reads & (1 << s) != 0);
        if slots.is_empty() {
            continue;
        }
        let subject = subject(ctx, info);
        let Some(cs) = solver(ctx, info) else {
            out.push(unknown(
                ctx,
                Property::Monotone,
                subject,
                "malformed condition",
            ));
            continue;
        };
        let mut verdict = None;
        for slot in slots {
            match monotone_slot(ctx, info, &cs, c, slot) {
                Ok(None) => {}
                Ok(Some(cex)) => {
                    verdict = Some(Ok(cex));
                    break;
                }
                Err(reason) => {
                    verdict = Some(Err(reason));
                    break;
                }
            }
        }
        out.push(match verdict {
            None => PropertyResult {
                property: Property::Monotone,
                subject,
                verdict: Verdict::Proved,
                method: Method::PerCell,
                assumptions: Vec::new(),
                diagnostic: None,
            },
            Some(Ok(cex)) => {
                let d = report::monotone(ctx, &cex);
                PropertyResult {
                    property: Property::Monotone,
                    subject,
                    verdict: Verdict::Counterexample(Box::new(cex)),
                    method: Method::PerCell,
                    assumptions: Vec::new(),
                    diagnostic: Some(d),
                }
            }
            Some(Err(reason)) => unknown(ctx, Property::Monotone, subject, &reason),
        });
    }
    out
}

fn monotone_slot(
    ctx: &Ctx<'_>,
    info: &CellInfo,
    cs: &CellSolver,
    c: &rt::Cell,
    slot: usize,
) -> Result<Option<Counterexample>, String> {
    let Some(safe) = cs.req.slot(slot) else {
        return Ok(None);
    };
    let mut riskier = cs.req.clone();
    let risky = super::encode::SlotVar {
        value: Int::new_const(format!("risky.{}", safe.name)),
        present: Bool::from_bool(true),
        ..safe.clone()
    };
    riskier.slots[slot] = Some(risky.clone());
    let Some(stage2) = RuleStage::new(c, &riskier, &|v| v, ctx.tests(info.tool)) else {
        return Err("malformed condition".into());
    };
    let is_confidence = slot == rt::Slot::CONFIDENCE.0 as usize;
    let (worse, adjacent) = if is_confidence {
        (
            risky.value.lt(&safe.value),
            risky.value.eq(&safe.value - Int::from_i64(1)),
        )
    } else {
        (
            risky.value.gt(&safe.value),
            risky.value.eq(&safe.value + Int::from_i64(1)),
        )
    };
    // Money is compared from one cent up: an amount of zero or less is not a smaller
    // exposure but a malformed request (or a refund), and a rule that denies it is input
    // validation, not a threshold (docs/verification.md, "Monotone thresholds").
    let positive = if is_confidence {
        Bool::from_bool(true)
    } else {
        safe.value.gt(Int::from_i64(0))
    };
    let goal = Bool::and(&[
        safe.present.clone(),
        positive,
        worse,
        risky.value.ge(Int::from_i64(i64::MIN)),
        risky.value.le(Int::from_i64(i64::MAX)),
        stage2
            .permissiveness(ctx.data, c)
            .lt(cs.stage.permissiveness(ctx.data, c)),
    ]);
    let mut prefer = vec![adjacent];
    if is_confidence {
        prefer.push(risky.value.ge(Int::from_i64(0)));
    }
    match cs.find(&goal, &prefer) {
        Found::Nothing => Ok(None),
        Found::Unknown(reason) => Err(reason),
        Found::Model(model) => {
            let safer = concrete_call(ctx, info, values(ctx, &model, &cs.req))?;
            let risk = concrete_call(ctx, info, values(ctx, &model, &riskier))?;
            if permissiveness(ctx, &risk)? >= permissiveness(ctx, &safer)? {
                return Err(disagreement(
                    &format!("an outcome more permissive than {}", safer.outcome),
                    &risk,
                ));
            }
            let what = if is_confidence {
                "a lower `confidence`".to_string()
            } else {
                format!("a larger `{}`", safe.name)
            };
            // Two escalations differ only in what their timeout does.
            let outcome = |call: &Call| -> Result<String, String> {
                Ok(match unattended_allow(ctx, call)? {
                    Some(words) => format!("{} (it {words})", call.outcome),
                    None if call.outcome == Outcome::Escalate => {
                        format!("{} (a person must approve it)", call.outcome)
                    }
                    None => call.outcome.to_string(),
                })
            };
            let (risk_words, safer_words) = if risk.outcome == safer.outcome {
                (outcome(&risk)?, outcome(&safer)?)
            } else {
                (risk.outcome.to_string(), safer.outcome.to_string())
            };
            Ok(Some(Counterexample {
                explanation: format!(
                    "{what} gets {risk_words} while the safer request gets {safer_words}"
                ),
                calls: vec![risk],
                safer: Some(safer),
            }))
        }
    }
}
