//! `agentpolicy-verify`, the verifier: proves the safety properties of DESIGN.md ("What the compiler proves")
//! on the emitted decision table, or finds a concrete counterexample, with Z3.
//!
//! This module is the only boundary behind which the solver lives: `solver` runs Z3,
//! `encode` turns the table's cells and conditions into formulas, `flow` encodes
//! sessions, and one module per family of properties builds its formulas. Every property
//! returns [`Verdict::Proved`], [`Verdict::Counterexample`] (concrete requests the runtime
//! replays to the same outcome before they are reported) or [`Verdict::Unknown`] with the
//! solver's reason; Unknown is never a pass. No IO, no printing.
//!
//! What is verified is the [`DecisionTable`] that `decide` runs (translation validation),
//! against the [`Model`] as the specification: tool declarations say what data a call
//! reads and writes, `autonomy` and `assert` give the exemptions and user properties.

#![deny(clippy::print_stdout, clippy::print_stderr)]

mod access;
mod alphabet;
mod asserts;
mod cells;
mod counterexample;
mod diff;
mod diff_decls;
mod diff_integrity;
mod diff_limits;
mod encode;
mod flow;
mod hygiene;
pub mod matrix;
mod report;
mod solver;

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::rc::Rc;

use agentpolicy_runtime::{DecisionTable, TableData};

use agentpolicy::diagnostics::Diagnostic;
use agentpolicy::model::{Loc, Model};

pub use counterexample::{Access, ArgVal, Call, Counterexample, Session, decimal, money};
pub use diff::{Change, DiffError, DiffReport, diff};
pub use diff_decls::{ChangeKind, DeclChange, Witness};
pub use solver::Budget;

/// The version of the Z3 library linked at run time (`4.8.12`, `5.4.1`): Debian's
/// package by default, or the `z3-solver` wheel's when built that way (README).
pub fn z3_version() -> String {
    let full = z3::full_version();
    full.strip_prefix("Z3 ")
        .unwrap_or(full)
        .split_whitespace()
        .next()
        .unwrap_or(full)
        .trim_end_matches(".0")
        .to_owned()
}

/// How to run the proofs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Config {
    pub budget: Budget,
}

/// The properties `check` proves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Property {
    Isolation,
    WriteDown,
    TierCeiling,
    Escalation,
    Monotone,
    Hygiene,
    Assert,
}

impl Property {
    pub const ALL: &'static [Property] = &[
        Property::Isolation,
        Property::WriteDown,
        Property::TierCeiling,
        Property::Escalation,
        Property::Monotone,
        Property::Hygiene,
        Property::Assert,
    ];

    pub fn name(self) -> &'static str {
        match self {
            Property::Isolation => "isolation",
            Property::WriteDown => "no write-down",
            Property::TierCeiling => "tier ceiling",
            Property::Escalation => "irreversible => escalation",
            Property::Monotone => "monotone thresholds",
            Property::Hygiene => "hygiene",
            Property::Assert => "assert",
        }
    }
}

/// How a verdict was reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    /// One query per (agent, tool) cell of the table: the finite agent and tool domain is
    /// enumerated, arguments and confidence are symbolic.
    PerCell,
    /// An inductive invariant over the session state.
    Induction,
    /// Bounded model checking from the initial session up to `depth` calls before the
    /// offending one. `complete` when `depth` reaches the completeness threshold (session
    /// labels only grow, so every reachable state is reached within it).
    Bmc { depth: usize, complete: bool },
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Method::PerCell => f.write_str("exhaustively per (agent, tool) cell"),
            Method::Induction => f.write_str("by induction over the session state"),
            Method::Bmc {
                depth: 0,
                complete: true,
            } => f.write_str(
                "by bounded model checking to depth 0 (complete: a fresh session is the most permissive)",
            ),
            Method::Bmc {
                depth,
                complete: true,
            } => write!(
                f,
                "by bounded model checking to depth {depth} (complete: session labels only grow)"
            ),
            Method::Bmc {
                depth,
                complete: false,
            } => write!(f, "by bounded model checking to depth {depth}"),
        }
    }
}

/// What a property came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Proved,
    Counterexample(Box<Counterexample>),
    /// A hygiene finding (a rule that never decides, a tool that can never be used): a
    /// warning, proved over every request, with no single request to show.
    Finding,
    /// The solver could not decide; never a pass.
    Unknown(String),
}

impl Verdict {
    /// The kind of verdict, without its payload.
    pub fn kind(&self) -> VerdictKind {
        match self {
            Verdict::Proved => VerdictKind::Proved,
            Verdict::Finding => VerdictKind::Finding,
            Verdict::Counterexample(_) => VerdictKind::Counterexample,
            Verdict::Unknown(_) => VerdictKind::Unknown,
        }
    }

    pub fn keyword(&self) -> &'static str {
        self.kind().keyword()
    }
}

/// The kinds of verdict, ordered from best to worst for a reviewer: a proof, a hygiene
/// warning, a counterexample, and unknown (which is never a pass, and says nothing either
/// way, so it sorts last: a property that is unknown needs more attention than one that
/// is refuted with a request to look at).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum VerdictKind {
    Proved,
    Finding,
    Counterexample,
    Unknown,
}

impl VerdictKind {
    pub const ALL: &'static [VerdictKind] = &[
        VerdictKind::Proved,
        VerdictKind::Finding,
        VerdictKind::Counterexample,
        VerdictKind::Unknown,
    ];

    /// The word `check` prints and the JSON output carries.
    pub fn keyword(self) -> &'static str {
        match self {
            VerdictKind::Proved => "proved",
            VerdictKind::Finding => "warning",
            VerdictKind::Counterexample => "counterexample",
            VerdictKind::Unknown => "unknown",
        }
    }
}

/// What a verdict is about, as data: the access matrix and the language server attribute
/// verdicts to agents and tools from it, never from its wording.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Subject {
    /// A property of one agent's sessions (isolation, write-down, tier ceiling).
    Agent { agent: String },
    /// One (agent, tool) cell of the table.
    Cell { agent: String, tool: String },
    /// One rule, by its stable id; `tool` is `None` for a `*` rule.
    Rule {
        id: String,
        agent: String,
        tool: Option<String>,
    },
    /// One of the policy's `assert`s, in its own words (it may name any agent), and where
    /// it is written: [`Subject::quoted`] quotes it whole, condition and all.
    Assert { text: String, loc: Loc },
    /// The decision table as a whole (it does not match the model it was built from).
    Table,
}

impl Subject {
    /// The agent the verdict is about, if it is about one.
    pub fn agent(&self) -> Option<&str> {
        match self {
            Subject::Agent { agent }
            | Subject::Cell { agent, .. }
            | Subject::Rule { agent, .. } => Some(agent),
            Subject::Assert { .. } | Subject::Table => None,
        }
    }

    /// The tool the verdict is about, if it is about one cell.
    pub fn tool(&self) -> Option<&str> {
        match self {
            Subject::Cell { tool, .. } => Some(tool),
            Subject::Rule { tool, .. } => tool.as_deref(),
            Subject::Agent { .. } | Subject::Assert { .. } | Subject::Table => None,
        }
    }
}

impl Subject {
    /// The subject as its reader should see it: an assert quoted whole from its source
    /// (`never teller calls pay when amount > $100`), so two asserts about the same agent
    /// and tool read differently; anything else as displayed.
    pub fn quoted(&self, sources: &agentpolicy::render::Sources) -> String {
        let Subject::Assert { loc, .. } = self else {
            return self.to_string();
        };
        let quoted = sources
            .get(loc.file)
            .and_then(|(_, text)| text.get(loc.range.start as usize..loc.range.end as usize))
            .map(|item| {
                agentpolicy::syntax::lexer::lex(item)
                    .iter()
                    .filter(|t| !t.kind.is_trivia() && !t.kind.is_comment())
                    .map(|t| t.text(item))
                    .skip_while(|w| *w == "assert")
                    .collect::<Vec<_>>()
                    .join(" ")
            })
            .filter(|q| !q.is_empty());
        quoted.unwrap_or_else(|| self.to_string())
    }
}

/// `agent intake`, `intake calls wire_funds`, `rule intake/allow/search#1`, an assert's
/// words, `decision table`.
impl fmt::Display for Subject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Subject::Agent { agent } => write!(f, "agent {agent}"),
            Subject::Cell { agent, tool } => write!(f, "{agent} calls {tool}"),
            Subject::Rule { id, .. } => write!(f, "rule {id}"),
            Subject::Assert { text, .. } => f.write_str(text),
            Subject::Table => f.write_str("decision table"),
        }
    }
}

/// How many results of each kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Counts {
    pub proved: usize,
    pub findings: usize,
    pub counterexamples: usize,
    pub unknown: usize,
}

/// The verdict of one property for one subject (an agent, a cell, a rule, an assert).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PropertyResult {
    pub property: Property,
    /// What it is about (displayed as `agent intake`, `intake calls wire_funds`, ...).
    pub subject: Subject,
    pub verdict: Verdict,
    pub method: Method,
    /// Assumptions about the world the verdict rests on, in words.
    pub assumptions: Vec<&'static str>,
    /// The diagnostic for anything but a proof.
    pub diagnostic: Option<Diagnostic>,
}

/// Every property's results for one policy.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Report {
    pub results: Vec<PropertyResult>,
}

impl Report {
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        self.results
            .iter()
            .filter_map(|r| r.diagnostic.clone())
            .collect()
    }

    pub fn counterexamples(&self) -> impl Iterator<Item = (&PropertyResult, &Counterexample)> {
        self.results.iter().filter_map(|r| match &r.verdict {
            Verdict::Counterexample(c) => Some((r, c.as_ref())),
            _ => None,
        })
    }

    /// How many results are of `kind`.
    pub fn count(&self, kind: VerdictKind) -> usize {
        self.results
            .iter()
            .filter(|r| r.verdict.kind() == kind)
            .count()
    }

    /// How many results of each kind.
    pub fn counts(&self) -> Counts {
        Counts {
            proved: self.count(VerdictKind::Proved),
            findings: self.count(VerdictKind::Finding),
            counterexamples: self.count(VerdictKind::Counterexample),
            unknown: self.count(VerdictKind::Unknown),
        }
    }

    /// Every property proved (hygiene findings are warnings and do not count here).
    pub fn all_proved(&self) -> bool {
        self.results
            .iter()
            .all(|r| matches!(r.verdict, Verdict::Proved | Verdict::Finding))
    }
}

/// Which part of a policy to prove, for a caller that re-proves only what an edit
/// touched (the language server). [`Scope::default`] is everything, what [`verify`] does.
///
/// Every property but the asserts is about one agent: its flow properties (isolation, no
/// write-down, tier ceiling), escalation and monotone thresholds of its cells, and the
/// hygiene of its cells and rules (a rule belongs to one agent). Asserts may name any
/// agent, so they are proved over the whole table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scope {
    /// The agents (indices into `Model::agents`) whose properties are proved; `None`
    /// for every agent.
    pub agents: Option<Vec<usize>>,
    /// Whether the `assert`s are proved.
    pub asserts: bool,
}

impl Default for Scope {
    fn default() -> Self {
        Scope {
            agents: None,
            asserts: true,
        }
    }
}

/// Proves every property of `model` on its compiled `table`.
pub fn verify(model: &Model, table: &DecisionTable, config: &Config) -> Report {
    verify_scoped(model, table, config, &Scope::default())
}

/// Proves the properties of `model` that `scope` selects. For a selected agent the
/// verdicts, messages and locations are the ones [`verify`] gives; a counterexample may be
/// another witness (Z3's model depends on the queries asked before it), replayed through
/// the runtime like every other.
pub fn verify_scoped(
    model: &Model,
    table: &DecisionTable,
    config: &Config,
    scope: &Scope,
) -> Report {
    let Some(ctx) = Ctx::new(model, table, config) else {
        return Report {
            results: vec![report::mismatch(model)],
        };
    };
    let in_scope = |agent: usize| {
        scope
            .agents
            .as_ref()
            .is_none_or(|agents| agents.contains(&agent))
    };
    let mut results = Vec::new();
    // The asserts may read any agent's cells; without them, only the scope's are needed.
    let all = if scope.asserts {
        cells::prepare(&ctx)
    } else {
        cells::prepare_agents(&ctx, &in_scope)
    };
    let cells: Vec<cells::CellInfo> = all.iter().filter(|c| in_scope(c.agent)).cloned().collect();
    results.extend(flow::prove(&ctx, &all, &in_scope, scope.asserts));
    results.extend(cells::prove_escalation(&ctx, &cells));
    results.extend(cells::prove_monotone(&ctx, &cells));
    results.extend(hygiene::prove(&ctx, &cells));
    if scope.asserts {
        results.extend(asserts::prove(&ctx, &all));
    }
    Report { results }
}

/// A cell's solver, or `None` for a cell whose conditions cannot be encoded.
pub(crate) type CachedSolver = Option<Rc<cells::CellSolver>>;

/// What every property needs: the model, the table, the text domain and the budget.
pub(crate) struct Ctx<'a> {
    pub model: &'a Model,
    pub table: &'a DecisionTable,
    pub data: &'a TableData,
    pub texts: encode::TextDomain,
    /// Text slots carry strings linked to their ids: the table has text tests or sets,
    /// or an assert or exemption tests sets or patterns. Formulas then use the strings
    /// solver; without, only integers.
    pub strings: bool,
    /// One solver per (agent, tool) cell, built on first use and shared by properties.
    pub solvers: RefCell<HashMap<(usize, usize), CachedSolver>>,
    /// The solver every per-cell question is asked of, inside push / pop.
    pub shared: Rc<z3::Solver>,
    /// The same for cells whose formulas test texts as strings.
    pub shared_strings: Rc<z3::Solver>,
    pub permitted: RefCell<HashMap<(usize, usize), cells::Permitted>>,
    /// Flow outcomes of the asserts, proved with each agent's built-in flow properties.
    pub flows: RefCell<HashMap<(usize, flow::FlowProp), flow::FlowOutcome>>,
    /// Stores that may carry data across key values (`flow::stores`), computed once.
    pub stores: RefCell<Option<Rc<flow::Mixed>>>,
    /// The solver `flow::stores` asks its questions of.
    pub stores_solver: Rc<z3::Solver>,
}

/// Whether an assert or an exemption (on `tool`, or on any tool) tests sets, patterns
/// or lists.
pub(crate) fn source_tests_texts_on(model: &Model, tool: Option<usize>) -> bool {
    let on = |t: usize| tool.is_none_or(|x| x == t);
    let mut conds: Vec<&agentpolicy::model::Cond> = model
        .agents
        .iter()
        .flat_map(|a| a.autonomy.iter())
        .filter(|x| on(x.tool.index()))
        .map(|x| &x.condition)
        .collect();
    conds.extend(model.asserts.iter().filter_map(|a| match a {
        agentpolicy::model::AssertDef::NeverCalls {
            condition: Some(c),
            target,
            ..
        } if match target {
            agentpolicy::model::RuleTarget::Tool(t) => on(t.index()),
            agentpolicy::model::RuleTarget::All => true,
        } =>
        {
            Some(c)
        }
        _ => None,
    }));
    let mut found = false;
    for c in conds {
        c.visit(&mut |c| {
            found |= matches!(
                c,
                agentpolicy::model::Cond::InSet { .. }
                    | agentpolicy::model::Cond::Matches { .. }
                    | agentpolicy::model::Cond::Quantified { .. }
            )
        });
    }
    found
}

impl<'a> Ctx<'a> {
    /// The text tests of a tool of the table.
    pub fn tests(&self, tool: usize) -> encode::TextTests<'_> {
        encode::TextTests {
            data: self.data,
            tool,
            texts: &self.texts,
        }
    }

    /// `None` when the table's ids do not line up with the model's (codegen keeps model
    /// order, and everything here relies on it).
    fn new(model: &'a Model, table: &'a DecisionTable, config: &Config) -> Option<Ctx<'a>> {
        let data = table.data();
        let same = data.tiers.len() == model.tiers.len()
            && data
                .tiers
                .iter()
                .zip(&model.tiers)
                .all(|(a, b)| *a == b.name)
            && data
                .keys
                .iter()
                .map(String::as_str)
                .eq(model.keys.iter().map(|k| k.name.as_str()))
            && data
                .resources
                .iter()
                .map(|r| &r.name)
                .eq(model.resources.iter().map(|r| &r.name))
            && data
                .sinks
                .iter()
                .map(|s| &s.name)
                .eq(model.sinks.iter().map(|s| &s.name))
            && data
                .tools
                .iter()
                .map(|t| &t.name)
                .eq(model.tools.iter().map(|t| &t.name))
            && data
                .agents
                .iter()
                .map(|a| &a.name)
                .eq(model.agents.iter().map(|a| &a.name))
            && data.rules.len() == model.rules.len();
        let strings = !data.text_tests.is_empty()
            || !data.sets.is_empty()
            || source_tests_texts_on(model, None);
        same.then(|| Ctx {
            model,
            table,
            data,
            texts: encode::TextDomain::new(data, model),
            strings,
            solvers: RefCell::new(HashMap::new()),
            shared: Rc::new(solver::solver(config.budget)),
            shared_strings: Rc::new(solver::solver_for(config.budget, true)),
            permitted: RefCell::new(HashMap::new()),
            flows: RefCell::new(HashMap::new()),
            stores: RefCell::new(None),
            stores_solver: Rc::new(solver::solver(config.budget)),
        })
    }
}

#[cfg(test)]
mod subject_tests {
    use super::{Subject, VerdictKind};

    /// Verdicts are attributed from data, and read as the CLI has always printed them.
    #[test]
    fn subjects_name_their_agent_and_tool() {
        let cell = Subject::Cell {
            agent: "intake".into(),
            tool: "wire_funds".into(),
        };
        assert_eq!(cell.to_string(), "intake calls wire_funds");
        assert_eq!(
            (cell.agent(), cell.tool()),
            (Some("intake"), Some("wire_funds"))
        );
        let star = Subject::Rule {
            id: "intake/escalate/*#1".into(),
            agent: "intake".into(),
            tool: None,
        };
        assert_eq!(star.to_string(), "rule intake/escalate/*#1");
        assert_eq!((star.agent(), star.tool()), (Some("intake"), None));
        let assert = Subject::Assert {
            text: "never intake calls wire_funds".into(),
            loc: agentpolicy::model::Loc {
                file: agentpolicy::diagnostics::FileId(0),
                range: agentpolicy::syntax::ast::TextRange::new(0, 0),
            },
        };
        assert_eq!((assert.agent(), assert.tool()), (None, None));
        assert_eq!(Subject::Table.to_string(), "decision table");
        let agent = Subject::Agent {
            agent: "intake".into(),
        };
        assert_eq!(agent.to_string(), "agent intake");
    }

    #[test]
    fn verdict_kinds_order_from_best_to_worst() {
        let mut kinds = VerdictKind::ALL.to_vec();
        kinds.reverse();
        kinds.sort();
        assert_eq!(kinds, VerdictKind::ALL);
        assert!(VerdictKind::Proved < VerdictKind::Unknown);
    }
}
