//! The VS Code extension in `editors/vscode` stays in step with the language: its files
//! are valid JSON, it starts the binary this crate builds, and its TextMate grammar
//! highlights every keyword the compiler reserves.
#![expect(
    clippy::expect_used,
    reason = "a missing or invalid file fails the test"
)]

use std::path::PathBuf;

use agentpolicy::syntax::lexer::KEYWORDS;

fn vscode_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../editors/vscode")
}

fn json(name: &str) -> serde_json::Value {
    let text = std::fs::read_to_string(vscode_dir().join(name)).expect("read editor file");
    serde_json::from_str(&text).expect("valid JSON")
}

#[test]
fn the_extension_is_wired_to_the_server_and_the_grammar() {
    let package = json("package.json");
    assert_eq!(package["contributes"]["languages"][0]["id"], "agentpolicy");
    assert_eq!(
        package["contributes"]["languages"][0]["extensions"][0],
        ".agentpolicy"
    );
    assert_eq!(
        package["contributes"]["grammars"][0]["path"],
        "./syntaxes/agentpolicy.tmLanguage.json"
    );
    assert_eq!(
        package["contributes"]["configuration"]["properties"]["agentpolicy.server.path"]["default"],
        "agentpolicy-lsp"
    );
    let extension =
        std::fs::read_to_string(vscode_dir().join("extension.js")).expect("extension.js");
    assert!(extension.contains("vscode-languageclient/node"));
    let config = json("language-configuration.json");
    assert_eq!(config["comments"]["lineComment"], "//");
}

#[test]
fn the_grammar_highlights_every_keyword() {
    let grammar = json("syntaxes/agentpolicy.tmLanguage.json");
    assert_eq!(grammar["scopeName"], "source.agentpolicy");
    let patterns = grammar["repository"]["keywords"]["patterns"].to_string();
    let missing: Vec<&&str> = KEYWORDS
        .iter()
        .filter(|k| {
            !patterns.contains(&format!("|{k}|"))
                && !patterns.contains(&format!("({k}|"))
                && !patterns.contains(&format!("|{k})"))
        })
        .filter(|k| !matches!(**k, "true" | "false"))
        .collect();
    assert!(
        missing.is_empty(),
        "keywords the grammar does not highlight: {missing:?}"
    );
}
