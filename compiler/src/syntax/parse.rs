//! Parsing: text in, a syntax tree plus diagnostics out. Never fails.
//!
//! The pest grammar (`agentpolicy.pest`) is run on one item at a time (see `split`); the
//! pairs it yields are lowered to the plain-data tree in `ast`. Literal values are
//! decoded here, exactly (money in cents, numbers in millionths, durations in ms).

use pest::Parser as _;
use pest::iterators::Pair;

use super::ast::*;
use super::lexer::{Token, TokenKind, lex, lex_lazily};
use super::split::{Chunk, MAX_NESTING, split_items};
use crate::diagnostics::{Code, Diagnostic, FileId, Label};

#[derive(pest_derive::Parser)]
#[grammar = "syntax/agentpolicy.pest"]
struct Grammar;

/// The result of parsing one file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Parsed {
    pub tree: SourceFile,
    pub tokens: Vec<Token>,
    pub diagnostics: Vec<Diagnostic>,
}

/// Parses `source`. Always returns a tree; syntax errors become diagnostics and the items
/// around them still parse.
pub fn parse(file: FileId, source: &str) -> Parsed {
    let tokens = lex(source);
    let mut diagnostics = Vec::new();
    let mut items = Vec::new();
    let significant_ends: Vec<u32> = tokens
        .iter()
        .filter(|t| !t.kind.is_trivia())
        .map(|t| t.end)
        .collect();
    for chunk in split_items(source, &tokens) {
        match parse_chunk(file, source, chunk, &significant_ends) {
            Ok(parsed) => items.extend(parsed),
            Err(diagnostic) => diagnostics.push(*diagnostic),
        }
    }
    // An unterminated block comment runs to the end of the file, after the last item,
    // so the grammar never sees it; without this, whatever it swallowed would vanish
    // without a word.
    if let Some(last) = tokens.last()
        && last.kind == TokenKind::BlockComment
        && !(last.end - last.start >= 4 && last.text(source).ends_with("*/"))
    {
        let open = TextRange::new(last.start as usize, last.start as usize + 2);
        diagnostics.push(
            Diagnostic::new(
                Code::SyntaxError,
                "this block comment is never closed",
                Label::new(
                    file,
                    open,
                    "the comment opened here runs to the end of the file",
                ),
            )
            .with_help("close it with `*/`; block comments do not nest"),
        );
    }
    Parsed {
        tree: SourceFile { items },
        tokens,
        diagnostics,
    }
}

/// Stack the parser and the lowering may need for [`MAX_NESTING`] levels of a condition
/// in a debug build; grown on the heap when the calling thread has less left (test and
/// language-server threads have small stacks).
const PARSE_STACK: usize = 8 * 1024 * 1024;

fn parse_chunk(
    file: FileId,
    source: &str,
    chunk: Chunk,
    significant_ends: &[u32],
) -> Result<Vec<Item>, Box<Diagnostic>> {
    stacker::maybe_grow(PARSE_STACK / 4, PARSE_STACK, || {
        parse_chunk_here(file, source, chunk, significant_ends)
    })
}

fn parse_chunk_here(
    file: FileId,
    source: &str,
    chunk: Chunk,
    significant_ends: &[u32],
) -> Result<Vec<Item>, Box<Diagnostic>> {
    let text = &source[chunk.start..chunk.end];
    if chunk.max_nesting > MAX_NESTING {
        let at = TextRange::new(chunk.deepest_at, chunk.deepest_at + 1);
        return Err(Box::new(
            Diagnostic::new(
                Code::NestingTooDeep,
                format!(
                    "this condition nests {} levels deep; the limit is {MAX_NESTING}",
                    chunk.max_nesting
                ),
                Label::new(file, at, "nested too deeply here"),
            )
            .with_help("split the condition into several rules, or remove redundant parentheses"),
        ));
    }
    let pairs = Grammar::parse(Rule::item_alone, text)
        .map_err(|e| Box::new(syntax_error(file, source, chunk.start, &e)))?;
    let lower = Lower {
        file,
        offset: chunk.start as u32,
        significant_ends,
    };
    pairs
        .filter(|p| p.as_rule() != Rule::EOI)
        .map(|p| lower.item(p))
        .collect()
}

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

fn stage_value(text: &str) -> Stage {
    match text {
        "shadow" => Stage::Shadow,
        "supervised" => Stage::Supervised,
        _ => Stage::Autonomous,
    }
}

fn syntax_error(
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
    let help = if found == "`=`" {
        "to compare, write `==`; `=` only gives a threshold its value".to_string()
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

/// Lowers pest pairs to the syntax tree; shifts ranges from chunk- to file-relative.
struct Lower<'t> {
    file: FileId,
    offset: u32,
    /// End offsets of the file's non-trivia tokens, ascending: pest spans may include
    /// trailing whitespace and comments, which ranges must not.
    significant_ends: &'t [u32],
}

type LowerResult<T> = Result<T, Box<Diagnostic>>;

impl Lower<'_> {
    fn range(&self, pair: &Pair<'_, Rule>) -> TextRange {
        let span = pair.as_span();
        let range = TextRange::new(span.start(), span.end()).shifted(self.offset);
        let i = self.significant_ends.partition_point(|e| *e <= range.end);
        let end = match i.checked_sub(1).map(|i| self.significant_ends[i]) {
            Some(e) if e > range.start => e,
            _ => range.end,
        };
        TextRange {
            start: range.start,
            end,
        }
    }

    fn name(&self, pair: Pair<'_, Rule>) -> Name {
        Name {
            text: pair.as_str().to_string(),
            range: self.range(&pair),
        }
    }

    fn invalid(&self, pair: &Pair<'_, Rule>, message: String, help: &str) -> Box<Diagnostic> {
        Box::new(
            Diagnostic::new(
                Code::InvalidLiteral,
                message,
                Label::new(self.file, self.range(pair), "invalid here"),
            )
            .with_help(help.to_string()),
        )
    }

    fn item(&self, pair: Pair<'_, Rule>) -> LowerResult<Item> {
        let range = self.range(&pair);
        let rule = pair.as_rule();
        let mut inner = pair.into_inner();
        let kind = match rule {
            Rule::policy_decl => {
                let name = self.name(next(&mut inner)?);
                let version = inner.next().map(|p| self.string(p)).transpose()?;
                ItemKind::Policy(PolicyDecl { name, version })
            }
            Rule::use_decl => {
                let path_pair = next(&mut inner)?;
                let path_range = self.range(&path_pair);
                let path = path_pair.into_inner().map(|p| self.name(p)).collect();
                ItemKind::Use(UseDecl {
                    path,
                    range: path_range,
                })
            }
            Rule::tiers_decl => ItemKind::Tiers(TiersDecl {
                tiers: inner.map(|p| self.name(p)).collect(),
            }),
            Rule::isolate_decl => ItemKind::Isolate(self.name(next(&mut inner)?)),
            Rule::resource_decl => {
                let name = self.name(next(&mut inner)?);
                let mut decl = ResourceDecl {
                    name,
                    tier: Vec::new(),
                    keyed: Vec::new(),
                    untrusted: Vec::new(),
                    store: Vec::new(),
                };
                for member in inner {
                    match member.as_rule() {
                        Rule::tier_clause => {
                            decl.tier.extend(member.into_inner().map(|p| self.name(p)))
                        }
                        Rule::untrusted_clause => decl.untrusted.push(self.range(&member)),
                        Rule::store_clause => decl.store.extend(
                            member
                                .into_inner()
                                .filter(|p| p.as_rule() == Rule::ident)
                                .map(|p| self.name(p)),
                        ),
                        _ => decl.keyed.extend(member.into_inner().map(|p| self.name(p))),
                    }
                }
                ItemKind::Resource(decl)
            }
            Rule::sink_decl => {
                let name = self.name(next(&mut inner)?);
                let mut decl = SinkDecl {
                    name,
                    clearance: Vec::new(),
                    keyed: Vec::new(),
                };
                for member in inner {
                    match member.as_rule() {
                        Rule::clearance_clause => decl
                            .clearance
                            .extend(member.into_inner().map(|p| self.name(p))),
                        _ => decl.keyed.extend(member.into_inner().map(|p| self.name(p))),
                    }
                }
                ItemKind::Sink(decl)
            }
            Rule::tool_decl => ItemKind::Tool(self.tool(inner)?),
            Rule::threshold_decl => {
                let name = self.name(next(&mut inner)?);
                let value = self.literal(next(&mut inner)?)?;
                ItemKind::Threshold(ThresholdDecl { name, value })
            }
            Rule::escalation_decl => {
                let name = self.name(next(&mut inner)?);
                let mut decl = EscalationDecl {
                    name,
                    notify: Vec::new(),
                    timeout: Vec::new(),
                };
                for member in inner {
                    let member_range = self.range(&member);
                    let rule = member.as_rule();
                    let mut parts = member.into_inner();
                    if rule == Rule::notify_clause {
                        decl.notify.push(self.string(next(&mut parts)?)?);
                    } else {
                        let after_ms = self.duration(next(&mut parts)?)?;
                        let then = parts.nth(1).map(|p| match p.as_str() {
                            "allow" => TimeoutOutcome::Allow,
                            _ => TimeoutOutcome::Deny,
                        });
                        decl.timeout.push(TimeoutClause {
                            after_ms,
                            then,
                            range: member_range,
                        });
                    }
                }
                ItemKind::Escalation(decl)
            }
            Rule::agent_decl => {
                let name = self.name(next(&mut inner)?);
                let members = inner
                    .map(|m| self.agent_member(m))
                    .collect::<LowerResult<_>>()?;
                ItemKind::Agent(AgentDecl { name, members })
            }
            Rule::assert_decl => ItemKind::Assert(self.assertion(next(&mut inner)?)?),
            Rule::test_decl => ItemKind::Test(self.test(inner)?),
            Rule::set_decl => {
                let name = self.name(next(&mut inner)?);
                let source = next(&mut inner)?;
                let source_range = self.range(&source);
                let source = match source.as_rule() {
                    Rule::set_members => SetSource::Members(
                        source
                            .into_inner()
                            .map(|p| self.string(p))
                            .collect::<LowerResult<_>>()?,
                        source_range,
                    ),
                    _ => SetSource::Deploy(source_range),
                };
                ItemKind::Set(SetDecl { name, source })
            }
            Rule::retain_decl => ItemKind::Retain(self.retain(inner)?),
            _ => return Err(self.unexpected(range)),
        };
        Ok(Item { kind, range })
    }

    /// `retain audit [for TIER] PERIOD`: years stay calendar years, other units ms.
    fn retain(&self, inner: pest::iterators::Pairs<'_, Rule>) -> LowerResult<RetainDecl> {
        let mut tier = None;
        let mut period = None;
        for p in inner {
            match p.as_rule() {
                Rule::ident => tier = Some(self.name(p)),
                Rule::duration => {
                    let range = self.range(&p);
                    let text = p.as_str().to_string();
                    let (years, ms) = match text.strip_suffix('y') {
                        Some(count) => {
                            let years = count.replace('_', "").parse::<u64>().ok();
                            // Checked like any duration: a count too large for `i64` ms.
                            self.duration(p)?;
                            (years.unwrap_or(u64::MAX), 0)
                        }
                        None => (0, self.duration(p)?),
                    };
                    period = Some(RetainPeriod {
                        text,
                        years,
                        ms,
                        range,
                    });
                }
                _ => {}
            }
        }
        let period = period.ok_or_else(|| {
            Box::new(Diagnostic::new(
                Code::SyntaxError,
                "expected a retention period",
                Label::new(self.file, TextRange::default(), "here"),
            ))
        })?;
        Ok(RetainDecl { tier, period })
    }

    fn unexpected(&self, range: TextRange) -> Box<Diagnostic> {
        Box::new(Diagnostic::new(
            Code::SyntaxError,
            "expected a declaration",
            Label::new(self.file, range, "not a declaration"),
        ))
    }

    fn tool(&self, mut inner: pest::iterators::Pairs<'_, Rule>) -> LowerResult<ToolDecl> {
        let name = self.name(next(&mut inner)?);
        let mut decl = ToolDecl {
            name,
            params: Vec::new(),
            effects: Vec::new(),
            reads: Vec::new(),
            writes: Vec::new(),
            untrusted: Vec::new(),
        };
        for member in inner {
            match member.as_rule() {
                Rule::untrusted_clause => decl.untrusted.push(self.range(&member)),
                Rule::params => {
                    for param in member.into_inner() {
                        let range = self.range(&param);
                        let mut parts = param.into_inner();
                        let name = self.name(next(&mut parts)?);
                        let ty = match next(&mut parts)?.as_str() {
                            "text" => TypeName::Text,
                            "number" => TypeName::Number,
                            "money" => TypeName::Money,
                            "bool" => TypeName::Bool,
                            "duration" => TypeName::Duration,
                            "list<text>" => TypeName::TextList,
                            _ => TypeName::Percent,
                        };
                        let optional = parts.next().is_some();
                        decl.params.push(Param {
                            name,
                            ty,
                            optional,
                            range,
                        });
                    }
                }
                Rule::effect_clause => {
                    for effect in member.into_inner() {
                        let e = parse_effect(effect.as_str());
                        decl.effects.push((e, self.range(&effect)));
                    }
                }
                Rule::reads_clause => decl.reads.extend(member.into_inner().map(|p| self.name(p))),
                _ => decl
                    .writes
                    .extend(member.into_inner().map(|p| self.name(p))),
            }
        }
        Ok(decl)
    }

    fn agent_member(&self, pair: Pair<'_, Rule>) -> LowerResult<AgentMember> {
        let range = self.range(&pair);
        let rule = pair.as_rule();
        let mut inner = pair.into_inner();
        let kind = match rule {
            Rule::owner_clause => AgentMemberKind::Owner(self.string(next(&mut inner)?)?),
            Rule::purpose_clause => AgentMemberKind::Purpose(self.string(next(&mut inner)?)?),
            Rule::max_tier_clause => AgentMemberKind::MaxTier(self.name(next(&mut inner)?)),
            Rule::rule_decl => {
                let kind = match next(&mut inner)?.as_str() {
                    "allow" => RuleKind::Allow,
                    "escalate" => RuleKind::Escalate,
                    _ => RuleKind::Deny,
                };
                let target = self.target(next(&mut inner)?)?;
                let mut route = None;
                let mut condition = None;
                while let Some(p) = inner.next() {
                    match p.as_rule() {
                        Rule::kw_to => route = Some(self.name(next(&mut inner)?)),
                        Rule::kw_when => condition = Some(self.expr(next(&mut inner)?)?),
                        _ => {}
                    }
                }
                AgentMemberKind::Rule(RuleDecl {
                    kind,
                    target,
                    route,
                    condition,
                })
            }
            Rule::autonomy_clause => {
                let tool = self.name(next(&mut inner)?);
                let _when = next(&mut inner)?;
                let condition = self.expr(next(&mut inner)?)?;
                let because = self.string(next(&mut inner)?)?;
                AgentMemberKind::Autonomy(AutonomyDecl {
                    tool,
                    condition,
                    because,
                })
            }
            Rule::limit_clause => {
                let mut specs = Vec::new();
                for spec in inner {
                    let spec_range = self.range(&spec);
                    let mut parts = spec.into_inner();
                    let count_pair = next(&mut parts)?;
                    let count = self.count(&count_pair)?;
                    let unit = match next(&mut parts)?.as_str() {
                        "calls" => LimitUnit::Calls,
                        _ => LimitUnit::Tokens,
                    };
                    let window = match next(&mut parts)?.as_str() {
                        "task" => LimitWindow::Task,
                        "session" => LimitWindow::Session,
                        "minute" => LimitWindow::Minute,
                        "hour" => LimitWindow::Hour,
                        _ => LimitWindow::Day,
                    };
                    specs.push(LimitSpec {
                        count,
                        unit,
                        window,
                        range: spec_range,
                    });
                }
                AgentMemberKind::Limit(specs)
            }
            Rule::breaker_clause => {
                let metric = match next(&mut inner)?.as_str() {
                    "error_rate" => BreakerMetric::ErrorRate,
                    "calls" => BreakerMetric::Calls,
                    "tokens" => BreakerMetric::Tokens,
                    _ => BreakerMetric::Denials,
                };
                let op = compare_op(next(&mut inner)?.as_str());
                let value = self.literal_of(next(&mut inner)?)?;
                let window_ms = self.duration(next(&mut inner)?)?;
                let _then = next(&mut inner)?;
                let action = next(&mut inner)?;
                let scope = match action.into_inner().next().map(|p| p.as_str()) {
                    Some("engine") => SuspendScope::Engine,
                    _ => SuspendScope::Agent,
                };
                AgentMemberKind::Breaker(BreakerDecl {
                    metric,
                    op,
                    value,
                    window_ms,
                    scope,
                })
            }
            Rule::mode_clause => AgentMemberKind::Mode(match next(&mut inner)?.as_str() {
                "shadow" => Mode::Shadow,
                _ => Mode::Enforce,
            }),
            Rule::credential_clause => {
                let name = self.name(next(&mut inner)?);
                let expires_ms = inner.next().map(|p| self.duration(p)).transpose()?;
                AgentMemberKind::Credential(CredentialDecl { name, expires_ms })
            }
            Rule::stage_clause => {
                let value = next(&mut inner)?;
                let stage_range = self.range(&value);
                let stage = stage_value(value.as_str());
                let route = match inner.next() {
                    Some(_to) => Some(self.name(next(&mut inner)?)),
                    None => None,
                };
                AgentMemberKind::Stage(StageDecl {
                    stage,
                    stage_range,
                    route,
                })
            }
            Rule::promote_clause => {
                let _to = next(&mut inner)?;
                let value = next(&mut inner)?;
                let target_range = self.range(&value);
                let target = stage_value(value.as_str());
                let mut criteria = Vec::new();
                for p in inner {
                    if p.as_rule() == Rule::criterion {
                        criteria.push(self.criterion(p)?);
                    }
                }
                AgentMemberKind::Promote(PromoteDecl {
                    target,
                    target_range,
                    criteria,
                })
            }
            _ => return Err(self.unexpected(range)),
        };
        Ok(AgentMember { kind, range })
    }

    fn criterion(&self, pair: Pair<'_, Rule>) -> LowerResult<Criterion> {
        let range = self.range(&pair);
        let mut inner = pair.into_inner();
        let metric = match next(&mut inner)?.as_str() {
            "shadow_agreement" => PromoteMetric::ShadowAgreement,
            "errors" => PromoteMetric::Errors,
            "escalation_rate" => PromoteMetric::EscalationRate,
            "approval_rate" => PromoteMetric::ApprovalRate,
            _ => PromoteMetric::Denials,
        };
        let op = compare_op(next(&mut inner)?.as_str());
        let value = self.literal_of(next(&mut inner)?)?;
        let window = match inner.next() {
            Some(w) => {
                let window_range = self.range(&w);
                let mut parts = w.into_inner();
                let count_pair = next(&mut parts)?;
                let text = count_pair.as_str();
                if text.contains('.') {
                    return Err(self.invalid(
                        &count_pair,
                        format!("`{text}` is not a whole number of decisions"),
                        "a window counts whole decisions: `over 500 decisions`",
                    ));
                }
                let count = self.count(&count_pair)?;
                Some((count, window_range))
            }
            None => None,
        };
        Ok(Criterion {
            metric,
            op,
            value,
            window,
            range,
        })
    }

    fn target(&self, pair: Pair<'_, Rule>) -> LowerResult<Target> {
        let range = self.range(&pair);
        let inner = next(&mut pair.into_inner())?;
        Ok(match inner.as_rule() {
            Rule::star => Target::All(range),
            _ => Target::Tool(self.name(inner)),
        })
    }

    fn expr(&self, pair: Pair<'_, Rule>) -> LowerResult<Expr> {
        let range = self.range(&pair);
        match pair.as_rule() {
            Rule::expr | Rule::paren => self.expr(next(&mut pair.into_inner())?),
            Rule::or_expr | Rule::and_expr => {
                let is_or = pair.as_rule() == Rule::or_expr;
                let mut parts: Vec<Expr> = pair
                    .into_inner()
                    .filter(|p| !matches!(p.as_rule(), Rule::kw_and | Rule::kw_or))
                    .map(|p| self.expr(p))
                    .collect::<LowerResult<_>>()?;
                if parts.len() == 1 {
                    return parts.pop().ok_or_else(|| self.unexpected(range));
                }
                Ok(Expr {
                    kind: if is_or {
                        ExprKind::Or(parts)
                    } else {
                        ExprKind::And(parts)
                    },
                    range,
                })
            }
            Rule::not_expr => self.expr(next(&mut pair.into_inner())?),
            Rule::negation => {
                let operand = pair
                    .into_inner()
                    .find(|p| p.as_rule() != Rule::kw_not)
                    .ok_or_else(|| self.unexpected(range))?;
                Ok(Expr {
                    kind: ExprKind::Not(Box::new(self.expr(operand)?)),
                    range,
                })
            }
            Rule::comparison => {
                let mut inner = pair.into_inner();
                let left = self.operand(next(&mut inner)?)?;
                let op = compare_op(next(&mut inner)?.as_str());
                let right = self.operand(next(&mut inner)?)?;
                Ok(Expr {
                    kind: ExprKind::Compare { left, op, right },
                    range,
                })
            }
            Rule::operand => Ok(Expr {
                kind: ExprKind::Truthy(self.operand(pair)?),
                range,
            }),
            Rule::membership => {
                let mut inner = pair.into_inner();
                let operand = self.operand(next(&mut inner)?)?;
                let mut negated = false;
                let mut target = None;
                for part in inner {
                    match part.as_rule() {
                        Rule::kw_not => negated = true,
                        Rule::kw_in => {}
                        Rule::range => {
                            let mut ends = part.into_inner();
                            let low = self.literal(next(&mut ends)?)?;
                            let high = self.literal(next(&mut ends)?)?;
                            target = Some(InTarget::Range(low, high));
                        }
                        _ => target = Some(InTarget::Set(self.name(part))),
                    }
                }
                Ok(Expr {
                    kind: ExprKind::In {
                        operand,
                        negated,
                        target: target.ok_or_else(|| self.unexpected(range))?,
                    },
                    range,
                })
            }
            Rule::pattern => {
                let mut inner = pair.into_inner();
                let operand = self.operand(next(&mut inner)?)?;
                let mut negated = false;
                let mut pattern = None;
                for part in inner {
                    match part.as_rule() {
                        Rule::kw_not => negated = true,
                        Rule::string => pattern = Some(self.string(part)?),
                        _ => {}
                    }
                }
                Ok(Expr {
                    kind: ExprKind::Matches {
                        operand,
                        negated,
                        pattern: pattern.ok_or_else(|| self.unexpected(range))?,
                    },
                    range,
                })
            }
            Rule::provenance => {
                let mut inner = pair.into_inner();
                Ok(Expr {
                    kind: ExprKind::FromUntrusted(self.operand(next(&mut inner)?)?),
                    range,
                })
            }
            Rule::effect_test => {
                let effect = next(&mut pair.into_inner())?;
                Ok(Expr {
                    kind: ExprKind::HasEffect(parse_effect(effect.as_str()), self.range(&effect)),
                    range,
                })
            }
            Rule::quantified => {
                let mut inner = pair.into_inner();
                let quantifier = match next(&mut inner)?.as_str() {
                    "all" => Quantifier::All,
                    _ => Quantifier::Any,
                };
                let list = self.name(next(&mut inner)?);
                let test = next(&mut inner)?;
                let mut negated = false;
                let mut op = None;
                let mut result = None;
                for part in test.into_inner() {
                    match part.as_rule() {
                        Rule::kw_not => negated = true,
                        Rule::kw_in | Rule::kw_matches => {}
                        Rule::ident => {
                            result = Some(ElementTest::In {
                                negated,
                                set: self.name(part),
                            })
                        }
                        Rule::string => {
                            result = Some(ElementTest::Matches {
                                negated,
                                pattern: self.string(part)?,
                            })
                        }
                        Rule::compare_op => op = Some(compare_op(part.as_str())),
                        _ => {
                            if let Some(op) = op {
                                result = Some(ElementTest::Compare {
                                    op,
                                    value: self.operand(part)?,
                                });
                            }
                        }
                    }
                }
                Ok(Expr {
                    kind: ExprKind::Quantified {
                        quantifier,
                        list,
                        test: result.ok_or_else(|| self.unexpected(range))?,
                    },
                    range,
                })
            }
            _ => Err(self.unexpected(range)),
        }
    }

    fn operand(&self, pair: Pair<'_, Rule>) -> LowerResult<Operand> {
        let inner = next(&mut pair.into_inner())?;
        Ok(match inner.as_rule() {
            Rule::literal => Operand::Literal(self.literal(inner)?),
            _ => Operand::Name(self.name(inner)),
        })
    }

    fn assertion(&self, pair: Pair<'_, Rule>) -> LowerResult<AssertDecl> {
        let rule = pair.as_rule();
        let mut inner = pair.into_inner();
        Ok(match rule {
            Rule::assert_never_calls => {
                let agent = self.name(next(&mut inner)?);
                let target = self.target(next(&mut inner)?)?;
                let condition = match inner.next() {
                    Some(_when) => Some(self.expr(next(&mut inner)?)?),
                    None => None,
                };
                AssertDecl::NeverCalls {
                    agent,
                    target,
                    condition,
                }
            }
            Rule::assert_every_irreversible => AssertDecl::EveryIrreversibleEscalates,
            Rule::assert_tainted_irreversible => AssertDecl::TaintedIrreversibleEscalates,
            Rule::assert_never_reads => AssertDecl::NeverReads {
                agent: self.name(next(&mut inner)?),
                tier: self.name(next(&mut inner)?),
            },
            _ => AssertDecl::NoFlow {
                tier: self.name(next(&mut inner)?),
                sink: self.name(next(&mut inner)?),
            },
        })
    }

    fn test(&self, mut inner: pest::iterators::Pairs<'_, Rule>) -> LowerResult<TestDecl> {
        let name = self.string(next(&mut inner)?)?;
        let mut steps = Vec::new();
        let mut expect = None;
        for part in inner {
            match part.as_rule() {
                Rule::test_step => steps.push(self.step(part)?),
                Rule::expect_clause => {
                    let range = self.range(&part);
                    let expected = next(&mut part.into_inner())?;
                    let which = next(&mut expected.into_inner())?;
                    let kind = match which.as_rule() {
                        Rule::expect_allow => ExpectKind::Allow,
                        Rule::expect_escalate => ExpectKind::Escalate(
                            which
                                .into_inner()
                                .filter(|p| p.as_rule() == Rule::ident)
                                .map(|p| self.name(p))
                                .collect(),
                        ),
                        _ => {
                            ExpectKind::Deny(which.into_inner().next().map(|p| match p.as_str() {
                                "flow" => DenyReason::Flow,
                                "limit" => DenyReason::Limit,
                                "suspended" => DenyReason::Suspended,
                                "not_granted" => DenyReason::NotGranted,
                                "no_rule" => DenyReason::NoRule,
                                _ => DenyReason::Rule,
                            }))
                        }
                    };
                    expect = Some(Expectation { kind, range });
                }
                _ => {}
            }
        }
        let expect = expect.ok_or_else(|| self.unexpected(name.range))?;
        Ok(TestDecl {
            name,
            steps,
            expect,
        })
    }

    fn step(&self, pair: Pair<'_, Rule>) -> LowerResult<TestStep> {
        let range = self.range(&pair);
        let mut inner = pair.into_inner();
        let agent = self.name(next(&mut inner)?);
        let tool = self.name(next(&mut inner)?);
        let mut step = TestStep {
            agent,
            tool,
            args: Vec::new(),
            confidence: None,
            on: None,
            into: None,
            range,
        };
        while let Some(part) = inner.next() {
            match part.as_rule() {
                Rule::call_args => step.args = self.call_args(part)?,
                Rule::kw_with => step.confidence = Some(self.literal_of(next(&mut inner)?)?),
                Rule::kw_on => {
                    let reference = next(&mut inner)?;
                    let mut parts = reference.into_inner();
                    let resource = self.name(next(&mut parts)?);
                    let keys = parts
                        .map(|p| self.call_arg(p))
                        .collect::<LowerResult<_>>()?;
                    step.on = Some(ResourceRef { resource, keys });
                }
                Rule::kw_into => {
                    let reference = next(&mut inner)?;
                    let mut parts = reference.into_inner();
                    let resource = self.name(next(&mut parts)?);
                    let keys = parts
                        .map(|p| self.call_arg(p))
                        .collect::<LowerResult<_>>()?;
                    step.into = Some(ResourceRef { resource, keys });
                }
                _ => {}
            }
        }
        Ok(step)
    }

    fn call_args(&self, pair: Pair<'_, Rule>) -> LowerResult<Vec<CallArg>> {
        pair.into_inner().map(|p| self.call_arg(p)).collect()
    }

    fn call_arg(&self, pair: Pair<'_, Rule>) -> LowerResult<CallArg> {
        let mut inner = pair.into_inner();
        let name = self.name(next(&mut inner)?);
        let mut part = next(&mut inner)?;
        let mut untrusted = None;
        if part.as_rule() == Rule::kw_untrusted {
            untrusted = Some(self.range(&part));
            part = next(&mut inner)?;
        }
        let value = if part.as_rule() == Rule::list_literal {
            let range = self.range(&part);
            let items = part
                .into_inner()
                .map(|p| self.string(p).map(|s| s.value))
                .collect::<LowerResult<_>>()?;
            Literal {
                value: LiteralValue::TextList(items),
                range,
            }
        } else {
            self.literal(part)?
        };
        Ok(CallArg {
            name,
            value,
            untrusted,
        })
    }

    /// A `literal` pair (wrapping one concrete literal kind).
    fn literal(&self, pair: Pair<'_, Rule>) -> LowerResult<Literal> {
        match pair.as_rule() {
            Rule::literal => self.literal_of(next(&mut pair.into_inner())?),
            _ => self.literal_of(pair),
        }
    }

    /// A concrete literal pair: money, percent, duration, number, string or boolean.
    fn literal_of(&self, pair: Pair<'_, Rule>) -> LowerResult<Literal> {
        let range = self.range(&pair);
        let text = pair.as_str();
        let value = match pair.as_rule() {
            Rule::money => LiteralValue::Money(parse_money(text).ok_or_else(|| {
                self.invalid(
                    &pair,
                    format!("`{text}` is not a valid amount"),
                    "amounts are written `$10,000`, `$99.95`, `$1.5M`: whole cents, at most $92,233,720,368,547,758.07",
                )
            })?),
            Rule::percent => LiteralValue::Percent(
                parse_percent(text)
                    .ok_or_else(|| {
                        self.invalid(
                            &pair,
                            format!("`{text}` is not a valid percentage"),
                            "percentages are written `20%` or `0.5%`, with at most 4 decimals",
                        )
                    })?,
            ),
            Rule::duration => LiteralValue::Duration(self.duration(pair)?),
            Rule::number => LiteralValue::Number(parse_decimal(text, 6).ok_or_else(|| {
                self.invalid(
                    &pair,
                    format!("`{text}` is not a valid number"),
                    "numbers have at most 6 decimals and at most 12 integer digits",
                )
            })?),
            Rule::string => LiteralValue::Text(self.string(pair)?.value),
            Rule::boolean => LiteralValue::Bool(text == "true"),
            _ => return Err(self.unexpected(range)),
        };
        Ok(Literal { value, range })
    }

    fn count(&self, pair: &Pair<'_, Rule>) -> LowerResult<i64> {
        let text = pair.as_str();
        let invalid = || {
            self.invalid(
                pair,
                format!("`{text}` is not a whole count"),
                "limits count whole calls or tokens: `100 calls per task`",
            )
        };
        if text.contains('.') {
            return Err(invalid());
        }
        text.replace('_', "").parse::<i64>().map_err(|_| invalid())
    }

    fn duration(&self, pair: Pair<'_, Rule>) -> LowerResult<i64> {
        let text = pair.as_str();
        parse_duration(text).ok_or_else(|| {
            self.invalid(
                &pair,
                format!("`{text}` is not a valid duration"),
                "durations are a whole number and a unit: `500ms`, `30s`, `15m`, `2h`, `7d`, `4w`, `7y`",
            )
        })
    }

    fn string(&self, pair: Pair<'_, Rule>) -> LowerResult<StringLit> {
        let range = self.range(&pair);
        let raw = pair.as_str();
        let body = &raw[1..raw.len().saturating_sub(1).max(1)];
        let mut value = String::with_capacity(body.len());
        let mut chars = body.chars();
        while let Some(c) = chars.next() {
            if c != '\\' {
                value.push(c);
                continue;
            }
            match chars.next() {
                Some('"') => value.push('"'),
                Some('\\') => value.push('\\'),
                Some('n') => value.push('\n'),
                Some('t') => value.push('\t'),
                other => {
                    return Err(self.invalid(
                        &pair,
                        format!(
                            "unknown escape `\\{}` in a string",
                            other.map(String::from).unwrap_or_default()
                        ),
                        "strings may escape `\\\"`, `\\\\`, `\\n` and `\\t`",
                    ));
                }
            }
        }
        Ok(StringLit { value, range })
    }
}

fn next<'i>(pairs: &mut pest::iterators::Pairs<'i, Rule>) -> LowerResult<Pair<'i, Rule>> {
    pairs.next().ok_or_else(|| {
        Box::new(Diagnostic::new(
            Code::SyntaxError,
            "incomplete declaration",
            Label::new(FileId(0), TextRange::default(), "incomplete"),
        ))
    })
}

fn compare_op(text: &str) -> CompareOp {
    match text {
        "<" => CompareOp::Lt,
        "<=" => CompareOp::Le,
        ">" => CompareOp::Gt,
        ">=" => CompareOp::Ge,
        "==" => CompareOp::Eq,
        _ => CompareOp::Ne,
    }
}

pub use agentpolicy_runtime::values::{parse_decimal, parse_duration, parse_money, parse_percent};

#[cfg(test)]
mod comments {
    use crate::diagnostics::FileId;

    /// Block comments used to lex as errors, so one on its own line before an item
    /// became an item of its own and a syntax error.
    #[test]
    fn block_comments_between_items_are_trivia() {
        let src = "/* header */\npolicy p\n/* a\n   b */\ntiers a < b /* c */\r/* d */ isolate m";
        let parsed = super::parse(FileId(0), src);
        assert!(parsed.diagnostics.is_empty(), "{:#?}", parsed.diagnostics);
        assert_eq!(parsed.tree.items.len(), 3);
    }

    /// An unterminated block comment follows every item, so the grammar never saw it and
    /// the code it swallowed vanished without a diagnostic.
    #[test]
    fn an_unterminated_block_comment_is_an_error() {
        for (src, at) in [
            ("policy p /* open\nisolate m", 9),
            ("policy p\n/*/", 9),
            ("/* open", 0),
        ] {
            let parsed = super::parse(FileId(0), src);
            assert_eq!(parsed.diagnostics.len(), 1, "{src:?}");
            let d = &parsed.diagnostics[0];
            assert_eq!(d.message, "this block comment is never closed");
            assert_eq!(d.primary.range.start, at);
        }
        let closed = super::parse(FileId(0), "policy p /**/\n/* a */");
        assert!(closed.diagnostics.is_empty());
    }
}

#[cfg(test)]
mod design_example {
    #[test]
    fn design_example_parses() {
        let src = include_str!("../../../tests/fixtures/verify/design_example.agentpolicy");
        let parsed = super::parse(crate::diagnostics::FileId(0), src);
        assert!(parsed.diagnostics.is_empty(), "{:#?}", parsed.diagnostics);
        assert_eq!(parsed.tree.items.len(), 20);
    }
}

fn parse_effect(text: &str) -> Effect {
    match text {
        "read" => Effect::Read,
        "write" => Effect::Write,
        "external" => Effect::External,
        "financial" => Effect::Financial,
        _ => Effect::Irreversible,
    }
}
