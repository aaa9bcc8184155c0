//! The policy's one namespace: every top-level name, what kind of thing it is, and where
//! it was declared. Also "did you mean" suggestions for unknown names.
//!
//! User declarations shadow standard-library declarations of the same name and kind
//! (like a prelude); the same name for two different kinds is a duplicate.

use std::collections::{HashMap, HashSet};

use crate::diagnostics::{Code, Diagnostic, Label};
use crate::model::Loc;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NameKind {
    Tier,
    Key,
    Resource,
    Sink,
    Tool,
    Threshold,
    Route,
    Agent,
    Set,
}

impl NameKind {
    pub fn article(self) -> &'static str {
        match self {
            NameKind::Tier => "a tier",
            NameKind::Key => "an isolation key",
            NameKind::Resource => "a resource",
            NameKind::Sink => "a sink",
            NameKind::Tool => "a tool",
            NameKind::Threshold => "a threshold",
            NameKind::Route => "an escalation route",
            NameKind::Agent => "an agent",
            NameKind::Set => "a set",
        }
    }

    /// The declaration that introduces a name of this kind, for help texts.
    pub fn declared_by(self) -> &'static str {
        match self {
            NameKind::Tier => "tiers LOW < ... < HIGH",
            NameKind::Key => "isolate KEY",
            NameKind::Resource => "resource NAME { tier T }",
            NameKind::Sink => "sink NAME { clearance T }",
            NameKind::Tool => "tool NAME(...) { effect ... }",
            NameKind::Threshold => "threshold NAME = VALUE",
            NameKind::Route => "escalation NAME { notify \"...\" timeout 15m then deny }",
            NameKind::Agent => "agent NAME { ... }",
            NameKind::Set => "set NAME = [\"a\", \"b\"]",
        }
    }
}

#[derive(Debug, Clone, Copy)]
pub struct Entry {
    pub kind: NameKind,
    /// Index into the model vector of that kind (tiers get theirs after ordering).
    pub index: u32,
    pub loc: Loc,
    pub from_stdlib: bool,
}

#[derive(Debug, Default)]
pub struct Namespace {
    entries: HashMap<String, Entry>,
    /// Names whose declarations did not parse (their AP0001 is reported): a reference to
    /// one is not reported again as undeclared.
    unparsed: HashSet<String>,
}

pub enum Declared {
    /// Newly declared (or a stdlib declaration replaced): use this index.
    New,
    /// The same name and kind already declared where redeclaration merges (tiers, keys).
    Existing,
    /// A user declaration replaced a stdlib one of the same kind: reuse its index.
    Shadowed(Entry),
}

impl Namespace {
    pub fn get(&self, name: &str) -> Option<&Entry> {
        self.entries.get(name)
    }

    /// Declares `name`. Returns `Err` with a duplicate-definition diagnostic when the name
    /// is taken, unless the kind `merges` (tiers and isolation keys may be stated again)
    /// or a user declaration shadows a stdlib one of the same kind.
    pub fn declare(
        &mut self,
        name: &str,
        entry: Entry,
        merges: bool,
    ) -> Result<Declared, Box<Diagnostic>> {
        match self.entries.get(name).copied() {
            None => {
                self.entries.insert(name.to_string(), entry);
                Ok(Declared::New)
            }
            Some(existing) if existing.kind == entry.kind && merges => Ok(Declared::Existing),
            Some(existing)
                if existing.kind == entry.kind && existing.from_stdlib && !entry.from_stdlib =>
            {
                let shadowing = Entry {
                    index: existing.index,
                    ..entry
                };
                self.entries.insert(name.to_string(), shadowing);
                Ok(Declared::Shadowed(existing))
            }
            Some(existing) => {
                let what = if existing.kind == entry.kind {
                    format!(
                        "{} `{name}` is declared twice",
                        capitalize(entry.kind.article())
                    )
                } else {
                    format!(
                        "`{name}` is declared as {} and as {}",
                        existing.kind.article(),
                        entry.kind.article()
                    )
                };
                Err(Box::new(
                    Diagnostic::new(
                        Code::DuplicateDefinition,
                        what,
                        Label::new(entry.loc.file, entry.loc.range, "declared again here"),
                    )
                    .with_secondary(Label::new(
                        existing.loc.file,
                        existing.loc.range,
                        "first declared here",
                    ))
                    .with_help("rename one of them, or delete the repeated declaration"),
                ))
            }
        }
    }

    /// Names of the given kinds, for suggestions and completion.
    pub fn names_of<'a>(&'a self, kinds: &'a [NameKind]) -> impl Iterator<Item = &'a str> + 'a {
        self.entries
            .iter()
            .filter(move |(_, e)| kinds.contains(&e.kind))
            .map(|(n, _)| n.as_str())
    }

    /// Records a name whose declaration had a syntax error and was dropped.
    pub fn mark_unparsed(&mut self, name: &str) {
        self.unparsed.insert(name.to_string());
    }

    /// Looks `name` up expecting one of `kinds`; on failure a diagnostic with a
    /// suggestion (AP0011) or saying what the name is instead (AP0013), or `None` when
    /// the name's declaration failed to parse (its syntax error says all there is to say).
    pub fn resolve(
        &self,
        name: &crate::syntax::ast::Name,
        file: crate::diagnostics::FileId,
        kinds: &[NameKind],
    ) -> Result<Entry, Option<Box<Diagnostic>>> {
        let expected = kinds
            .iter()
            .map(|k| k.article())
            .collect::<Vec<_>>()
            .join(" or ");
        match self.entries.get(&name.text) {
            Some(entry) if kinds.contains(&entry.kind) => Ok(*entry),
            None if self.unparsed.contains(&name.text) => Err(None),
            Some(entry) => Err(Some(Box::new(
                Diagnostic::new(
                    Code::WrongKindOfName,
                    format!(
                        "`{}` is {}, but {expected} is expected here",
                        name.text,
                        entry.kind.article()
                    ),
                    Label::new(file, name.range, format!("expected {expected}")),
                )
                .with_secondary(Label::new(
                    entry.loc.file,
                    entry.loc.range,
                    format!("`{}` is declared here", name.text),
                ))
                .with_help(suggestion_help(self, &name.text, kinds)),
            ))),
            None => Err(Some(Box::new(
                Diagnostic::new(
                    Code::UnknownReference,
                    format!("unknown {}: `{}`", strip_article(&expected), name.text),
                    Label::new(file, name.range, "not declared anywhere in the policy"),
                )
                .with_help(suggestion_help(self, &name.text, kinds)),
            ))),
        }
    }
}

fn suggestion_help(ns: &Namespace, name: &str, kinds: &[NameKind]) -> String {
    let candidates: Vec<&str> = ns.names_of(kinds).collect();
    match did_you_mean(name, candidates.iter().copied()) {
        Some(s) => format!("did you mean `{s}`?"),
        None => match kinds.first() {
            Some(kind) => format!(
                "declare it with `{}`, or check the spelling",
                kind.declared_by()
            ),
            None => "check the spelling".to_string(),
        },
    }
}

/// The closest candidate by edit distance, if it is close enough to be a likely typo.
pub fn did_you_mean<'a>(name: &str, candidates: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let mut best: Option<(f64, &str)> = None;
    for c in candidates {
        let score = strsim::jaro_winkler(name, c);
        if score > 0.8 && best.is_none_or(|(s, b)| score > s || (score == s && c < b)) {
            best = Some((score, c));
        }
    }
    best.map(|(_, c)| c)
}

fn strip_article(text: &str) -> String {
    text.replace("an ", "").replace("a ", "")
}

fn capitalize(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(c) => c.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}
