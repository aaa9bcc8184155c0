//! Compiled rule conditions: postfix bytecode over a bit stack, evaluated without
//! allocation.
//!
//! A request carries its values in [`SLOTS`] `i64` slots: one per tool parameter (at most
//! [`MAX_PARAMS`]) and one for the caller's confidence. A condition reads some of them;
//! [`Condition::reads`] is the bitmask of those slots, so a missing value is found with
//! one AND before any code runs. The code is postfix: comparisons push a boolean, `Not`,
//! `And` and `Or` pop and push. The stack is a `u64` used as [`MAX_STACK`] bits.
//!
//! Values are exact integers: money in cents, numbers and percentages in millionths,
//! durations in milliseconds, booleans 0 / 1, texts as interned ids (see
//! [`crate::UNKNOWN_TEXT_BASE`]).

use serde::{Deserialize, Serialize};

/// Tool parameters a table can describe per tool.
pub const MAX_PARAMS: usize = 16;
/// Value slots of a request: the parameters, then the confidence.
pub const SLOTS: usize = MAX_PARAMS + 1;
/// Depth of the evaluation stack: a condition that needs more is rejected when the table
/// is built or loaded.
pub const MAX_STACK: usize = 64;

/// A value slot of a request: a tool argument by parameter index, or the confidence.
///
/// ```
/// use agentpolicy_runtime::Slot;
/// assert_eq!(Slot::arg(2), Some(Slot(2)));
/// assert!(Slot::CONFIDENCE.is_confidence());
/// assert_eq!(Slot::arg(16), None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Slot(pub u8);

impl Slot {
    /// The slot of the caller's confidence, in millionths.
    pub const CONFIDENCE: Slot = Slot(MAX_PARAMS as u8);

    /// The slot of the argument at parameter index `index`, if a table can hold it.
    pub fn arg(index: usize) -> Option<Slot> {
        (index < MAX_PARAMS).then_some(Slot(index as u8))
    }

    pub fn is_confidence(self) -> bool {
        self == Slot::CONFIDENCE
    }

    /// The parameter index, for argument slots.
    pub fn param(self) -> Option<usize> {
        (usize::from(self.0) < MAX_PARAMS).then_some(usize::from(self.0))
    }

    /// This slot's bit in a presence or reads mask; 0 for a slot out of range.
    pub fn bit(self) -> u32 {
        if usize::from(self.0) < SLOTS {
            1 << self.0
        } else {
            0
        }
    }

    fn is_valid(self) -> bool {
        usize::from(self.0) < SLOTS
    }
}

/// A comparison operator.
///
/// ```
/// use agentpolicy_runtime::CmpOp;
/// assert!(CmpOp::Le.holds(3, 3));
/// assert!(!CmpOp::Gt.holds(3, 3));
/// assert_eq!(CmpOp::Lt.flipped(), CmpOp::Gt);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CmpOp {
    Lt,
    Le,
    Gt,
    Ge,
    Eq,
    Ne,
}

impl CmpOp {
    #[inline]
    pub fn holds(self, left: i64, right: i64) -> bool {
        match self {
            CmpOp::Lt => left < right,
            CmpOp::Le => left <= right,
            CmpOp::Gt => left > right,
            CmpOp::Ge => left >= right,
            CmpOp::Eq => left == right,
            CmpOp::Ne => left != right,
        }
    }

    /// The same comparison with its operands swapped: `a < b` is `b > a`.
    pub fn flipped(self) -> CmpOp {
        match self {
            CmpOp::Lt => CmpOp::Gt,
            CmpOp::Le => CmpOp::Ge,
            CmpOp::Gt => CmpOp::Lt,
            CmpOp::Ge => CmpOp::Le,
            CmpOp::Eq => CmpOp::Eq,
            CmpOp::Ne => CmpOp::Ne,
        }
    }

    pub fn symbol(self) -> &'static str {
        match self {
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Eq => "==",
            CmpOp::Ne => "!=",
        }
    }

    /// Whether the operator only tests (in)equality, the only comparisons texts allow.
    pub fn is_equality(self) -> bool {
        matches!(self, CmpOp::Eq | CmpOp::Ne)
    }
}

/// One instruction of a condition program.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Op {
    /// Push `value(slot) op value`.
    Compare { slot: Slot, op: CmpOp, value: i64 },
    /// Push `value(left) op value(right)`.
    CompareSlots { left: Slot, op: CmpOp, right: Slot },
    /// Push `value(slot) != 0`: a `bool` argument used as a condition.
    Truthy { slot: Slot },
    /// Push whether some element of the text (or `list<text>`) argument passes the
    /// slot's `bit`-th text test (see [`crate::TextTest`]); a plain text is one element.
    Any { slot: Slot, bit: u8 },
    /// Push whether every element of the argument passes the slot's `bit`-th text test.
    All { slot: Slot, bit: u8 },
    /// Push whether the caller marked the argument as coming from untrusted content.
    Untrusted { slot: Slot },
    /// Push whether the session is tainted (has taken in untrusted content).
    Tainted,
    /// Push a constant.
    Const(bool),
    /// Pop one, push its negation.
    Not,
    /// Pop two, push their conjunction.
    And,
    /// Pop two, push their disjunction.
    Or,
    /// Push whether the request carries the argument (`ARG given`). It reads no value,
    /// so it never makes the condition unknown; it *guards* the reads of its slot beside
    /// it (see [`Condition::new`]).
    Present { slot: Slot },
}

impl Op {
    /// The slots this instruction reads, as a mask.
    pub fn reads(self) -> u32 {
        match self {
            Op::Compare { slot, .. }
            | Op::Truthy { slot }
            | Op::Any { slot, .. }
            | Op::All { slot, .. }
            | Op::Untrusted { slot } => slot.bit(),
            Op::CompareSlots { left, right, .. } => left.bit() | right.bit(),
            Op::Const(_) | Op::Tainted | Op::Not | Op::And | Op::Or | Op::Present { .. } => 0,
        }
    }

    /// The slots named by this instruction, in order.
    pub fn slots(self) -> impl Iterator<Item = Slot> {
        let (a, b) = match self {
            Op::Compare { slot, .. }
            | Op::Truthy { slot }
            | Op::Any { slot, .. }
            | Op::All { slot, .. }
            | Op::Untrusted { slot }
            | Op::Present { slot } => (Some(slot), None),
            Op::CompareSlots { left, right, .. } => (Some(left), Some(right)),
            Op::Const(_) | Op::Tainted | Op::Not | Op::And | Op::Or => (None, None),
        };
        a.into_iter().chain(b)
    }
}

/// Why a condition program is not well formed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgramError {
    /// The program is empty.
    Empty,
    /// An instruction names a slot past the confidence slot, a text test on the
    /// confidence, or a text test bit past 31.
    BadSlot { at: usize },
    /// An instruction pops from an empty (or one-element, for `And`/`Or`) stack.
    Underflow { at: usize },
    /// The program needs more than [`MAX_STACK`] stack entries.
    TooDeep { at: usize },
    /// The program leaves more than one value on the stack.
    LeftOver { values: usize },
    /// The stored reads mask differs from the slots the code reads.
    WrongReadsMask { stored: u32, actual: u32 },
}

impl std::fmt::Display for ProgramError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProgramError::Empty => f.write_str("the condition program is empty"),
            ProgramError::BadSlot { at } => {
                write!(f, "instruction {at} reads a slot that does not exist")
            }
            ProgramError::Underflow { at } => {
                write!(f, "instruction {at} pops more values than the stack holds")
            }
            ProgramError::TooDeep { at } => write!(
                f,
                "instruction {at} needs more than {MAX_STACK} stack entries"
            ),
            ProgramError::LeftOver { values } => {
                write!(f, "the program leaves {values} values instead of one")
            }
            ProgramError::WrongReadsMask { stored, actual } => write!(
                f,
                "the reads mask {stored:#x} differs from the slots the code reads ({actual:#x})"
            ),
        }
    }
}

/// What [`Condition::check`] tracks for one stack entry: the slots the entry reads
/// outside a guard, and the slots whose absence settles it false (`f`) or true (`t`)
/// whatever it reads besides.
#[derive(Clone, Copy, Default)]
struct Guard {
    reads: u32,
    f: u32,
    t: u32,
}

/// A compiled condition: the mask of slots it reads and its postfix code.
///
/// ```
/// use agentpolicy_runtime::{CmpOp, Condition, Op, SLOTS, Slot};
///
/// // amount > 10_000_00 or not urgent
/// let cond = Condition::new(vec![
///     Op::Compare { slot: Slot(0), op: CmpOp::Gt, value: 1_000_000 },
///     Op::Truthy { slot: Slot(1) },
///     Op::Not,
///     Op::Or,
/// ])
/// .unwrap();
/// assert_eq!(cond.reads, 0b11);
/// let mut values = [0i64; SLOTS];
/// values[0] = 2_000_000;
/// values[1] = 1;
/// assert_eq!(cond.eval(&values), Some(true));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Condition {
    /// Bit `i` is set when the code reads slot `i` outside a guard: when such a slot is
    /// missing the condition is unknown (see [`Condition::new`]).
    pub reads: u32,
    pub code: Vec<Op>,
}

impl Condition {
    /// A condition from its code, with the reads mask computed; the code is checked.
    ///
    /// The mask holds the slots read outside a *guard*. [`Op::Present`] on slot `s` is
    /// false when `s` is missing, whatever else is read; so is a `Not` of an entry true
    /// without `s`, an `And` with an operand false without `s`, and an `Or` both of
    /// whose operands are (and dually for true). In an `And` one of whose operands is
    /// false without `s`, the other operand's reads of `s` are guarded: when `s` is
    /// missing the `And` is false whatever value the missing slot holds (dually for `Or`
    /// and true). So when no slot of the mask is missing, the result does not depend on
    /// the values of missing slots.
    ///
    /// ```
    /// use agentpolicy_runtime::{CmpOp, Condition, Op, Slot};
    /// // memo given and memo == 7: reads nothing outside the guard.
    /// let guarded = Condition::new(vec![
    ///     Op::Present { slot: Slot(1) },
    ///     Op::Compare { slot: Slot(1), op: CmpOp::Eq, value: 7 },
    ///     Op::And,
    /// ])
    /// .unwrap();
    /// assert_eq!(guarded.reads, 0);
    /// ```
    pub fn new(code: Vec<Op>) -> Result<Condition, ProgramError> {
        let reads = Self::unguarded_reads(&code)?;
        let cond = Condition { reads, code };
        cond.check()?;
        Ok(cond)
    }

    /// The slots `code` reads outside a guard ([`Condition::new`]), with the program's
    /// shape checked (slots, underflow, depth, one value left).
    fn unguarded_reads(code: &[Op]) -> Result<u32, ProgramError> {
        if code.is_empty() {
            return Err(ProgramError::Empty);
        }
        let mut stack: Vec<Guard> = Vec::new();
        for (at, op) in code.iter().enumerate() {
            if op.slots().any(|s| !s.is_valid()) {
                return Err(ProgramError::BadSlot { at });
            }
            match *op {
                Op::Any { slot, bit } | Op::All { slot, bit }
                    if slot.is_confidence() || bit >= 32 =>
                {
                    return Err(ProgramError::BadSlot { at });
                }
                Op::Untrusted { slot } | Op::Present { slot } if slot.is_confidence() => {
                    return Err(ProgramError::BadSlot { at });
                }
                _ => {}
            }
            match *op {
                Op::Not => {
                    let a = stack.pop().ok_or(ProgramError::Underflow { at })?;
                    stack.push(Guard {
                        reads: a.reads,
                        f: a.t,
                        t: a.f,
                    });
                }
                Op::And | Op::Or => {
                    let (Some(b), Some(a)) = (stack.pop(), stack.pop()) else {
                        return Err(ProgramError::Underflow { at });
                    };
                    stack.push(if matches!(op, Op::And) {
                        Guard {
                            reads: (a.reads & !b.f) | (b.reads & !a.f),
                            f: a.f | b.f,
                            t: a.t & b.t,
                        }
                    } else {
                        Guard {
                            reads: (a.reads & !b.t) | (b.reads & !a.t),
                            f: a.f & b.f,
                            t: a.t | b.t,
                        }
                    });
                }
                Op::Present { slot } => stack.push(Guard {
                    f: slot.bit(),
                    ..Guard::default()
                }),
                other => stack.push(Guard {
                    reads: other.reads(),
                    ..Guard::default()
                }),
            }
            if stack.len() > MAX_STACK {
                return Err(ProgramError::TooDeep { at });
            }
        }
        match stack.as_slice() {
            [one] => Ok(one.reads),
            other => Err(ProgramError::LeftOver {
                values: other.len(),
            }),
        }
    }

    /// Checks that the program is well formed: valid slots, no stack underflow or
    /// overflow, exactly one value left, and a reads mask that matches the code.
    pub fn check(&self) -> Result<(), ProgramError> {
        let actual = Self::unguarded_reads(&self.code)?;
        if actual != self.reads {
            return Err(ProgramError::WrongReadsMask {
                stored: self.reads,
                actual,
            });
        }
        Ok(())
    }

    /// The first slot (lowest index) the condition reads that `present` lacks.
    #[inline]
    pub fn first_missing(&self, present: u32) -> Option<Slot> {
        let missing = self.reads & !present;
        (missing != 0).then(|| Slot(missing.trailing_zeros() as u8))
    }

    /// Runs the code over value slots alone: text tests, provenance and taint read as
    /// false, every slot as present. For conditions of a request use [`Condition::eval_request`]. `None` means
    /// the program is malformed (which [`Condition::check`] rules out); callers treat it
    /// as a fault, never as a match that allows.
    #[inline]
    pub fn eval(&self, values: &[i64; SLOTS]) -> Option<bool> {
        self.run(
            values,
            &Facts {
                text_bits: &[0; MAX_PARAMS],
                untrusted: 0,
                tainted: false,
                present: u32::MAX,
            },
        )
    }

    /// Runs the code over a request: its values, text-test bits, argument provenance
    /// and session taint.
    #[inline]
    pub fn eval_request(&self, request: &crate::Request) -> Option<bool> {
        self.run(
            &request.values,
            &Facts {
                text_bits: &request.text_bits,
                untrusted: request.untrusted,
                tainted: request.session.tainted,
                present: request.present,
            },
        )
    }

    #[inline]
    fn run(&self, values: &[i64; SLOTS], facts: &Facts<'_>) -> Option<bool> {
        // Most conditions are one comparison: skip the stack for them.
        if let [Op::Compare { slot, op, value }] = self.code.as_slice() {
            return values
                .get(usize::from(slot.0))
                .map(|v| op.holds(*v, *value));
        }
        let mut stack = BitStack::default();
        for op in &self.code {
            match *op {
                Op::Compare { slot, op, value } => {
                    let left = *values.get(usize::from(slot.0))?;
                    stack.push(op.holds(left, value))?;
                }
                Op::CompareSlots { left, op, right } => {
                    let l = *values.get(usize::from(left.0))?;
                    let r = *values.get(usize::from(right.0))?;
                    stack.push(op.holds(l, r))?;
                }
                Op::Truthy { slot } => {
                    let v = *values.get(usize::from(slot.0))?;
                    stack.push(v != 0)?;
                }
                Op::Any { slot, bit } => {
                    let bits = *facts.text_bits.get(usize::from(slot.0))?;
                    stack.push((bits >> (bit & 31)) & 1 == 1)?;
                }
                Op::All { slot, bit } => {
                    let bits = *facts.text_bits.get(usize::from(slot.0))?;
                    stack.push((bits >> (32 + (bit & 31))) & 1 == 1)?;
                }
                Op::Untrusted { slot } => stack.push(facts.untrusted & slot.bit() != 0)?,
                Op::Tainted => stack.push(facts.tainted)?,
                Op::Present { slot } => stack.push(facts.present & slot.bit() != 0)?,
                Op::Const(b) => stack.push(b)?,
                Op::Not => {
                    let a = stack.pop()?;
                    stack.push(!a)?;
                }
                Op::And => {
                    let a = stack.pop()?;
                    let b = stack.pop()?;
                    stack.push(a & b)?;
                }
                Op::Or => {
                    let a = stack.pop()?;
                    let b = stack.pop()?;
                    stack.push(a | b)?;
                }
            }
        }
        let result = stack.pop()?;
        (stack.depth == 0).then_some(result)
    }
}

/// What a condition reads of a request besides its value slots, borrowed from it (the
/// text bits are 128 bytes: not copied per condition).
struct Facts<'a> {
    text_bits: &'a [u64; MAX_PARAMS],
    untrusted: u32,
    tainted: bool,
    present: u32,
}

/// [`MAX_STACK`] booleans in one word.
#[derive(Default)]
struct BitStack {
    bits: u64,
    depth: u32,
}

impl BitStack {
    #[inline]
    fn push(&mut self, b: bool) -> Option<()> {
        if self.depth as usize >= MAX_STACK {
            return None;
        }
        self.bits = (self.bits << 1) | u64::from(b);
        self.depth += 1;
        Some(())
    }

    #[inline]
    fn pop(&mut self) -> Option<bool> {
        if self.depth == 0 {
            return None;
        }
        let b = self.bits & 1 == 1;
        self.bits >>= 1;
        self.depth -= 1;
        Some(b)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(pairs: &[(usize, i64)]) -> [i64; SLOTS] {
        let mut v = [0; SLOTS];
        for &(i, x) in pairs {
            v[i] = x;
        }
        v
    }

    #[test]
    fn and_or_not_evaluate_like_booleans() {
        for a in [false, true] {
            for b in [false, true] {
                let and = Condition::new(vec![Op::Const(a), Op::Const(b), Op::And]).unwrap();
                let or = Condition::new(vec![Op::Const(a), Op::Const(b), Op::Or]).unwrap();
                let not = Condition::new(vec![Op::Const(a), Op::Not]).unwrap();
                assert_eq!(and.eval(&[0; SLOTS]), Some(a && b));
                assert_eq!(or.eval(&[0; SLOTS]), Some(a || b));
                assert_eq!(not.eval(&[0; SLOTS]), Some(!a));
            }
        }
    }

    #[test]
    fn order_of_operands_is_kept_for_non_commutative_stack_use() {
        // (x < 5) and not (y == 3)
        let cond = Condition::new(vec![
            Op::Compare {
                slot: Slot(0),
                op: CmpOp::Lt,
                value: 5,
            },
            Op::Compare {
                slot: Slot(1),
                op: CmpOp::Eq,
                value: 3,
            },
            Op::Not,
            Op::And,
        ])
        .unwrap();
        assert_eq!(cond.eval(&values(&[(0, 4), (1, 2)])), Some(true));
        assert_eq!(cond.eval(&values(&[(0, 4), (1, 3)])), Some(false));
        assert_eq!(cond.eval(&values(&[(0, 5), (1, 2)])), Some(false));
    }

    #[test]
    fn compare_slots_and_confidence() {
        let cond = Condition::new(vec![
            Op::CompareSlots {
                left: Slot(0),
                op: CmpOp::Ge,
                right: Slot(1),
            },
            Op::Compare {
                slot: Slot::CONFIDENCE,
                op: CmpOp::Lt,
                value: 850_000,
            },
            Op::Or,
        ])
        .unwrap();
        assert_eq!(cond.reads, 0b11 | (1 << 16));
        assert_eq!(
            cond.eval(&values(&[(0, 1), (1, 2), (16, 900_000)])),
            Some(false)
        );
        assert_eq!(
            cond.eval(&values(&[(0, 1), (1, 2), (16, 600_000)])),
            Some(true)
        );
        assert_eq!(cond.first_missing(0b11), Some(Slot::CONFIDENCE));
        assert_eq!(cond.first_missing(1 << 16), Some(Slot(0)));
        assert_eq!(cond.first_missing(0b11 | (1 << 16)), None);
    }

    #[test]
    fn malformed_programs_are_rejected() {
        assert_eq!(Condition::new(vec![]), Err(ProgramError::Empty));
        assert_eq!(
            Condition::new(vec![Op::Const(true), Op::And]),
            Err(ProgramError::Underflow { at: 1 })
        );
        assert_eq!(
            Condition::new(vec![Op::Not]),
            Err(ProgramError::Underflow { at: 0 })
        );
        assert_eq!(
            Condition::new(vec![Op::Const(true), Op::Const(true)]),
            Err(ProgramError::LeftOver { values: 2 })
        );
        assert_eq!(
            Condition::new(vec![Op::Truthy { slot: Slot(17) }]),
            Err(ProgramError::BadSlot { at: 0 })
        );
        let wrong_mask = Condition {
            reads: 0,
            code: vec![Op::Truthy { slot: Slot(3) }],
        };
        assert_eq!(
            wrong_mask.check(),
            Err(ProgramError::WrongReadsMask {
                stored: 0,
                actual: 8
            })
        );
    }

    #[test]
    fn presence_guards_the_reads_of_its_slot() {
        let present = |slot| Op::Present { slot: Slot(slot) };
        let read = |slot| Op::Compare {
            slot: Slot(slot),
            op: CmpOp::Eq,
            value: 7,
        };
        // s1 given and s1 == 7: guarded.
        let c = Condition::new(vec![present(1), read(1), Op::And]).unwrap();
        assert_eq!(c.reads, 0);
        // s1 missing or s1 == 7: guarded (Or with a part true without s1).
        let c = Condition::new(vec![present(1), Op::Not, read(1), Op::Or]).unwrap();
        assert_eq!(c.reads, 0);
        // s1 given or s1 == 7: not a guard.
        let c = Condition::new(vec![present(1), read(1), Op::Or]).unwrap();
        assert_eq!(c.reads, 0b10);
        // s2 given and s1 == 7: guards s2 only.
        let c = Condition::new(vec![present(2), read(1), Op::And]).unwrap();
        assert_eq!(c.reads, 0b10);
        // not (s1 missing) and (s1 == 7 or s0 == 7): s0 stays unguarded.
        let c = Condition::new(vec![
            present(1),
            Op::Not,
            Op::Not,
            read(1),
            read(0),
            Op::Or,
            Op::And,
        ])
        .unwrap();
        assert_eq!(c.reads, 0b1);
        // A present slot's test evaluates from the request's presence mask.
        let mut request = crate::Request::new(crate::AgentId(0), crate::ToolId(0));
        let c = Condition::new(vec![present(1), read(1), Op::And]).unwrap();
        assert_eq!(c.eval_request(&request), Some(false));
        request.present = 0b10;
        request.values[1] = 7;
        assert_eq!(c.eval_request(&request), Some(true));
        assert_eq!(
            Condition::new(vec![Op::Present {
                slot: Slot::CONFIDENCE
            }]),
            Err(ProgramError::BadSlot { at: 0 })
        );
    }

    #[test]
    fn stack_depth_is_bounded_at_64() {
        let mut deep: Vec<Op> = (0..MAX_STACK).map(|_| Op::Const(true)).collect();
        deep.extend((1..MAX_STACK).map(|_| Op::And));
        let cond = Condition::new(deep.clone()).unwrap();
        assert_eq!(cond.eval(&[0; SLOTS]), Some(true));

        let mut too_deep: Vec<Op> = (0..=MAX_STACK).map(|_| Op::Const(true)).collect();
        too_deep.extend((0..MAX_STACK).map(|_| Op::And));
        assert_eq!(
            Condition::new(too_deep),
            Err(ProgramError::TooDeep { at: MAX_STACK })
        );
    }

    #[test]
    fn unchecked_malformed_code_evaluates_to_none_not_a_panic() {
        let cond = Condition {
            reads: 0,
            code: vec![Op::Or],
        };
        assert_eq!(cond.eval(&[0; SLOTS]), None);
        let cond = Condition {
            reads: 0,
            code: vec![Op::Truthy { slot: Slot(200) }],
        };
        assert_eq!(cond.eval(&[0; SLOTS]), None);
    }
}
