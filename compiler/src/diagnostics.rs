//! The one `Diagnostic` type every phase reports with, and the registry of stable codes.
//!
//! Rendering lives elsewhere (`render` for the terminal and JSON, `lsp/` for editors):
//! this module only holds data. Codes are stable and never reused; each has a page in
//! `docs/diagnostics/CODE.md`, and a test fails if a code and its page drift apart.

use serde::Serialize;

use crate::syntax::ast::TextRange;

/// Index of a source file in the database's file list.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct FileId(pub u32);

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Error,
    Warning,
}

/// A place in a file and what to say about it.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Label {
    pub file: FileId,
    pub range: TextRange,
    pub message: String,
}

impl Label {
    pub fn new(file: FileId, range: TextRange, message: impl Into<String>) -> Self {
        Label {
            file,
            range,
            message: message.into(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize)]
pub struct Diagnostic {
    pub code: Code,
    pub severity: Severity,
    pub message: String,
    pub primary: Label,
    pub secondary: Vec<Label>,
    pub help: Option<String>,
    /// For a failed proof: the counterexample as pretty JSON (a request, or the trace of
    /// calls of a session), which a test replays through the runtime.
    pub counterexample: Option<String>,
}

impl Diagnostic {
    /// A diagnostic with the code's default severity.
    pub fn new(code: Code, message: impl Into<String>, primary: Label) -> Self {
        Diagnostic {
            code,
            severity: code.severity(),
            message: message.into(),
            primary,
            secondary: Vec::new(),
            help: None,
            counterexample: None,
        }
    }

    pub fn with_counterexample(mut self, json: impl Into<String>) -> Self {
        self.counterexample = Some(json.into());
        self
    }

    pub fn with_secondary(mut self, label: Label) -> Self {
        self.secondary.push(label);
        self
    }

    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

macro_rules! codes {
    ($( $variant:ident = $code:literal, $severity:ident, $title:literal; )*) => {
        /// A stable diagnostic code. Never renumber or reuse one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Code { $( $variant, )* }

        impl Code {
            pub const ALL: &'static [Code] = &[ $( Code::$variant, )* ];

            /// `AP0001`.
            pub fn as_str(self) -> &'static str {
                match self { $( Code::$variant => $code, )* }
            }

            /// One line: what the code is about.
            pub fn title(self) -> &'static str {
                match self { $( Code::$variant => $title, )* }
            }

            pub fn severity(self) -> Severity {
                match self { $( Code::$variant => Severity::$severity, )* }
            }
        }
    };
}

codes! {
    SyntaxError = "AP0001", Error, "syntax error";
    InvalidLiteral = "AP0002", Error, "invalid literal";
    NestingTooDeep = "AP0003", Error, "expression nested too deeply";
    InvalidEncoding = "AP0004", Error, "file is not valid UTF-8 text";
    EmptyPolicy = "AP0005", Error, "no declarations";
    MissingPolicyHeader = "AP0006", Error, "missing or repeated `policy` header";
    DuplicateDefinition = "AP0010", Error, "duplicate definition";
    UnknownReference = "AP0011", Error, "unknown name";
    UnknownModule = "AP0012", Error, "unknown standard library module";
    WrongKindOfName = "AP0013", Error, "name refers to the wrong kind of thing";
    CyclicTiers = "AP0020", Error, "cyclic tier order";
    NonLinearTiers = "AP0021", Error, "tiers not in one linear order";
    MaxTierIsTop = "AP0022", Warning, "`max tier` at the top tier restricts nothing";
    MissingMember = "AP0023", Error, "required clause missing";
    RepeatedMember = "AP0024", Error, "clause given more than once";
    TypeMismatch = "AP0030", Error, "type mismatch";
    UnknownArgument = "AP0031", Error, "unknown argument";
    ArgumentInStarRule = "AP0032", Error, "argument condition on a `*` rule";
    ConstantCondition = "AP0033", Warning, "condition does not depend on the request";
    NotTextArgument = "AP0034", Error, "set or pattern used with an argument that is not text";
    EmptySet = "AP0035", Warning, "set has no members";
    PatternNeverMatches = "AP0036", Warning, "pattern can never match";
    InvalidPattern = "AP0037", Error, "malformed glob pattern";
    ListWithoutQuantifier = "AP0038", Error, "list argument used without `all` or `any`";
    MatchesWhenOmitted = "AP0039", Warning, "rule also matches every call that omits an optional argument";
    EscalateWithoutRoute = "AP0040", Error, "`escalate` without a route";
    RouteWithoutTimeout = "AP0041", Error, "escalation route without a timeout outcome";
    AgentWithoutOwner = "AP0042", Error, "agent without an owner";
    CredentialWithoutExpiry = "AP0043", Error, "credential without expiry";
    InvalidLimit = "AP0044", Error, "invalid limit or breaker";
    UngrantedDeny = "AP0045", Warning, "`deny` for a tool the agent is never granted";
    RouteOnNonEscalate = "AP0046", Error, "route on a rule that does not escalate";
    InvalidTest = "AP0050", Error, "invalid policy test";
    StageRoute = "AP0060", Error, "`stage supervised` without a route, or a route on another stage";
    StageAndMode = "AP0061", Error, "both `stage` and `mode`";
    PromotionWindow = "AP0062", Error, "promotion criteria without exactly one `over N decisions`";
    InvalidCriterion = "AP0063", Error, "promotion criterion out of range or of the wrong kind";
    InvalidPromotion = "AP0064", Error, "promotion to a stage that is not above the agent's stage";
    TestFailed = "AP0051", Error, "policy test failed";
    RepeatedRetention = "AP0065", Error, "audit retention given twice";
    InvalidRetention = "AP0066", Error, "retention period out of range";
    RetentionWithoutEffect = "AP0067", Warning, "retention clause never decides";
    TableLimitExceeded = "AP0090", Error, "policy exceeds a decision-table limit";
    IsolationViolated = "AP0100", Error, "isolation can be broken";
    WriteDown = "AP0101", Error, "data can be written down to a sink below its tier";
    TierCeilingBroken = "AP0102", Error, "an agent can read above its `max tier`";
    IrreversibleWithoutEscalation = "AP0103", Error, "irreversible tool allowed without escalation";
    NonMonotoneThreshold = "AP0104", Error, "a riskier request gets a more permissive outcome";
    DeadRule = "AP0105", Warning, "rule never matches";
    ShadowedRule = "AP0106", Warning, "rule is shadowed by other rules";
    UnusableTool = "AP0107", Warning, "granted tool can never be used";
    AssertNeverCallsFailed = "AP0108", Error, "`assert never ... calls` does not hold";
    AssertEscalatesFailed = "AP0109", Error, "`assert every irreversible tool escalates` does not hold";
    AssertNeverReadsFailed = "AP0110", Error, "`assert ... never reads` does not hold";
    AssertNoFlowFailed = "AP0111", Error, "`assert no flow from ... to ...` does not hold";
    ProofUnknown = "AP0112", Error, "property neither proved nor refuted";
    TaintedIrreversible = "AP0113", Error, "irreversible tool allowed in a tainted session without escalation";
}

impl Serialize for Code {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl Code {
    /// Looks a code up by its text, case-insensitively (`ap0001` works).
    pub fn parse(text: &str) -> Option<Code> {
        Code::ALL
            .iter()
            .copied()
            .find(|c| c.as_str().eq_ignore_ascii_case(text.trim()))
    }
}

impl std::fmt::Display for Code {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
