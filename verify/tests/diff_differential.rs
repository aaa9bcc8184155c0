//! Differential test of `verify::diff` over every kind of declaration, not only rules: a
//! random small policy, one declaration of a random kind mutated (a rule, a route's
//! timeout outcome or duration, an `untrusted` label, a limit, a breaker, the mode or
//! stage, the ceiling, a clearance, a resource tier, a credential, the audit retention),
//! and the diff must report a widening exactly when brute force finds NEW more
//! permissive, and a narrowing exactly when it finds NEW stricter.
//!
//! Brute force, over a domain complete for the generator (every amount on either side of
//! each constant, missing amounts, tainted or not, every read and write a tool declares):
//! - `decide` on every single request of agent `a`, in a fresh session, tainted or not;
//! - the runtime `Engine` (manual clock) on every session of one and two calls, and on
//!   bursts of five identical calls at one instant, a minute apart, an hour apart, or one
//!   per task, each followed by a call of the bystander agent `b` (which an engine-wide
//!   suspension stops); each call is observed as (outcome reported, outcome decided, how
//!   an escalation ends unanswered), and the first call that differs decides;
//! - the same traces on probe policies that keep a side's flow declarations (tiers,
//!   labels, ceiling, clearance) or runtime declarations (mode, limits, breakers) under
//!   fixed rules that let everything through, so a changed declaration counts even where
//!   the policy's own rules hide it (the diff reports those structurally);
//! - credentials over a domain of ages, retention over records of every tier and a
//!   domain of ages (through the runtime's `Retention`), and the stage order.
//!
//! `AGENTPOLICY_DIFFERENTIAL_CASES` sets the number of policies (default 40, for CI),
//! `AGENTPOLICY_DIFFERENTIAL_SEED` the generator's seed.

#![expect(
    clippy::expect_used,
    reason = "a test helper that cannot do its job should fail the test loudly"
)]

use std::cmp::Ordering;
use std::sync::Arc;

use agentpolicy::codegen;
use agentpolicy::db::Database;
use agentpolicy::diagnostics::FileId;
use agentpolicy::model::{Model, Stage};
use agentpolicy_runtime::engine::{Labels, ManualClock};
use agentpolicy_runtime::{
    self as rt, ArgValue, DecisionTable, Engine, EngineConfig, KeyValueInterner, Outcome,
    SessionOptions, TierId,
};
use agentpolicy_verify::{self as verify, Access, ArgVal, Call, Config, Session};

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn below_usize(&mut self, n: usize) -> usize {
        self.below(n as u64) as usize
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
}

const TIERS: [&str; 3] = ["public", "internal", "confidential"];
const AMOUNTS: [&str; 3] = ["$1.00", "$2.00", "$3.00"];
const OPS: [&str; 6] = ["<", "<=", ">", ">=", "==", "!="];
const TIMEOUTS: [&str; 3] = ["15m", "1h", "4h"];
const WINDOWS: [&str; 4] = ["task", "session", "minute", "hour"];
const BREAKER_WINDOWS: [&str; 2] = ["1m", "5m"];
const LIFETIMES: [&str; 3] = ["15m", "1h", "8h"];
const PERIODS: [&str; 3] = ["90d", "1y", "5y"];
const MODES: [&str; 6] = [
    "",
    "mode enforce",
    "mode shadow",
    "stage shadow",
    "stage supervised to e0",
    "stage autonomous",
];

#[derive(Clone, Debug)]
struct Rule {
    kind: &'static str,
    tool: usize,
    route: usize,
    cond: String,
}

/// A policy as the generator's choices; `text` writes it.
#[derive(Clone, Debug)]
struct Gen {
    resource_tier: [usize; 2],
    resource_untrusted: [bool; 2],
    clearance: usize,
    tool_untrusted: [bool; 3],
    /// (timeout index, then allow)
    routes: [(usize, bool); 2],
    max_tier: Option<usize>,
    mode: usize,
    /// (count, window index)
    limit: Option<(u64, usize)>,
    /// (threshold, window index, engine scope)
    breaker: Option<(u64, usize, bool)>,
    credential: Option<usize>,
    rules: Vec<Rule>,
    /// (period index, for a tier)
    retention: Option<(usize, Option<usize>)>,
}

fn condition(rng: &mut Rng, tool: usize) -> String {
    let amount = tool != 1;
    match rng.below(6) {
        0 => String::new(),
        1 => "tainted".into(),
        2 => "not tainted".into(),
        3 if amount => format!(
            "amount {} {} and tainted",
            OPS[rng.below_usize(6)],
            AMOUNTS[rng.below_usize(3)]
        ),
        _ if amount => format!(
            "amount {} {}",
            OPS[rng.below_usize(6)],
            AMOUNTS[rng.below_usize(3)]
        ),
        _ => String::new(),
    }
}

fn rule(rng: &mut Rng) -> Rule {
    let tool = rng.below_usize(3);
    Rule {
        kind: ["allow", "allow", "escalate", "escalate", "deny"][rng.below_usize(5)],
        tool,
        route: rng.below_usize(2),
        cond: condition(rng, tool),
    }
}

fn generate(rng: &mut Rng) -> Gen {
    Gen {
        resource_tier: [rng.below_usize(3), rng.below_usize(3)],
        resource_untrusted: [rng.chance(40), rng.chance(30)],
        clearance: rng.below_usize(3),
        tool_untrusted: [rng.chance(15), rng.chance(15), rng.chance(15)],
        routes: [
            (rng.below_usize(3), rng.chance(30)),
            (rng.below_usize(3), rng.chance(30)),
        ],
        max_tier: rng.chance(50).then(|| rng.below_usize(2)),
        mode: rng.below_usize(MODES.len()),
        limit: rng
            .chance(50)
            .then(|| (2 + rng.below(2), rng.below_usize(WINDOWS.len()))),
        breaker: rng
            .chance(40)
            .then(|| (2 + rng.below(2), rng.below_usize(2), rng.chance(50))),
        credential: rng.chance(50).then(|| rng.below_usize(3)),
        rules: (0..1 + rng.below(4)).map(|_| rule(rng)).collect(),
        retention: rng.chance(50).then(|| {
            (
                rng.below_usize(3),
                rng.chance(30).then(|| rng.below_usize(3)),
            )
        }),
    }
}

/// The kinds of declaration a mutation changes, for the report at the end.
const KINDS: [&str; 11] = [
    "rule",
    "route",
    "untrusted",
    "limit",
    "breaker",
    "mode/stage",
    "max tier",
    "clearance",
    "resource tier",
    "credential",
    "retention",
];

/// Changes one declaration of a random kind; returns the kind.
fn mutate(rng: &mut Rng, g: &mut Gen) -> usize {
    let kind = rng.below_usize(KINDS.len());
    match kind {
        0 => {
            let i = rng.below_usize(g.rules.len());
            match rng.below(3) {
                0 if g.rules.len() > 1 => {
                    g.rules.remove(i);
                }
                1 => g.rules.push(rule(rng)),
                _ => {
                    let tool = g.rules[i].tool;
                    g.rules[i].cond = condition(rng, tool);
                    if rng.chance(40) {
                        g.rules[i].kind = ["allow", "escalate", "deny"][rng.below_usize(3)];
                    }
                }
            }
        }
        1 => {
            let r = rng.below_usize(2);
            if rng.chance(50) {
                g.routes[r].1 = !g.routes[r].1;
            } else {
                g.routes[r].0 = (g.routes[r].0 + 1 + rng.below_usize(2)) % 3;
            }
        }
        2 => match rng.below(5) {
            i @ 0..2 => g.resource_untrusted[i as usize] ^= true,
            i => g.tool_untrusted[(i - 2) as usize] ^= true,
        },
        3 => {
            g.limit = match g.limit {
                None => Some((2 + rng.below(2), rng.below_usize(WINDOWS.len()))),
                Some(_) if rng.chance(30) => None,
                Some((c, w)) if rng.chance(50) => Some((if c == 2 { 3 } else { 2 }, w)),
                Some((c, w)) => Some((c, (w + 1 + rng.below_usize(3)) % WINDOWS.len())),
            }
        }
        4 => {
            g.breaker = match g.breaker {
                None => Some((2 + rng.below(2), rng.below_usize(2), rng.chance(50))),
                Some(_) if rng.chance(25) => None,
                Some((t, w, e)) => match rng.below(3) {
                    0 => Some((if t == 2 { 3 } else { 2 }, w, e)),
                    1 => Some((t, 1 - w, e)),
                    _ => Some((t, w, !e)),
                },
            }
        }
        5 => g.mode = (g.mode + 1 + rng.below_usize(MODES.len() - 1)) % MODES.len(),
        6 => {
            g.max_tier = match g.max_tier {
                None => Some(rng.below_usize(2)),
                Some(_) if rng.chance(30) => None,
                Some(t) => Some(1 - t),
            }
        }
        7 => g.clearance = (g.clearance + 1 + rng.below_usize(2)) % 3,
        8 => {
            let r = rng.below_usize(2);
            g.resource_tier[r] = (g.resource_tier[r] + 1 + rng.below_usize(2)) % 3;
        }
        9 => {
            g.credential = match g.credential {
                None => Some(rng.below_usize(3)),
                Some(_) if rng.chance(30) => None,
                Some(l) => Some((l + 1 + rng.below_usize(2)) % 3),
            }
        }
        _ => {
            g.retention = match g.retention {
                None => Some((rng.below_usize(3), None)),
                Some(_) if rng.chance(30) => None,
                Some((p, t)) if rng.chance(60) => Some(((p + 1 + rng.below_usize(2)) % 3, t)),
                Some((p, _)) => Some((p, rng.chance(50).then(|| rng.below_usize(3)))),
            }
        }
    }
    kind
}

fn untrusted(on: bool) -> &'static str {
    if on { "  untrusted" } else { "" }
}

fn text(g: &Gen) -> String {
    let mut p =
        String::from("policy random version \"1\"\ntiers public < internal < confidential\n");
    for r in 0..2 {
        p.push_str(&format!(
            "resource r{r} {{ tier {}{} }}\n",
            TIERS[g.resource_tier[r]],
            untrusted(g.resource_untrusted[r])
        ));
    }
    p.push_str(&format!("sink s0 {{ clearance {} }}\n", TIERS[g.clearance]));
    p.push_str(&format!(
        "tool t0(amount: money?) {{ effect financial  reads r0{} }}\n",
        untrusted(g.tool_untrusted[0])
    ));
    p.push_str(&format!(
        "tool t1 {{ effect read  reads r1{} }}\n",
        untrusted(g.tool_untrusted[1])
    ));
    p.push_str(&format!(
        "tool t2(amount: money?) {{ effect write  writes s0{} }}\n",
        untrusted(g.tool_untrusted[2])
    ));
    p.push_str("tool t3 { effect read }\n");
    for (r, (t, allow)) in g.routes.iter().enumerate() {
        p.push_str(&format!(
            "escalation e{r} {{ notify \"q\" timeout {} then {} }}\n",
            TIMEOUTS[*t],
            if *allow { "allow" } else { "deny" }
        ));
    }
    p.push_str("agent a {\n  owner \"o@example.com\"\n");
    if let Some(t) = g.max_tier {
        p.push_str(&format!("  max tier {}\n", TIERS[t]));
    }
    if g.mode > 0 {
        p.push_str(&format!("  {}\n", MODES[g.mode]));
    }
    if let Some((c, w)) = g.limit {
        p.push_str(&format!("  limit {c} calls per {}\n", WINDOWS[w]));
    }
    if let Some((t, w, engine)) = g.breaker {
        p.push_str(&format!(
            "  breaker calls > {t} over {} then suspend{}\n",
            BREAKER_WINDOWS[w],
            if engine { " engine" } else { "" }
        ));
    }
    if let Some(l) = g.credential {
        p.push_str(&format!("  credential c0 expires {}\n", LIFETIMES[l]));
    }
    for r in &g.rules {
        let route = if r.kind == "escalate" {
            format!(" to e{}", r.route)
        } else {
            String::new()
        };
        let when = if r.cond.is_empty() {
            String::new()
        } else {
            format!(" when {}", r.cond)
        };
        p.push_str(&format!("  {} t{}{route}{when}\n", r.kind, r.tool));
    }
    p.push_str("}\nagent b {\n  owner \"o@example.com\"\n  allow t3\n}\n");
    if let Some((period, tier)) = g.retention {
        let tier = tier.map_or(String::new(), |t| format!("for {} ", TIERS[t]));
        p.push_str(&format!("retain audit {tier}{}\n", PERIODS[period]));
    }
    p
}

fn compile(text: &str) -> Option<(Model, DecisionTable)> {
    let mut db = Database::default();
    let loaded = db.load(vec![("random.agentpolicy".into(), text.into())]);
    let analysis = db.analysis(loaded);
    if analysis.has_errors() {
        return None;
    }
    let mut sources = Vec::new();
    while let Some((p, t)) = db.file(loaded, FileId(sources.len() as u32)) {
        sources.push((p.to_string(), t.to_string()));
    }
    let table = codegen::build_table(&analysis.model, &sources).ok()?;
    Some(((*analysis.model).clone(), table))
}

/// How NEW compares with OLD somewhere in the domain.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Found {
    wider: bool,
    stricter: bool,
}

impl Found {
    fn add(&mut self, ord: Ordering) {
        match ord {
            Ordering::Less => self.wider = true,
            Ordering::Greater => self.stricter = true,
            Ordering::Equal => {}
        }
    }
    fn merge(&mut self, other: Found) {
        self.wider |= other.wider;
        self.stricter |= other.stricter;
    }
}

/// One call of agent `a` (or `b` for the bystander's `t3`).
#[derive(Clone, Debug)]
struct Shape {
    agent: &'static str,
    tool: &'static str,
    amount: Option<i64>,
    read: Option<&'static str>,
    write: Option<&'static str>,
}

const AMOUNT_VALUES: [Option<i64>; 8] = [
    None,
    Some(50),
    Some(100),
    Some(150),
    Some(200),
    Some(250),
    Some(300),
    Some(350),
];

fn shapes(amounts: &[Option<i64>]) -> Vec<Shape> {
    let mut out = Vec::new();
    let shape = |tool, amount, read, write| Shape {
        agent: "a",
        tool,
        amount,
        read,
        write,
    };
    for &amount in amounts {
        for read in [None, Some("r0")] {
            out.push(shape("t0", amount, read, None));
        }
        for write in [None, Some("s0")] {
            out.push(shape("t2", amount, None, write));
        }
    }
    for read in [None, Some("r1")] {
        out.push(shape("t1", None, read, None));
    }
    out.push(shape("t3", None, None, None));
    out
}

fn bystander() -> Shape {
    Shape {
        agent: "b",
        tool: "t3",
        amount: None,
        read: None,
        write: None,
    }
}

/// `decide` on one request in a fresh session (a tainted one when `tainted`: the
/// verifier treats taint as free, as a caller's session may carry it), with how an
/// escalation ends unanswered as the engine's `raise` computes it from the decision's
/// routes (the traces below check that against the real engine).
fn decide_once(table: &DecisionTable, s: &Shape, tainted: bool) -> Seen {
    let call = Call {
        agent: s.agent.into(),
        tool: s.tool.into(),
        args: s
            .amount
            .map(|c| vec![("amount".to_string(), ArgVal::Money(c))])
            .unwrap_or_default(),
        confidence: None,
        read: s.read.map(|r| Access {
            target: r.into(),
            keys: Vec::new(),
        }),
        write: s.write.map(|w| Access {
            target: w.into(),
            keys: Vec::new(),
        }),
        untrusted: Vec::new(),
        sets: Vec::new(),
        session: Session {
            tainted,
            ..Session::default()
        },
        outcome: Outcome::Deny,
        rule: None,
    };
    let request = call
        .to_request(table, &mut KeyValueInterner::default())
        .expect("a request of the domain");
    let d = rt::decide(table, &request);
    let routes: Vec<&rt::Route> = d
        .routes
        .as_slice()
        .iter()
        .map(|r| &table.data().routes[r.index()])
        .collect();
    let deadline = routes.iter().filter_map(|r| r.timeout_ms).min();
    let allows = deadline.is_some()
        && routes
            .iter()
            .filter(|r| r.timeout_ms.is_some())
            .all(|r| r.timeout_outcome == Some(rt::TimeoutOutcome::Allow));
    Seen {
        reported: d.outcome,
        decided: d.outcome,
        end: (d.outcome == Outcome::Escalate).then_some((
            if allows {
                Outcome::Allow
            } else {
                Outcome::Deny
            },
            deadline,
        )),
    }
}

/// What a call comes to: the outcome reported, the outcome decided, and for an
/// escalation how it ends unanswered (its outcome, and the deadline after raising).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Seen {
    reported: Outcome,
    decided: Outcome,
    end: Option<(Outcome, Option<i64>)>,
}

/// A longer wait before a deny, or a shorter one before an allow, is more permissive.
fn compare_end(old: (Outcome, Option<i64>), new: (Outcome, Option<i64>)) -> Ordering {
    let at = |d: Option<i64>| d.unwrap_or(i64::MAX);
    match (old.0, new.0) {
        (Outcome::Deny, Outcome::Allow) => Ordering::Less,
        (Outcome::Allow, Outcome::Deny) => Ordering::Greater,
        (Outcome::Deny, _) => at(old.1).cmp(&at(new.1)),
        _ => at(new.1).cmp(&at(old.1)),
    }
}

/// `Less` when NEW's call is more permissive.
fn compare_seen(old: &Seen, new: &Seen) -> Ordering {
    new.reported
        .cmp(&old.reported)
        .then(new.decided.cmp(&old.decided))
        .then(match (old.end, new.end) {
            (Some(a), Some(b)) => compare_end(a, b),
            _ => Ordering::Equal,
        })
}

#[derive(Clone, Copy, Debug)]
enum Step {
    Now,
    Advance(i64),
    NewTask,
}

fn run_trace(table: &DecisionTable, trace: &[(Step, Shape)]) -> Vec<Seen> {
    let clock = Arc::new(ManualClock::new(1_000_000));
    let engine = Engine::new(
        table.clone(),
        EngineConfig {
            clock: clock.clone(),
            shards: 1,
            ..EngineConfig::default()
        },
    )
    .expect("engine");
    let mut sessions = std::collections::HashMap::new();
    let mut out = Vec::new();
    for (step, s) in trace {
        match step {
            Step::Now => {}
            Step::Advance(ms) => clock.advance(*ms),
            Step::NewTask => {}
        }
        let session = *sessions.entry(s.agent).or_insert_with(|| {
            engine
                .open_session(s.agent, SessionOptions::default())
                .expect("session")
        });
        if let Step::NewTask = step {
            engine.start_task(session).expect("task");
        }
        let args: Vec<(&str, ArgValue<'_>)> = s
            .amount
            .map(|c| vec![("amount", ArgValue::Money(c))])
            .unwrap_or_default();
        let mut call = rt::Call::new(s.tool);
        call.args = &args;
        call.read = s.read.map(|r| Labels {
            target: r,
            keys: &[],
        });
        call.write = s.write.map(|w| Labels {
            target: w,
            keys: &[],
        });
        let verdict = engine.decide(session, &call);
        let end = verdict.escalation.and_then(|id| {
            let pending = engine.pending_escalations().expect("pending");
            let e = pending.iter().find(|e| e.id == id)?;
            Some((e.timeout_outcome, e.deadline_ms.map(|d| d - e.raised_ms)))
        });
        out.push(Seen {
            reported: verdict.outcome,
            decided: verdict.decision.outcome,
            end,
        });
    }
    out
}

fn compare_traces(
    old: &DecisionTable,
    new: &DecisionTable,
    traces: &[Vec<(Step, Shape)>],
) -> Found {
    let mut found = Found::default();
    for trace in traces {
        let (o, n) = (run_trace(old, trace), run_trace(new, trace));
        let first = o
            .iter()
            .zip(&n)
            .map(|(o, n)| compare_seen(o, n))
            .find(|c| *c != Ordering::Equal)
            .unwrap_or(Ordering::Equal);
        found.add(first);
    }
    found
}

/// Sessions of one and two calls of `a`, and bursts of five calls each followed by the
/// bystander.
fn traces(single: &[Shape], first: &[Shape]) -> Vec<Vec<(Step, Shape)>> {
    let mut out: Vec<Vec<(Step, Shape)>> = Vec::new();
    for s in single {
        out.push(vec![(Step::Now, s.clone())]);
    }
    for f in first {
        for s in single {
            out.push(vec![(Step::Now, f.clone()), (Step::Now, s.clone())]);
        }
    }
    for s in single
        .iter()
        .filter(|s| s.read.is_none() && s.write.is_none())
    {
        for step in [
            Step::Now,
            Step::Advance(61_000),
            Step::Advance(3_601_000),
            Step::NewTask,
        ] {
            let mut t: Vec<(Step, Shape)> = (0..5).map(|_| (step, s.clone())).collect();
            t.push((Step::Now, bystander()));
            out.push(t);
        }
    }
    out
}

fn single_requests(old: &DecisionTable, new: &DecisionTable) -> Found {
    let mut found = Found::default();
    for s in shapes(&AMOUNT_VALUES) {
        for tainted in [false, true] {
            found.add(compare_seen(
                &decide_once(old, &s, tainted),
                &decide_once(new, &s, tainted),
            ));
        }
    }
    found
}

fn tier_of(data: &rt::TableData, t: TierId) -> &str {
    &data.tiers[t.index()]
}

/// The side's tiers, labels, ceiling and clearance under rules that let every call
/// through, except `t3` in a tainted session.
fn flow_probe(table: &DecisionTable) -> String {
    let d = table.data();
    let label = |on: bool| if on { "  untrusted" } else { "" };
    let ru = |i: u32| d.untrusted_resources.contains(&rt::ResourceId(i));
    let tu = |i: u32| d.untrusted_tools.contains(&rt::ToolId(i));
    let tool = |name: &str| {
        d.tools
            .iter()
            .position(|t| t.name == name)
            .map(|i| i as u32)
            .expect("tool")
    };
    let a = d.agents.iter().find(|a| a.name == "a").expect("agent a");
    let mut p = format!(
        "policy probe version \"1\"\ntiers {}\n",
        d.tiers.join(" < ")
    );
    for (i, r) in d.resources.iter().enumerate() {
        p.push_str(&format!(
            "resource {} {{ tier {}{} }}\n",
            r.name,
            tier_of(d, r.tier),
            label(ru(i as u32))
        ));
    }
    for s in &d.sinks {
        p.push_str(&format!(
            "sink {} {{ clearance {} }}\n",
            s.name,
            tier_of(d, s.clearance)
        ));
    }
    p.push_str(&format!(
        "tool t0(amount: money?) {{ effect financial  reads r0{} }}\n",
        label(tu(tool("t0")))
    ));
    p.push_str(&format!(
        "tool t1 {{ effect read  reads r1{} }}\n",
        label(tu(tool("t1")))
    ));
    p.push_str(&format!(
        "tool t2(amount: money?) {{ effect write  writes s0{} }}\n",
        label(tu(tool("t2")))
    ));
    p.push_str("tool t3 { effect read }\n");
    p.push_str("agent a {\n  owner \"o@example.com\"\n");
    if let Some(t) = a.max_tier {
        p.push_str(&format!("  max tier {}\n", tier_of(d, t)));
    }
    p.push_str("  allow t0\n  allow t1\n  allow t2\n  allow t3 when not tainted\n}\n");
    p.push_str("agent b {\n  owner \"o@example.com\"\n  allow t3\n}\n");
    // Without a ceiling: every resource's data can reach every sink.
    p.push_str(
        "agent c {\n  owner \"o@example.com\"\n  allow t0\n  allow t1\n  allow t2\n  allow t3 when not tainted\n}\n",
    );
    p
}

/// The side's mode and limits of `a` under rules that allow `t1` only.
fn limits_probe(table: &DecisionTable) -> String {
    runtime_probe(table, true, false)
}

/// The side's mode and breakers of `a` (apart from its limits, which would stop the
/// calls a breaker counts first) under rules that allow `t1` only.
fn breakers_probe(table: &DecisionTable) -> String {
    runtime_probe(table, false, true)
}

fn runtime_probe(table: &DecisionTable, limits: bool, breakers: bool) -> String {
    let d = table.data();
    let a = d.agents.iter().find(|a| a.name == "a").expect("agent a");
    let mut p = String::from(
        "policy probe version \"1\"\ntool t0(amount: money?) { effect read }\ntool t1 { effect read }\ntool t2(amount: money?) { effect read }\ntool t3 { effect read }\nagent a {\n  owner \"o@example.com\"\n",
    );
    if a.mode == rt::Mode::Shadow {
        p.push_str("  mode shadow\n");
    }
    for l in a.limits.iter().filter(|_| limits) {
        let window = match l.window {
            rt::LimitWindow::Task => "task",
            rt::LimitWindow::Session => "session",
            rt::LimitWindow::Minute => "minute",
            rt::LimitWindow::Hour => "hour",
            rt::LimitWindow::Day => "day",
        };
        p.push_str(&format!("  limit {} calls per {window}\n", l.count));
    }
    for b in a.breakers.iter().filter(|_| breakers) {
        assert_eq!(
            b.metric,
            rt::BreakerMetric::Calls,
            "the generator's breakers"
        );
        p.push_str(&format!(
            "  breaker calls > {} over {}ms then suspend{}\n",
            b.value,
            b.window_ms,
            if b.scope == rt::SuspendScope::Engine {
                " engine"
            } else {
                ""
            }
        ));
    }
    p.push_str("  allow t1\n}\nagent b {\n  owner \"o@example.com\"\n  allow t3\n}\n");
    p
}

fn probe(
    old: &DecisionTable,
    new: &DecisionTable,
    write: fn(&DecisionTable) -> String,
    accesses: bool,
) -> Found {
    let (ot, nt) = (write(old), write(new));
    if ot == nt {
        return Found::default();
    }
    let (o, n) = (compile(&ot), compile(&nt));
    assert!(o.is_some() && n.is_some(), "probes compile:\n{ot}\n{nt}");
    let ((_, ot), (_, nt)) = (o.expect("checked"), n.expect("checked"));
    let mut single: Vec<Shape> = shapes(&[None])
        .into_iter()
        .filter(|s| accesses || (s.read.is_none() && s.write.is_none()))
        .collect();
    if accesses {
        let of_c: Vec<Shape> = single
            .iter()
            .map(|s| Shape {
                agent: "c",
                ..s.clone()
            })
            .collect();
        single.extend(of_c);
    }
    let mut found = Found::default();
    for s in &single {
        for tainted in [false, true] {
            found.add(compare_seen(
                &decide_once(&ot, s, tainted),
                &decide_once(&nt, s, tainted),
            ));
        }
    }
    found.merge(compare_traces(&ot, &nt, &traces(&single, &single)));
    found
}

/// A credential is usable at an age below its lifetime (for ever without one).
fn credentials(old: &Model, new: &Model) -> Found {
    let mut found = Found::default();
    let ages = [
        0, 899_999, 900_000, 3_599_999, 3_600_000, 28_799_999, 28_800_000,
    ];
    let usable = |m: &Model, age: i64| {
        m.agents
            .iter()
            .find(|a| a.name == "a")
            .map(|a| {
                a.credentials
                    .iter()
                    .any(|c| c.expires_ms.is_none_or(|e| age < e))
            })
            .unwrap_or(false)
    };
    for age in ages {
        found.add(usable(old, age).cmp(&usable(new, age)));
    }
    found
}

/// Whether a record of `tier`, `age_days` old at `now`, must still be kept.
fn kept(table: &DecisionTable, tier: Option<TierId>, now: i64, age_days: i64) -> bool {
    let at = now - age_days * 86_400_000;
    match table.data().retention.rule_for(tier, now) {
        None => true,
        Some(rule) => at > rule.cutoff_ms,
    }
}

fn retention(old: &DecisionTable, new: &DecisionTable) -> Found {
    let mut found = Found::default();
    let now = rt::audit::parse_time("2031-03-01T00:00:00Z").expect("time");
    let mut tiers = vec![None];
    tiers.extend((0..3).map(|t| Some(TierId(t))));
    for tier in tiers {
        for age in [89, 91, 364, 367, 1824, 1828, 100_000] {
            // Kept by OLD, removable under NEW: a weaker record, so NEW is "wider".
            found.add(kept(new, tier, now, age).cmp(&kept(old, tier, now, age)));
        }
    }
    found
}

fn stage(old: &Model, new: &Model) -> Found {
    let of = |m: &Model| {
        m.agents
            .iter()
            .find(|a| a.name == "a")
            .and_then(|a| a.stage.as_ref())
            .map_or(Stage::Autonomous, |s| s.stage)
    };
    let mut found = Found::default();
    found.add(of(old).cmp(&of(new)));
    found
}

fn brute_force(om: &Model, ot: &DecisionTable, nm: &Model, nt: &DecisionTable) -> Found {
    let mut found = single_requests(ot, nt);
    let first = shapes(&[None, Some(150), Some(250)]);
    found.merge(compare_traces(
        ot,
        nt,
        &traces(&shapes(&AMOUNT_VALUES), &first),
    ));
    found.merge(probe(ot, nt, flow_probe, true));
    found.merge(probe(ot, nt, limits_probe, false));
    found.merge(probe(ot, nt, breakers_probe, false));
    found.merge(credentials(om, nm));
    found.merge(retention(ot, nt));
    found.merge(stage(om, nm));
    found
}

#[test]
fn diff_agrees_with_brute_force_on_every_kind_of_declaration() {
    let cases: u64 = std::env::var("AGENTPOLICY_DIFFERENTIAL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let seed = std::env::var("AGENTPOLICY_DIFFERENTIAL_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5eed_d1ff_0000_0001_u64);
    let mut rng = Rng(seed | 1);
    let mut checked = [0usize; KINDS.len()];
    let mut case = 0;
    let mut attempts = 0;
    while case < cases {
        attempts += 1;
        assert!(
            attempts < cases * 20,
            "the generator makes too many invalid policies"
        );
        let old = generate(&mut rng);
        let mut new = old.clone();
        let kind = mutate(&mut rng, &mut new);
        let (old_text, new_text) = (text(&old), text(&new));
        if old_text == new_text {
            continue;
        }
        let (Some((om, ot)), Some((nm, nt))) = (compile(&old_text), compile(&new_text)) else {
            continue;
        };
        case += 1;
        checked[kind] += 1;
        let report = verify::diff(&om, &ot, &nm, &nt, &Config::default()).expect("diff");
        assert!(report.unknown.is_empty(), "{:?}", report.unknown);
        let reported = Found {
            wider: report.widens(),
            stricter: !report.narrowing.is_empty()
                || report.declarations.iter().any(|d| !d.widening),
        };
        let truth = brute_force(&om, &ot, &nm, &nt);
        assert_eq!(
            reported,
            truth,
            "mutated {}\n--- old\n{old_text}\n--- new\n{new_text}\nreport: {:#?}",
            KINDS[kind],
            (&report.widening, &report.narrowing, &report.declarations)
        );
    }
    eprintln!(
        "checked per kind: {:?}",
        KINDS.iter().zip(checked).collect::<Vec<_>>()
    );
}
