//! Lowering: pest pairs to the plain-data syntax tree, shifting ranges from chunk- to
//! file-relative and trimming trailing trivia off them. Holds the lowering of every part
//! of an item (tool members, agent members, conditions, asserts, tests); literal values
//! are decoded by `literals`, the item kinds dispatched by `parse`.

use pest::iterators::Pair;

use super::Rule;
use crate::diagnostics::{Code, Diagnostic, FileId, Label};
use crate::syntax::ast::*;

/// Lowers pest pairs to the syntax tree; shifts ranges from chunk- to file-relative.
pub(super) struct Lower<'t> {
    pub(super) file: FileId,
    pub(super) offset: u32,
    /// End offsets of the file's non-trivia tokens, ascending: pest spans may include
    /// trailing whitespace and comments, which ranges must not.
    pub(super) significant_ends: &'t [u32],
}

pub(super) type LowerResult<T> = Result<T, Box<Diagnostic>>;

impl Lower<'_> {
    pub(super) fn range(&self, pair: &Pair<'_, Rule>) -> TextRange {
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

    pub(super) fn name(&self, pair: Pair<'_, Rule>) -> Name {
        Name {
            text: pair.as_str().to_string(),
            range: self.range(&pair),
        }
    }

    pub(super) fn invalid(
        &self,
        pair: &Pair<'_, Rule>,
        message: String,
        help: &str,
    ) -> Box<Diagnostic> {
        Box::new(
            Diagnostic::new(
                Code::InvalidLiteral,
                message,
                Label::new(self.file, self.range(pair), "invalid here"),
            )
            .with_help(help.to_string()),
        )
    }

    /// `retain audit [for TIER] PERIOD`: years stay calendar years, other units ms.
    pub(super) fn retain(
        &self,
        inner: pest::iterators::Pairs<'_, Rule>,
    ) -> LowerResult<RetainDecl> {
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

    pub(super) fn unexpected(&self, range: TextRange) -> Box<Diagnostic> {
        Box::new(Diagnostic::new(
            Code::SyntaxError,
            "expected a declaration",
            Label::new(self.file, range, "not a declaration"),
        ))
    }

    pub(super) fn tool(
        &self,
        mut inner: pest::iterators::Pairs<'_, Rule>,
    ) -> LowerResult<ToolDecl> {
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

    pub(super) fn agent_member(&self, pair: Pair<'_, Rule>) -> LowerResult<AgentMember> {
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
            Rule::presence => {
                let mut inner = pair.into_inner();
                let arg = self.name(next(&mut inner)?);
                let given = next(&mut inner)?.as_rule() == Rule::kw_given;
                Ok(Expr {
                    kind: ExprKind::Presence { arg, given },
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

    pub(super) fn assertion(&self, pair: Pair<'_, Rule>) -> LowerResult<AssertDecl> {
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

    pub(super) fn test(
        &self,
        mut inner: pest::iterators::Pairs<'_, Rule>,
    ) -> LowerResult<TestDecl> {
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
}

pub(super) fn next<'i>(
    pairs: &mut pest::iterators::Pairs<'i, Rule>,
) -> LowerResult<Pair<'i, Rule>> {
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

fn parse_effect(text: &str) -> Effect {
    match text {
        "read" => Effect::Read,
        "write" => Effect::Write,
        "external" => Effect::External,
        "financial" => Effect::Financial,
        _ => Effect::Irreversible,
    }
}

fn stage_value(text: &str) -> Stage {
    match text {
        "shadow" => Stage::Shadow,
        "supervised" => Stage::Supervised,
        _ => Stage::Autonomous,
    }
}
