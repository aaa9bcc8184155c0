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

/// The extension ships bundled (issue 21): `main` is esbuild's output, esbuild is pinned
/// to an exact version, the bundle step runs before `vsce package`, and the package
/// leaves out `node_modules` and the unbundled source.
#[test]
fn the_extension_is_bundled_with_a_pinned_esbuild() {
    let package = json("package.json");
    assert_eq!(package["main"], "./dist/extension.js");
    let esbuild = package["devDependencies"]["esbuild"]
        .as_str()
        .expect("esbuild is a dev dependency");
    assert!(
        esbuild.chars().all(|c| c.is_ascii_digit() || c == '.'),
        "esbuild pinned to an exact version, not {esbuild}"
    );
    let bundle = package["scripts"]["bundle"]
        .as_str()
        .expect("a bundle script");
    assert!(
        bundle.starts_with("esbuild extension.js --bundle --outfile=dist/extension.js")
            && bundle.contains("--external:vscode"),
        "{bundle}"
    );
    assert_eq!(package["scripts"]["vscode:prepublish"], "npm run bundle");
    assert!(
        package["dependencies"].is_null(),
        "runtime dependencies are bundled, so none is shipped"
    );
    let lock = json("package-lock.json");
    assert_eq!(
        lock["packages"]["node_modules/esbuild"]["version"], esbuild,
        "package-lock.json pins the same esbuild"
    );
    let ignore =
        std::fs::read_to_string(vscode_dir().join(".vscodeignore")).expect(".vscodeignore");
    for line in ["node_modules/**", "extension.js", "test/**"] {
        assert!(
            ignore.lines().any(|l| l == line),
            ".vscodeignore leaves out {line}"
        );
    }
}
