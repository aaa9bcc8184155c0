//! Reading a policy from disk: a PATH is a `.agentpolicy` file, or a directory whose
//! `.agentpolicy` files (recursively, sorted) form one policy. Bytes that are not UTF-8
//! become an AP0004 diagnostic at the first bad byte, not an IO error.

use std::path::{Path, PathBuf};

use agentpolicy::db::{Analysis, Database};
use agentpolicy::diagnostics::{Code, Diagnostic, FileId, Label};
use agentpolicy::render::Sources;
use agentpolicy::syntax::ast::TextRange;

/// A policy read from disk and analysed.
pub struct LoadedPolicy {
    pub analysis: std::sync::Arc<Analysis>,
    /// Diagnostics about the files themselves (encoding), before analysis.
    pub file_diagnostics: Vec<Diagnostic>,
    pub sources: Sources,
}

impl LoadedPolicy {
    pub fn diagnostics(&self) -> Vec<Diagnostic> {
        let mut all = self.file_diagnostics.clone();
        all.extend(self.analysis.diagnostics.iter().cloned());
        all
    }

    /// Builds the decision table, or returns the diagnostics that prevent it.
    pub fn build_table(&self) -> Result<agentpolicy_runtime::DecisionTable, Vec<Diagnostic>> {
        agentpolicy::codegen::build_table(&self.analysis.model, self.sources.files())
    }
}

/// The policy at `path` without errors, or the exit code after the reason was printed
/// (its diagnostics, then `error: PATH has errors` and `consequence`, such as "; no table
/// was written"). Warnings are left to the caller.
pub fn load_valid(path: &Path, consequence: &str) -> Result<LoadedPolicy, u8> {
    let policy = load(path).map_err(|e| {
        eprintln!("error: {e}");
        super::EXIT_USAGE
    })?;
    let diagnostics = policy.diagnostics();
    if diagnostics.iter().any(|d| d.is_error()) {
        eprint!(
            "{}",
            agentpolicy::render::human(&diagnostics, &policy.sources, super::output::use_color())
        );
        eprintln!("error: {} has errors{consequence}", path.display());
        return Err(super::EXIT_FAILURE);
    }
    Ok(policy)
}

/// [`load_valid`], then the decision table, or the exit code after the reason was printed.
pub fn load_and_build(
    path: &Path,
    consequence: &str,
) -> Result<(LoadedPolicy, agentpolicy_runtime::DecisionTable), u8> {
    let policy = load_valid(path, consequence)?;
    match policy.build_table() {
        Ok(table) => Ok((policy, table)),
        Err(diags) => {
            eprint!(
                "{}",
                agentpolicy::render::human(&diags, &policy.sources, super::output::use_color())
            );
            eprintln!(
                "error: {} cannot be compiled to a decision table{consequence}",
                path.display()
            );
            Err(super::EXIT_FAILURE)
        }
    }
}

/// Why a path could not be loaded at all (exit code 2).
#[derive(Debug)]
pub struct LoadError(pub String);

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// The `.agentpolicy` files of `path`, sorted.
pub fn policy_files(path: &Path) -> Result<Vec<PathBuf>, LoadError> {
    let meta = std::fs::metadata(path).map_err(|e| {
        LoadError(format!(
            "cannot read `{}`: {}",
            path.display(),
            describe_io(&e)
        ))
    })?;
    if meta.is_file() {
        return Ok(vec![path.to_path_buf()]);
    }
    let mut files = Vec::new();
    collect(path, &mut files)?;
    files.sort();
    if files.is_empty() {
        return Err(LoadError(format!(
            "`{}` contains no `.agentpolicy` files\nhelp: pass a policy file, or a directory that holds one",
            path.display()
        )));
    }
    Ok(files)
}

fn collect(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        LoadError(format!(
            "cannot list `{}`: {}",
            dir.display(),
            describe_io(&e)
        ))
    })?;
    for entry in entries {
        let entry = entry.map_err(|e| {
            LoadError(format!(
                "cannot list `{}`: {}",
                dir.display(),
                describe_io(&e)
            ))
        })?;
        let path = entry.path();
        let file_type = entry.file_type().map_err(|e| {
            LoadError(format!(
                "cannot read `{}`: {}",
                path.display(),
                describe_io(&e)
            ))
        })?;
        if file_type.is_dir() {
            // Broken variants and fixtures kept beside a policy are separate policies.
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with('.') || name == "broken" || name == "target" {
                continue;
            }
            collect(&path, out)?;
        } else if path.extension().and_then(|e| e.to_str()) == Some("agentpolicy") {
            out.push(path);
        }
    }
    Ok(())
}

/// A policy file's text. Bytes that are not UTF-8 give the valid prefix (so a snippet
/// can show the line) and an AP0004 diagnostic at the first bad byte.
pub fn read_text(file: &Path, id: FileId) -> Result<(String, Option<Diagnostic>), LoadError> {
    let bytes = std::fs::read(file).map_err(|e| {
        LoadError(format!(
            "cannot read `{}`: {}",
            file.display(),
            describe_io(&e)
        ))
    })?;
    match String::from_utf8(bytes) {
        Ok(text) => Ok((text, None)),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            let prefix = String::from_utf8_lossy(&e.into_bytes()[..valid]).into_owned();
            let diagnostic = Diagnostic::new(
                Code::InvalidEncoding,
                format!("this file is not UTF-8 text: byte {valid} is not valid UTF-8"),
                Label::new(id, TextRange::new(valid, valid), "invalid byte here"),
            )
            .with_help("save the file as UTF-8; policies are text files");
            Ok((prefix, Some(diagnostic)))
        }
    }
}

pub fn describe_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

/// Reads and analyses the policy at `path`.
pub fn load(path: &Path) -> Result<LoadedPolicy, LoadError> {
    let files = policy_files(path)?;
    let mut texts = Vec::new();
    let mut file_diagnostics = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let (text, diagnostic) = read_text(file, FileId(i as u32))?;
        texts.push((file.display().to_string(), text));
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
    // A file with bad encoding is analysed only up to its first bad byte; report that
    // instead of what follows from the truncation.
    let analysis = if file_diagnostics.is_empty() {
        analysis
    } else {
        let bad: Vec<FileId> = file_diagnostics.iter().map(|d| d.primary.file).collect();
        let mut a = (*analysis).clone();
        a.diagnostics.retain(|d| !bad.contains(&d.primary.file));
        std::sync::Arc::new(a)
    };
    Ok(LoadedPolicy {
        analysis,
        file_diagnostics,
        sources: Sources::new(source_list),
    })
}
