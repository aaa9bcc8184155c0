//! Snapshot tests of the layout, and the guarantees every case must keep: idempotence,
//! the same tree, the same comments.

use super::*;

/// Formats `source`, checks the guarantees, and returns the output for a snapshot.
fn formatted(source: &str) -> String {
    let once = match format(source) {
        Ok(text) => text,
        Err(e) => panic!("format failed: {e}\n--- input ---\n{source}"),
    };
    let twice = format(&once).unwrap_or_else(|e| panic!("second format failed: {e}\n{once}"));
    assert_eq!(once, twice, "not idempotent");
    let before = parse(FileId(0), source);
    let after = parse(FileId(0), &once);
    assert!(same_tree_ignoring_ranges(&before.tree, &after.tree));
    assert_eq!(
        comment_texts(source, &before.tokens),
        comment_texts(&once, &after.tokens)
    );
    once
}

#[test]
fn design_example() {
    let src = include_str!("../../../tests/fixtures/verify/design_example.agentpolicy");
    insta::assert_snapshot!(formatted(src));
}

#[test]
fn comments_everywhere() {
    let src = r#"// Firm policy: header comment
// second line

/* block comment before the policy */
policy p version "1" // trailing on policy


// before tiers, after two blank lines
tiers low < high /* inline block */ // and a line comment
agent a { // trailing after brace

  // first thing in the block, after a blank line
  owner "o@x" /* inline */
  /* leading block */ allow t
  allow u when x > 1 // why
    // inside a continuation
    and y < 2

  // last thing in the block

}
tool t(a: text, // first param
       b: money? /* optional */) { effect read }
/* between
   items, spanning lines */
tool u { effect /* which */ read }
// end of file comment
"#;
    insta::assert_snapshot!(formatted(src));
}

#[test]
fn badly_indented_and_spaced() {
    let src = "policy   p\n      tiers a<b  <   c\n  resource r{tier a keyed m}\nagent   x{\nowner \"o\"\n        allow t when(a>1 and not b)or c\n  deny    * when amount >= $5\n    }\ntool t ( a : text , b : money ? ) { effect read , write }\nuse std . legal\n";
    insta::assert_snapshot!(formatted(src));
}

#[test]
fn crlf_tabs_and_trailing_whitespace() {
    let src = "policy p   \r\n\r\n\r\n\r\nagent a {\r\n\towner \"o\"   \r\n\t\tallow t\t// c  \r\n}\t\r\n\r\n\r\n";
    insta::assert_snapshot!(formatted(src));
}

#[test]
fn long_one_line_block_is_broken_into_clauses() {
    let src = "tool send_everything_everywhere(recipient: text, amount: money?, note: text) { effect external, irreversible writes outbound_mail, archive }\n";
    insta::assert_snapshot!(formatted(src));
}

#[test]
fn multi_line_block_gets_one_clause_per_line() {
    let src = "agent a { owner \"o\" allow t\n  deny u mode shadow }\nescalation e { notify \"q\"\n timeout 15m then deny }\ntest \"t\" { a calls t then a calls u\n expect allow }\n";
    insta::assert_snapshot!(formatted(src));
}

#[test]
fn items_on_one_line_are_split() {
    let src = "policy p tiers a < b isolate m resource r { tier a } assert every irreversible tool escalates\n";
    insta::assert_snapshot!(formatted(src));
}

#[test]
fn multi_line_parentheses() {
    let src = "tool f(\n    a: text,\n        b: money,\n  ) { effect read }\nagent a {\n  allow f when (\n  a > 1\n      and b\n    )\n}\n";
    insta::assert_snapshot!(formatted(src));
}

#[test]
fn empty_blocks_and_empty_files() {
    assert_eq!(formatted(""), "");
    assert_eq!(formatted("  \n\r\n\t\n"), "");
    assert_eq!(formatted("// only a comment"), "// only a comment\n");
    assert_eq!(
        formatted("resource r {\n\n}\nagent a {   }"),
        "resource r {}\nagent a {}\n"
    );
    assert_eq!(
        formatted("agent a { // nothing yet\n}"),
        "agent a { // nothing yet\n}\n"
    );
}

#[test]
fn brace_and_glued_tokens_join_the_previous_line() {
    assert_eq!(
        formatted(
            "agent a\n{\n  allow t\n}\nuse std\n  .legal\ntool f\n(a\n: text\n?\n, b: money) {}\n"
        ),
        "agent a {\n  allow t\n}\nuse std.legal\ntool f(a: text?, b: money) {}\n"
    );
}

#[test]
fn trailing_comment_gets_one_space() {
    assert_eq!(formatted("isolate m          // c   "), "isolate m // c\n");
    assert_eq!(formatted("isolate m/* c */"), "isolate m /* c */\n");
    assert_eq!(
        formatted("isolate\tm\t\t/* c */\t// d"),
        "isolate m /* c */ // d\n"
    );
}

#[test]
fn refuses_files_with_syntax_errors() {
    let err = format("policy p\nagent a { allow }\n").unwrap_err();
    let FormatError::Syntax(located) = &err else {
        panic!("expected syntax errors, got {err:?}");
    };
    assert_eq!(located.len(), 1);
    assert_eq!(located[0].line, 2);
    assert_eq!(
        located[0].diagnostic.code,
        crate::diagnostics::Code::SyntaxError
    );
    assert!(
        err.to_string()
            .starts_with("not formatted: 1 syntax error\n  2:"),
        "{err}"
    );
}

#[test]
fn comments_have_one_space_on_each_side_on_a_code_line() {
    assert_eq!(
        formatted("tool f(a: text /* x */, b: money /* y */) { reads r }"),
        "tool f(a: text /* x */ , b: money /* y */ ) { reads r }\n"
    );
    assert_eq!(
        formatted("agent a {\n  /* leading */   allow t\n}"),
        "agent a {\n  /* leading */ allow t\n}\n"
    );
}

#[test]
fn a_block_breaks_exactly_when_its_line_passes_the_width() {
    let head = "resource r { keyed ";
    let fits = format!("{head}{} }}", "k".repeat(MAX_WIDTH - head.len() - 2));
    assert_eq!(fits.len(), MAX_WIDTH);
    assert_eq!(formatted(&fits), format!("{fits}\n"));
    let long = format!("{head}{} }}", "k".repeat(MAX_WIDTH - head.len() - 1));
    assert_eq!(
        formatted(&long),
        format!(
            "resource r {{\n  keyed {}\n}}\n",
            "k".repeat(MAX_WIDTH - head.len() - 1)
        )
    );
}

#[test]
fn comments_at_block_edges() {
    let src =
        "agent a {\n\n\n  // top\n\n  allow t\n\n  // bottom\n\n\n}\n// after\n\n\n\n// far after";
    assert_eq!(
        formatted(src),
        "agent a {\n  // top\n\n  allow t\n\n  // bottom\n}\n// after\n\n// far after\n"
    );
}

/// The examples in `docs/formatting.md` are what the formatter does: each unlabelled
/// code block is already formatted, except the one after "Before:", which formats to the
/// next one. Blocks with a language label (```sh) are not policies.
#[test]
fn the_documented_examples_hold() {
    let doc = include_str!("../../../docs/formatting.md");
    // (follows "Before:", is a policy, text)
    let mut blocks: Vec<(bool, bool, String)> = Vec::new();
    let mut open: Option<(bool, bool, String)> = None;
    let mut previous_text = "";
    for line in doc.lines() {
        match (open.take(), line.strip_prefix("```")) {
            (None, Some(label)) => {
                open = Some((
                    previous_text.ends_with("Before:"),
                    label.is_empty(),
                    String::new(),
                ));
            }
            (Some(block), Some(_)) => blocks.push(block),
            (Some((before, policy, mut text)), None) => {
                text.push_str(line);
                text.push('\n');
                open = Some((before, policy, text));
            }
            (None, None) => {
                if !line.trim().is_empty() {
                    previous_text = line;
                }
            }
        }
    }
    let policies: Vec<_> = blocks
        .into_iter()
        .filter(|(_, policy, _)| *policy)
        .collect();
    assert!(
        policies.len() >= 5,
        "found {} policy blocks",
        policies.len()
    );
    assert!(
        policies.iter().any(|(before, _, _)| *before),
        "no Before: block"
    );
    for (i, (is_before, _, block)) in policies.iter().enumerate() {
        if *is_before {
            let after = policies
                .get(i + 1)
                .map(|(_, _, b)| b.as_str())
                .unwrap_or_default();
            assert_eq!(formatted(block), after, "the Before/After example");
        } else {
            assert_eq!(formatted(block), *block, "code block {i} is not formatted");
        }
    }
}

#[test]
fn tree_comparison_ignores_ranges_and_nothing_else() {
    let tree = |src: &str| parse(FileId(0), src).tree;
    assert!(same_tree_ignoring_ranges(
        &tree("agent a { allow t when x > $1 }"),
        &tree("\n\n  agent   a {\n allow t when x>$1\n}")
    ));
    for (a, b) in [
        ("isolate a", "isolate b"),
        (
            "agent a { allow t when x > $1 }",
            "agent a { allow t when x > $2 }",
        ),
        (
            "agent a { allow t when x > $1 }",
            "agent a { allow t when x >= $1 }",
        ),
        ("agent a { allow t }", "agent a { deny t }"),
        ("tiers a < b", "tiers a < b < c"),
    ] {
        assert!(!same_tree_ignoring_ranges(&tree(a), &tree(b)), "{a} vs {b}");
    }
}

/// Every byte of a comment is kept: only trailing spaces and tabs go, never other
/// whitespace at the end of a comment (which `str::trim_end` would also remove).
#[test]
fn comments_keep_trailing_unicode_whitespace() {
    for ch in [
        '\u{B}', '\u{C}', '\u{85}', '\u{A0}', '\u{2003}', '\u{2028}', '\u{3000}', '\u{FEFF}',
    ] {
        assert_eq!(
            formatted(&format!("isolate m // c{ch}")),
            format!("isolate m // c{ch}\n"),
            "{ch:?}"
        );
        assert_eq!(
            formatted(&format!("isolate m // c{ch} \t ")),
            format!("isolate m // c{ch}\n"),
            "{ch:?}"
        );
        assert_eq!(
            formatted(&format!("isolate m\n// end{ch}")),
            format!("isolate m\n// end{ch}\n"),
            "{ch:?}"
        );
        assert_eq!(
            formatted(&format!("/* a{ch}\r\n b{ch}\t */\nisolate m\n")),
            format!("/* a{ch}\n b{ch}\t */\nisolate m\n"),
            "{ch:?}"
        );
        let src = format!("isolate m // c{ch}  \n/* d{ch} */\n");
        let tokens = parse(FileId(0), &src).tokens;
        assert_eq!(
            comment_texts(&src, &tokens),
            vec![format!("// c{ch}"), format!("/* d{ch} */")],
            "{ch:?}"
        );
    }
}
