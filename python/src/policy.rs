//! Policies and tables from disk: a policy folder (or file) is walked by the compiler's
//! rule (`agentpolicy::files::policy_files_under`, the walk the CLI does) and compiled by
//! `agentpolicy::compile`; a table file is read by the runtime's `wire::load_table`.
//! Diagnostics become a `PolicyCompileError` carrying each code, message and position.

use std::path::{Path, PathBuf};

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyList};

use agentpolicy::diagnostics::{Diagnostic, Severity};
use agentpolicy::files::{self, DirEntry};
use agentpolicy::render;
use agentpolicy_runtime::DecisionTable;
use agentpolicy_runtime::wire::load_table;

use crate::errors::{raise, str_obj};

/// Compiles the policy at `path` (a `.agentpolicy` file, or a folder whose policy files
/// form one policy, `broken/` and hidden folders skipped) and returns its decision table
/// in the binary form `Engine(table=...)` and `agentpolicy load` read.
///
/// Raises `PolicyCompileError` (with `.diagnostics`) when the policy has errors, and
/// `OSError` when the path cannot be read.
#[pyfunction]
#[pyo3(name = "compile")]
pub fn compile_policy<'py>(py: Python<'py>, path: PathBuf) -> PyResult<Bound<'py, PyBytes>> {
    let table = table_from_policy(py, &path)?;
    let bytes = py.detach(|| table.to_bytes());
    Ok(PyBytes::new(py, &bytes))
}

/// The decision table of the policy at `path`, or the Python exception saying why not.
pub fn table_from_policy(py: Python<'_>, path: &Path) -> PyResult<DecisionTable> {
    let outcome = py.detach(|| compile_path(path));
    match outcome {
        Err(Io(message)) => Err(pyo3::exceptions::PyOSError::new_err(message)),
        Ok(compiled) => {
            let diagnostics = compiled.diagnostics();
            if diagnostics.iter().any(Diagnostic::is_error) {
                return Err(compile_error(py, path, &diagnostics, &compiled.sources));
            }
            compiled
                .table()
                .map_err(|diags| compile_error(py, path, &diags, &compiled.sources))
        }
    }
}

/// A decision table from its bytes (binary or JSON), or `TableError`.
pub fn table_from_bytes(py: Python<'_>, bytes: &[u8], origin: &str) -> PyResult<DecisionTable> {
    py.detach(|| load_table(bytes)).map_err(|e| {
        raise(
            py,
            "TableError",
            format!("{origin} is not a decision table: {e}"),
            &[],
        )
    })
}

/// Why a path could not be read (an `OSError`).
struct Io(String);

fn compile_path(path: &Path) -> Result<agentpolicy::Compiled, Io> {
    let meta = std::fs::metadata(path)
        .map_err(|e| Io(format!("cannot read `{}`: {e}", path.display())))?;
    let paths = if meta.is_file() {
        vec![path.to_path_buf()]
    } else {
        files::policy_files_under(path, &mut list_dir)?
    };
    if paths.is_empty() {
        return Err(Io(format!(
            "`{}` contains no `.agentpolicy` files: pass a policy file, or a folder that holds one",
            path.display()
        )));
    }
    let mut sources = Vec::with_capacity(paths.len());
    for file in paths {
        let bytes = std::fs::read(&file)
            .map_err(|e| Io(format!("cannot read `{}`: {e}", file.display())))?;
        sources.push((file.display().to_string(), bytes));
    }
    Ok(agentpolicy::compile(sources))
}

fn list_dir(dir: &Path) -> Result<Vec<DirEntry>, Io> {
    let cannot = |e: std::io::Error| Io(format!("cannot list `{}`: {e}", dir.display()));
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).map_err(cannot)? {
        let entry = entry.map_err(cannot)?;
        let is_dir = entry.file_type().map_err(cannot)?.is_dir();
        out.push(DirEntry {
            path: entry.path(),
            is_dir,
        });
    }
    Ok(out)
}

/// `PolicyCompileError`: the rendered diagnostics as the message, and each as a dict
/// (code, severity, message, file, line, column, end_line, end_column, help) that the
/// Python class turns into `Diagnostic` objects.
fn compile_error(
    py: Python<'_>,
    path: &Path,
    diagnostics: &[Diagnostic],
    sources: &render::Sources,
) -> PyErr {
    let errors: Vec<&Diagnostic> = diagnostics.iter().filter(|d| d.is_error()).collect();
    let mut message = format!(
        "{} has {} error{}:\n",
        path.display(),
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    for d in diagnostics {
        message.push_str(&render::plain(d, sources));
    }
    let list = (|| -> PyResult<Py<PyAny>> {
        let list = PyList::empty(py);
        for d in diagnostics {
            let at = render::position(&d.primary, sources);
            let item = PyDict::new(py);
            item.set_item("code", d.code.as_str())?;
            item.set_item(
                "severity",
                match d.severity {
                    Severity::Error => "error",
                    Severity::Warning => "warning",
                },
            )?;
            item.set_item("message", &d.message)?;
            item.set_item("file", &at.file)?;
            item.set_item("line", at.line)?;
            item.set_item("column", at.column)?;
            item.set_item("end_line", at.end_line)?;
            item.set_item("end_column", at.end_column)?;
            item.set_item("label", &d.primary.message)?;
            item.set_item("help", d.help.as_deref())?;
            list.append(item)?;
        }
        Ok(list.into_any().unbind())
    })()
    .unwrap_or_else(|_| py.None());
    let human = render::human(diagnostics, sources, false);
    raise(
        py,
        "PolicyCompileError",
        message.trim_end().to_string(),
        &[("diagnostics", list), ("rendered", str_obj(py, &human))],
    )
}
