//! The resolved model of a policy: every name bound to a dense id, every condition typed,
//! thresholds inlined. It is what code generation, the reference interpreter, the
//! verifier and the language server's hover read. Built by `sema::resolve`; plain data,
//! no behaviour beyond small lookups.
//!
//! Invariants (upheld by `sema`, relied on by everyone downstream):
//! - ids index the vectors of this struct and are dense;
//! - `tiers` is a linear order, lowest first, so a tier's id is its rank;
//! - a `Cond` only reads arguments its rule's tool declares, with matching types;
//!   `Term::Arg(i)` indexes `tools[tool].params`;
//! - rules of `*` target read no arguments.

use serde::Serialize;

use crate::diagnostics::FileId;
use crate::syntax::ast::{
    BreakerMetric, CompareOp, Effect, LimitUnit, LimitWindow, Mode, Quantifier, RuleKind,
    SuspendScope, TextRange, TimeoutOutcome, TypeName,
};
pub use crate::syntax::ast::{PromoteMetric, Stage};

/// Where something was declared: a file and a byte range in it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct Loc {
    pub file: FileId,
    pub range: TextRange,
}

macro_rules! ids {
    ($($name:ident),*) => {$(
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
        pub struct $name(pub u32);
        impl $name {
            pub fn index(self) -> usize { self.0 as usize }
        }
    )*};
}
ids!(
    TierId,
    KeyId,
    ResourceId,
    SinkId,
    ToolId,
    ThresholdId,
    RouteId,
    AgentId,
    RuleId,
    SetId
);

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct Model {
    pub policy: Option<PolicyInfo>,
    /// Lowest first: a `TierId` is the tier's rank.
    pub tiers: Vec<TierDef>,
    pub keys: Vec<KeyDef>,
    pub resources: Vec<ResourceDef>,
    pub sinks: Vec<SinkDef>,
    pub tools: Vec<ToolDef>,
    pub thresholds: Vec<ThresholdDef>,
    pub routes: Vec<RouteDef>,
    pub agents: Vec<AgentDef>,
    /// Every `allow` / `escalate` / `deny` rule of every agent, in source order per agent.
    pub rules: Vec<RuleDef>,
    pub asserts: Vec<AssertDef>,
    pub tests: Vec<TestDef>,
    /// Named sets of texts (`set NAME = [...]` or `set NAME from deploy`).
    pub sets: Vec<SetDef>,
    /// The audit retention schedule: at most one clause without a tier (the default)
    /// and one per tier, in source order.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub retention: Vec<RetainRule>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetDef {
    pub name: String,
    /// The members, sorted and without duplicates; `None` for a set bound at deploy time.
    pub members: Option<Vec<String>>,
    pub loc: Loc,
}

/// `retain audit [for TIER] PERIOD`: records (of `tier` or above) are kept at least
/// `years` calendar years plus `ms` milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetainRule {
    pub tier: Option<TierId>,
    pub years: u32,
    pub ms: i64,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyInfo {
    pub name: String,
    pub version: Option<String>,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TierDef {
    pub name: String,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct KeyDef {
    pub name: String,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceDef {
    pub name: String,
    pub tier: TierId,
    pub keyed: Vec<KeyId>,
    /// Reading it taints the session.
    pub untrusted: bool,
    /// `from SINK`: it reads back what is written to this sink (one store).
    pub store: Option<SinkId>,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SinkDef {
    pub name: String,
    /// The highest tier that may be written here.
    pub clearance: TierId,
    pub keyed: Vec<KeyId>,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ParamDef {
    pub name: String,
    pub ty: TypeName,
    pub optional: bool,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolDef {
    pub name: String,
    pub params: Vec<ParamDef>,
    /// Sorted, without duplicates.
    pub effects: Vec<Effect>,
    pub reads: Vec<ResourceId>,
    pub writes: Vec<SinkId>,
    /// Its output is untrusted content: a call taints the session.
    pub untrusted: bool,
    pub loc: Loc,
}

impl ToolDef {
    pub fn has_effect(&self, effect: Effect) -> bool {
        self.effects.contains(&effect)
    }

    pub fn is_irreversible(&self) -> bool {
        self.has_effect(Effect::Irreversible)
    }

    pub fn param(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| p.name == name)
    }
}

/// An exact value. Money in cents; numbers and percentages in millionths; durations in
/// milliseconds; text as written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Value {
    Money(i64),
    Number(i64),
    Duration(i64),
    Text(String),
    Bool(bool),
    /// A `list<text>` argument (tests and counterexamples only; no literal in conditions).
    TextList(Vec<String>),
}

impl Value {
    /// The type a value has; percentages are numbers.
    pub fn ty(&self) -> TypeName {
        match self {
            Value::Money(_) => TypeName::Money,
            Value::Number(_) => TypeName::Number,
            Value::Duration(_) => TypeName::Duration,
            Value::Text(_) => TypeName::Text,
            Value::Bool(_) => TypeName::Bool,
            Value::TextList(_) => TypeName::TextList,
        }
    }
}

/// Types that compare with each other: percentages are numbers.
pub fn comparable(a: TypeName, b: TypeName) -> bool {
    fn norm(t: TypeName) -> TypeName {
        if t == TypeName::Percent {
            TypeName::Number
        } else {
            t
        }
    }
    norm(a) == norm(b)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThresholdDef {
    pub name: String,
    pub value: Value,
    pub loc: Loc,
    /// Where the value is written (`5000` in `threshold x = 5000`), for diagnostics
    /// about its type, which belong at the declaration.
    pub value_loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RouteDef {
    pub name: String,
    pub notify: Option<String>,
    pub timeout_ms: Option<i64>,
    pub timeout_outcome: Option<TimeoutOutcome>,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentDef {
    pub name: String,
    pub owner: Option<String>,
    pub purpose: Option<String>,
    pub max_tier: Option<TierId>,
    /// Rules of this agent, in source order.
    pub rules: Vec<RuleId>,
    pub autonomy: Vec<AutonomyDef>,
    pub limits: Vec<LimitDef>,
    pub breakers: Vec<BreakerDef>,
    pub mode: Mode,
    pub credentials: Vec<CredentialDef>,
    pub loc: Loc,
    /// The lifecycle stage (`stage ...`); `None` when the agent declares none.
    pub stage: Option<StageDef>,
    /// Promotion criteria (`promote to ...`), in source order, at most one per target.
    pub promotions: Vec<PromotionDef>,
}

/// `stage STAGE [to ROUTE]`. Sema has already applied it: `stage shadow` set the mode to
/// shadow, and `stage supervised` turned every `allow` rule of the agent into an
/// `escalate` rule to `route`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageDef {
    pub stage: Stage,
    pub route: Option<RouteId>,
    pub loc: Loc,
}

/// `promote to STAGE when ...`: every criterion over the agent's most recent `window`
/// decisions in its current stage.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PromotionDef {
    pub to: Stage,
    pub window: u64,
    pub criteria: Vec<CriterionDef>,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CriterionDef {
    pub metric: PromoteMetric,
    pub op: CompareOp,
    /// Millionths for rates (`98%` is 980_000), a plain count for `denials`.
    pub value: i64,
    pub loc: Loc,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum RuleTarget {
    Tool(ToolId),
    /// `*`: every tool granted to the agent.
    All,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleDef {
    pub id: RuleId,
    pub agent: AgentId,
    pub kind: RuleKind,
    pub target: RuleTarget,
    pub route: Option<RouteId>,
    pub condition: Option<Cond>,
    /// The whole rule.
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AutonomyDef {
    pub tool: ToolId,
    pub condition: Cond,
    pub because: String,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitDef {
    pub count: u64,
    pub unit: LimitUnit,
    pub window: LimitWindow,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakerDef {
    pub metric: BreakerMetric,
    pub op: CompareOp,
    /// Millionths for rates and numbers (`20%` is 200_000), a plain count otherwise.
    pub value: i64,
    pub window_ms: i64,
    pub scope: SuspendScope,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialDef {
    pub name: String,
    pub expires_ms: Option<i64>,
    pub loc: Loc,
}

/// A typed condition. A value the request does not carry makes the whole condition
/// *unknown*, which matches for `deny` and `escalate` rules and does not match for
/// `allow` rules (fail safe).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Cond {
    Or(Vec<Cond>),
    And(Vec<Cond>),
    Not(Box<Cond>),
    Compare {
        left: Term,
        op: CompareOp,
        right: Term,
    },
    /// A `bool` term used as a condition.
    Truthy(Term),
    /// The text argument at this parameter index is a member of the set.
    InSet {
        arg: usize,
        set: SetId,
    },
    /// The text argument matches the glob.
    Matches {
        arg: usize,
        pattern: String,
    },
    /// `all` / `any` element of the `list<text>` argument passes the test.
    Quantified {
        quantifier: Quantifier,
        arg: usize,
        test: ElementTest,
    },
    /// The caller says the argument came from untrusted content.
    FromUntrusted {
        arg: usize,
    },
    /// The call carries the argument (`ARG given`; `ARG missing` is its negation). Reads
    /// no value, so it is never unknown; it guards the reads of `arg` around it (see
    /// [`Cond::unguarded_args`]).
    Present {
        arg: usize,
    },
    /// The called tool has the effect (decided per tool when the table is built).
    HasEffect(Effect),
}

/// A test on one element of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ElementTest {
    InSet { set: SetId, negated: bool },
    Matches { pattern: String, negated: bool },
    Equals { text: String, negated: bool },
}

impl ElementTest {
    /// Whether `text` passes, with `in_set` answering set membership.
    pub fn holds(&self, text: &str, in_set: impl Fn(SetId, &str) -> bool) -> bool {
        match self {
            ElementTest::InSet { set, negated } => in_set(*set, text) != *negated,
            ElementTest::Matches { pattern, negated } => {
                agentpolicy_runtime::glob_match(pattern, text) != *negated
            }
            ElementTest::Equals { text: t, negated } => (t == text) != *negated,
        }
    }
}

impl Cond {
    /// Every term the condition reads, in order.
    pub fn terms(&self) -> Vec<&Term> {
        let mut out = Vec::new();
        self.collect_terms(&mut out);
        out
    }

    fn collect_terms<'a>(&'a self, out: &mut Vec<&'a Term>) {
        match self {
            Cond::Or(cs) | Cond::And(cs) => cs.iter().for_each(|c| c.collect_terms(out)),
            Cond::Not(c) => c.collect_terms(out),
            Cond::Compare { left, right, .. } => {
                out.push(left);
                out.push(right);
            }
            Cond::Truthy(t) => out.push(t),
            Cond::InSet { .. }
            | Cond::Matches { .. }
            | Cond::Quantified { .. }
            | Cond::FromUntrusted { .. }
            | Cond::Present { .. }
            | Cond::HasEffect(_) => {}
        }
    }

    /// The argument indices the condition reads, in order, with repeats.
    pub fn args(&self) -> Vec<usize> {
        let mut out = Vec::new();
        self.visit(&mut |c| match c {
            Cond::Compare { left, right, .. } => {
                for t in [left, right] {
                    if let Term::Arg(i) = t {
                        out.push(*i);
                    }
                }
            }
            Cond::Truthy(Term::Arg(i))
            | Cond::InSet { arg: i, .. }
            | Cond::Matches { arg: i, .. }
            | Cond::Quantified { arg: i, .. }
            | Cond::FromUntrusted { arg: i } => out.push(*i),
            _ => {}
        });
        out
    }

    /// The argument indices whose absence makes the condition unknown: those it reads
    /// outside a guard. A presence test guards: in `X given and C` a missing `X` makes
    /// the whole `and` false whatever `C` reads of `X`, and in `X missing or C` true.
    /// In general a part is *false without* `X` when a missing `X` makes it false
    /// (`X given`; a `not` of a part true without `X`; an `and` with such a part; an
    /// `or` all of whose parts are) and *true without* `X` dually; the reads of `X` in
    /// the other parts of an `and` with a part false without `X` (an `or` with a part
    /// true without `X`) are guarded. Sorted, without repeats. The runtime computes the
    /// same on the compiled code ([`agentpolicy_runtime::Condition::new`]).
    pub fn unguarded_args(&self) -> Vec<usize> {
        self.guards().reads.into_iter().collect()
    }

    fn guards(&self) -> Guards {
        use std::collections::BTreeSet;
        let leaf = |reads: Vec<usize>| Guards {
            reads: reads.into_iter().collect(),
            ..Guards::default()
        };
        match self {
            Cond::Present { arg } => Guards {
                false_without: BTreeSet::from([*arg]),
                ..Guards::default()
            },
            Cond::Not(c) => {
                let g = c.guards();
                Guards {
                    reads: g.reads,
                    false_without: g.true_without,
                    true_without: g.false_without,
                }
            }
            Cond::And(cs) | Cond::Or(cs) => {
                let and = matches!(self, Cond::And(_));
                let parts: Vec<Guards> = cs.iter().map(Cond::guards).collect();
                let mut out = Guards::default();
                for (i, g) in parts.iter().enumerate() {
                    // The parts beside this one that settle the whole when an argument
                    // is missing.
                    let settled: BTreeSet<usize> = parts
                        .iter()
                        .enumerate()
                        .filter(|(j, _)| *j != i)
                        .flat_map(|(_, o)| {
                            if and {
                                o.false_without.iter()
                            } else {
                                o.true_without.iter()
                            }
                        })
                        .copied()
                        .collect();
                    out.reads.extend(g.reads.difference(&settled));
                }
                let union = |f: fn(&Guards) -> &BTreeSet<usize>| -> BTreeSet<usize> {
                    parts.iter().flat_map(|g| f(g).iter().copied()).collect()
                };
                let meet = |f: fn(&Guards) -> &BTreeSet<usize>| -> BTreeSet<usize> {
                    let mut it = parts.iter().map(f);
                    let first = it.next().cloned().unwrap_or_default();
                    it.fold(first, |acc, s| acc.intersection(s).copied().collect())
                };
                if and {
                    out.false_without = union(|g| &g.false_without);
                    out.true_without = meet(|g| &g.true_without);
                } else {
                    out.true_without = union(|g| &g.true_without);
                    out.false_without = meet(|g| &g.false_without);
                }
                out
            }
            Cond::Compare { left, right, .. } => leaf(
                [left, right]
                    .iter()
                    .filter_map(|t| match t {
                        Term::Arg(i) => Some(*i),
                        _ => None,
                    })
                    .collect(),
            ),
            Cond::Truthy(Term::Arg(i))
            | Cond::InSet { arg: i, .. }
            | Cond::Matches { arg: i, .. }
            | Cond::Quantified { arg: i, .. }
            | Cond::FromUntrusted { arg: i } => leaf(vec![*i]),
            Cond::Truthy(_) | Cond::HasEffect(_) => Guards::default(),
        }
    }

    /// Calls `f` on this condition and every condition inside it, outermost first.
    pub fn visit(&self, f: &mut impl FnMut(&Cond)) {
        f(self);
        match self {
            Cond::Or(cs) | Cond::And(cs) => cs.iter().for_each(|c| c.visit(f)),
            Cond::Not(c) => c.visit(f),
            _ => {}
        }
    }

    /// Whether the condition reads anything of the call or its session: an argument,
    /// the confidence, the session's taint, or the called tool's effects.
    pub fn reads_call(&self) -> bool {
        let mut reads = false;
        self.visit(&mut |c| match c {
            Cond::Compare { left, right, .. } => {
                reads |= [left, right]
                    .iter()
                    .any(|t| !matches!(t, Term::Const { .. }))
            }
            Cond::Truthy(t) => reads |= !matches!(t, Term::Const { .. }),
            Cond::InSet { .. }
            | Cond::Matches { .. }
            | Cond::Quantified { .. }
            | Cond::FromUntrusted { .. }
            | Cond::Present { .. }
            | Cond::HasEffect(_) => reads = true,
            Cond::Or(_) | Cond::And(_) | Cond::Not(_) => {}
        });
        reads
    }
}

/// What [`Cond::unguarded_args`] computes for one part of a condition.
#[derive(Debug, Default)]
struct Guards {
    /// Arguments read outside a guard.
    reads: std::collections::BTreeSet<usize>,
    /// Arguments whose absence makes the part false, whatever else it reads.
    false_without: std::collections::BTreeSet<usize>,
    /// Arguments whose absence makes the part true, whatever else it reads.
    true_without: std::collections::BTreeSet<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Term {
    /// The tool argument at this index of the rule's tool's `params`.
    Arg(usize),
    /// The confidence the caller reports, in millionths.
    Confidence,
    /// Whether the session has taken in untrusted content (a `bool`).
    Tainted,
    /// A literal, or a threshold inlined (its id kept for explanations).
    Const {
        value: Value,
        threshold: Option<ThresholdId>,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum AssertDef {
    NeverCalls {
        agent: AgentId,
        target: RuleTarget,
        condition: Option<Cond>,
        loc: Loc,
    },
    EveryIrreversibleEscalates {
        loc: Loc,
    },
    /// `assert every irreversible tool escalates when tainted`.
    TaintedIrreversibleEscalates {
        loc: Loc,
    },
    NeverReads {
        agent: AgentId,
        tier: TierId,
        loc: Loc,
    },
    NoFlow {
        tier: TierId,
        sink: SinkId,
        loc: Loc,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestDef {
    pub name: String,
    pub steps: Vec<TestCall>,
    pub expect: Expected,
    pub loc: Loc,
}

/// One call in a policy test, resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestCall {
    pub agent: AgentId,
    pub tool: ToolId,
    /// By parameter index of the tool; `None` where the test leaves it out.
    pub args: Vec<Option<Value>>,
    /// Millionths.
    pub confidence: Option<i64>,
    pub on: Option<TestResource>,
    /// The sink the call writes, with the key values of the data.
    pub into: Option<TestSink>,
    /// Parameter indices of arguments marked `untrusted`.
    pub untrusted: Vec<usize>,
    pub loc: Loc,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestResource {
    pub resource: ResourceId,
    /// A value for each key the resource is keyed by (`matter: "M-1"`).
    pub keys: Vec<(KeyId, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestSink {
    pub sink: SinkId,
    /// A value for each key the sink is keyed by.
    pub keys: Vec<(KeyId, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Expected {
    Allow,
    /// Expected routes; empty means "any escalation".
    Escalate(Vec<RouteId>),
    Deny(Option<crate::syntax::ast::DenyReason>),
}

impl Model {
    pub fn tool_by_name(&self, name: &str) -> Option<ToolId> {
        self.tools
            .iter()
            .position(|t| t.name == name)
            .map(|i| ToolId(i as u32))
    }

    pub fn agent_by_name(&self, name: &str) -> Option<AgentId> {
        self.agents
            .iter()
            .position(|a| a.name == name)
            .map(|i| AgentId(i as u32))
    }

    pub fn set_by_name(&self, name: &str) -> Option<SetId> {
        self.sets
            .iter()
            .position(|s| s.name == name)
            .map(|i| SetId(i as u32))
    }

    pub fn rule(&self, id: RuleId) -> &RuleDef {
        &self.rules[id.index()]
    }

    /// Whether the agent's rules grant the tool: an `allow` or `escalate` naming it, or
    /// naming `*` (which means every tool granted by name). `deny` never grants.
    pub fn grants(&self, agent: AgentId, tool: ToolId) -> bool {
        self.agents[agent.index()].rules.iter().any(|r| {
            let rule = &self.rules[r.index()];
            rule.kind != RuleKind::Deny && rule.target == RuleTarget::Tool(tool)
        })
    }

    /// The rules that apply to a call of `tool` by `agent`: those naming the tool, and
    /// the `*` rules when the tool is granted. Source order.
    pub fn applicable_rules(&self, agent: AgentId, tool: ToolId) -> Vec<RuleId> {
        let granted = self.grants(agent, tool);
        self.agents[agent.index()]
            .rules
            .iter()
            .copied()
            .filter(|r| match self.rules[r.index()].target {
                RuleTarget::Tool(t) => t == tool,
                RuleTarget::All => granted,
            })
            .collect()
    }
}
