//! The keyword lists outside the parser stay in step with its grammar
//! (`compiler/src/syntax/agentpolicy.pest`): the lexer's `KEYWORDS` (completion, semantic
//! tokens, the "is a keyword" diagnostic) is exactly the grammar's reserved `keyword`
//! rule, and the VS Code extension's TextMate grammar highlights every word the grammar
//! spells out (reserved or contextual: `tainted`, `approval_rate`, `for`, ...).

#![expect(
    clippy::expect_used,
    reason = "a test helper that cannot do its job should fail the test loudly"
)]

use std::collections::BTreeSet;
use std::path::Path;

use agentpolicy::syntax::lexer::KEYWORDS;

fn repo_file(relative: &str) -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("..")
        .join(relative);
    std::fs::read_to_string(&path).expect(relative)
}

fn grammar_without_comments() -> String {
    repo_file("compiler/src/syntax/agentpolicy.pest")
        .lines()
        .map(|l| l.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n")
}

/// The quoted words (`"allow"`) in a piece of the grammar.
fn quoted_words(text: &str) -> BTreeSet<String> {
    text.split('"')
        .skip(1)
        .step_by(2)
        .filter(|w| {
            !w.is_empty()
                && w.starts_with(|c: char| c.is_ascii_lowercase())
                && w.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        })
        .map(str::to_string)
        .collect()
}

/// The words of the `\b(a|b|c)\b` and `(?:a|b)` alternations in the TextMate grammar's
/// `match` patterns.
fn highlighted_words() -> BTreeSet<String> {
    let json: serde_json::Value = serde_json::from_str(&repo_file(
        "editors/vscode/syntaxes/agentpolicy.tmLanguage.json",
    ))
    .expect("the TextMate grammar is JSON");
    let mut patterns = Vec::new();
    collect_matches(&json, &mut patterns);
    let mut words = BTreeSet::new();
    for pattern in patterns {
        for group in pattern.split('(').skip(1) {
            let group = group.strip_prefix("?:").unwrap_or(group);
            let Some(inner) = group.split(')').next() else {
                continue;
            };
            if inner.contains('|') || inner.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
                words.extend(
                    inner
                        .split('|')
                        .filter(|w| {
                            !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c == '_')
                        })
                        .map(str::to_string),
                );
            }
        }
    }
    words
}

fn collect_matches(value: &serde_json::Value, out: &mut Vec<String>) {
    match value {
        serde_json::Value::Object(map) => {
            for (key, v) in map {
                match (key.as_str(), v) {
                    ("match", serde_json::Value::String(s)) => out.push(s.clone()),
                    _ => collect_matches(v, out),
                }
            }
        }
        serde_json::Value::Array(items) => items.iter().for_each(|v| collect_matches(v, out)),
        _ => {}
    }
}

#[test]
fn lexer_keywords_are_the_grammars_reserved_words() {
    let grammar = grammar_without_comments();
    let start = grammar
        .find("keyword = @{")
        .expect("the grammar's `keyword` rule");
    let end = start
        + grammar[start..]
            .find("~ !ident_char")
            .expect("end of the rule");
    let reserved = quoted_words(&grammar[start..end]);
    let lexer: BTreeSet<String> = KEYWORDS.iter().map(|k| k.to_string()).collect();
    assert_eq!(
        lexer, reserved,
        "lexer::KEYWORDS and the grammar's `keyword` rule differ"
    );
}

#[test]
fn the_vscode_grammar_highlights_every_word_of_the_language() {
    let words = quoted_words(&grammar_without_comments());
    assert!(
        words.contains("tainted") && words.contains("approval_rate"),
        "{words:?}"
    );
    let highlighted = highlighted_words();
    let missing: Vec<&String> = words.iter().filter(|w| !highlighted.contains(*w)).collect();
    assert!(
        missing.is_empty(),
        "editors/vscode/syntaxes/agentpolicy.tmLanguage.json does not highlight {missing:?}"
    );
}
