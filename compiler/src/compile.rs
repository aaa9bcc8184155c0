//! The compiler's façade: a policy's files in, its analysis, diagnostics and decision
//! table out. What the CLI, the language server's builds, the benchmark and any embedder
//! (a service, a Python package) call, so they all compile a policy the same way.

use std::sync::Arc;

use agentpolicy_runtime::DecisionTable;

use crate::db::{Analysis, Database};
use crate::diagnostics::{Diagnostic, FileId};
use crate::files;
use crate::render::Sources;

/// A policy compiled from its files.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The resolved model and the analysis diagnostics.
    pub analysis: Arc<Analysis>,
    /// Diagnostics about the files themselves (encoding), found before analysis.
    pub file_diagnostics: Vec<Diagnostic>,
    /// Every file's path and text, the policy's first, then the standard library's, for
    /// rendering diagnostics; `FileId(i)` is the `i`th.
    pub sources: Sources,
}

impl Compiled {
    /// Every diagnostic: the files' own, then the analysis'.
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        let mut all = self.file_diagnostics.clone();
        all.extend(self.analysis.diagnostics.iter().cloned());
        all
    }

    /// Any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.diagnostics().iter().any(Diagnostic::is_error)
    }

    /// The decision table, or the diagnostics of what the table format cannot hold.
    /// Call it on a policy without errors.
    pub fn table(&self) -> Result<DecisionTable, Vec<Diagnostic>> {
        crate::codegen::build_table(&self.analysis.model, self.sources.files())
    }
}

/// Compiles the policy made of `files`, each a path (as it should appear in
/// diagnostics and the table) and the file's bytes, in the order [`files`] gives (sorted
/// by path). Bytes that are not UTF-8 are analysed up to the first bad byte, with an
/// AP0004 diagnostic there instead of what follows from the truncation.
pub fn compile(files: Vec<(String, Vec<u8>)>) -> Compiled {
    let mut texts = Vec::with_capacity(files.len());
    let mut file_diagnostics = Vec::new();
    for (i, (path, bytes)) in files.into_iter().enumerate() {
        let (text, diagnostic) = files::decode(bytes, FileId(i as u32));
        texts.push((path, text));
        file_diagnostics.extend(diagnostic);
    }
    let mut db = Database::default();
    let loaded = db.load(texts);
    let analysis = db.analysis(loaded);
    let mut source_list = Vec::new();
    let mut id = 0u32;
    while let Some((p, t)) = db.file(loaded, FileId(id)) {
        source_list.push((p.to_string(), t.to_string()));
        id += 1;
    }
    let analysis = if file_diagnostics.is_empty() {
        analysis
    } else {
        let bad: Vec<FileId> = file_diagnostics.iter().map(|d| d.primary.file).collect();
        let mut a = (*analysis).clone();
        a.diagnostics.retain(|d| !bad.contains(&d.primary.file));
        Arc::new(a)
    };
    Compiled {
        analysis,
        file_diagnostics,
        sources: Sources::new(source_list),
    }
}
