//! The generator's own description of a benchmark policy, and the fixed requests.
//!
//! A [`PolicySpec`] is plain data: agents, tools, routes and rules whose conditions are
//! comparisons of the money argument `amount` and the caller's `confidence` with integer
//! constants, in disjunctive normal form. Every engine's policy text is translated from
//! this description, never from another engine's text, so a translation bug shows up as
//! a disagreement instead of being copied. [`PolicySpec::expected`] states the decision
//! contract (DESIGN.md "Decision semantics") for this small language: it is the oracle
//! the fixed requests are checked against. Nothing here knows about any engine.

use agentpolicy_runtime::Outcome;

/// A value a condition can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Var {
    /// The tool's optional `amount: money?` argument, in cents.
    Amount,
    /// The confidence the caller reports, in millionths.
    Confidence,
}

impl Var {
    /// The name every engine uses for it (argument, context key or input field).
    pub fn name(self) -> &'static str {
        match self {
            Var::Amount => "amount",
            Var::Confidence => "confidence",
        }
    }
}

/// A comparison operator; all three engines spell these the same way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
}

impl CmpOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
        }
    }

    fn holds(self, left: i64, right: i64) -> bool {
        match self {
            CmpOp::Lt => left < right,
            CmpOp::Le => left <= right,
            CmpOp::Gt => left > right,
            CmpOp::Ge => left >= right,
        }
    }
}

/// `var op value`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Compare {
    pub var: Var,
    pub op: CmpOp,
    pub value: i64,
}

/// A condition in disjunctive normal form: it holds when every comparison of some
/// clause holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Condition {
    pub any_of: Vec<Vec<Compare>>,
}

impl Condition {
    /// One clause of comparisons joined by `and`.
    pub fn all(compares: Vec<Compare>) -> Condition {
        Condition {
            any_of: vec![compares],
        }
    }

    /// The values the condition reads, each once, in [`Var`] order.
    pub fn reads(&self) -> Vec<Var> {
        let mut vars: Vec<Var> = self.any_of.iter().flatten().map(|c| c.var).collect();
        vars.sort();
        vars.dedup();
        vars
    }

    /// `None` when the call lacks a value the condition reads: the whole condition is
    /// then unknown, however its parts combine.
    pub fn eval(&self, call: &Call) -> Option<bool> {
        for var in self.reads() {
            call.value(var)?;
        }
        Some(self.any_of.iter().any(|clause| {
            clause.iter().all(|c| {
                call.value(c.var)
                    .is_some_and(|value| c.op.holds(value, c.value))
            })
        }))
    }
}

/// The kind of a rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Allow,
    Escalate,
    Deny,
}

/// What a rule names: one tool (by index into [`PolicySpec::tools`]) or `*`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Tool(usize),
    All,
}

/// One rule, as written in the agent's block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleSpec {
    pub agent: usize,
    pub kind: Kind,
    pub target: Target,
    /// Index into [`PolicySpec::routes`]; `Some` exactly for escalate rules.
    pub route: Option<usize>,
    pub condition: Option<Condition>,
}

/// How big a generated policy is: every agent gets `tools_per_agent` tools with three
/// rules each, plus one `*` rule, so it has `agents * (3 * tools_per_agent + 1)` rules.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shape {
    pub agents: usize,
    pub tools_per_agent: usize,
}

/// The three sizes the issue asks for: 10, 100 and 1,000 rules.
pub const SHAPES: [Shape; 3] = [
    Shape {
        agents: 1,
        tools_per_agent: 3,
    },
    Shape {
        agents: 4,
        tools_per_agent: 8,
    },
    Shape {
        agents: 10,
        tools_per_agent: 33,
    },
];

/// `*` rules escalate calls whose confidence is below this (0.85).
pub const CONFIDENCE_FLOOR: i64 = 850_000;
/// Deny rules refuse calls whose confidence is below this (0.2).
pub const CONFIDENCE_REFUSE: i64 = 200_000;
/// Allow rules of odd-numbered tools also need at least this confidence (0.9).
pub const CONFIDENCE_SURE: i64 = 900_000;

impl Shape {
    pub fn rules(self) -> usize {
        self.agents * (3 * self.tools_per_agent + 1)
    }

    /// Tools declared: agent `a` is granted tools `a .. a + tools_per_agent`, so every
    /// agent has declared tools it is not granted.
    pub fn tools(self) -> usize {
        self.tools_per_agent + self.agents
    }

    /// The tools granted to an agent.
    pub fn granted(self, agent: usize) -> std::ops::Range<usize> {
        agent..agent + self.tools_per_agent
    }

    /// The largest amount, in cents, an agent may move with a tool without a human:
    /// $100 to $2,000, varying over agents and tools.
    pub fn small_limit(self, agent: usize, tool: usize) -> i64 {
        10_000 * (1 + ((agent * 7 + tool) % 20) as i64)
    }
}

/// A generated policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicySpec {
    pub name: String,
    pub shape: Shape,
    pub agents: Vec<String>,
    pub tools: Vec<String>,
    pub routes: Vec<String>,
    pub rules: Vec<RuleSpec>,
}

/// Index of the `ops` route (amount escalations).
pub const ROUTE_OPS: usize = 0;
/// Index of the `review` route (low-confidence escalations).
pub const ROUTE_REVIEW: usize = 1;

/// Generates the policy of a shape. For each agent and each tool it is granted, with
/// `S` its [`Shape::small_limit`]:
///
/// ```text
/// allow    TOOL when amount <= S                (and confidence >= 0.9 on odd tools)
/// escalate TOOL to ops when amount > 2 S
/// deny     TOOL when amount > 10 S or confidence < 0.2
/// ```
///
/// and once per agent `escalate * to review when confidence < 0.85`. Amounts between
/// `S` and `2 S` match no rule: they exercise the default deny of a granted tool.
pub fn generate(shape: Shape) -> PolicySpec {
    let compare = |var, op, value| Compare { var, op, value };
    let mut rules = Vec::with_capacity(shape.rules());
    for agent in 0..shape.agents {
        for tool in shape.granted(agent) {
            let small = shape.small_limit(agent, tool);
            let mut allow = vec![compare(Var::Amount, CmpOp::Le, small)];
            if tool % 2 == 1 {
                allow.push(compare(Var::Confidence, CmpOp::Ge, CONFIDENCE_SURE));
            }
            rules.push(RuleSpec {
                agent,
                kind: Kind::Allow,
                target: Target::Tool(tool),
                route: None,
                condition: Some(Condition::all(allow)),
            });
            rules.push(RuleSpec {
                agent,
                kind: Kind::Escalate,
                target: Target::Tool(tool),
                route: Some(ROUTE_OPS),
                condition: Some(Condition::all(vec![compare(
                    Var::Amount,
                    CmpOp::Gt,
                    2 * small,
                )])),
            });
            rules.push(RuleSpec {
                agent,
                kind: Kind::Deny,
                target: Target::Tool(tool),
                route: None,
                condition: Some(Condition {
                    any_of: vec![
                        vec![compare(Var::Amount, CmpOp::Gt, 10 * small)],
                        vec![compare(Var::Confidence, CmpOp::Lt, CONFIDENCE_REFUSE)],
                    ],
                }),
            });
        }
        rules.push(RuleSpec {
            agent,
            kind: Kind::Escalate,
            target: Target::All,
            route: Some(ROUTE_REVIEW),
            condition: Some(Condition::all(vec![compare(
                Var::Confidence,
                CmpOp::Lt,
                CONFIDENCE_FLOOR,
            )])),
        });
    }
    PolicySpec {
        name: format!("bench_{}", shape.rules()),
        shape,
        agents: (0..shape.agents).map(|a| format!("agent{a}")).collect(),
        tools: (0..shape.tools()).map(|t| format!("tool{t}")).collect(),
        routes: vec!["ops".into(), "review".into()],
        rules,
    }
}

/// One tool call, in the spec's indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call {
    pub agent: usize,
    pub tool: usize,
    /// Cents; `None` when the caller leaves the argument out.
    pub amount: Option<i64>,
    /// Millionths; `None` when the caller reports none.
    pub confidence: Option<i64>,
}

impl Call {
    pub fn value(&self, var: Var) -> Option<i64> {
        match var {
            Var::Amount => self.amount,
            Var::Confidence => self.confidence,
        }
    }
}

impl PolicySpec {
    /// Whether an `allow` or `escalate` rule names the tool for the agent.
    pub fn granted(&self, agent: usize, tool: usize) -> bool {
        self.rules
            .iter()
            .any(|r| r.agent == agent && r.kind != Kind::Deny && r.target == Target::Tool(tool))
    }

    /// The outcome the decision contract gives a call: not granted, then deny over
    /// escalate over allow, then deny for lack of a rule; a condition on a missing value
    /// matches for deny and escalate rules and not for allow rules.
    pub fn expected(&self, call: &Call) -> Outcome {
        if !self.granted(call.agent, call.tool) {
            return Outcome::Deny;
        }
        let applies = |kind: Kind| {
            self.rules.iter().any(|r| {
                r.agent == call.agent
                    && r.kind == kind
                    && (r.target == Target::All || r.target == Target::Tool(call.tool))
                    && match &r.condition {
                        None => true,
                        Some(c) => c.eval(call).unwrap_or(kind != Kind::Allow),
                    }
            })
        };
        if applies(Kind::Deny) {
            Outcome::Deny
        } else if applies(Kind::Escalate) {
            Outcome::Escalate
        } else if applies(Kind::Allow) {
            Outcome::Allow
        } else {
            Outcome::Deny
        }
    }

    /// The fixed benchmark requests: a middle agent calling a middle tool it is granted
    /// (and one it is not), each reaching a different path of the decision.
    pub fn requests(&self) -> Vec<BenchRequest> {
        let shape = self.shape;
        let agent = shape.agents / 2;
        let tool = agent + shape.tools_per_agent / 2;
        let small = shape.small_limit(agent, tool);
        let not_granted = if agent > 0 { 0 } else { shape.tools() - 1 };
        let call = |tool, amount, confidence| Call {
            agent,
            tool,
            amount,
            confidence,
        };
        let sure = Some(950_000);
        let cases = [
            ("allow", call(tool, Some(small / 2), sure)),
            ("escalate", call(tool, Some(5 * small), sure)),
            (
                "escalate_confidence",
                call(tool, Some(small / 2), Some(600_000)),
            ),
            ("deny", call(tool, Some(20 * small), sure)),
            ("deny_missing_amount", call(tool, None, sure)),
            (
                "default_deny_no_rule",
                call(tool, Some(small + small / 2), sure),
            ),
            (
                "default_deny_not_granted",
                call(not_granted, Some(small / 2), sure),
            ),
        ];
        cases
            .into_iter()
            .map(|(name, call)| BenchRequest {
                name,
                call,
                expected: self.expected(&call),
            })
            .collect()
    }
}

/// A named request with the outcome the contract gives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BenchRequest {
    pub name: &'static str,
    pub call: Call,
    pub expected: Outcome,
}
