//! Embeds `docs/diagnostics/*.md` so `agentpolicy explain CODE` works from the binary
//! alone. A test checks that every diagnostic code has a page and every page a code.

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".to_string());
    let dir = Path::new(&manifest).join("../docs/diagnostics");
    println!("cargo:rerun-if-changed={}", dir.display());
    let mut pages: Vec<(String, String)> = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for entry in entries.flatten() {
            let path = entry.path();
            println!("cargo:rerun-if-changed={}", path.display());
            if path.extension().and_then(|e| e.to_str()) == Some("md")
                && let Some(stem) = path.file_stem().and_then(|s| s.to_str())
            {
                pages.push((stem.to_string(), path.display().to_string()));
            }
        }
    }
    pages.sort();
    let mut out = String::from(
        "/// `(code, markdown)` for every page in docs/diagnostics.\npub const PAGES: &[(&str, &str)] = &[\n",
    );
    for (code, path) in &pages {
        let _ = writeln!(out, "    ({code:?}, include_str!({path:?})),");
    }
    out.push_str("];\n");
    let out_dir = std::env::var("OUT_DIR").unwrap_or_else(|_| ".".to_string());
    if let Err(e) = std::fs::write(Path::new(&out_dir).join("diagnostic_pages.rs"), out) {
        println!("cargo:warning=could not write diagnostic pages: {e}");
        std::process::exit(1);
    }
}
