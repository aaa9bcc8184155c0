//! Every name written in the policy, what it refers to, and whether it declares it.
//!
//! Built from the syntax trees and the resolved model: the tree says where a name stands
//! (a rule's target is a tool, `to X` is a route), the model says what a `when` operand
//! is (an argument of the rule's tool, `confidence`, or a threshold). Hover, definition,
//! references, rename and semantic tokens all read this one index. Names that resolve to
//! nothing are left out: the diagnostics already speak of them.

use std::collections::HashMap;

use agentpolicy::diagnostics::FileId;
use agentpolicy::model::Model;
use agentpolicy::syntax::ast::{
    self, AgentMemberKind, AssertDecl, ElementTest, ExpectKind, Expr, ExprKind, InTarget, ItemKind,
    Name, Operand, SourceFile, Target, TextRange,
};

/// What kind of thing a name is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SymbolKind {
    Policy,
    Module,
    Tier,
    Key,
    Resource,
    Sink,
    Tool,
    /// A tool parameter; `Symbol::container` is the tool.
    Param,
    Threshold,
    Route,
    Agent,
    /// An agent's credential; `Symbol::container` is the agent.
    Credential,
    /// The confidence a caller reports: built in, declared nowhere.
    Confidence,
    /// A named set of texts.
    Set,
}

impl SymbolKind {
    /// "tool", "escalation route", ...: for messages.
    pub fn noun(self) -> &'static str {
        match self {
            SymbolKind::Policy => "policy",
            SymbolKind::Module => "module",
            SymbolKind::Tier => "tier",
            SymbolKind::Key => "isolation key",
            SymbolKind::Resource => "resource",
            SymbolKind::Sink => "sink",
            SymbolKind::Tool => "tool",
            SymbolKind::Param => "parameter",
            SymbolKind::Threshold => "threshold",
            SymbolKind::Route => "escalation route",
            SymbolKind::Agent => "agent",
            SymbolKind::Credential => "credential",
            SymbolKind::Confidence => "built-in value",
            SymbolKind::Set => "set",
        }
    }

    /// Kinds that share the policy's one top-level namespace.
    pub fn is_top_level(self) -> bool {
        matches!(
            self,
            SymbolKind::Tier
                | SymbolKind::Key
                | SymbolKind::Resource
                | SymbolKind::Sink
                | SymbolKind::Tool
                | SymbolKind::Threshold
                | SymbolKind::Route
                | SymbolKind::Agent
                | SymbolKind::Set
        )
    }
}

/// A named thing. Parameters and credentials are scoped by their tool or agent.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Symbol {
    pub kind: SymbolKind,
    pub name: String,
    pub container: Option<String>,
}

impl Symbol {
    fn top(kind: SymbolKind, name: &str) -> Self {
        Symbol {
            kind,
            name: name.to_string(),
            container: None,
        }
    }
}

/// One place a name is written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Occurrence {
    pub file: FileId,
    pub range: TextRange,
    pub symbol: Symbol,
    pub is_decl: bool,
}

/// All occurrences, per file, sorted by position.
#[derive(Debug, Default)]
pub struct Index {
    files: HashMap<FileId, Vec<Occurrence>>,
}

impl Index {
    /// The occurrence under `offset` (a cursor right after a name still counts).
    pub fn at(&self, file: FileId, offset: u32) -> Option<&Occurrence> {
        let list = self.files.get(&file)?;
        let i = list.partition_point(|o| o.range.end < offset);
        list.get(i).filter(|o| o.range.start <= offset)
    }

    pub fn in_file(&self, file: FileId) -> &[Occurrence] {
        self.files.get(&file).map(Vec::as_slice).unwrap_or(&[])
    }

    /// Every occurrence of `symbol`, in file-id then position order.
    pub fn references(&self, symbol: &Symbol) -> Vec<&Occurrence> {
        let mut files: Vec<&FileId> = self.files.keys().collect();
        files.sort();
        files
            .into_iter()
            .flat_map(|f| self.files[f].iter())
            .filter(|o| &o.symbol == symbol)
            .collect()
    }

    /// Declarations of `symbol` (several for tiers stated in more than one chain, or a
    /// user declaration shadowing a library one).
    pub fn declarations(&self, symbol: &Symbol) -> Vec<&Occurrence> {
        self.references(symbol)
            .into_iter()
            .filter(|o| o.is_decl)
            .collect()
    }
}

/// Builds the index of the given files against the model.
pub fn build(files: &[(FileId, &SourceFile)], model: &Model) -> Index {
    let mut index = Index::default();
    for (file, tree) in files {
        let mut walker = Walker {
            file: *file,
            model,
            out: Vec::new(),
        };
        walker.file(tree);
        let mut out = walker.out;
        out.sort_by_key(|o| (o.range.start, o.range.end));
        out.dedup_by(|a, b| a.range == b.range);
        index.files.insert(*file, out);
    }
    index
}

struct Walker<'a> {
    file: FileId,
    model: &'a Model,
    out: Vec<Occurrence>,
}

impl Walker<'_> {
    fn push(&mut self, range: TextRange, symbol: Symbol, is_decl: bool) {
        self.out.push(Occurrence {
            file: self.file,
            range,
            symbol,
            is_decl,
        });
    }

    fn decl(&mut self, kind: SymbolKind, name: &Name) {
        self.push(name.range, Symbol::top(kind, &name.text), true);
    }

    fn refer(&mut self, kind: SymbolKind, name: &Name) {
        self.push(name.range, Symbol::top(kind, &name.text), false);
    }

    fn target(&mut self, target: &Target) -> Option<String> {
        match target {
            Target::Tool(n) => {
                self.refer(SymbolKind::Tool, n);
                Some(n.text.clone())
            }
            Target::All(_) => None,
        }
    }

    fn file(&mut self, tree: &SourceFile) {
        for item in &tree.items {
            match &item.kind {
                ItemKind::Policy(p) => self.decl(SymbolKind::Policy, &p.name),
                ItemKind::Use(u) => {
                    if let (Some(first), Some(last)) = (u.path.first(), u.path.last()) {
                        let name = u
                            .path
                            .iter()
                            .map(|n| n.text.as_str())
                            .collect::<Vec<_>>()
                            .join(".");
                        self.push(
                            TextRange {
                                start: first.range.start,
                                end: last.range.end,
                            },
                            Symbol::top(SymbolKind::Module, &name),
                            false,
                        );
                    }
                }
                ItemKind::Tiers(t) => {
                    for n in &t.tiers {
                        self.decl(SymbolKind::Tier, n);
                    }
                }
                ItemKind::Isolate(n) => self.decl(SymbolKind::Key, n),
                ItemKind::Retain(r) => {
                    if let Some(tier) = &r.tier {
                        self.refer(SymbolKind::Tier, tier);
                    }
                }
                ItemKind::Resource(r) => {
                    self.decl(SymbolKind::Resource, &r.name);
                    r.tier.iter().for_each(|n| self.refer(SymbolKind::Tier, n));
                    r.keyed.iter().for_each(|n| self.refer(SymbolKind::Key, n));
                    r.store.iter().for_each(|n| self.refer(SymbolKind::Sink, n));
                }
                ItemKind::Sink(s) => {
                    self.decl(SymbolKind::Sink, &s.name);
                    s.clearance
                        .iter()
                        .for_each(|n| self.refer(SymbolKind::Tier, n));
                    s.keyed.iter().for_each(|n| self.refer(SymbolKind::Key, n));
                }
                ItemKind::Tool(t) => {
                    self.decl(SymbolKind::Tool, &t.name);
                    for p in &t.params {
                        self.push(p.name.range, param(&t.name.text, &p.name.text), true);
                    }
                    t.reads
                        .iter()
                        .for_each(|n| self.refer(SymbolKind::Resource, n));
                    t.writes
                        .iter()
                        .for_each(|n| self.refer(SymbolKind::Sink, n));
                }
                ItemKind::Threshold(t) => self.decl(SymbolKind::Threshold, &t.name),
                ItemKind::Set(d) => self.decl(SymbolKind::Set, &d.name),
                ItemKind::Escalation(e) => self.decl(SymbolKind::Route, &e.name),
                ItemKind::Agent(a) => self.agent(a),
                ItemKind::Assert(a) => match a {
                    AssertDecl::NeverCalls {
                        agent,
                        target,
                        condition,
                    } => {
                        self.refer(SymbolKind::Agent, agent);
                        let tool = self.target(target);
                        if let Some(c) = condition {
                            self.condition(c, tool.as_deref());
                        }
                    }
                    AssertDecl::EveryIrreversibleEscalates
                    | AssertDecl::TaintedIrreversibleEscalates => {}
                    AssertDecl::NeverReads { agent, tier } => {
                        self.refer(SymbolKind::Agent, agent);
                        self.refer(SymbolKind::Tier, tier);
                    }
                    AssertDecl::NoFlow { tier, sink } => {
                        self.refer(SymbolKind::Tier, tier);
                        self.refer(SymbolKind::Sink, sink);
                    }
                },
                ItemKind::Test(t) => {
                    for step in &t.steps {
                        self.refer(SymbolKind::Agent, &step.agent);
                        self.refer(SymbolKind::Tool, &step.tool);
                        for arg in &step.args {
                            self.push(
                                arg.name.range,
                                param(&step.tool.text, &arg.name.text),
                                false,
                            );
                        }
                        if let Some(on) = &step.on {
                            self.refer(SymbolKind::Resource, &on.resource);
                            for key in &on.keys {
                                self.refer(SymbolKind::Key, &key.name);
                            }
                        }
                        if let Some(into) = &step.into {
                            self.refer(SymbolKind::Sink, &into.resource);
                            for key in &into.keys {
                                self.refer(SymbolKind::Key, &key.name);
                            }
                        }
                    }
                    if let ExpectKind::Escalate(routes) = &t.expect.kind {
                        routes.iter().for_each(|n| self.refer(SymbolKind::Route, n));
                    }
                }
            }
        }
    }

    fn agent(&mut self, a: &ast::AgentDecl) {
        self.decl(SymbolKind::Agent, &a.name);
        for member in &a.members {
            match &member.kind {
                AgentMemberKind::MaxTier(t) => self.refer(SymbolKind::Tier, t),
                AgentMemberKind::Rule(r) => {
                    let tool = self.target(&r.target);
                    if let Some(route) = &r.route {
                        self.refer(SymbolKind::Route, route);
                    }
                    if let Some(c) = &r.condition {
                        self.condition(c, tool.as_deref());
                    }
                }
                AgentMemberKind::Autonomy(au) => {
                    self.refer(SymbolKind::Tool, &au.tool);
                    self.condition(&au.condition, Some(&au.tool.text));
                }
                AgentMemberKind::Credential(c) => self.push(
                    c.name.range,
                    Symbol {
                        kind: SymbolKind::Credential,
                        name: c.name.text.clone(),
                        container: Some(a.name.text.clone()),
                    },
                    true,
                ),
                AgentMemberKind::Stage(st) => {
                    if let Some(route) = &st.route {
                        self.refer(SymbolKind::Route, route);
                    }
                }
                AgentMemberKind::Owner(_)
                | AgentMemberKind::Promote(_)
                | AgentMemberKind::Purpose(_)
                | AgentMemberKind::Limit(_)
                | AgentMemberKind::Breaker(_)
                | AgentMemberKind::Mode(_) => {}
            }
        }
    }

    fn condition(&mut self, expr: &Expr, tool: Option<&str>) {
        match &expr.kind {
            ExprKind::Or(parts) | ExprKind::And(parts) => {
                parts.iter().for_each(|p| self.condition(p, tool));
            }
            ExprKind::Not(inner) => self.condition(inner, tool),
            ExprKind::Compare { left, right, .. } => {
                self.operand(left, tool);
                self.operand(right, tool);
            }
            ExprKind::Truthy(o) | ExprKind::FromUntrusted(o) => self.operand(o, tool),
            ExprKind::In {
                operand, target, ..
            } => {
                self.operand(operand, tool);
                if let InTarget::Set(set) = target {
                    self.refer(SymbolKind::Set, set);
                }
            }
            ExprKind::Matches { operand, .. } => self.operand(operand, tool),
            ExprKind::Quantified { list, test, .. } => {
                self.operand(&Operand::Name(list.clone()), tool);
                match test {
                    ElementTest::In { set, .. } => self.refer(SymbolKind::Set, set),
                    ElementTest::Compare { value, .. } => self.operand(value, tool),
                    ElementTest::Matches { .. } => {}
                }
            }
            ExprKind::Presence { arg, .. } => self.operand(&Operand::Name(arg.clone()), tool),
            ExprKind::HasEffect(..) => {}
        }
    }

    /// The same order of lookup as the compiler's: the tool's argument, `confidence`,
    /// then a threshold.
    fn operand(&mut self, operand: &Operand, tool: Option<&str>) {
        let Operand::Name(name) = operand else {
            return;
        };
        if let Some(tool) = tool
            && let Some(id) = self.model.tool_by_name(tool)
            && self.model.tools[id.index()].param(&name.text).is_some()
        {
            self.push(name.range, param(tool, &name.text), false);
        } else if name.text == "confidence" {
            self.push(
                name.range,
                Symbol::top(SymbolKind::Confidence, "confidence"),
                false,
            );
        } else if self.model.thresholds.iter().any(|t| t.name == name.text) {
            self.refer(SymbolKind::Threshold, name);
        }
    }
}

fn param(tool: &str, name: &str) -> Symbol {
    Symbol {
        kind: SymbolKind::Param,
        name: name.to_string(),
        container: Some(tool.to_string()),
    }
}
