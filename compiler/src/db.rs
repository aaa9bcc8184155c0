//! The salsa database shared by the CLI and the language server.
//!
//! Inputs are file texts; queries are `parse_file` (per file) and `analyze` (the whole
//! policy). An edit to one file re-parses only that file; analysis re-runs from the
//! cached trees. The standard library is always part of the workspace (its files follow
//! the user's), and is parsed only when some file `use`s it.

use std::sync::Arc;

use crate::diagnostics::{Diagnostic, FileId};
use crate::model::Model;
use crate::sema;
use crate::stdlib;
use crate::syntax::{self, Parsed};

#[salsa::input(debug)]
pub struct SourceText {
    pub id: FileId,
    #[returns(ref)]
    pub path: String,
    #[returns(ref)]
    pub text: String,
    /// `Some("std.legal")` for a standard-library module.
    #[returns(ref)]
    pub module: Option<String>,
}

#[salsa::input(debug)]
pub struct Workspace {
    #[returns(ref)]
    pub files: Vec<SourceText>,
}

/// The analysis of a whole policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Analysis {
    pub model: Arc<Model>,
    /// Syntax diagnostics of every included file, then semantic ones.
    pub diagnostics: Vec<Diagnostic>,
}

impl Analysis {
    pub fn has_errors(&self) -> bool {
        self.diagnostics.iter().any(|d| d.is_error())
    }
}

#[salsa::tracked(returns(ref))]
pub fn parse_file(db: &dyn salsa::Database, file: SourceText) -> Arc<Parsed> {
    Arc::new(syntax::parse(*file.id(db), file.text(db)))
}

#[salsa::tracked(returns(ref))]
pub fn analyze(db: &dyn salsa::Database, workspace: Workspace) -> Arc<Analysis> {
    let files = workspace.files(db);
    // Which stdlib modules are reachable is decided by sema; parse them lazily by
    // handing sema every user file and only the modules some parsed file names.
    let mut parsed: Vec<(SourceText, &Arc<Parsed>)> = Vec::new();
    let mut wanted: Vec<String> = Vec::new();
    for file in files.iter().filter(|f| f.module(db).is_none()) {
        let p = parse_file(db, *file);
        collect_uses(&p.tree, &mut wanted);
        parsed.push((*file, p));
    }
    let mut i = 0;
    while i < wanted.len() {
        let name = wanted[i].clone();
        i += 1;
        if let Some(module) = files
            .iter()
            .find(|f| f.module(db).as_deref() == Some(name.as_str()))
            && !parsed.iter().any(|(f, _)| f == module)
        {
            let p = parse_file(db, *module);
            collect_uses(&p.tree, &mut wanted);
            parsed.push((*module, p));
        }
    }
    let mut diagnostics: Vec<Diagnostic> = Vec::new();
    for (_, p) in &parsed {
        diagnostics.extend(p.diagnostics.iter().cloned());
    }
    // Modules nobody uses still count as known names for `use` suggestions.
    let unused: Vec<(FileId, String)> = files
        .iter()
        .filter(|f| !parsed.iter().any(|(p, _)| p == *f))
        .filter_map(|f| f.module(db).clone().map(|m| (*f.id(db), m)))
        .collect();
    let empty = syntax::ast::SourceFile::default();
    let mut inputs: Vec<sema::FileInput<'_>> = parsed
        .iter()
        .map(|(f, p)| sema::FileInput {
            id: *f.id(db),
            tree: &p.tree,
            module: f.module(db).as_deref(),
            has_syntax_errors: !p.diagnostics.is_empty(),
        })
        .collect();
    inputs.extend(unused.iter().map(|(id, m)| sema::FileInput {
        id: *id,
        tree: &empty,
        module: Some(m.as_str()),
        has_syntax_errors: false,
    }));
    let (model, semantic) = sema::analyze(&inputs);
    diagnostics.extend(semantic);
    Arc::new(Analysis {
        model: Arc::new(model),
        diagnostics,
    })
}

fn collect_uses(tree: &syntax::ast::SourceFile, out: &mut Vec<String>) {
    for item in &tree.items {
        if let syntax::ast::ItemKind::Use(u) = &item.kind {
            let path = u
                .path
                .iter()
                .map(|n| n.text.as_str())
                .collect::<Vec<_>>()
                .join(".");
            if !out.contains(&path) {
                out.push(path);
            }
        }
    }
}

/// The database: the workspace's files and salsa's memo tables.
#[salsa::db]
#[derive(Clone, Default)]
pub struct Database {
    storage: salsa::Storage<Self>,
}

#[salsa::db]
impl salsa::Database for Database {}

impl std::fmt::Debug for Database {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Database")
    }
}

/// A policy loaded into a database: the user's files (ids `0..n`) then the stdlib.
#[derive(Debug, Clone, Copy)]
pub struct Loaded {
    pub workspace: Workspace,
}

impl Database {
    /// Creates the workspace input from the user's `(path, text)` files.
    pub fn load(&mut self, files: Vec<(String, String)>) -> Loaded {
        let mut inputs = Vec::with_capacity(files.len() + stdlib::MODULES.len());
        for (i, (path, text)) in files.into_iter().enumerate() {
            inputs.push(SourceText::new(self, FileId(i as u32), path, text, None));
        }
        let base = inputs.len() as u32;
        for (i, m) in stdlib::MODULES.iter().enumerate() {
            inputs.push(SourceText::new(
                self,
                FileId(base + i as u32),
                m.path.to_string(),
                m.text.to_string(),
                Some(m.name.to_string()),
            ));
        }
        Loaded {
            workspace: Workspace::new(self, inputs),
        }
    }

    pub fn analysis(&self, loaded: Loaded) -> Arc<Analysis> {
        analyze(self, loaded.workspace).clone()
    }

    /// `(path, text)` of a file, for rendering diagnostics.
    pub fn file(&self, loaded: Loaded, id: FileId) -> Option<(&str, &str)> {
        let file = loaded.workspace.files(self).get(id.0 as usize)?;
        Some((file.path(self).as_str(), file.text(self).as_str()))
    }

    /// The user's files (not the stdlib), as `(path, text)`.
    pub fn user_sources(&self, loaded: Loaded) -> Vec<(String, String)> {
        loaded
            .workspace
            .files(self)
            .iter()
            .filter(|f| f.module(self).is_none())
            .map(|f| (f.path(self).clone(), f.text(self).clone()))
            .collect()
    }
}
