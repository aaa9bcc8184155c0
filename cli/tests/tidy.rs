//! Tidy checks on the codebase itself: the dependency direction between crates, what each
//! library crate may link, that the library crates do no IO, module docs, and that
//! diagnostic codes and their docs pages match one to one. Each test enforces one
//! invariant of ARCHITECTURE.md.

#![expect(
    clippy::expect_used,
    reason = "a tidy check that cannot read the workspace should fail loudly"
)]

use std::path::{Path, PathBuf};
use std::process::Command;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The crates, lowest first: a crate may depend only on crates before it in this list
/// (`cli` and `lsp` are both leaves and never depend on each other).
const LAYERS: &[&[&str]] = &[
    &["agentpolicy-runtime"],
    &["agentpolicy"],
    &[
        "agentpolicy-verify",
        "agentpolicy-server",
        "agentpolicy-mcp",
        "agentpolicy-python",
    ],
    &["agentpolicy-cli", "agentpolicy-lsp"],
];

/// Dependencies point one way, `runtime ← agentpolicy ← {agentpolicy-verify,
/// agentpolicy-server, agentpolicy-mcp, agentpolicy-python} ← {cli, lsp}` (the server and the
/// MCP gateway, in the verifier's layer, may link neither it nor the compiler, and the
/// Python package not the verifier: see below): no crate depends on a crate in its own
/// layer or above it.
#[test]
fn dependencies_point_one_way() {
    let graph = DependencyGraph::load();
    for (level, layer) in LAYERS.iter().enumerate() {
        for crate_name in *layer {
            let linked = graph.linked(crate_name);
            for above in LAYERS[level..].iter().flat_map(|l| l.iter()) {
                assert!(
                    !linked.contains(*above),
                    "`{crate_name}` must not depend on `{above}` (dependencies point one way, ARCHITECTURE.md)"
                );
            }
        }
    }
}

/// What each library crate must never link, transitively (ARCHITECTURE.md, "Crates"):
/// the runtime an agent platform embeds has no parser, no incremental database, no
/// solver and no CLI parser; the compiler core has no solver and no CLI parser (so the
/// Python package, the service and the language server's syntax features build without
/// Z3); the verifier has no CLI parser.
#[test]
fn library_crates_link_only_what_they_need() {
    let graph = DependencyGraph::load();
    let never: &[(&str, &[&str])] = &[
        (
            "agentpolicy-runtime",
            &[
                "pest",
                "pest_derive",
                "logos",
                "salsa",
                "z3",
                "z3-sys",
                "clap",
                "ariadne",
                "tower-lsp-server",
                // A shared state store is a trait here (`engine::StateStore`); its
                // Redis client lives in the service (`server/src/redis_state.rs`).
                "redis",
            ],
        ),
        ("agentpolicy", &["z3", "z3-sys", "clap", "tower-lsp-server"]),
        ("agentpolicy-verify", &["clap", "tower-lsp-server"]),
        // The service links the runtime only: no compiler, no solver, no CLI parser;
        // its TLS is rustls on ring, without OpenSSL or aws-lc.
        (
            "agentpolicy-server",
            &[
                "agentpolicy",
                "agentpolicy-verify",
                "z3",
                "z3-sys",
                "clap",
                "pest",
                "salsa",
                "tower-lsp-server",
                "openssl",
                "openssl-sys",
                "aws-lc-rs",
                "aws-lc-sys",
            ],
        ),
        // The MCP gateway links the runtime (and rmcp on tokio) only: no compiler, no
        // solver, no CLI parser, no HTTP service.
        (
            "agentpolicy-mcp",
            &[
                "agentpolicy",
                "agentpolicy-verify",
                "agentpolicy-server",
                "z3",
                "z3-sys",
                "clap",
                "pest",
                "salsa",
                "tower-lsp-server",
            ],
        ),
        // The Python package compiles and decides in process; proofs stay in the CLI.
        (
            "agentpolicy-python",
            &[
                "agentpolicy-verify",
                "z3",
                "z3-sys",
                "clap",
                "tower-lsp-server",
            ],
        ),
    ];
    for (crate_name, forbidden) in never {
        let linked = graph.linked(crate_name);
        for name in *forbidden {
            assert!(
                !linked.contains(*name),
                "`{crate_name}` must not link `{name}`; it links: {linked:?}"
            );
        }
    }
    // The graph is read at all: the runtime's table format is serde data, and the
    // verifier does link Z3.
    assert!(graph.linked("agentpolicy-runtime").contains("serde"));
    assert!(graph.linked("agentpolicy-verify").contains("z3"));
    assert!(graph.linked("agentpolicy-python").contains("pyo3"));
    assert!(
        graph
            .linked("agentpolicy-mcp")
            .contains("agentpolicy-runtime")
    );
}

/// Only `agentpolicy-verify` names Z3 as a dependency: the solver sits behind one crate.
#[test]
fn only_the_verifier_depends_on_z3() {
    let graph = DependencyGraph::load();
    let direct: Vec<&String> = graph
        .members
        .iter()
        .filter(|(_, deps)| deps.iter().any(|d| d == "z3" || d == "z3-sys"))
        .map(|(name, _)| name)
        .collect();
    assert_eq!(
        direct,
        ["agentpolicy-verify"],
        "crates that depend on z3 directly"
    );
}

/// The library crates take data and return data: no file system, no standard streams, no
/// environment, no processes, no clock. Printing is also denied by clippy
/// (`print_stdout`, `print_stderr`) in each crate root, which this test checks is there.
#[test]
fn library_crates_do_no_io() {
    const IO: &[&str] = &[
        "std::fs",
        "std::io::stdin",
        "std::io::stdout",
        "std::io::stderr",
        "std::env",
        "std::process",
        "std::net",
        "SystemTime::now",
        "Instant::now",
        "File::open",
        "File::create",
        "OpenOptions",
        "println!",
        "eprintln!",
        "print!(",
        "eprint!(",
    ];
    let mut found = Vec::new();
    for dir in ["compiler/src", "verify/src"] {
        let root = repo_root().join(dir).join("lib.rs");
        let text = std::fs::read_to_string(&root).unwrap_or_default();
        assert!(
            text.contains("#![deny(clippy::print_stdout, clippy::print_stderr)]"),
            "{}: the crate root must deny clippy::print_stdout and clippy::print_stderr",
            root.display()
        );
        for file in rust_files(&repo_root().join(dir)) {
            let text = std::fs::read_to_string(&file).unwrap_or_default();
            for (n, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or("");
                if let Some(io) = IO.iter().find(|io| code.contains(*io)) {
                    found.push(format!("{}:{}: `{io}`", file.display(), n + 1));
                }
            }
        }
    }
    assert!(found.is_empty(), "IO in a library crate: {found:#?}");
}

/// The runtime does IO only for the audit log and the kill file: no network. A state
/// store shared by several engines is reached through `engine::StateStore`, which the
/// service implements (ARCHITECTURE.md).
#[test]
fn the_runtime_does_no_network_io() {
    const NET: &[&str] = &[
        "std::net",
        "TcpStream",
        "UdpSocket",
        "TcpListener",
        "redis::",
    ];
    let mut found = Vec::new();
    for file in rust_files(&repo_root().join("runtime/src")) {
        let text = std::fs::read_to_string(&file).unwrap_or_default();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or("");
            if let Some(net) = NET.iter().find(|net| code.contains(*net)) {
                found.push(format!("{}:{}: `{net}`", file.display(), n + 1));
            }
        }
    }
    assert!(found.is_empty(), "network IO in the runtime: {found:#?}");
}

/// The dependency graph of the workspace, read without the network and without a warm
/// registry cache: `cargo metadata --no-deps` gives each member's declared dependencies
/// with their kinds, and `Cargo.lock` gives what each registry package depends on. The
/// lock file lists a registry package's normal and build dependencies together, so the
/// closure computed here is a superset of what is linked: a forbidden crate found in it
/// may be a false alarm, never a miss.
struct DependencyGraph {
    /// Workspace member → the names of its normal dependencies.
    members: std::collections::BTreeMap<String, Vec<String>>,
    /// Registry package name → the names of its dependencies, over all locked versions.
    locked: std::collections::BTreeMap<String, Vec<String>>,
}

impl DependencyGraph {
    fn load() -> Self {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".to_string());
        let out = Command::new(cargo)
            .current_dir(repo_root())
            .args(["metadata", "--format-version", "1", "--no-deps"])
            .output()
            .expect("cargo metadata");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let meta: serde_json::Value = serde_json::from_slice(&out.stdout).expect("metadata JSON");
        let mut members = std::collections::BTreeMap::new();
        for package in meta["packages"].as_array().expect("packages") {
            let name = package["name"].as_str().expect("name").to_string();
            let deps = package["dependencies"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|d| d["kind"].is_null())
                .map(|d| d["name"].as_str().expect("dependency name").to_string())
                .collect();
            members.insert(name, deps);
        }
        let lock_text =
            std::fs::read_to_string(repo_root().join("Cargo.lock")).expect("read Cargo.lock");
        let lock: toml::Table = toml::from_str(&lock_text).expect("Cargo.lock is TOML");
        let mut locked: std::collections::BTreeMap<String, Vec<String>> = Default::default();
        for package in lock["package"].as_array().expect("[[package]]") {
            let name = package["name"].as_str().expect("name").to_string();
            let deps = package
                .get("dependencies")
                .and_then(|d| d.as_array())
                .into_iter()
                .flatten()
                // "name", "name version" or "name version (source)"
                .filter_map(|d| d.as_str()?.split(' ').next().map(str::to_string));
            locked.entry(name).or_default().extend(deps);
        }
        Self { members, locked }
    }

    /// Every package `root` links, transitively, through normal dependencies.
    fn linked(&self, root: &str) -> std::collections::BTreeSet<String> {
        assert!(
            self.members.contains_key(root),
            "no workspace member `{root}`"
        );
        let mut seen = std::collections::BTreeSet::new();
        let mut stack = vec![root.to_string()];
        while let Some(name) = stack.pop() {
            let next = match self.members.get(&name) {
                Some(deps) => deps,
                None => self.locked.get(&name).expect("every dependency is locked"),
            };
            for dep in next {
                if seen.insert(dep.clone()) {
                    stack.push(dep.clone());
                }
            }
        }
        seen
    }
}

/// Every Rust module starts with a `//!` comment saying what it owns.
#[test]
fn every_module_has_a_doc_comment() {
    let mut missing = Vec::new();
    for dir in [
        "runtime/src",
        "compiler/src",
        "verify/src",
        "cli/src",
        "lsp/src",
        "server/src",
        "python/src",
    ] {
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
