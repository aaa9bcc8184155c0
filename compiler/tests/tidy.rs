//! Tidy checks on the codebase itself: the dependency direction between crates, module
//! docs, and that diagnostic codes and their docs pages match one to one.

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `lsp -> compiler -> runtime`: the runtime links no parser, solver or salsa, and no
/// crate depends on a crate above it.
#[test]
fn dependencies_point_one_way() {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
    let out = Command::new(cargo)
        .current_dir(repo_root())
        .args(["metadata", "--format-version", "1", "--offline"])
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
    let resolve = &meta["resolve"]["nodes"];
    let packages = meta["packages"].as_array().expect("packages");
    let name_of = |id: &str| -> String {
        packages
            .iter()
            .find(|p| p["id"] == id)
            .and_then(|p| p["name"].as_str())
            .unwrap_or("")
            .to_string()
    };
    let id_of = |name: &str| -> Option<String> {
        packages
            .iter()
            .find(|p| p["name"] == name && p["source"].is_null())
            .and_then(|p| p["id"].as_str().map(str::to_string))
    };
    // Everything the runtime links, transitively, normal dependencies only.
    let runtime = id_of("agentpolicy-runtime").expect("runtime package");
    let mut stack = vec![runtime];
    let mut seen = std::collections::BTreeSet::new();
    while let Some(id) = stack.pop() {
        if !seen.insert(id.clone()) {
            continue;
        }
        let node = resolve
            .as_array()
            .expect("nodes")
            .iter()
            .find(|n| n["id"] == id.as_str())
            .expect("node");
        for dep in node["deps"].as_array().into_iter().flatten() {
            let normal = dep["dep_kinds"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|k| k["kind"].is_null());
            if normal {
                stack.push(dep["pkg"].as_str().expect("pkg").to_string());
            }
        }
    }
    let linked: Vec<String> = seen.iter().map(|id| name_of(id)).collect();
    for forbidden in [
        "pest",
        "pest_derive",
        "z3",
        "z3-sys",
        "salsa",
        "agentpolicy",
        "agentpolicy-lsp",
        "tower-lsp-server",
    ] {
        assert!(
            !linked.iter().any(|n| n == forbidden),
            "agentpolicy-runtime must not link `{forbidden}`; it links: {linked:?}"
        );
    }
    if let Some(compiler) = id_of("agentpolicy") {
        let node = resolve
            .as_array()
            .expect("nodes")
            .iter()
            .find(|n| n["id"] == compiler.as_str())
            .expect("compiler node");
        let deps: Vec<String> = node["deps"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|d| name_of(d["pkg"].as_str().unwrap_or("")))
            .collect();
        assert!(
            !deps.iter().any(|d| d == "agentpolicy-lsp"),
            "the compiler must not depend on the LSP"
        );
    }
}

/// Every Rust module starts with a `//!` comment saying what it owns.
#[test]
fn every_module_has_a_doc_comment() {
    let mut missing = Vec::new();
    for dir in ["compiler/src", "runtime/src", "lsp/src"] {
        for file in rust_files(&repo_root().join(dir)) {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            let first = text.lines().find(|l| !l.trim().is_empty()).unwrap_or("");
            if !first.starts_with("//!") {
                missing.push(file.display().to_string());
            }
        }
    }
    assert!(
        missing.is_empty(),
        "modules without a `//!` doc comment: {missing:#?}"
    );
}

/// Each diagnostic code has `docs/diagnostics/CODE.md`, and each page names a real code.
#[test]
fn diagnostic_codes_and_pages_match() {
    use agentpolicy::diagnostics::Code;
    let dir = repo_root().join("docs/diagnostics");
    let mut pages: Vec<String> = std::fs::read_dir(&dir)
        .map(|entries| {
            entries
                .flatten()
                .filter_map(|e| {
                    let p = e.path();
                    (p.extension().is_some_and(|x| x == "md"))
                        .then(|| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                        .flatten()
                })
                .collect()
        })
        .unwrap_or_default();
    pages.sort();
    let codes: Vec<String> = Code::ALL.iter().map(|c| c.as_str().to_string()).collect();
    let without_page: Vec<&String> = codes.iter().filter(|c| !pages.contains(c)).collect();
    let without_code: Vec<&String> = pages.iter().filter(|p| !codes.contains(p)).collect();
    assert!(
        without_page.is_empty(),
        "codes without a docs page: {without_page:?}"
    );
    assert!(
        without_code.is_empty(),
        "docs pages without a code: {without_code:?}"
    );
    for code in Code::ALL {
        let page = agentpolicy::explain::page(*code).expect("embedded page");
        assert!(
            page.starts_with(&format!("# {}", code.as_str())),
            "{code}: page must start with `# {code}`"
        );
    }
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let p = e.path();
            if p.is_dir() {
                out.extend(rust_files(&p));
            } else if p.extension().is_some_and(|x| x == "rs") {
                out.push(p);
            }
        }
    }
    out
}
