//! Reading a policy from disk: a PATH is a `.agentpolicy` file, or a directory whose
//! `.agentpolicy` files (recursively, sorted) form one policy, by the compiler's one rule
//! (`agentpolicy::files`, which the language server follows too). Bytes that are not
//! UTF-8 become an AP0004 diagnostic at the first bad byte, not an IO error.

use std::path::{Path, PathBuf};

use agentpolicy::files;

/// A policy read from disk and compiled (the compiler's façade result).
pub type LoadedPolicy = agentpolicy::Compiled;

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
    match policy.table() {
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
    let files = files::policy_files_under(path, &mut list_dir)?;
    if files.is_empty() {
        return Err(LoadError(format!(
            "`{}` contains no `.agentpolicy` files\nhelp: pass a policy file, or a directory that holds one",
            path.display()
        )));
    }
    Ok(files)
}

/// The entries of one directory, for [`files::policy_files_under`].
fn list_dir(dir: &Path) -> Result<Vec<files::DirEntry>, LoadError> {
    let entries = std::fs::read_dir(dir).map_err(|e| {
        LoadError(format!(
            "cannot list `{}`: {}",
            dir.display(),
            describe_io(&e)
        ))
    })?;
    let mut out = Vec::new();
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
        out.push(files::DirEntry {
            path,
            is_dir: file_type.is_dir(),
        });
    }
    Ok(out)
}

pub fn describe_io(e: &std::io::Error) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => "no such file or directory".to_string(),
        std::io::ErrorKind::PermissionDenied => "permission denied".to_string(),
        _ => e.to_string(),
    }
}

/// Reads and compiles the policy at `path`.
pub fn load(path: &Path) -> Result<LoadedPolicy, LoadError> {
    let mut files = Vec::new();
    for file in policy_files(path)? {
        let bytes = std::fs::read(&file).map_err(|e| {
            LoadError(format!(
                "cannot read `{}`: {}",
                file.display(),
                describe_io(&e)
            ))
        })?;
        files.push((file, bytes));
    }
    if path.is_dir() {
        refuse_several_policies(path, &files)?;
    }
    Ok(agentpolicy::compile(
        files
            .into_iter()
            .map(|(file, bytes)| (file.display().to_string(), bytes))
            .collect::<Vec<_>>(),
    ))
}

/// A directory whose sub-directories each hold a policy (`examples/`) is not one policy:
/// compiled together they would give a dozen unrelated errors, so say what it holds and
/// how to check each.
fn refuse_several_policies(root: &Path, files: &[(PathBuf, Vec<u8>)]) -> Result<(), LoadError> {
    let texts: Vec<(PathBuf, String)> = files
        .iter()
        .map(|(file, bytes)| {
            let relative = file.strip_prefix(root).unwrap_or(file).to_path_buf();
            (relative, String::from_utf8_lossy(bytes).into_owned())
        })
        .collect();
    let Some(dirs) = files::several_policies(texts.iter().map(|(p, t)| (p.as_path(), t.as_str())))
    else {
        return Ok(());
    };
    let paths: Vec<String> = dirs
        .iter()
        .map(|d| root.join(d).display().to_string())
        .collect();
    Err(LoadError(format!(
        "`{}` holds {} policies (a `policy` header in each of {}), not one\nhelp: a PATH is one policy; check each on its own: {}",
        root.display(),
        paths.len(),
        paths.join(", "),
        paths
            .iter()
            .map(|p| format!("`agentpolicy check {p}`"))
            .collect::<Vec<_>>()
            .join(", ")
    )))
}
