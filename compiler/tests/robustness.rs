//! Robustness: nothing a user can type makes the parser or the formatter panic, overflow
//! the stack or take quadratic time, and the formatter keeps its promises (idempotent,
//! same tree, every comment) on every valid policy a generator can build.
//!
//! The property tests run a few hundred cases each so the suite stays fast; set
//! `PROPTEST_CASES` for a longer run. Failures are persisted by proptest and replayed.

use agentpolicy::diagnostics::{Code, FileId};
use agentpolicy::format::{FormatError, comment_texts, format, same_tree_ignoring_ranges};
use agentpolicy::syntax::lexer::TokenKind;
use agentpolicy::syntax::{Parsed, parse};
use proptest::prelude::*;

// ------------------------------------------------------------------ shared checks

/// Parses `source` and checks what must hold for any input at all.
fn parse_checked(source: &str) -> Parsed {
    let parsed = parse(FileId(0), source);
    let rebuilt: String = parsed.tokens.iter().map(|t| t.text(source)).collect();
    assert_eq!(
        rebuilt, source,
        "the token stream must cover the input exactly"
    );
    for d in &parsed.diagnostics {
        let (start, end) = (d.primary.range.start as usize, d.primary.range.end as usize);
        assert!(
            start <= end && end <= source.len(),
            "diagnostic range out of bounds: {d:?}"
        );
        assert!(
            source.is_char_boundary(start) && source.is_char_boundary(end),
            "diagnostic range splits a character: {d:?}"
        );
    }
    if parsed.diagnostics.is_empty() {
        // The grammar and the lexer agree on what a valid file is made of: the formatter
        // relies on it.
        assert!(
            parsed.tokens.iter().all(|t| t.kind != TokenKind::Error),
            "a file without diagnostics has an error token: {source:?}"
        );
    }
    parsed
}

/// Formats `source`; when it succeeds, checks idempotence, the tree and the comments.
fn format_checked(source: &str) -> Result<String, FormatError> {
    let parsed = parse_checked(source);
    let result = format(source);
    assert_ne!(
        result,
        Err(FormatError::WouldChangeMeaning),
        "the formatter would change the meaning of {source:?}"
    );
    match &result {
        Ok(once) => {
            assert!(parsed.diagnostics.is_empty());
            let twice = format(once);
            assert_eq!(twice.as_ref(), Ok(once), "not idempotent for {source:?}");
            let after = parse_checked(once);
            assert!(after.diagnostics.is_empty());
            assert!(
                same_tree_ignoring_ranges(&parsed.tree, &after.tree),
                "tree changed for {source:?}\n--- formatted ---\n{once}"
            );
            assert_eq!(
                comment_texts(source, &parsed.tokens),
                comment_texts(once, &after.tokens),
                "comments changed for {source:?}"
            );
            assert!(once.is_empty() || once.ends_with('\n') && !once.ends_with("\n\n"));
            assert!(!once.contains('\r') || source.contains("/*"));
            assert!(
                once.lines().all(|l| l.trim_end() == l),
                "trailing whitespace"
            );
        }
        Err(FormatError::Syntax(located)) => {
            assert_eq!(located.len(), parsed.diagnostics.len());
            assert!(!located.is_empty());
        }
        // Checked above.
        Err(FormatError::WouldChangeMeaning) => {}
    }
    result
}

/// `PROPTEST_CASES` overrides the default number of cases, for a longer run by hand.
fn cases(default: u32) -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

// ------------------------------------------------------------------ (a) random bytes

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(512)))]

    #[test]
    fn random_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..600)) {
        let source = String::from_utf8_lossy(&bytes);
        let _ = format_checked(&source);
    }

    #[test]
    fn random_ascii_never_panics(source in "[ -~\t\r\n]{0,400}") {
        let _ = format_checked(&source);
    }
}

// ------------------------------------------------------------------ (b) token soup

/// Real tokens of the language besides its keywords (`lexer::KEYWORDS`, added where
/// the soup is stirred), and a few that are not tokens at all.
const SOUP: &[&str] = &[
    "read",
    "write",
    "external",
    "financial",
    "irreversible",
    "text",
    "money",
    "number",
    "task",
    "minute",
    "error_rate",
    "confidence",
    "amount",
    "alpha",
    "beta",
    "std",
    "legal",
    "x",
    "$10,000",
    "$1.5M",
    "$99.95",
    "0.85",
    "50_000",
    "20%",
    "15m",
    "500ms",
    "\"q:ops\"",
    "\"M-1\"",
    "{",
    "}",
    "(",
    ")",
    "[",
    "]",
    ",",
    ":",
    ".",
    "?",
    "*",
    "<",
    "<=",
    ">",
    ">=",
    "==",
    "!=",
    "=",
    "// note\n",
    "/* note */",
    "/* two\nlines */",
    "\n",
    "\r\n",
    "\r",
    "\t",
    "\n\n",
    "@",
    "\u{0}",
    "é",
    "/*",
    "\"open",
    "$",
    "%",
    "\u{feff}",
];

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(
        (
            prop::sample::select(
                agentpolicy::syntax::lexer::KEYWORDS
                    .iter()
                    .chain(SOUP)
                    .copied()
                    .collect::<Vec<&'static str>>(),
            ),
            prop::sample::select(&["", " ", " ", "\n"][..]),
        ),
        0..80,
    )
    .prop_map(|parts| parts.into_iter().flat_map(|(t, s)| [t, s]).collect())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(512)))]

    #[test]
    fn random_token_sequences_never_panic(source in soup()) {
        let _ = format_checked(&source);
    }
}

// ------------------------------------------------------------------ (c) valid policies

/// A token of a generated policy, and whether a line break may precede it. It may not
/// before an item keyword that does not begin an item (`tool` in `assert every
/// irreversible tool escalates`, `agent` in `suspend agent`): at the start of a line
/// the item splitter would begin a new item there.
#[derive(Debug, Clone)]
struct Tok {
    text: String,
    breakable: bool,
}

fn toks(words: &[&str]) -> Vec<Tok> {
    words
        .iter()
        .map(|w| Tok {
            text: (*w).to_string(),
            breakable: true,
        })
        .collect()
}

fn concat(parts: Vec<Vec<Tok>>) -> Vec<Tok> {
    parts.into_iter().flatten().collect()
}

fn name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(
        &[
            "alpha",
            "beta",
            "search_docs",
            "wire_funds",
            "ops_leads",
            "matter",
            "m2",
            "_x",
        ][..],
    )
}

/// Argument names: any word but an item keyword, language words included.
fn arg_name() -> impl Strategy<Value = &'static str> {
    prop::sample::select(
        &[
            "amount",
            "to",
            "calls",
            "confidence",
            "deny",
            "mode",
            "note",
        ][..],
    )
}

fn literal() -> impl Strategy<Value = &'static str> {
    prop::sample::select(
        &[
            "$10,000",
            "$1.5M",
            "$99.95",
            "$100",
            "0.85",
            "50_000",
            "20%",
            "15m",
            "500ms",
            "\"text\"",
            "\"esc \\\" q\"",
            "true",
            "false",
        ][..],
    )
}

fn string_lit() -> impl Strategy<Value = &'static str> {
    prop::sample::select(
        &[
            "\"ops@acme.example\"",
            "\"q:ops\"",
            "\"a \\\\ b\"",
            "\"✓ é\"",
        ][..],
    )
}

fn compare_op() -> impl Strategy<Value = &'static str> {
    prop::sample::select(&["<", "<=", ">", ">=", "==", "!="][..])
}

fn operand() -> impl Strategy<Value = Vec<Tok>> {
    prop_oneof![
        arg_name().prop_map(|n| toks(&[n])),
        literal().prop_map(|l| toks(&[l]))
    ]
}

fn expr() -> impl Strategy<Value = Vec<Tok>> {
    let leaf = prop_oneof![
        3 => (arg_name(), compare_op(), literal()).prop_map(|(a, op, l)| toks(&[a, op, l])),
        1 => (operand(), compare_op(), operand())
            .prop_map(|(a, op, b)| concat(vec![a, toks(&[op]), b])),
        1 => operand(),
    ];
    leaf.prop_recursive(4, 16, 2, |inner| {
        prop_oneof![
            inner.clone().prop_map(|e| concat(vec![toks(&["not"]), e])),
            inner
                .clone()
                .prop_map(|e| concat(vec![toks(&["("]), e, toks(&[")"])])),
            (inner.clone(), inner.clone()).prop_map(|(a, b)| concat(vec![a, toks(&["and"]), b])),
            (inner.clone(), inner).prop_map(|(a, b)| concat(vec![a, toks(&["or"]), b])),
        ]
    })
}

fn names_list() -> impl Strategy<Value = Vec<Tok>> {
    prop::collection::vec(name(), 1..3).prop_map(|names| {
        let mut out = Vec::new();
        for (i, n) in names.into_iter().enumerate() {
            if i > 0 {
                out.extend(toks(&[","]));
            }
            out.extend(toks(&[n]));
        }
        out
    })
}

fn block(head: Vec<Tok>, members: Vec<Vec<Tok>>) -> Vec<Tok> {
    concat(vec![head, toks(&["{"]), concat(members), toks(&["}"])])
}

fn resource_item() -> impl Strategy<Value = Vec<Tok>> {
    (
        prop::bool::ANY,
        name(),
        prop::collection::vec(
            prop_oneof![
                name().prop_map(|n| toks(&["tier", n])),
                names_list().prop_map(|l| concat(vec![toks(&["keyed"]), l])),
            ],
            0..3,
        ),
    )
        .prop_map(|(sink, n, members)| {
            let members = if sink {
                members
                    .into_iter()
                    .map(|m| {
                        m.into_iter()
                            .map(|t| Tok {
                                text: if t.text == "tier" {
                                    "clearance".to_string()
                                } else {
                                    t.text
                                },
                                ..t
                            })
                            .collect()
                    })
                    .collect()
            } else {
                members
            };
            block(toks(&[if sink { "sink" } else { "resource" }, n]), members)
        })
}

fn tool_item() -> impl Strategy<Value = Vec<Tok>> {
    let param = (
        arg_name(),
        prop::sample::select(&["text", "number", "money", "bool", "duration", "percent"][..]),
        prop::bool::ANY,
    )
        .prop_map(|(n, ty, opt)| {
            let mut t = toks(&[n, ":", ty]);
            if opt {
                t.extend(toks(&["?"]));
            }
            t
        });
    let params = prop::option::of((prop::collection::vec(param, 0..4), prop::bool::ANY)).prop_map(
        |p| match p {
            None => Vec::new(),
            Some((params, trailing_comma)) => {
                let mut out = toks(&["("]);
                let count = params.len();
                for (i, param) in params.into_iter().enumerate() {
                    out.extend(param);
                    if i + 1 < count || trailing_comma && count > 0 {
                        out.extend(toks(&[","]));
                    }
                }
                out.extend(toks(&[")"]));
                out
            }
        },
    );
    let effect =
        prop::sample::select(&["read", "write", "external", "financial", "irreversible"][..]);
    let member = prop_oneof![
        prop::collection::vec(effect, 1..3).prop_map(|effects| {
            let mut out = toks(&["effect"]);
            for (i, e) in effects.into_iter().enumerate() {
                if i > 0 {
                    out.extend(toks(&[","]));
                }
                out.extend(toks(&[e]));
            }
            out
        }),
        names_list().prop_map(|l| concat(vec![toks(&["reads"]), l])),
        names_list().prop_map(|l| concat(vec![toks(&["writes"]), l])),
    ];
    (name(), params, prop::collection::vec(member, 0..4))
        .prop_map(|(n, params, members)| block(concat(vec![toks(&["tool", n]), params]), members))
}

fn escalation_item() -> impl Strategy<Value = Vec<Tok>> {
    let member = prop_oneof![
        string_lit().prop_map(|s| toks(&["notify", s])),
        (
            prop::sample::select(&["15m", "30s", "2h", "1d"][..]),
            prop::option::of(prop::sample::select(&["allow", "deny"][..])),
        )
            .prop_map(|(d, then)| match then {
                Some(o) => toks(&["timeout", d, "then", o]),
                None => toks(&["timeout", d]),
            }),
    ];
    (name(), prop::collection::vec(member, 0..3))
        .prop_map(|(n, members)| block(toks(&["escalation", n]), members))
}

fn agent_member() -> impl Strategy<Value = Vec<Tok>> {
    let rule = (
        prop::sample::select(&["allow", "escalate", "deny"][..]),
        prop_oneof![name(), Just("*")],
        prop::option::of(name()),
        prop::option::of(expr()),
    )
        .prop_map(|(kind, target, route, condition)| {
            let mut out = toks(&[kind, target]);
            if let Some(r) = route {
                out.extend(toks(&["to", r]));
            }
            if let Some(c) = condition {
                out.extend(toks(&["when"]));
                out.extend(c);
            }
            out
        });
    let limit = prop::collection::vec(
        (
            prop::sample::select(&["100", "50_000", "20"][..]),
            prop::sample::select(&["calls", "tokens"][..]),
            prop::sample::select(&["task", "session", "minute", "hour", "day"][..]),
        ),
        1..4,
    )
    .prop_map(|specs| {
        let mut out = toks(&["limit"]);
        for (i, (n, unit, window)) in specs.into_iter().enumerate() {
            if i > 0 {
                out.extend(toks(&[","]));
            }
            out.extend(toks(&[n, unit, "per", window]));
        }
        out
    });
    prop_oneof![
        4 => rule,
        1 => string_lit().prop_map(|s| toks(&["owner", s])),
        1 => string_lit().prop_map(|s| toks(&["purpose", s])),
        1 => name().prop_map(|n| toks(&["max", "tier", n])),
        1 => (name(), expr(), string_lit())
            .prop_map(|(n, e, s)| concat(vec![toks(&["autonomy", n, "when"]), e, toks(&["because", s])])),
        1 => limit,
        1 => (
            prop::sample::select(&["error_rate", "calls", "tokens", "denials"][..]),
            compare_op(),
            prop::sample::select(&["20%", "5", "0.5%"][..]),
            prop::sample::select(&["", "agent", "engine"][..]),
        )
            .prop_map(|(m, op, v, scope)| {
                let mut out = toks(&["breaker", m, op, v, "over", "5m", "then", "suspend"]);
                if !scope.is_empty() {
                    // `agent` is an item keyword: at column 0 it would start an item.
                    out.push(Tok { text: scope.to_string(), breakable: false });
                }
                out
            }),
        1 => prop::sample::select(&["shadow", "enforce"][..]).prop_map(|m| toks(&["mode", m])),
        1 => (name(), prop::bool::ANY).prop_map(|(n, expires)| if expires {
            toks(&["credential", n, "expires", "30d"])
        } else {
            toks(&["credential", n])
        }),
    ]
}

fn agent_item() -> impl Strategy<Value = Vec<Tok>> {
    (name(), prop::collection::vec(agent_member(), 0..6))
        .prop_map(|(n, members)| block(toks(&["agent", n]), members))
}

fn assert_item() -> impl Strategy<Value = Vec<Tok>> {
    prop_oneof![
        (
            name(),
            prop_oneof![name(), Just("*")],
            prop::option::of(expr())
        )
            .prop_map(|(a, t, condition)| {
                let mut out = toks(&["assert", "never", a, "calls", t]);
                if let Some(c) = condition {
                    out.extend(toks(&["when"]));
                    out.extend(c);
                }
                out
            }),
        Just({
            let mut out = toks(&["assert", "every", "irreversible", "tool", "escalates"]);
            out[3].breakable = false;
            out
        }),
        (name(), name()).prop_map(|(a, t)| toks(&["assert", a, "never", "reads", t])),
        (name(), name()).prop_map(|(t, s)| toks(&["assert", "no", "flow", "from", t, "to", s])),
    ]
}

fn call_args() -> impl Strategy<Value = Vec<Tok>> {
    prop::collection::vec((arg_name(), literal()), 0..3).prop_map(|args| {
        let mut out = toks(&["("]);
        for (i, (n, v)) in args.into_iter().enumerate() {
            if i > 0 {
                out.extend(toks(&[","]));
            }
            out.extend(toks(&[n, ":", v]));
        }
        out.extend(toks(&[")"]));
        out
    })
}

fn test_item() -> impl Strategy<Value = Vec<Tok>> {
    let step = (
        name(),
        name(),
        prop::option::of(call_args()),
        prop::bool::ANY,
        prop::option::of((name(), call_args())),
    )
        .prop_map(|(agent, tool, args, confident, on)| {
            let mut out = toks(&[agent, "calls", tool]);
            out.extend(args.unwrap_or_default());
            if confident {
                out.extend(toks(&["with", "confidence", "0.6"]));
            }
            if let Some((resource, keys)) = on {
                out.extend(toks(&["on", resource]));
                out.extend(keys);
            }
            out
        });
    let expect = prop_oneof![
        Just(toks(&["expect", "allow"])),
        prop::option::of(names_list()).prop_map(|routes| match routes {
            Some(l) => concat(vec![toks(&["expect", "escalate", "to"]), l]),
            None => toks(&["expect", "escalate"]),
        }),
        prop::sample::select(
            &[
                "",
                "flow",
                "limit",
                "suspended",
                "not_granted",
                "no_rule",
                "rule"
            ][..]
        )
        .prop_map(|r| if r.is_empty() {
            toks(&["expect", "deny"])
        } else {
            toks(&["expect", "deny", r])
        }),
    ];
    (string_lit(), prop::collection::vec(step, 1..4), expect).prop_map(|(n, steps, expect)| {
        let mut members = Vec::new();
        for (i, s) in steps.into_iter().enumerate() {
            if i > 0 {
                members.push(toks(&["then"]));
            }
            members.push(s);
        }
        members.push(expect);
        block(toks(&["test", n]), members)
    })
}

fn item() -> impl Strategy<Value = Vec<Tok>> {
    prop_oneof![
        1 => (name(), prop::option::of(string_lit())).prop_map(|(n, v)| match v {
            Some(v) => toks(&["policy", n, "version", v]),
            None => toks(&["policy", n]),
        }),
        1 => prop::collection::vec(name(), 1..3).prop_map(|parts| {
            let mut out = toks(&["use", "std"]);
            for p in parts {
                out.extend(toks(&[".", p]));
            }
            out
        }),
        1 => prop::collection::vec(name(), 2..4).prop_map(|tiers| {
            let mut out = toks(&["tiers"]);
            for (i, t) in tiers.into_iter().enumerate() {
                if i > 0 {
                    out.extend(toks(&["<"]));
                }
                out.extend(toks(&[t]));
            }
            out
        }),
        1 => name().prop_map(|n| toks(&["isolate", n])),
        1 => resource_item(),
        1 => tool_item(),
        1 => (name(), literal()).prop_map(|(n, l)| toks(&["threshold", n, "=", l])),
        1 => escalation_item(),
        2 => agent_item(),
        1 => assert_item(),
        1 => test_item(),
    ]
}

/// What goes between two tokens. The comments are numbered later so each is distinct.
#[derive(Debug, Clone, Copy)]
enum Gap {
    Nothing,
    Space,
    Spaces,
    Tab,
    Newline,
    Crlf,
    BlankLines,
    DeepIndent,
    BlockComment,
    LineComment,
    OwnLineComment,
    MultiLineComment,
}

fn gap() -> impl Strategy<Value = Gap> {
    prop_oneof![
        12 => Just(Gap::Space),
        3 => Just(Gap::Nothing),
        2 => Just(Gap::Spaces),
        1 => Just(Gap::Tab),
        3 => Just(Gap::Newline),
        1 => Just(Gap::Crlf),
        1 => Just(Gap::BlankLines),
        1 => Just(Gap::DeepIndent),
        1 => Just(Gap::BlockComment),
        1 => Just(Gap::LineComment),
        1 => Just(Gap::OwnLineComment),
        1 => Just(Gap::MultiLineComment),
    ]
}

fn is_word_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '_' | '$' | '"' | '%')
}

/// Lays the tokens out with the chosen gaps, keeping the text valid: no line break where
/// a token may not follow one, and never two word-like tokens run together.
fn render(tokens: &[Tok], gaps: &[Gap]) -> String {
    let mut out = String::new();
    let mut comments = 0;
    for (i, tok) in tokens.iter().enumerate() {
        if i > 0 {
            let mut gap = gaps[i % gaps.len()];
            let breaks = !matches!(
                gap,
                Gap::Nothing | Gap::Space | Gap::Spaces | Gap::Tab | Gap::BlockComment
            );
            if breaks && !tok.breakable {
                gap = Gap::Space;
            }
            let previous_last = tokens[i - 1].text.chars().last().unwrap_or(' ');
            let next_first = tok.text.chars().next().unwrap_or(' ');
            if matches!(gap, Gap::Nothing)
                && is_word_char(previous_last)
                && is_word_char(next_first)
            {
                gap = Gap::Space;
            }
            comments += 1;
            match gap {
                Gap::Nothing => {}
                Gap::Space => out.push(' '),
                Gap::Spaces => out.push_str("   "),
                Gap::Tab => out.push('\t'),
                Gap::Newline => out.push('\n'),
                Gap::Crlf => out.push_str("\r\n"),
                Gap::BlankLines => out.push_str("\n\n\n"),
                Gap::DeepIndent => out.push_str("\n\t      "),
                Gap::BlockComment => out.push_str(&format!(" /* c{comments} */ ")),
                Gap::LineComment => out.push_str(&format!(" // c{comments}  \n")),
                Gap::OwnLineComment => out.push_str(&format!("\n   // c{comments}\n")),
                Gap::MultiLineComment => {
                    out.push_str(&format!(" /* c{comments}\n     more */ "));
                }
            }
        }
        out.push_str(&tok.text);
    }
    out
}

fn policy() -> impl Strategy<Value = String> {
    prop::collection::vec(item(), 1..8)
        .prop_flat_map(|items| {
            let tokens: Vec<Tok> = items.into_iter().flatten().collect();
            let count = tokens.len().max(1);
            (Just(tokens), prop::collection::vec(gap(), count))
        })
        .prop_map(|(tokens, gaps)| render(&tokens, &gaps))
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases(256)))]

    #[test]
    fn valid_policies_format_idempotently_and_keep_meaning_and_comments(source in policy()) {
        let parsed = parse(FileId(0), &source);
        prop_assert!(parsed.diagnostics.is_empty(), "generator made an invalid policy:\n{}\n{:#?}", source, parsed.diagnostics);
        let formatted = format_checked(&source);
        prop_assert!(formatted.is_ok(), "{:?}", formatted);
    }
}

// ------------------------------------------------------------------ deterministic cases

fn codes(source: &str) -> Vec<Code> {
    parse_checked(source)
        .diagnostics
        .iter()
        .map(|d| d.code)
        .collect()
}

#[test]
fn ten_thousand_nested_parentheses_are_a_diagnostic_not_a_stack_overflow() {
    let deep = format!(
        "agent a {{ allow t when {}x{} }}",
        "(".repeat(10_000),
        ")".repeat(10_000)
    );
    assert_eq!(codes(&deep), vec![Code::NestingTooDeep]);
    assert!(matches!(format(&deep), Err(FormatError::Syntax(_))));
    // Unbalanced, and outside any declaration.
    assert!(codes(&"(".repeat(10_000)).contains(&Code::NestingTooDeep));
}

#[test]
fn ten_thousand_nots_are_a_diagnostic_not_a_stack_overflow() {
    let deep = format!("agent a {{ allow t when {}x }}", "not ".repeat(10_000));
    assert_eq!(codes(&deep), vec![Code::NestingTooDeep]);
    let mixed = format!(
        "assert never a calls t when {}x{}",
        "not (".repeat(5_000),
        ")".repeat(5_000)
    );
    assert_eq!(codes(&mixed), vec![Code::NestingTooDeep]);
}

#[test]
fn the_deepest_allowed_nesting_parses_and_formats_on_a_test_thread() {
    // Test threads have 2 MiB stacks, less than a main thread: the limit must leave room.
    let limit = agentpolicy::syntax::split::MAX_NESTING;
    let parens = format!(
        "agent a {{\n  allow t when {}x > 1{}\n}}\n",
        "(".repeat(limit),
        ")".repeat(limit)
    );
    assert_eq!(codes(&parens), vec![]);
    assert_eq!(format_checked(&parens).as_deref(), Ok(parens.as_str()));
    let nots = format!(
        "agent a {{\n  allow t when {}x{}\n}}\n",
        "not (".repeat(limit / 2),
        ")".repeat(limit / 2)
    );
    assert_eq!(codes(&nots), vec![]);
    assert_eq!(format_checked(&nots).as_deref(), Ok(nots.as_str()));
}

#[test]
fn a_nul_byte_is_reported_as_a_control_character() {
    let parsed = parse_checked("policy p\nagent a {\0}\n");
    assert_eq!(parsed.diagnostics.len(), 1);
    assert!(
        parsed.diagnostics[0].message.contains("U+0000"),
        "{}",
        parsed.diagnostics[0].message
    );
    assert!(format_checked("\0").is_err());
}

#[test]
fn tabs_crlf_and_empty_input_parse_cleanly() {
    assert_eq!(codes(""), vec![]);
    assert!(parse_checked("").tree.items.is_empty());
    let src = "policy p\r\n\tagent a {\r\n\t\tallow t\t// c\r\n\t}\r\n";
    assert_eq!(codes(src), vec![]);
    assert_eq!(parse_checked(src).tree.items.len(), 2);
    assert_eq!(
        format_checked(src).as_deref(),
        Ok("policy p\nagent a {\n  allow t // c\n}\n")
    );
    // A lone CR is a line break to the lexer and whitespace to the grammar.
    assert_eq!(codes("policy p\ragent a { allow t }\r"), vec![]);
}

#[test]
fn a_ten_megabyte_file_parses() {
    // Real declarations interleaved with comment lines: every byte goes through the
    // lexer and the item splitter, and about a fifth of them through the grammar, which
    // keeps this test to a few seconds in a debug build.
    let example = include_str!("../../tests/fixtures/verify/design_example.agentpolicy");
    let comment = format!("// {}\n", "commentary ".repeat(40));
    let mut source = String::with_capacity(10 * 1024 * 1024 + example.len());
    let mut copies = 0;
    while source.len() < 10 * 1024 * 1024 {
        source.push_str(example);
        for _ in 0..8 {
            source.push_str(&comment);
        }
        copies += 1;
    }
    let parsed = parse(FileId(0), &source);
    assert!(
        parsed.diagnostics.is_empty(),
        "{:?}",
        parsed.diagnostics.first()
    );
    assert_eq!(parsed.tree.items.len(), copies * 20);
}

#[test]
fn many_syntax_errors_are_reported_in_linear_time() {
    // Each error used to lex the whole rest of the file: 11,000 errors took 47 s.
    let source = "agent a { allow }\n".repeat(10_000);
    let parsed = parse(FileId(0), &source);
    assert_eq!(parsed.diagnostics.len(), 10_000);
    // The formatter locates each of them (line and column) in linear time too.
    match format(&source) {
        Err(FormatError::Syntax(located)) => {
            assert_eq!(located.len(), 10_000);
            assert_eq!((located[9_999].line, located[9_999].column), (10_000, 17));
        }
        other => panic!("expected syntax errors, got {other:?}"),
    }
}

/// Every policy file in the repository: the formatter refuses it (syntax errors) or
/// formats it idempotently, keeping its tree and its comments.
#[test]
fn every_policy_file_in_the_repository_formats_or_is_refused() {
    fn collect(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            let name = entry.file_name();
            if path.is_dir() && name != "target" && !name.to_string_lossy().starts_with('.') {
                collect(&path, out);
            } else if path.extension().is_some_and(|e| e == "agentpolicy") {
                out.push(path);
            }
        }
    }
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut files = Vec::new();
    for dir in ["tests", "stdlib", "examples"] {
        collect(&root.join(dir), &mut files);
    }
    assert!(files.len() > 10, "found only {} policy files", files.len());
    let mut formatted = 0;
    for file in &files {
        let Ok(source) = std::fs::read_to_string(file) else {
            continue; // deliberately not UTF-8
        };
        if format_checked(&source).is_ok() {
            formatted += 1;
        }
    }
    assert!(formatted > 0);
}
