//! Differential test: the compiled decision table and the reference interpreter must
//! agree on outcome, stage, deciding rule, routes and missing value, for random small
//! models and random calls.
//!
//! Each proptest case draws a seed, builds a random model from it (tools with parameters
//! of every type, agents, `allow` / `escalate` / `deny` rules on tools and `*`, random
//! conditions with and / or / not, text constants, sets, globs, `list<text>`
//! quantifiers, argument provenance, presence tests (`given` / `missing`), session taint and `effect` tests, thresholds,
//! resources, sinks, keys, limits) and then checks `DIFFERENTIAL_CALLS` random calls against it (arguments and
//! confidence sometimes missing, reads and writes sometimes named, random sessions).
//!
//! Defaults: 2,000 models x 200 calls = 400,000 decisions, a few seconds in a debug
//! build. A million (about 10 s in debug):
//!
//! ```text
//! PROPTEST_CASES=5000 cargo test -p agentpolicy --test differential
//! ```
//!
//! (or keep the cases and raise `DIFFERENTIAL_CALLS=2000`). A failure prints the seed,
//! the call and both answers; `DIFFERENTIAL_SEED=<seed>` replays that one model.

use agentpolicy::codegen::build_table;
use agentpolicy::diagnostics::FileId;
use agentpolicy::interpret::{Call, DataAccess, Missing, Session, Verdict, interpret};
use agentpolicy::model::*;
use agentpolicy::syntax::ast::{
    CompareOp, Effect, LimitUnit, LimitWindow, Mode, Quantifier, RuleKind, TextRange,
    TimeoutOutcome, TypeName,
};
use agentpolicy_runtime::{
    self as rt, ArgValue, DecisionTable, KeyBindings, KeyValueInterner, Request, SessionView,
    decide,
};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};

/// splitmix64: a small, fast, seedable generator, so a seed replays a whole case.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    /// Uniform in `lo..=hi`.
    fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + self.below(hi - lo + 1)
    }

    /// True with probability `percent` / 100.
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

const TEXTS: [&str; 3] = ["alpha", "beta", "gamma"];
/// Texts a call may carry: the constants, and two the policy never mentions.
const CALL_TEXTS: [&str; 5] = ["alpha", "beta", "gamma", "zeta", "omega"];
const NUMBERS: [i64; 7] = [-1, 0, 1, 5, 10, 100, 101];
const CONFIDENCES: [i64; 5] = [0, 499_999, 500_000, 850_000, 1_000_000];
const KEY_VALUES: [&str; 2] = ["M-1", "M-2"];
/// Globs the conditions use: they match some of the call texts and not others.
const GLOBS: [&str; 5] = ["*a", "a*", "?e*", "*", "zet?"];
const TYPES: [TypeName; 7] = [
    TypeName::TextList,
    TypeName::Text,
    TypeName::Number,
    TypeName::Money,
    TypeName::Bool,
    TypeName::Duration,
    TypeName::Percent,
];
const OPS: [CompareOp; 6] = [
    CompareOp::Lt,
    CompareOp::Le,
    CompareOp::Gt,
    CompareOp::Ge,
    CompareOp::Eq,
    CompareOp::Ne,
];
const SOURCE: &str = "policy.agentpolicy";

fn loc(at: u32) -> Loc {
    Loc {
        file: FileId(0),
        range: TextRange {
            start: at,
            end: at + 4,
        },
    }
}

fn value_of(ty: TypeName, n: i64) -> Value {
    match ty {
        TypeName::Money => Value::Money(n),
        TypeName::Number | TypeName::Percent => Value::Number(n),
        TypeName::Duration => Value::Duration(n),
        TypeName::Bool => Value::Bool(n % 2 != 0),
        TypeName::Text => Value::Text(TEXTS[n.unsigned_abs() as usize % TEXTS.len()].into()),
        TypeName::TextList => Value::TextList(
            (0..n.unsigned_abs() % 3)
                .map(|i| TEXTS[(n.unsigned_abs() + i) as usize % TEXTS.len()].to_string())
                .collect(),
        ),
    }
}

/// A test on each element of a list (or the one text).
fn gen_element_test(rng: &mut Rng, sets: usize) -> ElementTest {
    let negated = rng.chance(30);
    match rng.below(3) {
        0 if sets > 0 => ElementTest::InSet {
            set: SetId(rng.below(sets) as u32),
            negated,
        },
        1 => ElementTest::Equals {
            text: (*rng.pick(&CALL_TEXTS)).into(),
            negated,
        },
        _ => ElementTest::Matches {
            pattern: (*rng.pick(&GLOBS)).into(),
            negated,
        },
    }
}

fn konst(value: Value) -> Term {
    Term::Const {
        value,
        threshold: None,
    }
}

fn subset<T: Copy>(rng: &mut Rng, items: &[T], percent: u64) -> Vec<T> {
    items
        .iter()
        .copied()
        .filter(|_| rng.chance(percent))
        .collect()
}

/// A random condition over the tool's parameters (none for `*` rules), confidence,
/// taint and effects. `sets` is how many sets the model declares.
fn gen_cond(rng: &mut Rng, params: &[ParamDef], sets: usize, depth: u32) -> Cond {
    let cond = gen_cond_inner(rng, params, sets, depth);
    // Sema never produces a list compared as a whole: keep those out.
    let mut list_compared = false;
    cond.visit(&mut |c| {
        if let Cond::Compare { left, right, .. } = c {
            for t in [left, right] {
                if let Term::Arg(i) = t
                    && params[*i].ty == TypeName::TextList
                {
                    list_compared = true;
                }
            }
        }
        if let Cond::Truthy(Term::Arg(i)) = c
            && params[*i].ty == TypeName::TextList
        {
            list_compared = true;
        }
    });
    if list_compared {
        Cond::Truthy(Term::Tainted)
    } else {
        cond
    }
}

fn gen_cond_inner(rng: &mut Rng, params: &[ParamDef], sets: usize, depth: u32) -> Cond {
    if depth > 0 && rng.chance(45) {
        return match rng.below(3) {
            0 => Cond::And(
                (0..rng.range(0, 3))
                    .map(|_| gen_cond_inner(rng, params, sets, depth - 1))
                    .collect(),
            ),
            1 => Cond::Or(
                (0..rng.range(0, 3))
                    .map(|_| gen_cond_inner(rng, params, sets, depth - 1))
                    .collect(),
            ),
            _ => Cond::Not(Box::new(gen_cond_inner(rng, params, sets, depth - 1))),
        };
    }
    if rng.chance(8) {
        return if rng.chance(50) {
            Cond::Truthy(Term::Tainted)
        } else {
            Cond::HasEffect(*rng.pick(&[Effect::Irreversible, Effect::Financial]))
        };
    }
    let texts: Vec<usize> = (0..params.len())
        .filter(|&j| params[j].ty == TypeName::Text)
        .collect();
    let lists: Vec<usize> = (0..params.len())
        .filter(|&j| params[j].ty == TypeName::TextList)
        .collect();
    if !lists.is_empty() && rng.chance(30) {
        return Cond::Quantified {
            quantifier: *rng.pick(&[Quantifier::All, Quantifier::Any]),
            arg: *rng.pick(&lists),
            test: gen_element_test(rng, sets),
        };
    }
    if !texts.is_empty() && rng.chance(30) {
        let arg = *rng.pick(&texts);
        return match gen_element_test(rng, sets) {
            ElementTest::InSet { set, .. } => Cond::InSet { arg, set },
            _ => Cond::Matches {
                arg,
                pattern: (*rng.pick(&GLOBS)).into(),
            },
        };
    }
    if !params.is_empty() && rng.chance(8) {
        return Cond::FromUntrusted {
            arg: rng.below(params.len()),
        };
    }
    if !params.is_empty() && rng.chance(6) {
        // `ARG given` / `ARG missing`: guards the reads of ARG beside it.
        let present = Cond::Present {
            arg: rng.below(params.len()),
        };
        return if rng.chance(50) {
            Cond::Not(Box::new(present))
        } else {
            present
        };
    }
    if rng.chance(5) {
        // Constant conditions, folded at compile time.
        return if rng.chance(50) {
            Cond::Truthy(konst(Value::Bool(rng.chance(50))))
        } else {
            Cond::Compare {
                left: konst(Value::Number(*rng.pick(&NUMBERS))),
                op: *rng.pick(&OPS),
                right: konst(Value::Number(*rng.pick(&NUMBERS))),
            }
        };
    }
    if params.is_empty() || rng.chance(20) {
        let op = *rng.pick(&OPS);
        let floor = konst(Value::Number(*rng.pick(&CONFIDENCES)));
        return compare_maybe_flipped(rng, Term::Confidence, op, floor);
    }
    let i = rng.below(params.len());
    let ty = params[i].ty;
    let same_type: Vec<usize> = (0..params.len())
        .filter(|&j| comparable(params[j].ty, ty))
        .collect();
    let op = if ty == TypeName::Text {
        *rng.pick(&[CompareOp::Eq, CompareOp::Ne])
    } else {
        *rng.pick(&OPS)
    };
    if ty == TypeName::Bool && rng.chance(50) {
        return Cond::Truthy(Term::Arg(i));
    }
    if rng.chance(20) {
        let j = *rng.pick(&same_type);
        return Cond::Compare {
            left: Term::Arg(i),
            op,
            right: Term::Arg(j),
        };
    }
    let constant = konst(value_of(ty, *rng.pick(&NUMBERS)));
    compare_maybe_flipped(rng, Term::Arg(i), op, constant)
}

fn compare_maybe_flipped(rng: &mut Rng, subject: Term, op: CompareOp, constant: Term) -> Cond {
    if rng.chance(25) {
        Cond::Compare {
            left: constant,
            op: op.flipped(),
            right: subject,
        }
    } else {
        Cond::Compare {
            left: subject,
            op,
            right: constant,
        }
    }
}

fn gen_model(rng: &mut Rng) -> Model {
    let mut model = Model {
        policy: Some(PolicyInfo {
            name: "random".into(),
            version: Some("1".into()),
            loc: loc(0),
        }),
        ..Model::default()
    };
    model.tiers = (0..rng.range(1, 4))
        .map(|i| TierDef {
            name: format!("tier{i}"),
            loc: loc(0),
        })
        .collect();
    let tiers = model.tiers.len();
    model.keys = (0..rng.range(0, 2))
        .map(|i| KeyDef {
            name: format!("key{i}"),
            loc: loc(0),
        })
        .collect();
    let keys: Vec<KeyId> = (0..model.keys.len() as u32).map(KeyId).collect();
    model.resources = (0..rng.range(0, 3))
        .map(|i| ResourceDef {
            name: format!("resource{i}"),
            tier: TierId(rng.below(tiers) as u32),
            keyed: subset(rng, &keys, 60),
            untrusted: rng.chance(30),
            store: None,
            loc: loc(0),
        })
        .collect();
    model.sets = (0..rng.range(0, 2))
        .map(|i| {
            let mut members: Vec<String> = CALL_TEXTS
                .iter()
                .filter(|_| rng.chance(40))
                .map(|t| (*t).to_string())
                .collect();
            members.sort();
            SetDef {
                name: format!("set{i}"),
                members: Some(members),
                loc: loc(0),
            }
        })
        .collect();
    model.sinks = (0..rng.range(0, 2))
        .map(|i| SinkDef {
            name: format!("sink{i}"),
            clearance: TierId(rng.below(tiers) as u32),
            keyed: subset(rng, &keys, 50),
            loc: loc(0),
        })
        .collect();
    let resources: Vec<ResourceId> = (0..model.resources.len() as u32).map(ResourceId).collect();
    let sinks: Vec<SinkId> = (0..model.sinks.len() as u32).map(SinkId).collect();
    model.tools = (0..rng.range(1, 5))
        .map(|i| ToolDef {
            name: format!("tool{i}"),
            params: (0..rng.range(0, 4))
                .map(|p| ParamDef {
                    name: format!("p{p}"),
                    ty: *rng.pick(&TYPES),
                    optional: rng.chance(40),
                    loc: loc(0),
                })
                .collect(),
            effects: subset(
                rng,
                &[Effect::Read, Effect::Financial, Effect::Irreversible],
                30,
            ),
            reads: subset(rng, &resources, 40),
            writes: subset(rng, &sinks, 40),
            untrusted: rng.chance(20),
            loc: loc(0),
        })
        .collect();
    model.routes = (0..rng.range(1, 3))
        .map(|i| RouteDef {
            name: format!("route{i}"),
            notify: Some(format!("queue:{i}")),
            timeout_ms: Some(60_000),
            timeout_outcome: Some(TimeoutOutcome::Deny),
            loc: loc(0),
        })
        .collect();
    for a in 0..rng.range(1, 3) {
        let agent_id = AgentId(a as u32);
        let mut rule_ids = Vec::new();
        for _ in 0..rng.range(0, 8) {
            let id = RuleId(model.rules.len() as u32);
            let kind = *rng.pick(&[RuleKind::Allow, RuleKind::Escalate, RuleKind::Deny]);
            let target = if rng.chance(20) {
                RuleTarget::All
            } else {
                RuleTarget::Tool(ToolId(rng.below(model.tools.len()) as u32))
            };
            let params: &[ParamDef] = match target {
                RuleTarget::Tool(t) => &model.tools[t.index()].params,
                RuleTarget::All => &[],
            };
            let condition = (!rng.chance(25)).then(|| gen_cond(rng, params, model.sets.len(), 3));
            let route =
                (kind == RuleKind::Escalate).then(|| RouteId(rng.below(model.routes.len()) as u32));
            model.rules.push(RuleDef {
                id,
                agent: agent_id,
                kind,
                target,
                route,
                condition,
                loc: loc(10 + 7 * id.0),
            });
            rule_ids.push(id);
        }
        model.agents.push(AgentDef {
            name: format!("agent{a}"),
            owner: Some("owner@example.com".into()),
            purpose: None,
            max_tier: rng.chance(50).then(|| TierId(rng.below(tiers) as u32)),
            rules: rule_ids,
            autonomy: vec![],
            limits: (0..rng.range(0, 2))
                .map(|_| LimitDef {
                    count: rng.range(0, 3) as u64,
                    unit: LimitUnit::Calls,
                    window: LimitWindow::Task,
                    loc: loc(0),
                })
                .collect(),
            breakers: vec![],
            mode: Mode::Enforce,
            credentials: vec![],
            loc: loc(0),
            stage: None,
            promotions: vec![],
        });
    }
    model
}

/// A random value for each key, kept with probability `percent` / 100.
fn bind_some(rng: &mut Rng, keys: &[KeyId], percent: u64) -> Vec<(KeyId, String)> {
    let mut out = Vec::new();
    for key in keys {
        if rng.chance(percent) {
            out.push((*key, (*rng.pick(&KEY_VALUES)).to_owned()));
        }
    }
    out
}

fn gen_keys(rng: &mut Rng, keyed: &[KeyId]) -> Vec<(KeyId, String)> {
    bind_some(rng, keyed, 85)
}

fn gen_call(rng: &mut Rng, model: &Model) -> Call {
    let agent = AgentId(rng.below(model.agents.len()) as u32);
    let tool = ToolId(rng.below(model.tools.len()) as u32);
    let args = model.tools[tool.index()]
        .params
        .iter()
        .map(|p| {
            rng.chance(80).then(|| match p.ty {
                TypeName::Text => Value::Text((*rng.pick(&CALL_TEXTS)).into()),
                TypeName::TextList => Value::TextList(
                    (0..rng.range(0, 3))
                        .map(|_| (*rng.pick(&CALL_TEXTS)).to_string())
                        .collect(),
                ),
                ty => value_of(ty, *rng.pick(&NUMBERS)),
            })
        })
        .collect();
    let read = (!model.resources.is_empty() && rng.chance(35)).then(|| {
        let target = ResourceId(rng.below(model.resources.len()) as u32);
        let keys = gen_keys(rng, &model.resources[target.index()].keyed);
        DataAccess { target, keys }
    });
    let write = (!model.sinks.is_empty() && rng.chance(35)).then(|| {
        let target = SinkId(rng.below(model.sinks.len()) as u32);
        let keys = gen_keys(rng, &model.sinks[target.index()].keyed);
        DataAccess { target, keys }
    });
    let all_keys: Vec<KeyId> = (0..model.keys.len() as u32).map(KeyId).collect();
    let session = Session {
        engine_suspended: rng.chance(3),
        agent_suspended: rng.chance(3),
        tier: rng
            .chance(50)
            .then(|| TierId(rng.below(model.tiers.len()) as u32)),
        bound: bind_some(rng, &all_keys, 40),
        usage: (0..2).map(|_| rng.range(0, 3) as u64).collect(),
        tainted: rng.chance(30),
    };
    let params = model.tools[tool.index()].params.len();
    Call {
        agent,
        tool,
        args,
        confidence: rng.chance(70).then(|| *rng.pick(&CONFIDENCES)),
        read,
        write,
        session,
        untrusted: (0..params).filter(|_| rng.chance(25)).collect(),
    }
}

/// Key values by name, interned, as the builder takes them.
fn named_keys(
    model: &Model,
    pairs: &[(KeyId, String)],
    values: &mut KeyValueInterner,
) -> Vec<(String, rt::KeyValue)> {
    pairs
        .iter()
        .map(|(k, v)| (model.keys[k.index()].name.clone(), values.intern(v)))
        .collect()
}

/// The same call as a runtime request, built by name through the public builder.
fn to_request(
    table: &DecisionTable,
    model: &Model,
    call: &Call,
    values: &mut KeyValueInterner,
) -> Result<Request, String> {
    let tool = &model.tools[call.tool.index()];
    let mut b = table
        .request(&model.agents[call.agent.index()].name, &tool.name)
        .map_err(|e| e.to_string())?;
    let lists: Vec<Vec<&str>> = call
        .args
        .iter()
        .map(|v| match v {
            Some(Value::TextList(items)) => items.iter().map(String::as_str).collect(),
            _ => Vec::new(),
        })
        .collect();
    for ((param, value), list) in tool.params.iter().zip(&call.args).zip(&lists) {
        let Some(value) = value else { continue };
        let arg = match (param.ty, value) {
            (TypeName::Percent, Value::Number(n)) => ArgValue::Percent(*n),
            (_, Value::Number(n)) => ArgValue::Number(*n),
            (_, Value::Money(n)) => ArgValue::Money(*n),
            (_, Value::Duration(n)) => ArgValue::Duration(*n),
            (_, Value::Bool(v)) => ArgValue::Bool(*v),
            (_, Value::Text(t)) => ArgValue::Text(t),
            (_, Value::TextList(_)) => ArgValue::TextList(list),
        };
        b = b.arg(&param.name, arg).map_err(|e| e.to_string())?;
    }
    for i in &call.untrusted {
        b = b
            .untrusted(&tool.params[*i].name)
            .map_err(|e| e.to_string())?;
    }
    if let Some(c) = call.confidence {
        b = b.confidence(c);
    }
    if let Some(read) = &call.read {
        let owned = named_keys(model, &read.keys, values);
        let pairs: Vec<(&str, rt::KeyValue)> =
            owned.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        b = b
            .read(&model.resources[read.target.index()].name, &pairs)
            .map_err(|e| e.to_string())?;
    }
    if let Some(write) = &call.write {
        let owned = named_keys(model, &write.keys, values);
        let pairs: Vec<(&str, rt::KeyValue)> =
            owned.iter().map(|(k, v)| (k.as_str(), *v)).collect();
        b = b
            .write(&model.sinks[write.target.index()].name, &pairs)
            .map_err(|e| e.to_string())?;
    }
    let mut bound = KeyBindings::default();
    for (k, v) in &call.session.bound {
        bound.set(rt::KeyId(k.0), values.intern(v));
    }
    let mut usage = [0; rt::MAX_LIMITS];
    for (slot, used) in usage.iter_mut().zip(&call.session.usage) {
        *slot = *used;
    }
    Ok(b.session(SessionView {
        engine_suspended: call.session.engine_suspended,
        agent_suspended: call.session.agent_suspended,
        tier: call.session.tier.map(|t| rt::TierId(t.0)),
        bound,
        usage,
        tainted: call.session.tainted,
    })
    .build())
}

/// The runtime's decision in the interpreter's terms.
fn as_verdict(d: &rt::Decision) -> Verdict {
    Verdict {
        outcome: d.outcome,
        stage: d.stage(),
        rule: d.rule.map(|r| RuleId(r.0)),
        routes: d.routes.as_slice().iter().map(|r| RouteId(r.0)).collect(),
        missing: d.missing.map(|slot| {
            if slot.is_confidence() {
                Missing::Confidence
            } else {
                Missing::Arg(usize::from(slot.0))
            }
        }),
    }
}

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or(default)
}

fn sources() -> Vec<(String, String)> {
    // Enough lines for every generated rule location to fall inside the text.
    let text: String = (0..200).map(|i| format!("line {i}\n")).collect();
    vec![(SOURCE.to_owned(), text)]
}

fn check_seed(seed: u64, calls: u64) -> Result<(), TestCaseError> {
    let mut rng = Rng(seed);
    let model = gen_model(&mut rng);
    let sources = sources();
    let table = build_table(&model, &sources)
        .map_err(|d| TestCaseError::fail(format!("seed {seed}: codegen failed: {d:?}")))?;
    // The table survives its binary form unchanged.
    let reloaded = DecisionTable::from_bytes(&table.to_bytes())
        .map_err(|e| TestCaseError::fail(format!("seed {seed}: reload failed: {e}")))?;
    prop_assert_eq!(&reloaded, &table);
    let mut values = KeyValueInterner::default();
    for n in 0..calls {
        let call = gen_call(&mut rng, &model);
        let request = to_request(&table, &model, &call, &mut values)
            .map_err(|e| TestCaseError::fail(format!("seed {seed}: builder refused: {e}")))?;
        let expected = interpret(&model, &call);
        let actual = as_verdict(&decide(&table, &request));
        prop_assert_eq!(
            &actual,
            &expected,
            "seed {} call {}: {:?}\nmodel rules: {:#?}",
            seed,
            n,
            call,
            model.rules
        );
    }
    Ok(())
}

#[test]
fn table_agrees_with_interpreter() {
    let calls = env_number("DIFFERENTIAL_CALLS", 200);
    if let Ok(seed) = std::env::var("DIFFERENTIAL_SEED") {
        let seed = seed.trim().parse().expect("DIFFERENTIAL_SEED is a u64");
        check_seed(seed, calls).unwrap();
        return;
    }
    let cases = env_number("PROPTEST_CASES", 2_000) as u32;
    let mut runner = TestRunner::new(Config {
        cases,
        // Each case is already a seed; shrinking a seed does not simplify a model.
        max_shrink_iters: 0,
        failure_persistence: None,
        ..Config::default()
    });
    let result = runner.run(&any::<u64>(), |seed| check_seed(seed, calls));
    if let Err(e) = result {
        panic!("{e}");
    }
}

#[test]
fn generated_models_cover_every_outcome_and_stage() {
    // Guards the generator: if it stopped producing some outcome or stage, the
    // differential test would silently test less.
    let mut seen = std::collections::HashSet::new();
    for seed in 0..300 {
        let mut rng = Rng(seed);
        let model = gen_model(&mut rng);
        let Ok(table) = build_table(&model, &sources()) else {
            panic!("seed {seed}: codegen failed");
        };
        let mut values = KeyValueInterner::default();
        for _ in 0..50 {
            let call = gen_call(&mut rng, &model);
            let request = to_request(&table, &model, &call, &mut values).unwrap();
            let d = decide(&table, &request);
            seen.insert(format!(
                "{:?}/{:?}/{}",
                d.outcome,
                d.stage(),
                d.missing.is_some()
            ));
        }
    }
    for expected in [
        "Allow/Rule/false",
        "Escalate/Rule/false",
        "Escalate/Rule/true",
        "Deny/Rule/false",
        "Deny/Rule/true",
        "Deny/NoRule/false",
        "Deny/NotGranted/false",
        "Deny/Flow/false",
        "Deny/Limit/false",
        "Deny/Suspended/false",
    ] {
        assert!(
            seen.contains(expected),
            "never produced {expected}: {seen:?}"
        );
    }
}
