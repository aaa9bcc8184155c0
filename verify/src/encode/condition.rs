//! The table's postfix condition bytecode as formulas: the runtime's stack run
//! symbolically over a [`SymRequest`], with the values it reads collected as a presence
//! condition.
//!
//! It must not know about rule stages or source conditions (`stage.rs`, `source.rs`).

use agentpolicy_runtime::{CmpOp, Condition, Op, Slot, TextTestKind, ValueType};

use z3::ast::{Bool, Int};

use super::*;

/// How constants of text slots are renumbered (the identity, except in `diff`, where two
/// tables' dictionaries are mapped onto one).
pub type TextMap<'a> = &'a dyn Fn(i64) -> i64;

pub(super) fn cmp(op: CmpOp, l: &Int, r: &Int) -> Bool {
    match op {
        CmpOp::Lt => l.lt(r),
        CmpOp::Le => l.le(r),
        CmpOp::Gt => l.gt(r),
        CmpOp::Ge => l.ge(r),
        CmpOp::Eq => l.eq(r),
        CmpOp::Ne => l.eq(r).not(),
    }
}

/// A compiled condition: `(holds, every slot it reads outside a guard is present)`.
/// `None` for a malformed program, which a validated table never has.
///
/// A read inside a guard (`Op::Present` beside it, see [`Condition::new`]) is left out
/// of the presence condition, exactly as the runtime leaves it out of `reads`: when the
/// slot is missing the guard settles the result, whatever the slot's free value.
pub fn condition(
    cond: &Condition,
    req: &SymRequest,
    texts: TextMap<'_>,
    tests: TextTests<'_>,
) -> Option<(Bool, Bool)> {
    let zero = Int::from_i64(0);
    let absent = Bool::from_bool(false);
    let value = |slot: Slot| -> (Int, Bool, Option<ValueType>) {
        match req.slot(slot.0 as usize) {
            Some(s) => (s.value.clone(), s.present.clone(), Some(s.ty)),
            None => (zero.clone(), absent.clone(), None),
        }
    };
    let mut stack: Vec<Bool> = Vec::new();
    let mut present = Vec::new();
    // The slots whose presence the runtime requires: those read outside a guard.
    let unguarded = |slot: Slot| cond.reads & slot.bit() != 0;
    for op in &cond.code {
        match *op {
            Op::Compare { slot, op, value: c } => {
                let (v, p, ty) = value(slot);
                let c = if ty == Some(ValueType::Text) {
                    texts(c)
                } else {
                    c
                };
                if unguarded(slot) {
                    present.push(p);
                }
                stack.push(cmp(op, &v, &Int::from_i64(c)));
            }
            Op::CompareSlots { left, op, right } => {
                let (l, pl, _) = value(left);
                let (r, pr, _) = value(right);
                if unguarded(left) {
                    present.push(pl);
                }
                if unguarded(right) {
                    present.push(pr);
                }
                stack.push(cmp(op, &l, &r));
            }
            Op::Truthy { slot } => {
                let (v, p, _) = value(slot);
                if unguarded(slot) {
                    present.push(p);
                }
                stack.push(v.eq(&zero).not());
            }
            Op::Any { slot, bit } | Op::All { slot, bit } => {
                let var = req.slot(slot.0 as usize)?;
                let kind = tests.kind(slot, bit)?;
                if unguarded(slot) {
                    present.push(var.present.clone());
                }
                let all = matches!(op, Op::All { .. });
                if req.members && var.ty == ValueType::Text {
                    // Read as an id: only membership in a set written in the policy.
                    let TextTestKind::InSet(set) = kind else {
                        return None;
                    };
                    stack.push(tests.texts.member_id(*set as usize, &var.value)?);
                    continue;
                }
                stack.push(over_elements(var, all, &|s| {
                    text_test(&tests.texts.alphabet, kind, &tests.data.sets, s)
                })?);
            }
            Op::Untrusted { slot } => {
                let var = req.slot(slot.0 as usize)?;
                if unguarded(slot) {
                    present.push(var.present.clone());
                }
                stack.push(var.untrusted.clone());
            }
            Op::Present { slot } => {
                let (_, p, _) = value(slot);
                stack.push(p);
            }
            Op::Tainted => stack.push(req.tainted.clone()),
            Op::Const(b) => stack.push(Bool::from_bool(b)),
            Op::Not => {
                let a = stack.pop()?;
                stack.push(a.not());
            }
            Op::And | Op::Or => {
                let a = stack.pop()?;
                let b = stack.pop()?;
                stack.push(if matches!(op, Op::And) {
                    Bool::and(&[a, b])
                } else {
                    Bool::or(&[a, b])
                });
            }
        }
    }
    let result = stack.pop()?;
    if !stack.is_empty() {
        return None;
    }
    Some((result, Bool::and(&present)))
}
