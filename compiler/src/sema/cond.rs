//! Typing conditions: names in `when` clauses are bound (tool argument, `confidence`,
//! threshold) and comparisons type-checked. Produces `model::Cond`.

use crate::diagnostics::{Code, Diagnostic, FileId, Label};
use crate::model::{Cond, Term, ThresholdId, ToolDef, Value, comparable};
use crate::syntax::ast::{CompareOp, Expr, ExprKind, Literal, LiteralValue, Operand, TypeName};

use super::names::{NameKind, Namespace, did_you_mean};

/// What a condition may read.
pub struct Scope<'a> {
    /// The rule's tool, or `None` for `*` rules (which may read no arguments).
    pub tool: Option<&'a ToolDef>,
    /// All tools, to explain why a `*` rule cannot read an argument.
    pub all_tools: &'a [ToolDef],
    pub namespace: &'a Namespace,
    pub thresholds: &'a [crate::model::ThresholdDef],
    pub file: FileId,
}

pub fn literal_value(literal: &Literal) -> Value {
    match &literal.value {
        LiteralValue::Money(v) => Value::Money(*v),
        LiteralValue::Number(v) | LiteralValue::Percent(v) => Value::Number(*v),
        LiteralValue::Duration(v) => Value::Duration(*v),
        LiteralValue::Text(t) => Value::Text(t.clone()),
        LiteralValue::Bool(b) => Value::Bool(*b),
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
    if cond.terms().iter().all(|t| matches!(t, Term::Const { .. })) {
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
            if !comparable(lty, rty) {
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
    }
}

fn type_phrase(ty: TypeName) -> String {
    match ty {
        TypeName::Text => "text".to_string(),
        TypeName::Number => "a number".to_string(),
        TypeName::Money => "money".to_string(),
        TypeName::Bool => "a bool".to_string(),
        TypeName::Duration => "a duration".to_string(),
        TypeName::Percent => "a percentage".to_string(),
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
    candidates.extend(scope.namespace.names_of(&[NameKind::Threshold]));
    let suggestion = did_you_mean(&name.text, candidates.iter().copied());
    let message = match scope.tool {
        Some(tool) => format!(
            "`{}` is not an argument of tool `{}`, `confidence`, or a threshold",
            name.text, tool.name
        ),
        None => format!("`{}` is not `confidence` or a threshold", name.text),
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
