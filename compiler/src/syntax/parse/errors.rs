//! Syntax errors: a pest error becomes one AP0001 diagnostic, "expected …, found …",
//! naming what the grammar wanted in words and the token actually found, with a help line
//! for the usual mistakes. Only wording; it never decides what parses.

use super::Rule;
use crate::diagnostics::{Code, Diagnostic, FileId, Label};
use crate::syntax::ast::TextRange;
use crate::syntax::lexer::{AGENT_CLAUSE_KEYWORDS, ITEM_KEYWORDS, KEYWORDS, TokenKind, lex_lazily};

/// What a grammar rule is called in an error message.
fn describe(rule: Rule) -> &'static str {
    match rule {
        Rule::ident | Rule::any_name => "a name",
        Rule::string => "a string in double quotes",
        Rule::money => "an amount such as `$10,000`",
        Rule::percent => "a percentage such as `20%`",
        Rule::duration => "a duration such as `15m`",
        Rule::number => "a number",
        Rule::literal => "a value",
        Rule::operand => "a value or a name",
        Rule::compare_op => "a comparison (`<`, `<=`, `>`, `>=`, `==`, `!=`)",
        Rule::expr | Rule::or_expr | Rule::and_expr | Rule::not_expr => "a condition",
        Rule::rule_target => "a tool name or `*`",
        Rule::type_name => {
            "a type (`text`, `number`, `money`, `bool`, `duration`, `percent`, `list<text>`)"
        }
        Rule::effect => "an effect (`read`, `write`, `external`, `financial`, `irreversible`)",
        Rule::timeout_outcome => "`allow` or `deny`",
        Rule::rule_kind => "`allow`, `escalate` or `deny`",
        Rule::limit_unit => "`calls` or `tokens`",
        Rule::limit_window => "`task`, `session`, `minute`, `hour` or `day`",
        Rule::breaker_metric => "`error_rate`, `calls`, `tokens` or `denials`",
        Rule::mode_value => "`shadow` or `enforce`",
        Rule::suspend_scope => "`agent` or `engine`",
        Rule::deny_reason => "a deny reason (`flow`, `limit`, `suspended`, ...)",
        Rule::kw_then => "`then`",
        Rule::kw_to => "`to`",
        Rule::kw_when => "`when`",
        Rule::kw_with => "`with`",
        Rule::kw_on => "`on`",
        Rule::kw_into => "`into`",
        Rule::kw_and => "`and`",
        Rule::kw_or => "`or`",
        Rule::kw_not => "`not`",
        Rule::EOI => "the end of the declaration",
        Rule::policy_decl
        | Rule::use_decl
        | Rule::tiers_decl
        | Rule::isolate_decl
        | Rule::resource_decl
        | Rule::sink_decl
        | Rule::tool_decl
        | Rule::threshold_decl
        | Rule::escalation_decl
        | Rule::agent_decl
        | Rule::assert_decl
        | Rule::test_decl
        | Rule::retain_decl => "a declaration (`policy`, `tool`, `agent`, ...)",
        Rule::kw_audit => "`audit`",
        Rule::kw_for => "`for`",
        Rule::owner_clause
        | Rule::purpose_clause
        | Rule::max_tier_clause
        | Rule::rule_decl
        | Rule::autonomy_clause
        | Rule::limit_clause
        | Rule::breaker_clause
        | Rule::mode_clause
        | Rule::credential_clause
        | Rule::stage_clause
        | Rule::promote_clause => "an agent clause (`allow`, `owner`, `limit`, ...)",
        Rule::stage_value => "a stage (`shadow`, `supervised` or `autonomous`)",
        Rule::criterion | Rule::promote_metric => {
            "a criterion (`shadow_agreement`, `errors`, `escalation_rate`, `approval_rate` or `denials`)"
        }
        Rule::criterion_window => "`over N decisions`",
        Rule::decisions_word => "`decisions`",
        Rule::tier_clause | Rule::keyed_clause | Rule::clearance_clause => {
            "`tier`, `clearance` or `keyed`"
        }
        Rule::effect_clause | Rule::reads_clause | Rule::writes_clause => {
            "`effect`, `reads` or `writes`"
        }
        Rule::notify_clause | Rule::timeout_clause => "`notify` or `timeout`",
        Rule::params => "a parameter list",
        Rule::param => "a parameter `name: type`",
        Rule::test_step => "a call `AGENT calls TOOL(...)`",
        Rule::expect_clause => "`expect`",
        Rule::expected => "`allow`, `escalate` or `deny`",
        Rule::call_args | Rule::call_arg => "an argument `name: value`",
        Rule::kw_in => "`in`",
        Rule::kw_matches => "`matches`",
        Rule::kw_from => "`from`",
        Rule::kw_untrusted => "`untrusted`",
        Rule::kw_deploy => "`deploy`",
        Rule::kw_tainted => "`tainted`",
        Rule::kw_given => "`given`",
        Rule::kw_missing => "`missing`",
        Rule::set_decl => "a declaration (`policy`, `tool`, `agent`, ...)",
        Rule::set_members => "`= [\"member\", ...]`",
        Rule::set_deploy => "`from deploy`",
        Rule::untrusted_clause => "`untrusted`",
        Rule::range => "a range `LOW..HIGH`",
        Rule::list_literal => "a list `[\"a\", \"b\"]`",
        Rule::quantifier => "`all` or `any`",
        Rule::element_test => "`in SET`, `matches \"PATTERN\"` or a comparison",
        Rule::membership
        | Rule::pattern
        | Rule::provenance
        | Rule::presence
        | Rule::effect_test
        | Rule::quantified => "a condition",
        Rule::assert_tainted_irreversible
        | Rule::assert_never_calls
        | Rule::assert_every_irreversible
        | Rule::assert_never_reads
        | Rule::assert_no_flow => {
            "an assertion (`never A calls T`, `every irreversible tool escalates`, ...)"
        }
        _ => "more input",
    }
}

pub(super) fn syntax_error(
    file: FileId,
    source: &str,
    chunk_start: usize,
    error: &pest::error::Error<Rule>,
) -> Diagnostic {
    let pos = match error.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    } + chunk_start;
    // Lazily: lexing the whole rest of the file for each error made a file with many
    // errors take quadratic time.
    let found_token =
        lex_lazily(&source[pos..]).find(|t| !t.kind.is_trivia() || t.kind == TokenKind::Newline);
    let (found, width) = match found_token {
        None => ("the end of the file".to_string(), 0),
        Some(t) => {
            let text = t.text(&source[pos..]);
            match t.kind {
                TokenKind::Newline => ("the end of the line".to_string(), 0),
                TokenKind::Error => {
                    let ch = text.chars().next().unwrap_or(' ');
                    if ch.is_control() || ch == '\u{0}' {
                        (
                            format!("the control character U+{:04X}", ch as u32),
                            ch.len_utf8(),
                        )
                    } else {
                        (format!("the character `{ch}`"), ch.len_utf8())
                    }
                }
                _ => (format!("`{}`", truncate(text, 40)), text.len()),
            }
        }
    };
    let mut expected: Vec<&'static str> = match &error.variant {
        pest::error::ErrorVariant::ParsingError { positives, .. } => {
            positives.iter().map(|r| describe(*r)).collect()
        }
        pest::error::ErrorVariant::CustomError { .. } => Vec::new(),
    };
    expected.sort_unstable();
    expected.dedup();
    let expected_text = match expected.as_slice() {
        [] => "something else".to_string(),
        [one] => (*one).to_string(),
        [init @ .., last] => format!("{} or {}", init.join(", "), last),
    };
    let range = TextRange::new(pos, pos + width);
    let word = found_token
        .filter(|t| t.kind == TokenKind::Ident)
        .map(|t| t.text(&source[pos..]))
        .filter(|w| w.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_'));
    if let Some(word) = word
        && KEYWORDS.contains(&word)
        && expected.contains(&describe(Rule::ident))
    {
        return Diagnostic::new(
            Code::SyntaxError,
            format!("expected {expected_text}, found `{word}`, which is a keyword"),
            Label::new(file, range, "a keyword cannot be a name"),
        )
        .with_help(format!(
            "`{word}` is a reserved word of the language, so it cannot name anything; choose another name, such as `{word}_team`"
        ));
    }
    let help = if found == "`=`" {
        "to compare, write `==`; `=` only gives a threshold its value".to_string()
    } else if let Some(keyword) = word.and_then(|w| misspelled_keyword(w, &expected)) {
        format!("did you mean `{keyword}`?")
    } else {
        help_for(&expected)
    };
    Diagnostic::new(
        Code::SyntaxError,
        format!("expected {expected_text}, found {found}"),
        Label::new(file, range, format!("expected {expected_text}")),
    )
    .with_help(help)
}

/// The keyword `word` is most likely a misspelling of, among those the grammar expected
/// here (the words quoted in `expected`, and the clause or item keywords it names).
fn misspelled_keyword(word: &str, expected: &[&'static str]) -> Option<&'static str> {
    let mut candidates: Vec<&'static str> = Vec::new();
    for description in expected {
        candidates.extend(
            description
                .split('`')
                .skip(1)
                .step_by(2)
                .filter(|w| w.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')),
        );
        if description.contains("agent clause") {
            candidates.extend(AGENT_CLAUSE_KEYWORDS);
        }
        if description.contains("declaration") {
            candidates.extend(ITEM_KEYWORDS);
        }
    }
    candidates.retain(|c| *c != word);
    crate::sema::did_you_mean(word, candidates.into_iter())
}

fn help_for(expected: &[&str]) -> String {
    if expected.iter().any(|e| e.contains("declaration")) {
        "a policy file is a list of declarations: `policy`, `use`, `tiers`, `isolate`, `resource`, `sink`, `tool`, `threshold`, `escalation`, `set`, `agent`, `assert`, `test`, `retain`".to_string()
    } else if expected.iter().any(|e| e.contains("agent clause")) {
        "inside `agent { ... }`: `owner`, `purpose`, `max tier`, `allow`/`escalate`/`deny`, `autonomy`, `limit`, `breaker`, `mode`, `credential`, `stage`, `promote`".to_string()
    } else {
        "see `docs/language.md` for the syntax of each declaration".to_string()
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max).collect();
        format!("{cut}…")
    }
}
