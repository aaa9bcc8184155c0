//! Typing conditions: names in `when` clauses are bound (tool argument, `confidence`,
//! threshold) and comparisons type-checked. Produces `model::Cond`.

use crate::diagnostics::{Code, Diagnostic, FileId, Label};
use crate::model::{
    Cond, ElementTest, SetDef, SetId, Term, ThresholdId, ToolDef, Value, comparable,
};
use crate::syntax::ast::{
    self, CompareOp, Expr, ExprKind, InTarget, Literal, LiteralValue, Operand, StringLit, TypeName,
};

use super::names::{NameKind, Namespace, did_you_mean};

/// What a condition may read.
pub struct Scope<'a> {
    /// The rule's tool, or `None` for `*` rules (which may read no arguments).
    pub tool: Option<&'a ToolDef>,
    /// All tools, to explain why a `*` rule cannot read an argument.
    pub all_tools: &'a [ToolDef],
    pub namespace: &'a Namespace,
    pub thresholds: &'a [crate::model::ThresholdDef],
    pub sets: &'a [SetDef],
    pub file: FileId,
}

pub fn literal_value(literal: &Literal) -> Value {
    match &literal.value {
        LiteralValue::Money(v) => Value::Money(*v),
        LiteralValue::Number(v) | LiteralValue::Percent(v) => Value::Number(*v),
        LiteralValue::Duration(v) => Value::Duration(*v),
        LiteralValue::Text(t) => Value::Text(t.clone()),
        LiteralValue::Bool(b) => Value::Bool(*b),
        LiteralValue::TextList(items) => Value::TextList(items.clone()),
    }
}

/// Types `expr`. Reports every problem into `diagnostics`; returns `None` if any.
pub fn type_condition(
    expr: &Expr,
    scope: &Scope<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<Cond> {
    let before = diagnostics.len();
    let cond = lower(expr, scope, diagnostics);
    if diagnostics.len() > before {
        return None;
    }
    let cond = cond?;
    never_matching_patterns(&cond, scope, expr, diagnostics);
    if !cond.reads_call() {
        diagnostics.push(
            Diagnostic::new(
                Code::ConstantCondition,
                "this condition compares constants only, so it is always true or always false",
                Label::new(scope.file, expr.range, "does not read the request"),
            )
            .with_help("compare a tool argument or `confidence` with the value"),
        );
    }
    Some(cond)
}

fn lower(expr: &Expr, scope: &Scope<'_>, diagnostics: &mut Vec<Diagnostic>) -> Option<Cond> {
    match &expr.kind {
        ExprKind::Or(parts) | ExprKind::And(parts) => {
            let lowered: Vec<Option<Cond>> =
                parts.iter().map(|p| lower(p, scope, diagnostics)).collect();
            let lowered: Option<Vec<Cond>> = lowered.into_iter().collect();
            let lowered = lowered?;
            Some(if matches!(expr.kind, ExprKind::Or(_)) {
                Cond::Or(lowered)
            } else {
                Cond::And(lowered)
            })
        }
        ExprKind::Not(inner) => Some(Cond::Not(Box::new(lower(inner, scope, diagnostics)?))),
        ExprKind::Truthy(operand) => {
            let (term, ty) = term(operand, scope, diagnostics)?;
            if ty != TypeName::Bool {
                diagnostics.push(
                    Diagnostic::new(
                        Code::TypeMismatch,
                        format!(
                            "a condition must be true or false, but this is {}",
                            type_phrase(ty)
                        ),
                        Label::new(
                            scope.file,
                            operand.range(),
                            format!("has type `{}`", ty.keyword()),
                        ),
                    )
                    .with_help("compare it with a value, e.g. `amount > $100`"),
                );
                return None;
            }
            Some(Cond::Truthy(term))
        }
        ExprKind::Compare { left, op, right } => {
            let l = term(left, scope, diagnostics);
            let r = term(right, scope, diagnostics);
            let ((lt, lty), (rt, rty)) = (l?, r?);
            for (operand, ty) in [(left, lty), (right, rty)] {
                if ty == TypeName::TextList {
                    diagnostics.push(list_without_quantifier(operand, scope, "compare it"));
                    return None;
                }
            }
            if !comparable(lty, rty) {
                if let Some(d) = threshold_of_wrong_type(scope, (&lt, lty, left), (&rt, rty, right))
                {
                    diagnostics.push(d);
                    return None;
                }
                diagnostics.push(
                    Diagnostic::new(
                        Code::TypeMismatch,
                        format!(
                            "cannot compare {} with {}",
                            type_phrase(lty),
                            type_phrase(rty)
                        ),
                        Label::new(scope.file, left.range(), format!("`{}`", lty.keyword())),
                    )
                    .with_secondary(Label::new(
                        scope.file,
                        right.range(),
                        format!("`{}`", rty.keyword()),
                    ))
                    .with_help(mismatch_help(lty, rty)),
                );
                return None;
            }
            let ordered = !matches!(op, CompareOp::Eq | CompareOp::Ne);
            if ordered && matches!(lty, TypeName::Text | TypeName::Bool) {
                diagnostics.push(
                    Diagnostic::new(
                        Code::TypeMismatch,
                        format!(
                            "`{}` does not apply to {}; only `==` and `!=` do",
                            op.symbol(),
                            type_phrase(lty)
                        ),
                        Label::new(scope.file, expr.range, "ordering comparison"),
                    )
                    .with_help("use `==` or `!=`"),
                );
                return None;
            }
            Some(Cond::Compare {
                left: lt,
                op: *op,
                right: rt,
            })
        }
        ExprKind::In {
            operand,
            negated,
            target: InTarget::Range(low, high),
        } => {
            let (t, ty) = term(operand, scope, diagnostics)?;
            if ty == TypeName::TextList {
                diagnostics.push(list_without_quantifier(operand, scope, "test it"));
                return None;
            }
            let mut parts = Vec::new();
            for (end, op) in [(low, CompareOp::Ge), (high, CompareOp::Le)] {
                let value = literal_value(end);
                let end_ty = match end.value {
                    LiteralValue::Percent(_) => TypeName::Percent,
                    _ => value.ty(),
                };
                if !comparable(ty, end_ty) || matches!(ty, TypeName::Text | TypeName::Bool) {
                    diagnostics.push(
                        Diagnostic::new(
                            Code::TypeMismatch,
                            format!(
                                "a range applies to numbers, money and durations, not to {} with {} bounds",
                                type_phrase(ty),
                                type_phrase(end_ty)
                            ),
                            Label::new(scope.file, end.range, format!("`{}`", end_ty.keyword())),
                        )
                        .with_secondary(Label::new(
                            scope.file,
                            operand.range(),
                            format!("`{}`", ty.keyword()),
                        ))
                        .with_help(mismatch_help(ty, end_ty)),
                    );
                    return None;
                }
                parts.push(Cond::Compare {
                    left: t.clone(),
                    op,
                    right: Term::Const {
                        value,
                        threshold: None,
                    },
                });
            }
            Some(negate(Cond::And(parts), *negated))
        }
        ExprKind::In {
            operand,
            negated,
            target: InTarget::Set(name),
        } => {
            let arg = text_arg(operand, scope, "in", diagnostics);
            let set = set_id(name, scope, diagnostics);
            let (arg, set) = (arg?, set?);
            Some(negate(Cond::InSet { arg, set }, *negated))
        }
        ExprKind::Matches {
            operand,
            negated,
            pattern,
        } => {
            let arg = text_arg(operand, scope, "matches", diagnostics);
            let ok = check_pattern(pattern, scope, diagnostics);
            let arg = arg?;
            ok?;
            Some(negate(
                Cond::Matches {
                    arg,
                    pattern: pattern.value.clone(),
                },
                *negated,
            ))
        }
        ExprKind::Quantified {
            quantifier,
            list,
            test,
        } => {
            let arg = list_arg(list, scope, diagnostics);
            let test = element_test(test, scope, diagnostics);
            Some(Cond::Quantified {
                quantifier: *quantifier,
                arg: arg?,
                test: test?,
            })
        }
        ExprKind::FromUntrusted(operand) => {
            let arg = match operand {
                Operand::Name(name) => scope.tool.and_then(|t| t.param(&name.text)),
                Operand::Literal(_) => None,
            };
            match arg {
                Some(arg) => Some(Cond::FromUntrusted { arg }),
                None => {
                    match operand {
                        Operand::Name(name) => diagnostics.push(unknown_operand(name, scope)),
                        Operand::Literal(l) => diagnostics.push(
                            Diagnostic::new(
                                Code::TypeMismatch,
                                "only a tool argument can come from untrusted content",
                                Label::new(scope.file, l.range, "a value written in the policy"),
                            )
                            .with_help("name an argument: `recipient from untrusted`"),
                        ),
                    }
                    None
                }
            }
        }
        ExprKind::Presence { arg, given } => match scope.tool.and_then(|t| t.param(&arg.text)) {
            Some(index) => Some(negate(Cond::Present { arg: index }, !*given)),
            None => {
                let word = if *given { "given" } else { "missing" };
                diagnostics.push(if matches!(arg.text.as_str(), "confidence" | "tainted") {
                        Diagnostic::new(
                            Code::TypeMismatch,
                            format!("`{word}` tests an argument of the call, not `{}`", arg.text),
                            Label::new(scope.file, arg.range, "not a tool argument"),
                        )
                        .with_help(
                            "a condition on a missing `confidence` already fails safe; name an argument: `memo given`",
                        )
                    } else {
                        unknown_operand(arg, scope)
                    });
                None
            }
        },
        ExprKind::HasEffect(effect, _) => Some(Cond::HasEffect(*effect)),
    }
}

fn negate(cond: Cond, negated: bool) -> Cond {
    if negated {
        Cond::Not(Box::new(cond))
    } else {
        cond
    }
}

fn set_id(name: &ast::Name, scope: &Scope<'_>, diagnostics: &mut Vec<Diagnostic>) -> Option<SetId> {
    match scope.namespace.resolve(name, scope.file, &[NameKind::Set]) {
        Ok(entry) => Some(SetId(entry.index)),
        Err(d) => {
            diagnostics.extend(d.map(|d| *d));
            None
        }
    }
}

/// A glob must be well formed (see `agentpolicy_runtime::glob_tokens`).
fn check_pattern(
    pattern: &StringLit,
    scope: &Scope<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<()> {
    match agentpolicy_runtime::glob_tokens(&pattern.value) {
        Ok(_) => Some(()),
        Err(e) => {
            diagnostics.push(
                Diagnostic::new(
                    Code::InvalidPattern,
                    format!("this pattern is malformed: {e}"),
                    Label::new(scope.file, pattern.range, "malformed glob"),
                )
                .with_help(
                    "a glob has `*` (any run of characters), `?` (one character) and literal characters; write `\\*`, `\\?` or `\\\\` for the characters themselves",
                ),
            );
            None
        }
    }
}

/// The parameter index of a `text` argument used with `in` or `matches`.
fn text_arg(
    operand: &Operand,
    scope: &Scope<'_>,
    what: &str,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<usize> {
    let name = match operand {
        Operand::Name(name) => name,
        Operand::Literal(l) => {
            diagnostics.push(
                Diagnostic::new(
                    Code::NotTextArgument,
                    format!("`{what}` tests a text argument of the call, not a value written in the policy"),
                    Label::new(scope.file, l.range, "a literal"),
                )
                .with_help("name an argument of the tool, e.g. `recipient in trusted_payees`"),
            );
            return None;
        }
    };
    let Some(tool) = scope.tool else {
        diagnostics.push(unknown_operand(name, scope));
        return None;
    };
    let Some(index) = tool.param(&name.text) else {
        diagnostics.push(unknown_operand(name, scope));
        return None;
    };
    match tool.params[index].ty {
        TypeName::Text => Some(index),
        TypeName::TextList => {
            diagnostics.push(list_without_quantifier(operand, scope, "test it"));
            None
        }
        ty => {
            diagnostics.push(
                Diagnostic::new(
                    Code::NotTextArgument,
                    format!(
                        "`{what}` works on text, but `{}` is {}",
                        name.text,
                        type_phrase(ty)
                    ),
                    Label::new(scope.file, name.range, format!("has type `{}`", ty.keyword())),
                )
                .with_help(if what == "in" {
                    "sets hold texts; for numbers, money and durations write a range: `amount in $100..$5,000`"
                } else {
                    "patterns match texts; compare numbers with `<`, `<=`, `>`, `>=`"
                }),
            );
            None
        }
    }
}

fn list_without_quantifier(operand: &Operand, scope: &Scope<'_>, verb: &str) -> Diagnostic {
    let name = match operand {
        Operand::Name(n) => n.text.as_str(),
        Operand::Literal(_) => "the list",
    };
    Diagnostic::new(
        Code::ListWithoutQuantifier,
        format!("`{name}` is a list of texts: say whether all or any of its elements must pass"),
        Label::new(scope.file, operand.range(), "a `list<text>` argument"),
    )
    .with_help(format!(
        "{verb} element by element: `all {name} matches \"*@acme.example\"` or `any {name} in SET`"
    ))
}

/// The parameter index of a `list<text>` argument after `all` / `any`.
fn list_arg(
    name: &ast::Name,
    scope: &Scope<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<usize> {
    let Some(index) = scope.tool.and_then(|t| t.param(&name.text)) else {
        diagnostics.push(unknown_operand(name, scope));
        return None;
    };
    let ty = scope.tool.map(|t| t.params[index].ty)?;
    if ty != TypeName::TextList {
        diagnostics.push(
            Diagnostic::new(
                Code::TypeMismatch,
                format!(
                    "`all` and `any` go over a list, but `{}` is {}",
                    name.text,
                    type_phrase(ty)
                ),
                Label::new(
                    scope.file,
                    name.range,
                    format!("has type `{}`", ty.keyword()),
                ),
            )
            .with_help(if ty == TypeName::Text {
                format!(
                    "test it directly, without `all` or `any`: `{} in SET`",
                    name.text
                )
            } else {
                format!(
                    "test it directly, without `all` or `any`, e.g. `{} > 5`",
                    name.text
                )
            }),
        );
        return None;
    }
    Some(index)
}

fn element_test(
    test: &ast::ElementTest,
    scope: &Scope<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<ElementTest> {
    match test {
        ast::ElementTest::In { negated, set } => Some(ElementTest::InSet {
            set: set_id(set, scope, diagnostics)?,
            negated: *negated,
        }),
        ast::ElementTest::Matches { negated, pattern } => {
            check_pattern(pattern, scope, diagnostics)?;
            Some(ElementTest::Matches {
                pattern: pattern.value.clone(),
                negated: *negated,
            })
        }
        ast::ElementTest::Compare { op, value } => {
            let text = match value {
                Operand::Literal(Literal {
                    value: LiteralValue::Text(t),
                    ..
                }) => Some(t.clone()),
                Operand::Name(n) => match scope.namespace.get(&n.text) {
                    Some(entry) if entry.kind == NameKind::Threshold => scope
                        .thresholds
                        .get(entry.index as usize)
                        .and_then(|d| match &d.value {
                            Value::Text(t) => Some(t.clone()),
                            _ => None,
                        }),
                    _ => None,
                },
                Operand::Literal(_) => None,
            };
            let equality = matches!(op, CompareOp::Eq | CompareOp::Ne);
            match text {
                Some(text) if equality => Some(ElementTest::Equals {
                    text,
                    negated: *op == CompareOp::Ne,
                }),
                _ => {
                    diagnostics.push(
                        Diagnostic::new(
                            Code::TypeMismatch,
                            "the elements of a list are texts: compare them with `==` or `!=` and a text",
                            Label::new(scope.file, value.range(), "not a text"),
                        )
                        .with_help("e.g. `any recipients == \"ceo@acme.example\"`"),
                    );
                    None
                }
            }
        }
    }
}

/// Warns about a pattern that no value can pass together with the other parts of an
/// `and`: the argument must also be in a set (or equal a text) none of whose members
/// the pattern matches.
fn never_matching_patterns(
    cond: &Cond,
    scope: &Scope<'_>,
    expr: &Expr,
    diagnostics: &mut Vec<Diagnostic>,
) {
    cond.visit(&mut |c| {
        let Cond::And(parts) = c else {
            return;
        };
        for part in parts {
            let Cond::Matches { arg, pattern } = part else {
                continue;
            };
            for other in parts {
                let allowed: Option<Vec<&str>> = match other {
                    Cond::InSet { arg: a, set } if a == arg => scope
                        .sets
                        .get(set.index())
                        .and_then(|s| s.members.as_ref())
                        .map(|m| m.iter().map(String::as_str).collect()),
                    Cond::Compare {
                        left: Term::Arg(a),
                        op: CompareOp::Eq,
                        right:
                            Term::Const {
                                value: Value::Text(t),
                                ..
                            },
                    } if a == arg => Some(vec![t.as_str()]),
                    _ => None,
                };
                if let Some(allowed) = allowed
                    && !allowed
                        .iter()
                        .any(|v| agentpolicy_runtime::glob_match(pattern, v))
                {
                    diagnostics.push(
                        Diagnostic::new(
                            Code::PatternNeverMatches,
                            format!(
                                "the pattern \"{pattern}\" matches none of the values this condition also requires, so the condition is never true"
                            ),
                            Label::new(scope.file, expr.range, "never true"),
                        )
                        .with_help("check the pattern against the set's members, or drop one of the two tests"),
                    );
                    return;
                }
            }
        }
    });
}

fn type_phrase(ty: TypeName) -> String {
    match ty {
        TypeName::Text => "text".to_string(),
        TypeName::Number => "a number".to_string(),
        TypeName::Money => "money".to_string(),
        TypeName::Bool => "a bool".to_string(),
        TypeName::Duration => "a duration".to_string(),
        TypeName::Percent => "a percentage".to_string(),
        TypeName::TextList => "a list of texts".to_string(),
    }
}

/// A threshold written as a plain number and compared with money (or a duration): the
/// mistake is in the declaration (`threshold x = 5000` for `$5,000`), so that is where it
/// is reported, with the literal to write as a "did you mean" the editor offers as a fix.
fn threshold_of_wrong_type(
    scope: &Scope<'_>,
    left: (&Term, TypeName, &Operand),
    right: (&Term, TypeName, &Operand),
) -> Option<Diagnostic> {
    for ((term, ty, _), (_, other_ty, other)) in [(left, right), (right, left)] {
        let Term::Const {
            value: Value::Number(millionths),
            threshold: Some(id),
        } = term
        else {
            continue;
        };
        if ty != TypeName::Number || !matches!(other_ty, TypeName::Money | TypeName::Duration) {
            continue;
        }
        let def = scope.thresholds.get(id.index())?;
        let help = match number_as(other_ty, *millionths) {
            Some(l) => format!("did you mean `{l}`? ({})", mismatch_help(other_ty, ty)),
            None => mismatch_help(other_ty, ty),
        };
        return Some(
            Diagnostic::new(
                Code::TypeMismatch,
                format!(
                    "threshold `{}` is a number, but it is compared with {}",
                    def.name,
                    type_phrase(other_ty)
                ),
                Label::new(
                    def.value_loc.file,
                    def.value_loc.range,
                    format!("a number, not `{}`", other_ty.keyword()),
                ),
            )
            .with_secondary(Label::new(
                scope.file,
                other.range(),
                format!("`{}`", other_ty.keyword()),
            ))
            .with_help(help),
        );
    }
    None
}

/// A whole number written as money (`$5,000`) or as a duration in seconds (`90s`).
fn number_as(ty: TypeName, millionths: i64) -> Option<String> {
    if millionths % 1_000_000 != 0 || millionths < 0 {
        return None;
    }
    let whole = (millionths / 1_000_000).to_string();
    match ty {
        TypeName::Money => {
            let mut grouped = String::new();
            for (i, c) in whole.chars().enumerate() {
                if i > 0 && (whole.len() - i).is_multiple_of(3) {
                    grouped.push(',');
                }
                grouped.push(c);
            }
            Some(format!("${grouped}"))
        }
        TypeName::Duration => Some(format!("{whole}s")),
        _ => None,
    }
}

fn mismatch_help(a: TypeName, b: TypeName) -> String {
    if (a == TypeName::Money && b == TypeName::Number)
        || (a == TypeName::Number && b == TypeName::Money)
    {
        "write amounts of money with a dollar sign: `$100`, `$10,000`, `$1.5M`".to_string()
    } else if a == TypeName::Duration || b == TypeName::Duration {
        "write durations with a unit: `30s`, `15m`, `2h`".to_string()
    } else {
        "both sides of a comparison must have the same type".to_string()
    }
}

fn term(
    operand: &Operand,
    scope: &Scope<'_>,
    diagnostics: &mut Vec<Diagnostic>,
) -> Option<(Term, TypeName)> {
    match operand {
        Operand::Literal(literal) => {
            let value = literal_value(literal);
            let ty = match literal.value {
                LiteralValue::Percent(_) => TypeName::Percent,
                _ => value.ty(),
            };
            Some((
                Term::Const {
                    value,
                    threshold: None,
                },
                ty,
            ))
        }
        Operand::Name(name) => {
            if let Some(tool) = scope.tool
                && let Some(index) = tool.param(&name.text)
            {
                return Some((Term::Arg(index), tool.params[index].ty));
            }
            if name.text == "confidence" {
                return Some((Term::Confidence, TypeName::Number));
            }
            if name.text == "tainted" {
                return Some((Term::Tainted, TypeName::Bool));
            }
            if let Some(entry) = scope.namespace.get(&name.text)
                && entry.kind == NameKind::Threshold
            {
                let def = scope.thresholds.get(entry.index as usize)?;
                return Some((
                    Term::Const {
                        value: def.value.clone(),
                        threshold: Some(ThresholdId(entry.index)),
                    },
                    def.value.ty(),
                ));
            }
            diagnostics.push(unknown_operand(name, scope));
            None
        }
    }
}

fn unknown_operand(name: &crate::syntax::ast::Name, scope: &Scope<'_>) -> Diagnostic {
    match scope.tool {
        None => {
            let declaring: Vec<&str> = scope
                .all_tools
                .iter()
                .filter(|t| t.param(&name.text).is_some())
                .map(|t| t.name.as_str())
                .collect();
            if declaring.is_empty() {
                unknown_name(name, scope, &[])
            } else {
                Diagnostic::new(
                    Code::ArgumentInStarRule,
                    format!(
                        "a `*` rule cannot read the argument `{}`: it applies to tools that do not have it",
                        name.text
                    ),
                    Label::new(scope.file, name.range, "argument of some tools only"),
                )
                .with_help(format!(
                    "write the rule for the tool itself, e.g. `deny {} when ...`",
                    declaring[0]
                ))
            }
        }
        Some(tool) => {
            let params: Vec<&str> = tool.params.iter().map(|p| p.name.as_str()).collect();
            unknown_name(name, scope, &params)
        }
    }
}

fn unknown_name(name: &crate::syntax::ast::Name, scope: &Scope<'_>, params: &[&str]) -> Diagnostic {
    let mut candidates: Vec<&str> = params.to_vec();
    candidates.push("confidence");
    candidates.push("tainted");
    candidates.extend(scope.namespace.names_of(&[NameKind::Threshold]));
    let suggestion = did_you_mean(&name.text, candidates.iter().copied());
    let message = match scope.tool {
        Some(tool) => format!(
            "`{}` is not an argument of tool `{}`, `confidence`, `tainted`, or a threshold",
            name.text, tool.name
        ),
        None => format!(
            "`{}` is not `confidence`, `tainted` or a threshold",
            name.text
        ),
    };
    let help = match (suggestion, scope.tool) {
        (Some(s), _) => format!("did you mean `{s}`?"),
        (None, Some(tool)) if !tool.params.is_empty() => format!(
            "tool `{}` takes: {}",
            tool.name,
            tool.params
                .iter()
                .map(|p| format!("{}: {}", p.name, p.ty.keyword()))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        (None, Some(tool)) => format!("tool `{}` takes no arguments", tool.name),
        (None, None) => "declare a threshold with `threshold NAME = VALUE`".to_string(),
    };
    Diagnostic::new(
        Code::UnknownArgument,
        message,
        Label::new(scope.file, name.range, "unknown here"),
    )
    .with_help(help)
}
