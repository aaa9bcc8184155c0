//! The syntax tree of one file: plain data with byte ranges, as written, unresolved.
//!
//! Names are strings here; `sema` resolves them. Every node carries the byte range it
//! was parsed from so diagnostics, hover and go-to-definition can point at it.

use serde::Serialize;

/// A byte range in one file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Default, Serialize)]
pub struct TextRange {
    pub start: u32,
    pub end: u32,
}

impl TextRange {
    pub fn new(start: usize, end: usize) -> Self {
        TextRange {
            start: start as u32,
            end: end as u32,
        }
    }

    pub fn contains(&self, offset: u32) -> bool {
        self.start <= offset && offset <= self.end
    }

    pub fn shifted(self, by: u32) -> Self {
        TextRange {
            start: self.start + by,
            end: self.end + by,
        }
    }
}

/// A name as written, with where it was written.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Name {
    pub text: String,
    pub range: TextRange,
}

/// A parsed file: the items that parsed, in source order.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize)]
pub struct SourceFile {
    pub items: Vec<Item>,
    /// Items with a syntax error (already reported as AP0001): analysis must not report
    /// their names as undeclared, nor a clause as missing that may be the one that failed.
    pub broken: Vec<BrokenItem>,
}

/// A top-level item with a syntax error.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BrokenItem {
    /// The name it declares, when the words after its keyword form one.
    pub name: Option<Name>,
    /// The whole item, as the splitter cut it.
    pub range: TextRange,
    /// Whether it still parsed with the bad clauses left out (it is then in `items`,
    /// without them); otherwise it is not in `items` at all.
    pub recovered: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Item {
    pub kind: ItemKind,
    pub range: TextRange,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ItemKind {
    Policy(PolicyDecl),
    Use(UseDecl),
    Tiers(TiersDecl),
    Isolate(Name),
    Resource(ResourceDecl),
    Sink(SinkDecl),
    Tool(ToolDecl),
    Threshold(ThresholdDecl),
    Escalation(EscalationDecl),
    Agent(AgentDecl),
    Assert(AssertDecl),
    Test(TestDecl),
    Set(SetDecl),
    Retain(RetainDecl),
}

/// `set NAME = ["a", "b"]` or `set NAME from deploy`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SetDecl {
    pub name: Name,
    pub source: SetSource,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum SetSource {
    /// Members written in the policy, with the range of the `[...]`.
    Members(Vec<StringLit>, TextRange),
    /// Bound when the table is loaded; the range of `from deploy`.
    Deploy(TextRange),
}

impl ItemKind {
    /// The name an item declares, if it declares one.
    pub fn declared_name(&self) -> Option<&Name> {
        match self {
            ItemKind::Policy(p) => Some(&p.name),
            ItemKind::Isolate(n) => Some(n),
            ItemKind::Resource(r) => Some(&r.name),
            ItemKind::Sink(s) => Some(&s.name),
            ItemKind::Tool(t) => Some(&t.name),
            ItemKind::Threshold(t) => Some(&t.name),
            ItemKind::Escalation(e) => Some(&e.name),
            ItemKind::Agent(a) => Some(&a.name),
            ItemKind::Set(d) => Some(&d.name),
            ItemKind::Use(_)
            | ItemKind::Tiers(_)
            | ItemKind::Assert(_)
            | ItemKind::Test(_)
            | ItemKind::Retain(_) => None,
        }
    }
}

/// `retain audit PERIOD` or `retain audit for TIER PERIOD`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetainDecl {
    pub tier: Option<Name>,
    pub period: RetainPeriod,
}

/// A retention period as written: calendar years (`7y`) or an exact duration (`90d`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RetainPeriod {
    pub text: String,
    pub years: u64,
    /// Milliseconds, for every unit but `y`.
    pub ms: i64,
    pub range: TextRange,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyDecl {
    pub name: Name,
    pub version: Option<StringLit>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StringLit {
    /// The unescaped value.
    pub value: String,
    pub range: TextRange,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct UseDecl {
    /// `std.legal` as `["std", "legal"]`.
    pub path: Vec<Name>,
    pub range: TextRange,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TiersDecl {
    /// Lowest first.
    pub tiers: Vec<Name>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceDecl {
    pub name: Name,
    pub tier: Vec<Name>,
    pub keyed: Vec<Name>,
    /// `untrusted`: reading the resource taints the session.
    pub untrusted: Vec<TextRange>,
    /// `from SINK`: the resource reads back what is written to the sink (one store).
    pub store: Vec<Name>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SinkDecl {
    pub name: Name,
    pub clearance: Vec<Name>,
    pub keyed: Vec<Name>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum TypeName {
    Text,
    Number,
    Money,
    Bool,
    Duration,
    Percent,
    /// `list<text>`: a list of texts, read with `all` / `any`.
    TextList,
}

impl TypeName {
    pub fn keyword(self) -> &'static str {
        match self {
            TypeName::Text => "text",
            TypeName::Number => "number",
            TypeName::Money => "money",
            TypeName::Bool => "bool",
            TypeName::Duration => "duration",
            TypeName::Percent => "percent",
            TypeName::TextList => "list<text>",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Param {
    pub name: Name,
    pub ty: TypeName,
    pub optional: bool,
    pub range: TextRange,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Effect {
    Read,
    Write,
    External,
    Financial,
    Irreversible,
}

impl Effect {
    pub fn keyword(self) -> &'static str {
        match self {
            Effect::Read => "read",
            Effect::Write => "write",
            Effect::External => "external",
            Effect::Financial => "financial",
            Effect::Irreversible => "irreversible",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ToolDecl {
    pub name: Name,
    pub params: Vec<Param>,
    pub effects: Vec<(Effect, TextRange)>,
    pub reads: Vec<Name>,
    pub writes: Vec<Name>,
    /// `untrusted`: the tool's output is untrusted content; calling it taints the session.
    pub untrusted: Vec<TextRange>,
}

/// A literal as written; `value` is exact, in the unit of its kind.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Literal {
    pub value: LiteralValue,
    pub range: TextRange,
}

/// Exact literal values. Money is in cents, numbers and percentages in millionths
/// (so `0.85` and `85%` are both 850_000), durations in milliseconds.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub enum LiteralValue {
    Money(i64),
    Number(i64),
    Percent(i64),
    Duration(i64),
    Text(String),
    Bool(bool),
    /// `["a", "b"]`: only as a test call's argument.
    TextList(Vec<String>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ThresholdDecl {
    pub name: Name,
    pub value: Literal,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum TimeoutOutcome {
    Allow,
    Deny,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TimeoutClause {
    pub after_ms: i64,
    pub then: Option<TimeoutOutcome>,
    pub range: TextRange,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct EscalationDecl {
    pub name: Name,
    pub notify: Vec<StringLit>,
    pub timeout: Vec<TimeoutClause>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentDecl {
    pub name: Name,
    pub members: Vec<AgentMember>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AgentMember {
    pub kind: AgentMemberKind,
    pub range: TextRange,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum AgentMemberKind {
    Owner(StringLit),
    Purpose(StringLit),
    MaxTier(Name),
    Rule(RuleDecl),
    Autonomy(AutonomyDecl),
    Limit(Vec<LimitSpec>),
    Breaker(BreakerDecl),
    Mode(Mode),
    Credential(CredentialDecl),
    Stage(StageDecl),
    Promote(PromoteDecl),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
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

/// `TOOL` or `*`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Target {
    Tool(Name),
    All(TextRange),
}

impl Target {
    pub fn range(&self) -> TextRange {
        match self {
            Target::Tool(n) => n.range,
            Target::All(r) => *r,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RuleDecl {
    pub kind: RuleKind,
    pub target: Target,
    pub route: Option<Name>,
    pub condition: Option<Expr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AutonomyDecl {
    pub tool: Name,
    pub condition: Expr,
    pub because: StringLit,
}

/// Limits and breakers name their units, windows, metrics and scopes with the runtime's
/// own enums: one keyword form for each, from the policy text to the audit record.
pub use agentpolicy_runtime::{BreakerMetric, LimitUnit, LimitWindow, SuspendScope};

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LimitSpec {
    /// The count as written; a fractional or negative count is an error reported by sema.
    pub count: i64,
    pub unit: LimitUnit,
    pub window: LimitWindow,
    pub range: TextRange,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BreakerDecl {
    pub metric: BreakerMetric,
    pub op: CompareOp,
    pub value: Literal,
    pub window_ms: i64,
    pub scope: SuspendScope,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Mode {
    Shadow,
    Enforce,
}

/// A lifecycle stage, in promotion order.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum Stage {
    Shadow,
    Supervised,
    Autonomous,
}

impl Stage {
    pub fn keyword(self) -> &'static str {
        match self {
            Stage::Shadow => "shadow",
            Stage::Supervised => "supervised",
            Stage::Autonomous => "autonomous",
        }
    }

    /// The stage a promotion from this one leads to; `None` for the last.
    pub fn next(self) -> Option<Stage> {
        match self {
            Stage::Shadow => Some(Stage::Supervised),
            Stage::Supervised => Some(Stage::Autonomous),
            Stage::Autonomous => None,
        }
    }
}

/// `stage STAGE [to ROUTE]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StageDecl {
    pub stage: Stage,
    pub stage_range: TextRange,
    pub route: Option<Name>,
}

/// `promote to STAGE when CRITERION and ...`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PromoteDecl {
    pub target: Stage,
    pub target_range: TextRange,
    pub criteria: Vec<Criterion>,
}

/// A measure of an agent's audit trail a promotion criterion compares.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum PromoteMetric {
    ShadowAgreement,
    Errors,
    EscalationRate,
    ApprovalRate,
    Denials,
}

impl PromoteMetric {
    pub fn keyword(self) -> &'static str {
        match self {
            PromoteMetric::ShadowAgreement => "shadow_agreement",
            PromoteMetric::Errors => "errors",
            PromoteMetric::EscalationRate => "escalation_rate",
            PromoteMetric::ApprovalRate => "approval_rate",
            PromoteMetric::Denials => "denials",
        }
    }

    /// Rates are shares (percentages); `denials` is a count.
    pub fn is_rate(self) -> bool {
        self != PromoteMetric::Denials
    }
}

/// `METRIC OP VALUE [over N decisions]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Criterion {
    pub metric: PromoteMetric,
    pub op: CompareOp,
    pub value: Literal,
    /// `over N decisions`, the count as written (a fraction is an AP0002 error).
    pub window: Option<(i64, TextRange)>,
    pub range: TextRange,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CredentialDecl {
    pub name: Name,
    pub expires_ms: Option<i64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum CompareOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl CompareOp {
    pub fn symbol(self) -> &'static str {
        match self {
            CompareOp::Lt => "<",
            CompareOp::Le => "<=",
            CompareOp::Gt => ">",
            CompareOp::Ge => ">=",
            CompareOp::Eq => "==",
            CompareOp::Ne => "!=",
        }
    }

    /// The comparison with its operands swapped: `a < b` is `b > a`.
    pub fn flipped(self) -> Self {
        match self {
            CompareOp::Lt => CompareOp::Gt,
            CompareOp::Le => CompareOp::Ge,
            CompareOp::Gt => CompareOp::Lt,
            CompareOp::Ge => CompareOp::Le,
            CompareOp::Eq => CompareOp::Eq,
            CompareOp::Ne => CompareOp::Ne,
        }
    }

    pub fn holds<T: Ord>(self, left: &T, right: &T) -> bool {
        match self {
            CompareOp::Lt => left < right,
            CompareOp::Le => left <= right,
            CompareOp::Gt => left > right,
            CompareOp::Ge => left >= right,
            CompareOp::Eq => left == right,
            CompareOp::Ne => left != right,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expr {
    pub kind: ExprKind,
    pub range: TextRange,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ExprKind {
    Or(Vec<Expr>),
    And(Vec<Expr>),
    Not(Box<Expr>),
    Compare {
        left: Operand,
        op: CompareOp,
        right: Operand,
    },
    /// A bare operand used as a condition: a `bool` argument or threshold.
    Truthy(Operand),
    /// `x in SET`, `x not in SET`, `x in LOW..HIGH`.
    In {
        operand: Operand,
        negated: bool,
        target: InTarget,
    },
    /// `x matches "glob"`, `x not matches "glob"`.
    Matches {
        operand: Operand,
        negated: bool,
        pattern: StringLit,
    },
    /// `all xs ...` / `any xs ...` over a `list<text>` argument.
    Quantified {
        quantifier: Quantifier,
        list: Name,
        test: ElementTest,
    },
    /// `x from untrusted`.
    FromUntrusted(Operand),
    /// `x given` (`given` is true) or `x missing`: whether the call carries the argument.
    Presence {
        arg: Name,
        given: bool,
    },
    /// `effect irreversible`: the called tool has the effect.
    HasEffect(Effect, TextRange),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum InTarget {
    Set(Name),
    /// Both ends included.
    Range(Literal, Literal),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Quantifier {
    All,
    Any,
}

impl Quantifier {
    pub fn keyword(self) -> &'static str {
        match self {
            Quantifier::All => "all",
            Quantifier::Any => "any",
        }
    }
}

/// What `all` / `any` asks of each element of a list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ElementTest {
    In { negated: bool, set: Name },
    Matches { negated: bool, pattern: StringLit },
    Compare { op: CompareOp, value: Operand },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum Operand {
    Literal(Literal),
    /// An argument name, `confidence`, or a threshold name; sema decides which.
    Name(Name),
}

impl Operand {
    pub fn range(&self) -> TextRange {
        match self {
            Operand::Literal(l) => l.range,
            Operand::Name(n) => n.range,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum AssertDecl {
    NeverCalls {
        agent: Name,
        target: Target,
        condition: Option<Expr>,
    },
    EveryIrreversibleEscalates,
    /// `assert every irreversible tool escalates when tainted`.
    TaintedIrreversibleEscalates,
    NeverReads {
        agent: Name,
        tier: Name,
    },
    NoFlow {
        tier: Name,
        sink: Name,
    },
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestDecl {
    pub name: StringLit,
    pub steps: Vec<TestStep>,
    pub expect: Expectation,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CallArg {
    pub name: Name,
    pub value: Literal,
    /// `name: untrusted VALUE`: the value came from untrusted content.
    pub untrusted: Option<TextRange>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResourceRef {
    pub resource: Name,
    pub keys: Vec<CallArg>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TestStep {
    pub agent: Name,
    pub tool: Name,
    pub args: Vec<CallArg>,
    pub confidence: Option<Literal>,
    /// `on RESOURCE(key: "v")`: the resource the call reads.
    pub on: Option<ResourceRef>,
    /// `into SINK(key: "v")`: the sink the call writes.
    pub into: Option<ResourceRef>,
    pub range: TextRange,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum DenyReason {
    Flow,
    Limit,
    Suspended,
    NotGranted,
    NoRule,
    Rule,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub enum ExpectKind {
    Allow,
    Escalate(Vec<Name>),
    Deny(Option<DenyReason>),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Expectation {
    pub kind: ExpectKind,
    pub range: TextRange,
}
