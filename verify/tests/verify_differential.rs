//! Differential test of the verifier: random small policies, and for every property the
//! prover's verdict must agree with brute force over a small finite domain that is
//! complete for them (every amount one cent either side of each constant, every confidence
//! one millionth either side of 0.5, missing values, two isolation-key values, sessions of
//! up to three calls), with the runtime's `decide` as the ground truth for each decision.
//!
//! Escalation routes time out to allow or to deny, and an escalation may have several
//! routes: "without a human" (the escalation property, its assert, monotone thresholds)
//! is judged from the routes' timeouts as the engine resolves them, re-implemented here
//! from the contract (the earliest timeout ends the wait; it allows only when every
//! route with a timeout allows). A resource may read back a sink (`from s0`): a store
//! whose data sessions of another key value can write comes back as either key value.
//!
//! `AGENTPOLICY_DIFFERENTIAL_CASES` sets the number of policies (default 40, for CI).

#![expect(
    clippy::expect_used,
    reason = "a test helper that cannot do its job should fail the test loudly"
)]

use std::collections::{BTreeSet, HashSet};

use agentpolicy::codegen;
use agentpolicy::db::Database;
use agentpolicy::diagnostics::FileId;
use agentpolicy::model::Model;
use agentpolicy_runtime::{
    self as rt, AgentId, DecisionTable, KeyBindings, KeyId, KeyValue, Outcome, Request, ResourceId,
    SinkId, Slot, Stage, TierId, ToolId, decide,
};
use agentpolicy_verify::{self as verify, Config, Property, Report, Verdict};

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
    fn chance(&mut self, percent: u64) -> bool {
        self.below(100) < percent
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const TIERS: [&str; 3] = ["public", "internal", "confidential"];
const AMOUNTS: [&str; 3] = ["$1.00", "$2.00", "$3.00"];
const OPS: [&str; 6] = ["<", "<=", ">", ">=", "==", "!="];

/// A random policy with one agent `a`; tool `t0` always takes `amount`.
fn policy(rng: &mut Rng, n: u64) -> String {
    let keyed = rng.chance(60);
    let mut p = format!(
        "policy random{n} version \"1\"\ntiers public < internal < confidential\nescalation ops {{ notify \"q\" timeout 1m then deny }}\n"
    );
    // Routes with each timeout outcome, at different timeouts.
    for (route, after) in [("phone", "10m"), ("desk", "2m")] {
        let then = rng.pick(&["allow", "deny"]);
        p.push_str(&format!(
            "escalation {route} {{ notify \"q\" timeout {after} then {then} }}\n"
        ));
    }
    if keyed {
        p.push_str("isolate matter\n");
    }
    // `r1` may be a store: it reads back what is written to `s0`.
    let store = rng.chance(50);
    for r in 0..2 {
        let k = if keyed && rng.chance(60) {
            " keyed matter"
        } else {
            ""
        };
        let from = if r == 1 && store { " from s0" } else { "" };
        p.push_str(&format!(
            "resource r{r} {{ tier {}{k}{from} }}\n",
            rng.pick(&TIERS)
        ));
    }
    let sinks = 1 + rng.below(2);
    for s in 0..sinks {
        let k = if keyed && rng.chance(40) {
            " keyed matter"
        } else {
            ""
        };
        // A store's sink mostly accepts everything: sessions that read keyed data can
        // then write it back, which is what the store part of the domain is for.
        let clearance = if s == 0 && store && rng.chance(70) {
            "confidential"
        } else {
            rng.pick(&TIERS)
        };
        p.push_str(&format!("sink s{s} {{ clearance {clearance}{k} }}\n"));
    }
    let tools = 2 + rng.below(2);
    let mut amount_tools = Vec::new();
    for t in 0..tools {
        let params = if t == 0 || rng.chance(30) {
            amount_tools.push(t);
            if rng.chance(40) {
                "(amount: money?)"
            } else {
                "(amount: money)"
            }
        } else {
            ""
        };
        let mut effect = String::from("read");
        if rng.chance(40) {
            effect.push_str(", irreversible");
        }
        let mut body = format!("effect {effect}");
        let reads: Vec<String> = (0..2)
            .filter(|_| rng.chance(45))
            .map(|r| format!("r{r}"))
            .collect();
        if !reads.is_empty() {
            body.push_str(&format!(" reads {}", reads.join(", ")));
        }
        let writes: Vec<String> = (0..sinks)
            .filter(|_| rng.chance(35))
            .map(|s| format!("s{s}"))
            .collect();
        if !writes.is_empty() {
            body.push_str(&format!(" writes {}", writes.join(", ")));
        }
        p.push_str(&format!("tool t{t}{params} {{ {body} }}\n"));
    }
    // The store's own tools: one writes it, one reads it back.
    if store {
        p.push_str("tool keep { effect write writes s0 }\ntool recall { effect read reads r1 }\n");
    }
    p.push_str("agent a {\n  owner \"o@example.com\"\n");
    if rng.chance(40) {
        p.push_str(&format!("  max tier {}\n", rng.pick(&TIERS[..2])));
    }
    if store {
        for tool in ["keep", "recall"] {
            if rng.chance(80) {
                p.push_str(&format!("  allow {tool}\n"));
            }
        }
    }
    let rules = 1 + rng.below(4);
    for _ in 0..rules {
        let kind = rng.pick(&["allow", "allow", "escalate", "deny"]);
        let star = rng.chance(15);
        let tool = rng.below(tools);
        let target = if star {
            "*".to_string()
        } else {
            format!("t{tool}")
        };
        let route = if kind == "escalate" {
            format!(" to {}", rng.pick(&["ops", "phone", "desk"]))
        } else {
            String::new()
        };
        let cond = if rng.chance(25) {
            String::new()
        } else if !star && amount_tools.contains(&tool) && rng.chance(75) {
            let mut c = format!("amount {} {}", rng.pick(&OPS), rng.pick(&AMOUNTS));
            if rng.chance(30) {
                let join = rng.pick(&["and", "or"]);
                c = format!(
                    "{c} {join} amount {} {}",
                    rng.pick(&OPS),
                    rng.pick(&AMOUNTS)
                );
            }
            if rng.chance(20) {
                c = format!("{c} and confidence {} 0.5", rng.pick(&OPS[..4]));
            }
            format!(" when {c}")
        } else {
            format!(" when confidence {} 0.5", rng.pick(&OPS[..4]))
        };
        p.push_str(&format!("  {kind} {target}{route}{cond}\n"));
    }
    if rng.chance(30) {
        p.push_str(&format!(
            "  autonomy t0 when amount <= {} because \"budget\"\n",
            rng.pick(&AMOUNTS)
        ));
    }
    p.push_str("}\n");
    if rng.chance(50) {
        p.push_str(&format!(
            "assert never a calls t0 when amount > {}\n",
            rng.pick(&AMOUNTS)
        ));
    }
    if rng.chance(30) {
        p.push_str("assert every irreversible tool escalates\n");
    }
    if rng.chance(25) {
        p.push_str("assert every irreversible tool escalates when tainted\n");
    }
    if rng.chance(40) {
        p.push_str(&format!("assert a never reads {}\n", rng.pick(&TIERS[1..])));
    }
    if rng.chance(40) {
        p.push_str(&format!(
            "assert no flow from {} to s0\n",
            rng.pick(&TIERS[1..])
        ));
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

const AMOUNT_VALUES: [Option<i64>; 11] = [
    None,
    Some(0),
    Some(99),
    Some(100),
    Some(101),
    Some(199),
    Some(200),
    Some(201),
    Some(299),
    Some(300),
    Some(301),
];
const CONFIDENCES: [Option<i64>; 4] = [None, Some(499_999), Some(500_000), Some(500_001)];

/// Read or write choices of a tool: none named, or one declared target with key values.
fn accesses<T: Copy>(
    targets: &[T],
    keyed: impl Fn(T) -> Vec<KeyId>,
) -> Vec<Option<(T, KeyBindings)>> {
    let mut out = vec![None];
    for &t in targets {
        let keys = keyed(t);
        let combos = 1usize << keys.len();
        for m in 0..combos {
            let mut b = KeyBindings::default();
            for (i, k) in keys.iter().enumerate() {
                b.set(*k, KeyValue(1 + ((m >> i) & 1) as u64));
            }
            out.push(Some((t, b)));
        }
    }
    out
}

struct World<'a> {
    model: &'a Model,
    table: &'a DecisionTable,
}

impl World<'_> {
    fn data(&self) -> &rt::TableData {
        self.table.data()
    }

    fn request(&self, tool: usize, amount: Option<i64>, conf: Option<i64>) -> Request {
        let mut r = Request::new(AgentId(0), ToolId(tool as u32));
        if let Some(v) = amount
            && self.data().tools[tool].param("amount").is_some()
        {
            r.set(Slot(0), v);
        }
        if let Some(c) = conf {
            r.set(Slot::CONFIDENCE, c);
        }
        r
    }

    fn reads(&self, tool: usize) -> Vec<Option<(ResourceId, KeyBindings)>> {
        let d = self.data();
        accesses(&d.tools[tool].reads, |r: ResourceId| {
            d.resources[r.index()].keyed.clone()
        })
    }

    fn writes(&self, tool: usize) -> Vec<Option<(SinkId, KeyBindings)>> {
        let d = self.data();
        accesses(&d.tools[tool].writes, |s: SinkId| {
            d.sinks[s.index()].keyed.clone()
        })
    }

    /// A request shape that passes the flow check in a fresh session, if any.
    fn passing(&self, tool: usize) -> Option<Request> {
        for read in self.reads(tool) {
            for write in self.writes(tool) {
                let mut r = self.request(tool, None, None);
                r.read = read.map(|(target, keys)| rt::Access { target, keys });
                r.write = write.map(|(target, keys)| rt::Access { target, keys });
                if decide(self.table, &r).stage() != Stage::Flow {
                    return Some(r);
                }
            }
        }
        None
    }

    /// Every decision of the cell over the value domain, with a passing access.
    fn decisions(&self, tool: usize) -> Vec<(Option<i64>, Option<i64>, rt::Decision, Request)> {
        let Some(base) = self.passing(tool) else {
            return Vec::new();
        };
        let mut out = Vec::new();
        for a in AMOUNT_VALUES {
            for c in CONFIDENCES {
                let mut r = self.request(tool, a, c);
                r.read = base.read;
                r.write = base.write;
                let d = decide(self.table, &r);
                if d.stage() == Stage::NotGranted {
                    return Vec::new();
                }
                out.push((a, c, d, r));
            }
        }
        out
    }
}

fn verdict<'a>(report: &'a Report, property: Property, subject: &str) -> Option<&'a Verdict> {
    report
        .results
        .iter()
        .find(|r| r.property == property && r.subject.to_string() == subject)
        .map(|r| &r.verdict)
}

fn holds(v: Option<&Verdict>, policy: &str, what: &str) -> bool {
    let unknown = match v {
        Some(Verdict::Unknown(reason)) => Some(reason),
        _ => None,
    };
    assert!(
        unknown.is_none(),
        "{what}: unknown ({unknown:?}) on\n{policy}"
    );
    matches!(v, None | Some(Verdict::Proved))
}

/// The request (by its amount) is covered by an `autonomy` exemption of agent `a` for
/// tool `t`; the generator only writes `autonomy t0 when amount <= $X`.
fn exempt(model: &Model, t: usize, amount: Option<i64>) -> bool {
    model.agents[0]
        .autonomy
        .iter()
        .filter(|x| x.tool.index() == t)
        .any(|x| {
            let limit = x.condition.terms().iter().find_map(|term| match term {
                agentpolicy::model::Term::Const {
                    value: agentpolicy::model::Value::Money(v),
                    ..
                } => Some(*v),
                _ => None,
            });
            amount.zip(limit).is_some_and(|(a, l)| a <= l)
        })
}

/// The engine's answer when nobody answers an escalation to `d`'s routes, from the
/// contract: the wait ends at the earliest timeout of any route, and the call then runs
/// only when every route that has a timeout says `then allow`.
fn times_out_to_allow(table: &DecisionTable, d: &rt::Decision) -> bool {
    let routes: Vec<&rt::Route> = d
        .routes
        .as_slice()
        .iter()
        .map(|r| &table.data().routes[r.index()])
        .collect();
    let timed: Vec<&&rt::Route> = routes.iter().filter(|r| r.timeout_ms.is_some()).collect();
    !timed.is_empty()
        && timed
            .iter()
            .all(|r| r.timeout_outcome == Some(rt::TimeoutOutcome::Allow))
}

/// Allowed, or escalated to routes whose timeout allows: nobody has to answer.
fn without_human(table: &DecisionTable, d: &rt::Decision) -> bool {
    d.outcome == Outcome::Allow || (d.outcome == Outcome::Escalate && times_out_to_allow(table, d))
}

/// Allow 0 < escalation that times out to allow 1 < escalation 2 < deny 3.
fn permissiveness(table: &DecisionTable, d: &rt::Decision) -> u8 {
    match d.outcome {
        Outcome::Allow => 0,
        Outcome::Escalate if times_out_to_allow(table, d) => 1,
        Outcome::Escalate => 2,
        Outcome::Deny => 3,
    }
}

fn check_single_decisions(w: &World<'_>, report: &Report, text: &str) {
    let model = w.model;
    for (t, tool) in model.tools.iter().enumerate() {
        let decisions = w.decisions(t);
        let subject = format!("a calls {}", tool.name);
        // Irreversible => escalation, with the autonomy exemptions.
        if tool.is_irreversible() {
            let exempt = |a: Option<i64>| exempt(model, t, a);
            let brute = decisions
                .iter()
                .any(|(a, _, d, _)| without_human(w.table, d) && !exempt(*a));
            let proved = holds(
                verdict(report, Property::Escalation, &subject),
                text,
                &subject,
            );
            assert_eq!(
                proved, !brute,
                "escalation of {subject} disagrees on\n{text}"
            );
        }
        // Monotone thresholds: amounts and confidences, everything else equal.
        let rank = |d: &rt::Decision| permissiveness(w.table, d);
        let mut violated = false;
        for (a1, c1, d1, _) in &decisions {
            for (a2, c2, d2, _) in &decisions {
                // Money is compared from one cent up (docs/verification.md).
                let amount_riskier = c1 == c2 && a1.zip(*a2).is_some_and(|(x, y)| y > x && x > 0);
                let conf_riskier = a1 == a2 && c1.zip(*c2).is_some_and(|(x, y)| y < x);
                if (amount_riskier || conf_riskier) && rank(d2) < rank(d1) {
                    violated = true;
                }
            }
        }
        let proved = holds(
            verdict(report, Property::Monotone, &subject),
            text,
            &subject,
        );
        assert_eq!(
            proved, !violated,
            "monotonicity of {subject} disagrees on\n{text}"
        );
        // Granted but never usable.
        let granted = !decisions.is_empty()
            || w.passing(t).is_none() && {
                let r = w.request(t, None, None);
                decide(w.table, &r).stage() != Stage::NotGranted
            };
        let usable = decisions
            .iter()
            .any(|(_, _, d, _)| d.outcome != Outcome::Deny);
        if granted {
            let finding = verdict(report, Property::Hygiene, &subject)
                .is_some_and(|v| matches!(v, Verdict::Finding));
            assert_eq!(
                finding, !usable,
                "usability of {subject} disagrees on\n{text}"
            );
        }
    }
    // Rules that never decide.
    let d = w.data();
    for (i, rule) in d.rules.iter().enumerate() {
        let mut reachable = false;
        let mut decides = false;
        for t in 0..d.tools.len() {
            let cell = d.cell(AgentId(0), ToolId(t as u32)).expect("cell");
            let entry = cell
                .deny
                .iter()
                .chain(&cell.escalate)
                .chain(&cell.allow)
                .find(|e| e.rule.index() == i);
            let Some(entry) = entry else { continue };
            if !cell.granted {
                continue;
            }
            for (_, _, dec, req) in w.decisions(t) {
                reachable = true;
                let matches = match &entry.condition {
                    None => true,
                    Some(c) => {
                        c.first_missing(req.present).is_some() || c.eval(&req.values) == Some(true)
                    }
                };
                if dec.rule.is_some_and(|r| r.index() == i)
                    || (rule.kind == rt::RuleKind::Escalate
                        && dec.outcome == Outcome::Escalate
                        && matches)
                {
                    decides = true;
                }
            }
        }
        if !reachable {
            continue;
        }
        let finding = verdict(report, Property::Hygiene, &format!("rule {}", rule.id))
            .is_some_and(|v| matches!(v, Verdict::Finding));
        assert_eq!(
            finding, !decides,
            "hygiene of rule {} disagrees on\n{text}",
            rule.id
        );
    }
    // `assert never a calls t0 when amount > X` and `every irreversible tool escalates`.
    for a in &model.asserts {
        match a {
            agentpolicy::model::AssertDef::NeverCalls { condition, .. } => {
                let limit = condition.as_ref().and_then(|c| {
                    c.terms().iter().find_map(|term| match term {
                        agentpolicy::model::Term::Const {
                            value: agentpolicy::model::Value::Money(v),
                            ..
                        } => Some(*v),
                        _ => None,
                    })
                });
                let brute = w.decisions(0).iter().any(|(am, _, d, _)| {
                    d.outcome != Outcome::Deny && limit.is_none_or(|l| am.is_none_or(|v| v > l))
                });
                let proved = holds(
                    verdict(report, Property::Assert, "never a calls t0"),
                    text,
                    "never calls",
                );
                assert_eq!(
                    proved, !brute,
                    "`assert never a calls t0` disagrees on\n{text}"
                );
            }
            agentpolicy::model::AssertDef::EveryIrreversibleEscalates { .. } => {
                let brute = model
                    .tools
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| t.is_irreversible())
                    .any(|(t, _)| {
                        w.decisions(t)
                            .iter()
                            .any(|(a, _, d, _)| without_human(w.table, d) && !exempt(model, t, *a))
                    });
                let proved = holds(
                    verdict(
                        report,
                        Property::Assert,
                        "every irreversible tool escalates",
                    ),
                    text,
                    "escalates",
                );
                assert_eq!(
                    proved, !brute,
                    "`assert every irreversible tool escalates` disagrees on\n{text}"
                );
            }
            agentpolicy::model::AssertDef::TaintedIrreversibleEscalates { .. } => {
                // The generated rules never read `tainted`: a tainted session decides as
                // an untainted one, no exemption applies.
                let brute = model
                    .tools
                    .iter()
                    .enumerate()
                    .filter(|(_, t)| t.is_irreversible())
                    .any(|(t, _)| {
                        w.decisions(t).iter().any(|(_, _, d, r)| {
                            let mut tainted = *r;
                            tainted.session.tainted = true;
                            let d2 = decide(w.table, &tainted);
                            assert_eq!(d2.outcome, d.outcome, "taint changed a decision");
                            without_human(w.table, &d2)
                        })
                    });
                let proved = holds(
                    verdict(
                        report,
                        Property::Assert,
                        "every irreversible tool escalates when tainted",
                    ),
                    text,
                    "escalates when tainted",
                );
                assert_eq!(
                    proved, !brute,
                    "`assert every irreversible tool escalates when tainted` disagrees on\n{text}"
                );
            }
            _ => {}
        }
    }
}

/// The ghost of a session: runtime label, highest tier read, key values seen.
#[derive(Clone, PartialEq, Eq, Hash)]
struct State {
    tier: Option<u32>,
    bound: Vec<Option<u64>>,
    ghost: Option<u32>,
    seen: Vec<BTreeSet<u64>>,
}

#[derive(Default)]
struct FlowBad {
    isolation: bool,
    write_down: bool,
    ceiling: bool,
    never_reads: Vec<(u32, bool)>,
    no_flow: Vec<(u32, bool)>,
}

/// Explores sessions of up to three calls. `mixed[k]`: the store (`r1 from s0`) may hold
/// data of either value of key `k`. Returns what broke, and for each key whether some
/// call writes the store while holding data of that key.
fn explore(w: &World<'_>, mixed: &[bool]) -> (FlowBad, Vec<bool>) {
    let model = w.model;
    let d = w.data();
    let nkeys = d.keys.len();
    let mut bad = FlowBad::default();
    let mut into_store = vec![false; nkeys];
    let store = model
        .resources
        .iter()
        .enumerate()
        .find_map(|(r, res)| res.store.map(|s| (r, s.index())));
    // Data read back from the store counts up to the sink's clearance.
    let ghost_tier = |r: usize| {
        let res = &model.resources[r];
        let stored = res.store.map_or(0, |s| model.sinks[s.index()].clearance.0);
        res.tier.0.max(stored)
    };
    for a in &model.asserts {
        match a {
            agentpolicy::model::AssertDef::NeverReads { tier, .. } => {
                bad.never_reads.push((tier.0, false))
            }
            agentpolicy::model::AssertDef::NoFlow { tier, .. } => bad.no_flow.push((tier.0, false)),
            _ => {}
        }
    }
    let max_tier = model.agents[0].max_tier.map(|t| t.0);
    // Arguments that get each tool past the rules, if any.
    let args: Vec<Option<(Option<i64>, Option<i64>)>> = (0..d.tools.len())
        .map(|t| {
            w.decisions(t)
                .into_iter()
                .find(|(_, _, dec, _)| dec.outcome != Outcome::Deny)
                .map(|(a, c, _, _)| (a, c))
        })
        .collect();
    let start = State {
        tier: None,
        bound: vec![None; nkeys],
        ghost: None,
        seen: vec![BTreeSet::new(); nkeys],
    };
    let mut frontier = vec![start];
    let mut visited = HashSet::new();
    for _depth in 0..3 {
        let mut next = Vec::new();
        for s in frontier {
            if !visited.insert(s.clone()) {
                continue;
            }
            for (t, mt) in model.tools.iter().enumerate() {
                let Some((am, conf)) = args[t] else { continue };
                let keyed_reads: Vec<usize> = mt
                    .reads
                    .iter()
                    .map(|r| r.index())
                    .filter(|r| !model.resources[*r].keyed.is_empty())
                    .collect();
                for read in w.reads(t) {
                    if !keyed_reads.is_empty()
                        && !read.is_some_and(|(r, _)| keyed_reads.contains(&r.index()))
                    {
                        continue;
                    }
                    // Every write, named or not: the runtime itself denies a call of a
                    // tool that writes keyed data unless it names a keyed sink.
                    for write in w.writes(t) {
                        let mut r = w.request(t, am, conf);
                        r.read = read.map(|(target, keys)| rt::Access { target, keys });
                        r.write = write.map(|(target, keys)| rt::Access { target, keys });
                        r.session.tier = s.tier.map(TierId);
                        for (k, v) in s.bound.iter().enumerate() {
                            if let Some(v) = v {
                                r.session.bound.set(KeyId(k as u32), KeyValue(*v));
                            }
                        }
                        if decide(w.table, &r).outcome == Outcome::Deny {
                            continue;
                        }
                        // Ghost: every declared read and write; unnamed keyed values range
                        // over both values.
                        let ghost = mt
                            .reads
                            .iter()
                            .map(|r| ghost_tier(r.index()))
                            .chain(s.ghost)
                            .max();
                        let tiers: Vec<u32> = mt
                            .reads
                            .iter()
                            .map(|r| model.resources[r.index()].tier.0)
                            .collect();
                        if max_tier.is_some_and(|m| tiers.iter().any(|t| *t > m)) {
                            bad.ceiling = true;
                        }
                        for (t_, b) in bad.never_reads.iter_mut() {
                            if tiers.iter().any(|t| t >= t_) {
                                *b = true;
                            }
                        }
                        for sk in &mt.writes {
                            if ghost.is_some_and(|g| g > model.sinks[sk.index()].clearance.0) {
                                bad.write_down = true;
                            }
                            if sk.index() == 0 {
                                for (t_, b) in bad.no_flow.iter_mut() {
                                    if ghost.is_some_and(|g| g >= *t_) {
                                        *b = true;
                                    }
                                }
                            }
                        }
                        let mut seen_after = s.seen.clone();
                        for k in 0..nkeys {
                            let mut vals: BTreeSet<u64> = s.seen[k].clone();
                            let mut reads_k = BTreeSet::new();
                            for res in &mt.reads {
                                if model.resources[res.index()]
                                    .keyed
                                    .iter()
                                    .any(|x| x.index() == k)
                                {
                                    match read {
                                        Some((rr, keys))
                                            if rr.index() == res.index()
                                                && keys.get(KeyId(k as u32)).is_some() =>
                                        {
                                            reads_k.insert(
                                                keys.get(KeyId(k as u32)).map_or(0, |v| v.0),
                                            );
                                        }
                                        // Unnamed: it may hold either value.
                                        _ => {
                                            reads_k.insert(1);
                                            reads_k.insert(2);
                                        }
                                    }
                                }
                            }
                            // Reading the store back: either value, unless the sink and
                            // the resource are both keyed by `k`, once it is mixed.
                            if let Some((r, s0)) = store
                                && mixed[k]
                                && mt.reads.iter().any(|x| x.index() == r)
                            {
                                let by_k = |keyed: &[agentpolicy::model::KeyId]| {
                                    keyed.iter().any(|x| x.index() == k)
                                };
                                if !(by_k(&model.resources[r].keyed)
                                    && by_k(&model.sinks[s0].keyed))
                                {
                                    reads_k.insert(1);
                                    reads_k.insert(2);
                                }
                            }
                            if let Some((_, s0)) = store
                                && mt.writes.iter().any(|x| x.index() == s0)
                                && (!s.seen[k].is_empty() || !reads_k.is_empty())
                            {
                                into_store[k] = true;
                            }
                            let mut writes_k = BTreeSet::new();
                            for sk in &mt.writes {
                                if model.sinks[sk.index()].keyed.iter().any(|x| x.index() == k) {
                                    match write {
                                        Some((ss, keys))
                                            if ss.index() == sk.index()
                                                && keys.get(KeyId(k as u32)).is_some() =>
                                        {
                                            writes_k.insert(
                                                keys.get(KeyId(k as u32)).map_or(0, |v| v.0),
                                            );
                                        }
                                        _ => {
                                            writes_k.insert(1);
                                            writes_k.insert(2);
                                        }
                                    }
                                }
                            }
                            vals.extend(&reads_k);
                            vals.extend(&writes_k);
                            if vals.len() > 1 {
                                bad.isolation = true;
                            }
                            seen_after[k].extend(reads_k);
                        }
                        // The runtime's label after the call.
                        let data = w.data();
                        let runtime_reads: Vec<usize> = match read {
                            Some((rr, _)) => vec![rr.index()],
                            None => data.tools[t].reads.iter().map(|r| r.index()).collect(),
                        };
                        let tier = runtime_reads
                            .iter()
                            .map(|r| data.resources[*r].tier.0)
                            .chain(s.tier)
                            .max();
                        let mut bound = s.bound.clone();
                        if let Some((rr, keys)) = read {
                            for k in &data.resources[rr.index()].keyed {
                                if bound[k.index()].is_none() {
                                    bound[k.index()] = keys.get(*k).map(|v| v.0);
                                }
                            }
                        }
                        next.push(State {
                            tier,
                            bound,
                            ghost,
                            seen: seen_after,
                        });
                    }
                }
            }
        }
        frontier = next;
    }
    (bad, into_store)
}

/// Checks the flow verdicts; returns whether a store carried keyed data (the brute
/// force's fixed point found one).
fn check_flows(w: &World<'_>, report: &Report, text: &str) -> bool {
    // The stores' fixed point: explore again while a store takes in a new key.
    let mut mixed = vec![false; w.data().keys.len()];
    let bad = loop {
        let (bad, into) = explore(w, &mixed);
        if into.iter().zip(&mixed).all(|(i, m)| !i || *m) {
            break bad;
        }
        for (m, i) in mixed.iter_mut().zip(into) {
            *m |= i;
        }
    };
    let check = |property: Property, subject: &str, brute_bad: bool| {
        let v = verdict(report, property, subject);
        let proved = holds(v, text, subject);
        if proved {
            assert!(
                !brute_bad,
                "{} ({subject}) proved, brute force found a violation on\n{text}",
                property.name()
            );
        } else if let Some(Verdict::Counterexample(c)) = v
            && c.calls.len() <= 3
        {
            assert!(
                brute_bad,
                "{} ({subject}) refuted, brute force found no violation on\n{text}",
                property.name()
            );
        }
    };
    check(Property::Isolation, "agent a", bad.isolation);
    check(Property::WriteDown, "agent a", bad.write_down);
    check(Property::TierCeiling, "agent a", bad.ceiling);
    for (t, b) in &bad.never_reads {
        check(
            Property::Assert,
            &format!("a never reads {}", TIERS[*t as usize]),
            *b,
        );
    }
    for (t, b) in &bad.no_flow {
        check(
            Property::Assert,
            &format!("no flow from {} to s0", TIERS[*t as usize]),
            *b,
        );
    }
    mixed.iter().any(|m| *m)
}

#[test]
fn prover_agrees_with_brute_force() {
    let cases: u64 = std::env::var("AGENTPOLICY_DIFFERENTIAL_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(40);
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    let mut checked = 0;
    let mut refuted = 0;
    // Refutations that need the new parts of the domain: an escalation that times out
    // to allow, and data that comes back from a store.
    let mut timeout_allows = 0;
    let mut through_store = 0;
    // Policies whose store carried keyed data from one session to another.
    let mut stores_mixed = 0;
    for n in 0..cases * 3 {
        if checked == cases {
            break;
        }
        let text = policy(&mut rng, n);
        let Some((model, table)) = compile(&text) else {
            continue;
        };
        let report = verify::verify(&model, &table, &Config::default());
        // Habit 7: every counterexample found here replays in the runtime too.
        for (_, cex) in report.counterexamples() {
            refuted += 1;
            if cex.explanation.contains("whose timeout")
                || cex.explanation.contains("allowed without a human")
            {
                timeout_allows += 1;
            }
            if cex
                .explanation
                .contains("returns what is written to the store")
            {
                through_store += 1;
            }
            let mut keys = rt::KeyValueInterner::default();
            for call in cex.calls.iter().chain(cex.safer.as_ref()) {
                let request = call.to_request(&table, &mut keys).expect("valid request");
                assert_eq!(
                    decide(&table, &request).outcome,
                    call.outcome,
                    "{}\n{text}",
                    call.to_json()
                );
            }
        }
        let w = World {
            model: &model,
            table: &table,
        };
        check_single_decisions(&w, &report, &text);
        if check_flows(&w, &report, &text) {
            stores_mixed += 1;
        }
        checked += 1;
    }
    assert_eq!(
        checked, cases,
        "too many random policies had front-end errors"
    );
    assert!(
        refuted > 0,
        "the random policies should break some properties"
    );
    eprintln!(
        "{checked} policies, {refuted} counterexamples: {timeout_allows} through a timeout that allows, {through_store} through a store; {stores_mixed} policies with a store that mixes key values"
    );
    assert!(
        timeout_allows > 0 && stores_mixed > 0,
        "the random policies should refute through a timeout that allows ({timeout_allows}) and have stores that carry keyed data ({stores_mixed})"
    );
}
