//! Source conditions (an `autonomy` exemption, an assert's `when`) as formulas over a
//! symbolic request, with arguments found by name in the table's tool so that the encoding
//! is independent of how codegen numbered them.
//!
//! It must not read the table's condition bytecode (`condition.rs` does).

use agentpolicy_runtime::{self as rt, CmpOp, ValueSet};

use z3::ast::{Bool, Int, String as ZString};

use agentpolicy::model::{Cond, ElementTest, Term, Value};
use agentpolicy::syntax::ast::{CompareOp, Quantifier};

use super::{condition::cmp, *};

fn compare(op: CompareOp, l: &Int, r: &Int) -> Bool {
    let op = match op {
        CompareOp::Lt => CmpOp::Lt,
        CompareOp::Le => CmpOp::Le,
        CompareOp::Gt => CmpOp::Gt,
        CompareOp::Ge => CmpOp::Ge,
        CompareOp::Eq => CmpOp::Eq,
        CompareOp::Ne => CmpOp::Ne,
    };
    cmp(op, l, r)
}

/// A source condition (an `autonomy` exemption, an assert's `when`) over a request of
/// `tool`: `(holds, every value it reads outside a guard is present)`. Arguments are found
/// by name in the table's tool, so this is independent of how codegen numbered them. A
/// read guarded by a presence test ([`Cond::unguarded_args`]) needs no presence: the
/// guard settles the result when the argument is missing.
pub fn source_condition(
    cond: &Cond,
    model_tool: Option<&agentpolicy::model::ToolDef>,
    table_tool: &rt::Tool,
    req: &SymRequest,
    texts: &TextDomain,
    sets: &[ValueSet],
) -> (Bool, Bool) {
    let mut present = Vec::new();
    let src = Source {
        model_tool,
        table_tool,
        req,
        texts,
        sets,
        unguarded: cond.unguarded_args(),
    };
    let holds = src.cond(cond, &mut present);
    (holds, Bool::and(&present))
}

struct Source<'a> {
    model_tool: Option<&'a agentpolicy::model::ToolDef>,
    table_tool: &'a rt::Tool,
    req: &'a SymRequest,
    texts: &'a TextDomain,
    sets: &'a [ValueSet],
    /// The model arguments read outside a guard.
    unguarded: Vec<usize>,
}

impl Source<'_> {
    fn cond(&self, cond: &Cond, present: &mut Vec<Bool>) -> Bool {
        let alphabet = &self.texts.alphabet;
        match cond {
            Cond::Or(cs) => Bool::or(&cs.iter().map(|c| self.cond(c, present)).collect::<Vec<_>>()),
            Cond::And(cs) => {
                Bool::and(&cs.iter().map(|c| self.cond(c, present)).collect::<Vec<_>>())
            }
            Cond::Not(c) => self.cond(c, present).not(),
            Cond::Compare { left, op, right } => {
                let l = self.term(left, present);
                let r = self.term(right, present);
                compare(*op, &l, &r)
            }
            Cond::Truthy(t) => self.term(t, present).eq(Int::from_i64(0)).not(),
            Cond::InSet { arg, set } if self.req.members => match self.slot(*arg) {
                Some(v) if v.ty == rt::ValueType::Text => {
                    match self.texts.member_id(set.index(), &v.value) {
                        Some(holds) => {
                            self.read(*arg, v, present);
                            holds
                        }
                        // Not encodable on ids: reads as an absent value (fail safe).
                        None => {
                            present.push(Bool::from_bool(false));
                            Bool::from_bool(false)
                        }
                    }
                }
                _ => {
                    present.push(Bool::from_bool(false));
                    Bool::from_bool(false)
                }
            },
            Cond::InSet { arg, set } => {
                let set = self.sets.get(set.index());
                self.text(*arg, false, present, &|s| member(alphabet, set?, s))
            }
            Cond::Matches { arg, pattern } => self.text(*arg, false, present, &|s| {
                Some(s.regex_matches(&glob_regex(alphabet, pattern)?))
            }),
            Cond::Quantified {
                quantifier,
                arg,
                test,
            } => {
                let all = *quantifier == Quantifier::All;
                self.text(*arg, all, present, &|s| {
                    let (passes, negated) = match test {
                        ElementTest::InSet { set, negated } => {
                            (member(alphabet, self.sets.get(set.index())?, s)?, *negated)
                        }
                        ElementTest::Matches { pattern, negated } => {
                            (s.regex_matches(&glob_regex(alphabet, pattern)?), *negated)
                        }
                        ElementTest::Equals { text, negated } => {
                            (s.eq(&z3_text(alphabet, text)?), *negated)
                        }
                    };
                    Some(if negated { passes.not() } else { passes })
                })
            }
            Cond::FromUntrusted { arg } => match self.slot(*arg) {
                Some(v) => {
                    self.read(*arg, v, present);
                    v.untrusted.clone()
                }
                None => {
                    present.push(Bool::from_bool(false));
                    Bool::from_bool(false)
                }
            },
            Cond::Present { arg } => match self.slot(*arg) {
                Some(v) => v.present.clone(),
                // The table's tool lacks the argument: no request carries it.
                None => Bool::from_bool(false),
            },
            Cond::HasEffect(effect) => {
                Bool::from_bool(self.model_tool.is_some_and(|t| t.has_effect(*effect)))
            }
        }
    }

    /// Requires the argument's presence, unless every read of it is guarded.
    fn read(&self, arg: usize, v: &SlotVar, present: &mut Vec<Bool>) {
        if self.unguarded.contains(&arg) {
            present.push(v.present.clone());
        }
    }

    /// The request slot of the model tool's argument `i`, found by name in the table's tool.
    fn slot(&self, i: usize) -> Option<&SlotVar> {
        self.model_tool
            .and_then(|m| m.params.get(i))
            .and_then(|p| self.table_tool.param(&p.name))
            .and_then(|i| self.req.slot(i))
    }

    fn text(
        &self,
        arg: usize,
        all: bool,
        present: &mut Vec<Bool>,
        test: &dyn Fn(&ZString) -> Option<Bool>,
    ) -> Bool {
        match self.slot(arg) {
            Some(v) => match over_elements(v, all, test) {
                Some(holds) => {
                    self.read(arg, v, present);
                    holds
                }
                // A test that cannot be encoded reads as an absent value: an assert
                // covers the request, an exemption does not apply (fail safe both ways).
                None => {
                    present.push(Bool::from_bool(false));
                    Bool::from_bool(false)
                }
            },
            None => {
                present.push(Bool::from_bool(false));
                Bool::from_bool(false)
            }
        }
    }

    fn term(&self, t: &Term, present: &mut Vec<Bool>) -> Int {
        if let Term::Arg(i) = t
            && let Some(v) = self.slot(*i)
        {
            self.read(*i, v, present);
            return v.value.clone();
        }
        let slot = match t {
            Term::Confidence => self.req.confidence(),
            Term::Tainted => {
                return self.req.tainted.ite(&Int::from_i64(1), &Int::from_i64(0));
            }
            Term::Arg(i) => self.slot(*i),
            Term::Const { value, .. } => {
                return Int::from_i64(match value {
                    Value::Money(v) | Value::Number(v) | Value::Duration(v) => *v,
                    Value::Bool(b) => i64::from(*b),
                    Value::Text(s) => self.texts.id(s),
                    Value::TextList(_) => 0,
                });
            }
        };
        match slot {
            Some(s) => {
                present.push(s.present.clone());
                s.value.clone()
            }
            None => {
                // The table's tool lacks the argument: the request can never carry it.
                present.push(Bool::from_bool(false));
                Int::from_i64(0)
            }
        }
    }
}
