//! Every policy in the documentation is checked: a ```agentpolicy block must be a
//! complete policy. On a diagnostic page (`docs/diagnostics/CODE.md`) the first block
//! must produce that code and the last block (the fix) must be clean; everywhere else
//! every block must be clean, except a block whose info string says `expect=CODE` (a
//! deliberately broken step, as in the tutorial), which must produce exactly that code
//! (`expect=AP0103,AP0109` for several).

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

/// Each ```agentpolicy block: the codes its info string expects (`expect=AP0103`, empty
/// when it says nothing) and its text.
fn policy_blocks(markdown: &str) -> Vec<(Vec<Code>, String)> {
    let mut blocks = Vec::new();
    let mut current: Option<(Vec<Code>, String)> = None;
    for line in markdown.lines() {
        match &mut current {
            None => {
                if let Some(info) = line.trim_start().strip_prefix("```agentpolicy") {
                    current = Some((expected_codes(info), String::new()));
                }
            }
            Some(_) if line.trim_start().starts_with("```") => {
                blocks.extend(current.take());
            }
            Some((_, block)) => {
                block.push_str(line);
                block.push('\n');
            }
        }
    }
    blocks
}

/// The codes of `expect=AP0103,AP0109` in a fence's info string, sorted.
fn expected_codes(info: &str) -> Vec<Code> {
    let mut codes: Vec<Code> = info
        .split_whitespace()
        .filter_map(|word| word.strip_prefix("expect="))
        .flat_map(|list| list.split(','))
        .map(|code| Code::parse(code).expect("`expect=` names a known diagnostic code"))
        .collect();
    codes.sort();
    codes.dedup();
    codes
}

/// Codes the block produces: front end, code generation, failed policy tests, and the
/// verifier's proofs.
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
                let proofs = agentpolicy_verify::verify(
                    &analysis.model,
                    &table,
                    &agentpolicy_verify::Config::default(),
                );
                codes.extend(proofs.diagnostics().iter().map(|d| d.code));
            }
        }
    }
    codes.sort();
    codes.dedup();
    codes
}

/// An assert that restates a built-in property fails together with it.
fn implied_with(code: Code) -> Vec<Code> {
    match code {
        Code::AssertEscalatesFailed => vec![Code::IrreversibleWithoutEscalation, code],
        _ => vec![code],
    }
}

/// Hygiene warnings that a front-end problem implies (a constant-false condition makes
/// its rule dead and may leave its tool unusable).
fn follows(code: Code) -> bool {
    matches!(
        code,
        Code::DeadRule | Code::ShadowedRule | Code::UnusableTool
    )
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
        for (i, (expected, block)) in blocks.iter().enumerate() {
            checked += 1;
            let found = codes(block);
            let errors: Vec<Code> = found
                .iter()
                .copied()
                .filter(|c| c.severity() == agentpolicy::diagnostics::Severity::Error)
                .collect();
            // Invalid UTF-8 cannot be written in Markdown, so the AP0004 page shows its
            // example as a hex dump and has only the fixed policy as a block.
            // Likewise an unknown proof (AP0112) needs a solver limit, not just a policy.
            let shows_failure =
                page_code.is_some_and(|c| c != Code::InvalidEncoding && c != Code::ProofUnknown);
            let ok = match page_code {
                _ if !expected.is_empty() => found == *expected,
                Some(code) if i == 0 && shows_failure => {
                    found == vec![code]
                        || found == implied_with(code)
                        || (found.contains(&code)
                            && found.iter().all(|c| *c == code || follows(*c)))
                }
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
