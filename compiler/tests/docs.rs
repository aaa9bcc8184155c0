//! Every policy in the documentation is checked: a ```agentpolicy block must be a
//! complete policy. On a diagnostic page (`docs/diagnostics/CODE.md`) the first block
//! must produce that code and the last block (the fix) must be clean; everywhere else
//! every block must be clean.

#![expect(
    clippy::expect_used,
    reason = "a test helper that cannot do its job should fail the test loudly"
)]

use std::path::{Path, PathBuf};

use agentpolicy::db::Database;
use agentpolicy::diagnostics::Code;

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn policy_blocks(markdown: &str) -> Vec<String> {
    let mut blocks = Vec::new();
    let mut current: Option<String> = None;
    for line in markdown.lines() {
        match &mut current {
            None if line.trim_start().starts_with("```agentpolicy") => {
                current = Some(String::new())
            }
            None => {}
            Some(block) if line.trim_start().starts_with("```") => {
                blocks.push(std::mem::take(block));
                current = None;
            }
            Some(block) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    blocks
}

/// Codes the block produces: front end, code generation, and failed policy tests.
fn codes(block: &str) -> Vec<Code> {
    let mut db = Database::default();
    let loaded = db.load(vec![("doc.agentpolicy".to_string(), block.to_string())]);
    let analysis = db.analysis(loaded);
    let mut codes: Vec<Code> = analysis.diagnostics.iter().map(|d| d.code).collect();
    if !analysis.has_errors() {
        let mut sources = Vec::new();
        let mut id = 0;
        while let Some((p, t)) = db.file(loaded, agentpolicy::diagnostics::FileId(id)) {
            sources.push((p.to_string(), t.to_string()));
            id += 1;
        }
        match agentpolicy::codegen::build_table(&analysis.model, &sources) {
            Err(diags) => codes.extend(diags.iter().map(|d| d.code)),
            Ok(table) => {
                let report = agentpolicy::policy_test::run_tests(&analysis.model, &table);
                if report.failed() > 0 {
                    codes.push(Code::TestFailed);
                }
            }
        }
    }
    codes.sort();
    codes.dedup();
    codes
}

fn markdown_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir(dir).expect("read docs").flatten() {
        let p = entry.path();
        if p.is_dir() {
            out.extend(markdown_files(&p));
        } else if p.extension().is_some_and(|x| x == "md") {
            out.push(p);
        }
    }
    out.sort();
    out
}

#[test]
fn every_policy_in_the_docs_checks_as_documented() {
    let root = repo_root();
    let mut files = markdown_files(&root.join("docs"));
    files.push(root.join("README.md"));
    files.extend(markdown_files(&root.join("examples")));
    let mut failures = Vec::new();
    let mut checked = 0;
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read markdown");
        let blocks = policy_blocks(&text);
        let page_code = file
            .parent()
            .filter(|p| p.ends_with("diagnostics"))
            .and_then(|_| file.file_stem())
            .and_then(|s| Code::parse(&s.to_string_lossy()));
        for (i, block) in blocks.iter().enumerate() {
            checked += 1;
            let found = codes(block);
            let errors: Vec<Code> = found
                .iter()
                .copied()
                .filter(|c| c.severity() == agentpolicy::diagnostics::Severity::Error)
                .collect();
            // Invalid UTF-8 cannot be written in Markdown, so the AP0004 page shows its
            // example as a hex dump and has only the fixed policy as a block.
            let shows_failure = page_code.is_some_and(|c| c != Code::InvalidEncoding);
            let ok = match page_code {
                Some(code) if i == 0 && shows_failure => found == vec![code],
                Some(_) if i + 1 == blocks.len() => found.is_empty(),
                // Blocks between the example and the fix may show other states, but
                // must still be policies that parse.
                Some(_) => {
                    !errors.contains(&Code::SyntaxError) || page_code == Some(Code::SyntaxError)
                }
                None => found.is_empty(),
            };
            if !ok {
                failures.push(format!("{} block {}: {:?}", file.display(), i + 1, found));
            }
        }
    }
    assert!(checked > 30, "only {checked} policy blocks found");
    assert!(
        failures.is_empty(),
        "policy blocks not as documented:\n{}",
        failures.join("\n")
    );
}
