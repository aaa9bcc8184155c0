//! The decision table's data: plain, serializable structs that the compiler fills in and
//! [`crate::DecisionTable`] validates. Nothing here decides anything.

use serde::{Deserialize, Serialize};

use crate::condition::Condition;
use crate::hash::ContentHash;
use crate::ids::{
    AgentId, FileIndex, KeyId, ResourceId, RouteId, RuleIndex, SinkId, TierId, ToolId,
};

/// Everything a decision table holds, as plain data.
///
/// Build one (the compiler does, from a policy), then turn it into a checked
/// [`crate::DecisionTable`] with [`crate::DecisionTable::new`].
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct TableData {
    /// [`crate::FORMAT_VERSION`] when written.
    pub format_version: u32,
    /// [`crate::source_hash`] of the policy's sources.
    pub source_hash: ContentHash,
    pub policy: PolicyInfo,
    /// Source paths, in the compiler's file order; [`Span::file`] indexes this.
    pub files: Vec<String>,
    /// Tier names, lowest first: a [`TierId`] is the tier's rank.
    pub tiers: Vec<String>,
    /// Isolation keys (at most [`crate::MAX_KEYS`]).
    pub keys: Vec<String>,
    pub resources: Vec<Resource>,
    pub sinks: Vec<Sink>,
    pub routes: Vec<Route>,
    /// The text constants conditions compare against; a [`crate::TextId`] indexes this.
    pub texts: Vec<String>,
    pub tools: Vec<Tool>,
    pub agents: Vec<Agent>,
    /// Every rule, in the compiler's rule order.
    pub rules: Vec<Rule>,
    /// One cell per (agent, tool), agent-major: `cells[agent * tools.len() + tool]`.
    pub cells: Vec<Cell>,
    /// Named sets of texts, by [`Op::Any`](crate::Op::Any)'s tests' set index.
    pub sets: Vec<ValueSet>,
    /// The text tests conditions use, per (tool, parameter): the request builder
    /// evaluates them once per argument, and conditions read the results as bits.
    pub text_tests: Vec<TextTest>,
    /// Resources whose data is untrusted: reading one taints the session. Sorted.
    pub untrusted_resources: Vec<ResourceId>,
    /// Tools whose output is untrusted: calling one taints the session. Sorted.
    pub untrusted_tools: Vec<ToolId>,
    /// The audit retention schedule (`retain audit ...`); empty when the policy sets
    /// none. Compaction and checkpoint verification read it; `decide` does not.
    pub retention: crate::Retention,
}

/// A named set of texts.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct ValueSet {
    pub name: String,
    /// Bound when the table is loaded (`set NAME from deploy`), not in the policy.
    pub deploy: bool,
    /// Sorted, without duplicates; empty for a deploy-time set not yet bound.
    pub members: Vec<String>,
    /// Whether the members are known: always for policy sets, after binding for
    /// deploy-time ones. Tests on an unbound set fail closed.
    pub bound: bool,
}

impl ValueSet {
    /// Binary search; no allocation.
    #[inline]
    pub fn contains(&self, text: &str) -> bool {
        self.members
            .binary_search_by(|m| m.as_str().cmp(text))
            .is_ok()
    }
}

/// One test on a text argument (or on each element of a `list<text>` argument). Its bit
/// is its position among the tests of the same (tool, param), in table order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TextTest {
    pub tool: ToolId,
    /// Parameter index.
    pub param: u8,
    pub kind: TextTestKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TextTestKind {
    /// A member of `sets[set]`.
    InSet(u32),
    /// Matches the glob (see [`crate::glob_match`]).
    Matches(String),
    /// Equal to the text.
    Equals(String),
}

impl TextTestKind {
    /// Whether `text` passes; `None` when it reads a set that is not bound.
    #[inline]
    pub fn holds(&self, sets: &[ValueSet], text: &str) -> Option<bool> {
        match self {
            TextTestKind::InSet(s) => {
                let set = sets.get(*s as usize)?;
                set.bound.then(|| set.contains(text))
            }
            TextTestKind::Matches(p) => Some(crate::glob_match(p, text)),
            TextTestKind::Equals(t) => Some(t == text),
        }
    }
}

impl TableData {
    /// The cell of an (agent, tool) pair, if both ids are in range.
    #[inline]
    pub fn cell(&self, agent: AgentId, tool: ToolId) -> Option<&Cell> {
        self.cells.get(self.cell_position(agent, tool)?)
    }

    /// The position in `cells` of an (agent, tool) pair's cell, if the tool is in range.
    #[inline]
    pub(crate) fn cell_position(&self, agent: AgentId, tool: ToolId) -> Option<usize> {
        let tools = self.tools.len();
        if tool.index() >= tools {
            return None;
        }
        agent.index().checked_mul(tools)?.checked_add(tool.index())
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PolicyInfo {
    pub name: String,
    pub version: Option<String>,
}

/// Data an agent reads through a tool, labelled with a tier and the keys it is kept
/// apart by.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Resource {
    pub name: String,
    pub tier: TierId,
    pub keyed: Vec<KeyId>,
}

/// A place a tool writes to, cleared up to a tier.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Sink {
    pub name: String,
    /// The highest tier that may be written here.
    pub clearance: TierId,
    pub keyed: Vec<KeyId>,
}

/// An escalation route: who is asked, and what happens when nobody answers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Route {
    pub name: String,
    pub notify: Option<String>,
    pub timeout_ms: Option<i64>,
    pub timeout_outcome: Option<TimeoutOutcome>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TimeoutOutcome {
    Allow,
    Deny,
}

/// The type of a tool parameter, which fixes how its value is encoded as `i64`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ValueType {
    /// An interned text id.
    Text,
    /// Millionths.
    Number,
    /// Cents.
    Money,
    /// 0 or 1.
    Bool,
    /// Milliseconds.
    Duration,
    /// Millionths (`85%` is 850_000).
    Percent,
    /// A list of texts: its slot holds the length, and the request's text bits say which
    /// tests any and all elements pass.
    #[serde(rename = "list<text>")]
    TextList,
}

impl ValueType {
    pub fn keyword(self) -> &'static str {
        match self {
            ValueType::Text => "text",
            ValueType::Number => "number",
            ValueType::Money => "money",
            ValueType::Bool => "bool",
            ValueType::Duration => "duration",
            ValueType::Percent => "percent",
            ValueType::TextList => "list<text>",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Param {
    pub name: String,
    pub ty: ValueType,
    pub optional: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Effect {
    Read,
    Write,
    External,
    Financial,
    Irreversible,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Tool {
    pub name: String,
    /// At most [`crate::MAX_PARAMS`]; a parameter's index is its value slot.
    pub params: Vec<Param>,
    pub effects: Vec<Effect>,
    pub reads: Vec<ResourceId>,
    pub writes: Vec<SinkId>,
}

impl Tool {
    pub fn is_irreversible(&self) -> bool {
        self.effects.contains(&Effect::Irreversible)
    }

    /// The index of a parameter by name.
    pub fn param(&self, name: &str) -> Option<usize> {
        self.params.iter().position(|p| p.name == name)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Decide and log, but report Allow to the caller with the would-be outcome.
    Shadow,
    Enforce,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    pub name: String,
    pub owner: Option<String>,
    pub mode: Mode,
    /// The highest tier the agent may read; `None` means no ceiling.
    pub max_tier: Option<TierId>,
    /// At most [`crate::MAX_LIMITS`]; a limit's index is its usage counter in
    /// [`crate::SessionView::usage`].
    pub limits: Vec<Limit>,
    pub breakers: Vec<Breaker>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitUnit {
    Calls,
    Tokens,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LimitWindow {
    Task,
    Session,
    Minute,
    Hour,
    Day,
}

/// `limit 100 calls per task`: the call is denied once the counter reaches `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Limit {
    pub count: u64,
    pub unit: LimitUnit,
    pub window: LimitWindow,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum BreakerMetric {
    ErrorRate,
    Calls,
    Tokens,
    Denials,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SuspendScope {
    Agent,
    Engine,
}

/// `breaker error_rate > 20% over 5m then suspend`; the engine trips it, not `decide`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Breaker {
    pub metric: BreakerMetric,
    pub op: crate::CmpOp,
    /// Millionths for rates, a plain count otherwise.
    pub value: i64,
    pub window_ms: i64,
    pub scope: SuspendScope,
}

/// One keyword form per value, as the policy language writes it; the same word in audit
/// records, the access matrix, hovers and the CLI.
macro_rules! keywords {
    ($ty:ident { $($variant:ident => $word:literal),* $(,)? }) => {
        impl $ty {
            /// The keyword the policy language writes for this value.
            pub fn keyword(self) -> &'static str {
                match self {
                    $($ty::$variant => $word,)*
                }
            }

            /// The value a keyword names, if any.
            pub fn from_keyword(word: &str) -> Option<Self> {
                match word {
                    $($word => Some($ty::$variant),)*
                    _ => None,
                }
            }
        }
    };
}

keywords!(LimitUnit { Calls => "calls", Tokens => "tokens" });
keywords!(LimitWindow {
    Task => "task",
    Session => "session",
    Minute => "minute",
    Hour => "hour",
    Day => "day",
});
keywords!(BreakerMetric {
    ErrorRate => "error_rate",
    Calls => "calls",
    Tokens => "tokens",
    Denials => "denials",
});
keywords!(SuspendScope { Agent => "agent", Engine => "engine" });

/// As the policy writes it: `100 calls per task`, `50,000 tokens per day`.
///
/// ```
/// use agentpolicy_runtime::{Limit, LimitUnit, LimitWindow};
/// let limit = Limit { count: 50_000, unit: LimitUnit::Tokens, window: LimitWindow::Day };
/// assert_eq!(limit.to_string(), "50,000 tokens per day");
/// ```
impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} per {}",
            crate::values::group_thousands(self.count),
            self.unit.keyword(),
            self.window.keyword()
        )
    }
}

/// As the policy writes it: `error_rate > 20% over 5m then suspend agent`.
///
/// ```
/// use agentpolicy_runtime::{Breaker, BreakerMetric, CmpOp, SuspendScope};
/// let breaker = Breaker {
///     metric: BreakerMetric::ErrorRate,
///     op: CmpOp::Gt,
///     value: 200_000,
///     window_ms: 300_000,
///     scope: SuspendScope::Agent,
/// };
/// assert_eq!(breaker.to_string(), "error_rate > 20% over 5m then suspend agent");
/// ```
impl std::fmt::Display for Breaker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {} {} over {} then suspend {}",
            self.metric.keyword(),
            self.op.symbol(),
            self.value_text(),
            crate::values::duration(self.window_ms),
            self.scope.keyword()
        )
    }
}

impl Breaker {
    /// A value of this breaker's metric as written: a percentage for the error rate
    /// (`20%`), a count grouped by thousands otherwise (`3,000`).
    pub fn value_text(&self) -> String {
        self.metric.value_text(self.value)
    }
}

impl BreakerMetric {
    /// A value of this metric as written: a percentage for the error rate, a count
    /// grouped by thousands otherwise (an observed value when a breaker trips).
    pub fn value_text(self, value: i64) -> String {
        match self {
            BreakerMetric::ErrorRate => crate::values::percent(value),
            _ => match u64::try_from(value) {
                Ok(n) => crate::values::group_thousands(n),
                Err(_) => value.to_string(),
            },
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuleKind {
    Allow,
    Escalate,
    Deny,
}

impl RuleKind {
    pub fn keyword(self) -> &'static str {
        match self {
            RuleKind::Allow => "allow",
            RuleKind::Escalate => "escalate",
            RuleKind::Deny => "deny",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Target {
    Tool(ToolId),
    /// `*`: every tool granted to the agent by name.
    All,
}

/// Where a rule was written: a file, a byte range, and the 1-based line and column (in
/// characters) of its first byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
pub struct Span {
    pub file: FileIndex,
    pub start: u32,
    pub end: u32,
    pub line: u32,
    pub column: u32,
}

/// A rule as written, for explanations; its condition lives in the cells.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Rule {
    /// Stable, readable id: `agent/kind/target#n`, the n-th rule of that agent with that
    /// kind and target, so unrelated edits do not renumber it.
    pub id: String,
    pub agent: AgentId,
    pub kind: RuleKind,
    pub target: Target,
    /// Set for (and only for) `escalate` rules.
    pub route: Option<RouteId>,
    pub span: Span,
}

/// A rule as it applies in one cell: the rule, and its compiled condition (`None` for
/// a rule without `when`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    pub rule: RuleIndex,
    pub condition: Option<Condition>,
}

/// Everything that decides a call of one tool by one agent: whether it is granted, and
/// the applicable rules sorted by kind, each list in source order (`*` rules included).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Cell {
    pub granted: bool,
    pub deny: Vec<Entry>,
    pub escalate: Vec<Entry>,
    pub allow: Vec<Entry>,
}
