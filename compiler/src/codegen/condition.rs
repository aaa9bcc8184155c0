//! Lowering a typed [`Cond`] to the runtime's postfix bytecode.
//!
//! Comparisons become `Compare` (slot against constant, constant side moved right by
//! flipping the operator), `CompareSlots`, or a folded `Const` when both sides are
//! constants. Texts become ids in the table's text dictionary, so they only compare for
//! (in)equality; an ordering comparison of texts is refused here. Set membership, globs
//! and list quantifiers become text tests of the argument (registered in the table, run
//! by the request builder) read with `Any` / `All`; `effect E` folds to a constant for
//! the tool of the cell.

use std::collections::HashMap;

use agentpolicy_runtime::{self as rt, Condition, Op, ProgramError, Slot};

use super::convert::cmp_op;
use crate::model::{Cond, ElementTest, Term, ToolDef, ToolId, Value};
use crate::syntax::ast::{CompareOp, Quantifier, TypeName};

/// The table's text constants, in first-use order, and its text tests.
#[derive(Debug, Default)]
pub(crate) struct TextDictionary {
    ids: HashMap<String, u32>,
    pub(crate) texts: Vec<String>,
    pub(crate) tests: Vec<rt::TextTest>,
}

impl TextDictionary {
    /// The bit of a text test on a tool's parameter, registering it on first use.
    fn test(
        &mut self,
        tool: ToolId,
        param: usize,
        kind: rt::TextTestKind,
    ) -> Result<u8, LowerError> {
        let param = u8::try_from(param).map_err(|_| LowerError::NoSuchArgument(param))?;
        let tool = rt::ToolId(tool.0);
        let same: Vec<&rt::TextTest> = self
            .tests
            .iter()
            .filter(|t| t.tool == tool && t.param == param)
            .collect();
        if let Some(bit) = same.iter().position(|t| t.kind == kind) {
            return Ok(bit as u8);
        }
        if same.len() >= 32 {
            return Err(LowerError::TooManyTextTests);
        }
        let bit = same.len() as u8;
        self.tests.push(rt::TextTest { tool, param, kind });
        Ok(bit)
    }

    fn intern(&mut self, text: &str) -> i64 {
        if let Some(&id) = self.ids.get(text) {
            return i64::from(id);
        }
        let id = self.texts.len() as u32;
        self.texts.push(text.to_owned());
        self.ids.insert(text.to_owned(), id);
        i64::from(id)
    }
}

/// Why a condition could not be lowered.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum LowerError {
    /// Texts compared with `<`, `<=`, `>` or `>=`.
    TextOrdering(CompareOp),
    /// A non-`bool` term used as a condition.
    NotBool(TypeName),
    /// An argument read where there is no tool (a `*` rule) or past the tool's params.
    NoSuchArgument(usize),
    /// The condition needs a deeper stack than the runtime has.
    TooDeep,
    /// More than 32 distinct set, pattern and list tests on one argument.
    TooManyTextTests,
    /// `effect E` where the tool is not known: a compiler bug.
    EffectWithoutTool,
    /// `tainted` compared with something other than `true` / `false`.
    TaintedComparison,
    /// The lowering produced a malformed program: a compiler bug.
    Internal(ProgramError),
}

enum Operand {
    Slot(Slot, TypeName),
    Const(Value),
    Tainted,
}

/// Which tool a condition is lowered for: the rule's tool for its arguments (`None`
/// for a `*` rule), and the cell's tool for `effect E`.
#[derive(Clone, Copy)]
pub(crate) struct Target<'a> {
    pub args: Option<(ToolId, &'a ToolDef)>,
    pub effects: Option<&'a ToolDef>,
}

/// Lowers a condition of a rule.
pub(crate) fn lower(
    cond: &Cond,
    target: Target<'_>,
    texts: &mut TextDictionary,
) -> Result<Condition, LowerError> {
    let mut code = Vec::new();
    emit(cond, target, texts, &mut code)?;
    Condition::new(code).map_err(|e| match e {
        ProgramError::TooDeep { .. } => LowerError::TooDeep,
        other => LowerError::Internal(other),
    })
}

fn emit(
    cond: &Cond,
    target: Target<'_>,
    texts: &mut TextDictionary,
    code: &mut Vec<Op>,
) -> Result<(), LowerError> {
    let tool = target.args.map(|(_, t)| t);
    let tool_id = target.args.map(|(id, _)| id);
    match cond {
        Cond::Or(parts) | Cond::And(parts) => {
            let (join, empty) = match cond {
                Cond::Or(_) => (Op::Or, false),
                _ => (Op::And, true),
            };
            let Some((first, rest)) = parts.split_first() else {
                code.push(Op::Const(empty));
                return Ok(());
            };
            emit(first, target, texts, code)?;
            for part in rest {
                emit(part, target, texts, code)?;
                code.push(join);
            }
        }
        Cond::Not(inner) => {
            emit(inner, target, texts, code)?;
            code.push(Op::Not);
        }
        Cond::InSet { arg, set } => {
            let (slot, id) = arg_slot(*arg, tool, tool_id)?;
            let bit = texts.test(id, *arg, rt::TextTestKind::InSet(set.0))?;
            code.push(Op::Any { slot, bit });
        }
        Cond::Matches { arg, pattern } => {
            let (slot, id) = arg_slot(*arg, tool, tool_id)?;
            let bit = texts.test(id, *arg, rt::TextTestKind::Matches(pattern.clone()))?;
            code.push(Op::Any { slot, bit });
        }
        Cond::Quantified {
            quantifier,
            arg,
            test,
        } => {
            let (slot, id) = arg_slot(*arg, tool, tool_id)?;
            let (kind, negated) = match test {
                ElementTest::InSet { set, negated } => (rt::TextTestKind::InSet(set.0), *negated),
                ElementTest::Matches { pattern, negated } => {
                    (rt::TextTestKind::Matches(pattern.clone()), *negated)
                }
                ElementTest::Equals { text, negated } => {
                    (rt::TextTestKind::Equals(text.clone()), *negated)
                }
            };
            let bit = texts.test(id, *arg, kind)?;
            // `any xs not P` is `not (all xs P)`; `all xs not P` is `not (any xs P)`.
            code.push(match (quantifier, negated) {
                (Quantifier::Any, false) | (Quantifier::All, true) => Op::Any { slot, bit },
                (Quantifier::All, false) | (Quantifier::Any, true) => Op::All { slot, bit },
            });
            if negated {
                code.push(Op::Not);
            }
        }
        Cond::FromUntrusted { arg } => {
            let (slot, _) = arg_slot(*arg, tool, tool_id)?;
            code.push(Op::Untrusted { slot });
        }
        Cond::Present { arg } => {
            let (slot, _) = arg_slot(*arg, tool, tool_id)?;
            code.push(Op::Present { slot });
        }
        Cond::HasEffect(effect) => {
            let tool = target.effects.ok_or(LowerError::EffectWithoutTool)?;
            code.push(Op::Const(tool.has_effect(*effect)));
        }
        Cond::Compare { left, op, right } => {
            let l = operand(left, tool)?;
            let r = operand(right, tool)?;
            let is_text = |o: &Operand| match o {
                Operand::Slot(_, ty) => *ty == TypeName::Text,
                Operand::Const(v) => matches!(v, Value::Text(_)),
                Operand::Tainted => false,
            };
            if (is_text(&l) || is_text(&r)) && !matches!(op, CompareOp::Eq | CompareOp::Ne) {
                return Err(LowerError::TextOrdering(*op));
            }
            let op_rt = cmp_op(*op);
            let tainted_vs = match (&l, &r) {
                (Operand::Tainted, Operand::Const(Value::Bool(b)))
                | (Operand::Const(Value::Bool(b)), Operand::Tainted) => Some(Some(*b)),
                (Operand::Tainted, _) | (_, Operand::Tainted) => Some(None),
                _ => None,
            };
            if let Some(value) = tainted_vs {
                let positive = match (op, value) {
                    (CompareOp::Eq, Some(b)) => b,
                    (CompareOp::Ne, Some(b)) => !b,
                    _ => return Err(LowerError::TaintedComparison),
                };
                code.push(Op::Tainted);
                if !positive {
                    code.push(Op::Not);
                }
                return Ok(());
            }
            code.push(match (l, r) {
                (Operand::Tainted, _) | (_, Operand::Tainted) => {
                    return Err(LowerError::TaintedComparison);
                }
                (Operand::Slot(left, _), Operand::Slot(right, _)) => Op::CompareSlots {
                    left,
                    op: op_rt,
                    right,
                },
                (Operand::Slot(slot, _), Operand::Const(v)) => Op::Compare {
                    slot,
                    op: op_rt,
                    value: encode(&v, texts),
                },
                (Operand::Const(v), Operand::Slot(slot, _)) => Op::Compare {
                    slot,
                    op: op_rt.flipped(),
                    value: encode(&v, texts),
                },
                (Operand::Const(a), Operand::Const(b)) => Op::Const(fold(&a, *op, &b)),
            });
        }
        Cond::Truthy(term) => match operand(term, tool)? {
            Operand::Slot(slot, TypeName::Bool) => code.push(Op::Truthy { slot }),
            Operand::Const(Value::Bool(b)) => code.push(Op::Const(b)),
            Operand::Tainted => code.push(Op::Tainted),
            Operand::Slot(_, ty) => return Err(LowerError::NotBool(ty)),
            Operand::Const(v) => return Err(LowerError::NotBool(v.ty())),
        },
    }
    Ok(())
}

fn operand(term: &Term, tool: Option<&ToolDef>) -> Result<Operand, LowerError> {
    match term {
        Term::Arg(i) => {
            let param = tool
                .and_then(|t| t.params.get(*i))
                .ok_or(LowerError::NoSuchArgument(*i))?;
            let slot = Slot::arg(*i).ok_or(LowerError::NoSuchArgument(*i))?;
            Ok(Operand::Slot(slot, param.ty))
        }
        Term::Confidence => Ok(Operand::Slot(Slot::CONFIDENCE, TypeName::Number)),
        Term::Tainted => Ok(Operand::Tainted),
        Term::Const { value, .. } => Ok(Operand::Const(value.clone())),
    }
}

/// The `i64` a constant is compared as.
pub(crate) fn encode(value: &Value, texts: &mut TextDictionary) -> i64 {
    match value {
        Value::Money(v) | Value::Number(v) | Value::Duration(v) => *v,
        Value::Bool(b) => i64::from(*b),
        Value::Text(t) => texts.intern(t),
        // No condition has a list constant (the grammar has none); never compared.
        Value::TextList(_) => 0,
    }
}

fn arg_slot(
    arg: usize,
    tool: Option<&ToolDef>,
    tool_id: Option<ToolId>,
) -> Result<(Slot, ToolId), LowerError> {
    tool.and_then(|t| t.params.get(arg))
        .ok_or(LowerError::NoSuchArgument(arg))?;
    let slot = Slot::arg(arg).ok_or(LowerError::NoSuchArgument(arg))?;
    Ok((slot, tool_id.ok_or(LowerError::NoSuchArgument(arg))?))
}

/// A comparison of two constants, decided at compile time.
fn fold(a: &Value, op: CompareOp, b: &Value) -> bool {
    match (a, b) {
        (Value::Text(x), Value::Text(y)) => op.holds(x, y),
        (Value::Bool(x), Value::Bool(y)) => op.holds(x, y),
        (
            Value::Money(x) | Value::Number(x) | Value::Duration(x),
            Value::Money(y) | Value::Number(y) | Value::Duration(y),
        ) => op.holds(x, y),
        _ => op.holds(a, b),
    }
}

/// A description of a lowering error for a diagnostic message.
pub(crate) fn describe(err: &LowerError) -> String {
    match err {
        LowerError::TextOrdering(op) => format!(
            "texts can only be compared with `==` or `!=`, not `{}`",
            op.symbol()
        ),
        LowerError::NotBool(ty) => format!(
            "a {} value cannot be used as a condition on its own; compare it with something",
            ty.keyword()
        ),
        LowerError::NoSuchArgument(i) => format!(
            "the condition reads argument #{} , which this rule's tool does not have",
            i + 1
        ),
        LowerError::TooDeep => format!(
            "the condition is nested too deeply for the decision table (its evaluation needs more than {} stack entries)",
            rt::MAX_STACK
        ),
        LowerError::Internal(e) => format!("internal error lowering the condition: {e}"),
        LowerError::TooManyTextTests => {
            "more than 32 different set, pattern and list tests on one argument of one tool".into()
        }
        LowerError::EffectWithoutTool => {
            "internal error: `effect` lowered without the cell's tool".into()
        }
        LowerError::TaintedComparison => {
            "`tainted` can only be used on its own or compared with `true` / `false`".into()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diagnostics::FileId;
    use crate::model::{Loc, ParamDef};
    use crate::syntax::ast::TextRange;

    const STAR: Target<'static> = Target {
        args: None,
        effects: None,
    };

    fn on(tool: &ToolDef) -> Target<'_> {
        Target {
            args: Some((ToolId(0), tool)),
            effects: Some(tool),
        }
    }

    fn tool() -> ToolDef {
        let loc = Loc {
            file: FileId(0),
            range: TextRange::default(),
        };
        let param = |name: &str, ty| ParamDef {
            name: name.into(),
            ty,
            optional: false,
            loc,
        };
        ToolDef {
            name: "send".into(),
            params: vec![
                param("amount", TypeName::Money),
                param("to", TypeName::Text),
                param("urgent", TypeName::Bool),
            ],
            effects: vec![],
            reads: vec![],
            writes: vec![],
            untrusted: false,
            loc,
        }
    }

    fn konst(value: Value) -> Term {
        Term::Const {
            value,
            threshold: None,
        }
    }

    #[test]
    fn constants_move_right_and_texts_are_interned() {
        let mut texts = TextDictionary::default();
        // $100 < amount and to == "ceo" and urgent
        let cond = Cond::And(vec![
            Cond::Compare {
                left: konst(Value::Money(10_000)),
                op: CompareOp::Lt,
                right: Term::Arg(0),
            },
            Cond::Compare {
                left: Term::Arg(1),
                op: CompareOp::Eq,
                right: konst(Value::Text("ceo".into())),
            },
            Cond::Truthy(Term::Arg(2)),
        ]);
        let lowered = lower(&cond, on(&tool()), &mut texts).unwrap();
        assert_eq!(
            lowered.code,
            vec![
                Op::Compare {
                    slot: Slot(0),
                    op: rt::CmpOp::Gt,
                    value: 10_000
                },
                Op::Compare {
                    slot: Slot(1),
                    op: rt::CmpOp::Eq,
                    value: 0
                },
                Op::And,
                Op::Truthy { slot: Slot(2) },
                Op::And,
            ]
        );
        assert_eq!(lowered.reads, 0b111);
        assert_eq!(texts.texts, vec!["ceo".to_string()]);
    }

    #[test]
    fn constant_comparisons_fold_and_empty_junctions_are_identities() {
        let mut texts = TextDictionary::default();
        let cond = Cond::Or(vec![
            Cond::Compare {
                left: konst(Value::Number(1)),
                op: CompareOp::Gt,
                right: konst(Value::Number(2)),
            },
            Cond::And(vec![]),
            Cond::Or(vec![]),
        ]);
        let lowered = lower(&cond, STAR, &mut texts).unwrap();
        assert_eq!(
            lowered.code,
            vec![
                Op::Const(false),
                Op::Const(true),
                Op::Or,
                Op::Const(false),
                Op::Or
            ]
        );
    }

    #[test]
    fn refusals() {
        let mut texts = TextDictionary::default();
        let ordering = Cond::Compare {
            left: Term::Arg(1),
            op: CompareOp::Lt,
            right: konst(Value::Text("m".into())),
        };
        assert_eq!(
            lower(&ordering, on(&tool()), &mut texts),
            Err(LowerError::TextOrdering(CompareOp::Lt))
        );
        assert_eq!(
            lower(&Cond::Truthy(Term::Arg(0)), on(&tool()), &mut texts),
            Err(LowerError::NotBool(TypeName::Money))
        );
        assert_eq!(
            lower(&Cond::Truthy(Term::Arg(0)), STAR, &mut texts),
            Err(LowerError::NoSuchArgument(0))
        );
        let mut deep = Cond::Truthy(Term::Arg(2));
        for _ in 0..70 {
            deep = Cond::And(vec![Cond::Truthy(Term::Arg(2)), deep]);
        }
        assert_eq!(
            lower(&deep, on(&tool()), &mut texts),
            Err(LowerError::TooDeep)
        );
    }
}
