//! Semantic analysis: syntax trees in, the resolved `Model` plus diagnostics out.
//!
//! It binds every name (one namespace, user declarations shadowing the standard library),
//! orders the tiers, types conditions, resolves policy tests, and reports the front-end
//! checks: duplicates, unknown names, tier order, types, missing routes / timeouts /
//! owners / expiries, and the like. Pure: no IO, no solver.

mod agents;
mod asserts;
mod cond;
mod declarations;
mod diagnostics;
mod lifecycle;
mod names;
mod policy_tests;
mod retention;
mod tiers;

use crate::diagnostics::{Code, Diagnostic, FileId, Label};
use crate::model::*;
use crate::syntax::ast::{self, ItemKind, TextRange, TypeName};

pub use cond::literal_value;
pub use names::did_you_mean;
use names::{NameKind, Namespace};

/// Most parameters a tool may declare: the decision table keeps a request's arguments in
/// a fixed-size array so `decide` never allocates.
pub const MAX_TOOL_PARAMS: usize = 16;

/// One parsed file handed to analysis.
#[derive(Debug, Clone, Copy)]
pub struct FileInput<'a> {
    pub id: FileId,
    pub tree: &'a ast::SourceFile,
    /// `Some("std.legal")` for a standard-library module, which is included only when
    /// some included file `use`s it.
    pub module: Option<&'a str>,
    /// Whether the file had syntax errors (an empty tree then is not "empty policy").
    pub has_syntax_errors: bool,
}

/// Analyses the user files plus whichever standard-library modules they use.
pub fn analyze(files: &[FileInput<'_>]) -> (Model, Vec<Diagnostic>) {
    let mut diagnostics = Vec::new();
    let included = include_modules(files, &mut diagnostics);
    let mut resolver = Resolver {
        model: Model::default(),
        ns: Namespace::default(),
        diagnostics,
    };
    resolver.run(&included);
    (resolver.model, resolver.diagnostics)
}

/// The user files, then every stdlib module reached through `use`, transitively.
fn include_modules<'a>(
    files: &[FileInput<'a>],
    diagnostics: &mut Vec<Diagnostic>,
) -> Vec<FileInput<'a>> {
    let mut included: Vec<FileInput<'a>> = files
        .iter()
        .filter(|f| f.module.is_none())
        .copied()
        .collect();
    let modules: Vec<&str> = files.iter().filter_map(|f| f.module).collect();
    let mut i = 0;
    while i < included.len() {
        let file = included[i];
        i += 1;
        for item in &file.tree.items {
            let ItemKind::Use(use_decl) = &item.kind else {
                continue;
            };
            let path = use_decl
                .path
                .iter()
                .map(|n| n.text.as_str())
                .collect::<Vec<_>>()
                .join(".");
            match files.iter().find(|f| f.module == Some(path.as_str())) {
                Some(module) => {
                    if !included.iter().any(|f| f.id == module.id) {
                        included.push(*module);
                    }
                }
                None => {
                    let help = match did_you_mean(&path, modules.iter().copied()) {
                        Some(s) => format!("did you mean `{s}`?"),
                        None => format!(
                            "the standard library has: {}; to split your own policy over several files, put them in one directory and check the directory",
                            modules.join(", ")
                        ),
                    };
                    diagnostics.push(
                        Diagnostic::new(
                            Code::UnknownModule,
                            format!("there is no module `{path}`"),
                            Label::new(file.id, use_decl.range, "unknown module"),
                        )
                        .with_help(help),
                    );
                }
            }
        }
    }
    included
}

struct Resolver {
    model: Model,
    ns: Namespace,
    diagnostics: Vec<Diagnostic>,
}

fn loc(file: FileId, range: TextRange) -> Loc {
    Loc { file, range }
}

impl Resolver {
    fn report(&mut self, d: impl Into<Box<Diagnostic>>) {
        self.diagnostics.push(*d.into());
    }

    fn run(&mut self, files: &[FileInput<'_>]) {
        // Standard-library files first, so user declarations shadow them.
        let mut ordered: Vec<FileInput<'_>> = files
            .iter()
            .filter(|f| f.module.is_some())
            .copied()
            .collect();
        ordered.extend(files.iter().filter(|f| f.module.is_none()).copied());

        for file in &ordered {
            for broken in file.tree.broken.iter().filter(|b| !b.recovered) {
                if let Some(name) = &broken.name {
                    self.ns.mark_unparsed(&name.text);
                }
            }
        }
        self.check_headers_and_empty(&ordered);
        self.declare_tiers(&ordered);
        self.declare_simple(&ordered);
        self.resolve_declarations(&ordered);
        self.resolve_agents(&ordered);
        self.resolve_asserts(&ordered);
        self.resolve_retention(&ordered);
        let tests =
            policy_tests::resolve_tests(&ordered, &self.model, &self.ns, &mut self.diagnostics);
        self.model.tests = tests;
        self.check_routes();
        self.drop_missing_clause_reports_in_broken_items(&ordered);
    }

    /// A clause reported missing from an item with a syntax error may be the clause that
    /// failed to parse (`timeout 4 hours then deny` left out of a route is no "route
    /// without a timeout"): the syntax error is the one report.
    fn drop_missing_clause_reports_in_broken_items(&mut self, files: &[FileInput<'_>]) {
        let broken: Vec<(FileId, TextRange)> = files
            .iter()
            .flat_map(|f| f.tree.broken.iter().map(|b| (f.id, b.range)))
            .collect();
        if broken.is_empty() {
            return;
        }
        self.diagnostics.retain(|d| {
            let missing_clause = matches!(
                d.code,
                Code::MissingMember
                    | Code::RouteWithoutTimeout
                    | Code::AgentWithoutOwner
                    | Code::UngrantedDeny
                    | Code::StageRoute
                    | Code::PromotionWindow
            );
            !(missing_clause
                && broken.iter().any(|(file, range)| {
                    d.primary.file == *file
                        && range.start <= d.primary.range.start
                        && d.primary.range.end <= range.end
                }))
        });
    }

    fn resolve(&mut self, name: &ast::Name, file: FileId, kinds: &[NameKind]) -> Option<u32> {
        match self.ns.resolve(name, file, kinds) {
            Ok(e) => Some(e.index),
            Err(d) => {
                if let Some(d) = d {
                    self.report(d);
                }
                None
            }
        }
    }

    /// Types a `when` condition for `target`; `Err` when it has errors (reported).
    fn condition(
        &mut self,
        expr: &ast::Expr,
        target: RuleTarget,
        file: FileId,
    ) -> Result<Cond, ()> {
        let tool = match target {
            RuleTarget::Tool(t) => Some(&self.model.tools[t.index()]),
            RuleTarget::All => None,
        };
        let scope = cond::Scope {
            tool,
            all_tools: &self.model.tools,
            namespace: &self.ns,
            thresholds: &self.model.thresholds,
            sets: &self.model.sets,
            file,
        };
        let mut diags = Vec::new();
        let typed = cond::type_condition(expr, &scope, &mut diags);
        let failed = diags.iter().any(|d| d.is_error());
        self.diagnostics.extend(diags);
        match typed {
            Some(c) if !failed => Ok(c),
            _ => Err(()),
        }
    }
}

/// The types a literal can be checked against, for tests.
pub fn literal_type(value: &ast::LiteralValue) -> TypeName {
    match value {
        ast::LiteralValue::Money(_) => TypeName::Money,
        ast::LiteralValue::Number(_) => TypeName::Number,
        ast::LiteralValue::Percent(_) => TypeName::Percent,
        ast::LiteralValue::Duration(_) => TypeName::Duration,
        ast::LiteralValue::Text(_) => TypeName::Text,
        ast::LiteralValue::Bool(_) => TypeName::Bool,
        ast::LiteralValue::TextList(_) => TypeName::TextList,
    }
}
