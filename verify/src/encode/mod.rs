//! The emitted decision table as formulas (translation validation: what is encoded is the
//! table `decide` runs, not the source). A request's value slots become symbolic integers
//! with presence flags; a compiled [`Condition`] (the runtime's postfix bytecode) becomes a
//! formula by running its stack symbolically; a cell's rule stage becomes "which lists
//! match" and an outcome rank. Missing values follow the runtime exactly: a condition that
//! reads an absent slot matches for deny and escalate entries and not for allow entries.
//!
//! Text tests (sets, globs, list quantifiers) are encoded exactly over Z3 strings (each
//! character one Z3 character, through the run's [`Alphabet`]): a text slot has a string
//! beside its integer id, linked to it for every text of the
//! dictionary (so `==` on ids and tests on strings agree); a glob becomes a regular
//! expression (`*` is `re.all`, `?` exactly one character); a set written in the policy is the
//! disjunction of equalities with its members (or, where a tool's text tests are all
//! such sets, intervals of its members' interned ids, with no strings at all:
//! [`SymRequest::ids_only`], [`TextDomain::member_id`]), and a set bound at deploy time an
//! uninterpreted predicate, so a proof holds whatever it will contain. A `list<text>`
//! slot holds its length and `k` element strings: `any` is "some element below the
//! length passes", `all` "every element below the length passes". `k` is the number of
//! quantified atoms the formula can mention about the list (two per text test of the
//! argument, plus those of asserts and exemptions); that is exact, because any list
//! realising a combination of atoms has a sub-list of at most one witness per atom
//! (an element passing a true `any`, one failing a false `all`) that realises the same
//! combination.
//!
//! It must not know about properties: those live in the sibling modules.

mod condition;
mod request;
mod source;
mod stage;
mod text;

pub use condition::{TextMap, condition};
pub use request::{SlotVar, SymRequest};
pub use source::source_condition;
pub use stage::{Kind, RuleStage};
pub use text::{
    TextDomain, TextTests, glob_regex, member, over_elements, text_test, unbound_member, z3_text,
};

/// Outcome ranks, least permissive last: Allow < Escalate < Deny.
pub const ALLOW: i64 = 0;
pub const ESCALATE: i64 = 1;
pub const DENY: i64 = 2;

#[cfg(test)]
mod tests {
    use agentpolicy_runtime::{
        CmpOp, Condition, Op, Param, SLOTS, Slot, TableData, Tool, ValueType,
    };
    use z3::ast::{Bool, Int};

    use super::*;

    struct Rng(u64);

    impl Rng {
        fn below(&mut self, n: u64) -> u64 {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            self.0 % n
        }
    }

    fn tool() -> Tool {
        let param = |name: &str| Param {
            name: name.into(),
            ty: ValueType::Number,
            optional: true,
        };
        Tool {
            name: "t".into(),
            params: vec![param("a"), param("b")],
            effects: vec![],
            reads: vec![],
            writes: vec![],
        }
    }

    /// A random well-formed program over slots 0, 1 and the confidence.
    fn program(rng: &mut Rng, depth: u32) -> Vec<Op> {
        let slots = [Slot(0), Slot(1), Slot::CONFIDENCE];
        let ops = [
            CmpOp::Lt,
            CmpOp::Le,
            CmpOp::Gt,
            CmpOp::Ge,
            CmpOp::Eq,
            CmpOp::Ne,
        ];
        let leaf = |rng: &mut Rng| -> Op {
            let slot = slots[rng.below(3) as usize];
            let op = ops[rng.below(6) as usize];
            match rng.below(4) {
                0 => Op::CompareSlots {
                    left: slot,
                    op,
                    right: slots[rng.below(3) as usize],
                },
                1 => Op::Truthy { slot },
                2 if rng.below(4) == 0 => Op::Const(rng.below(2) == 1),
                _ => Op::Compare {
                    slot,
                    op,
                    value: rng.below(5) as i64 - 2,
                },
            }
        };
        if depth == 0 || rng.below(3) == 0 {
            return vec![leaf(rng)];
        }
        match rng.below(3) {
            0 => {
                let mut p = program(rng, depth - 1);
                p.push(Op::Not);
                p
            }
            k => {
                let mut p = program(rng, depth - 1);
                p.extend(program(rng, depth - 1));
                p.push(if k == 1 { Op::And } else { Op::Or });
                p
            }
        }
    }

    /// The symbolic reading of the runtime's bytecode agrees with `Condition::eval` and
    /// `first_missing` on every request of a small complete domain.
    #[test]
    fn symbolic_conditions_agree_with_the_runtime() {
        let tool = tool();
        let req = SymRequest::new("t", &tool, &|_| 0);
        let data = TableData::default();
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let mut checked = 0;
        let solver = crate::solver::solver(crate::Budget::default());
        for _ in 0..150 {
            let Ok(cond) = Condition::new(program(&mut rng, 3)) else {
                continue;
            };
            let texts = TextDomain::default();
            let tests = TextTests {
                data: &data,
                tool: 0,
                texts: &texts,
            };
            let Some((holds, known)) = condition(&cond, &req, &|v| v, tests) else {
                continue;
            };
            for mask in 0..8u32 {
                let values = [
                    rng.below(5) as i64 - 2,
                    rng.below(5) as i64 - 2,
                    rng.below(5) as i64 - 2,
                ];
                let mut slots = [0i64; SLOTS];
                slots[0] = values[0];
                slots[1] = values[1];
                slots[Slot::CONFIDENCE.0 as usize] = values[2];
                let present = (mask & 1) | (mask & 2) | (((mask >> 2) & 1) << Slot::CONFIDENCE.0);
                solver.push();
                for (i, s) in [0usize, 1, Slot::CONFIDENCE.0 as usize].iter().enumerate() {
                    let var = req.slot(*s).unwrap_or_else(|| unreachable!());
                    solver.assert(var.value.eq(Int::from_i64(values[i])));
                    let is_present = present & (1 << s) != 0;
                    solver.assert(var.present.iff(Bool::from_bool(is_present)));
                }
                assert_eq!(solver.check(), z3::SatResult::Sat);
                let model = solver.get_model().unwrap_or_else(|| unreachable!());
                let eval = |b: &Bool| model.eval(b, true).and_then(|x| x.as_bool());
                assert_eq!(
                    eval(&known),
                    Some(cond.first_missing(present).is_none()),
                    "{cond:?}"
                );
                assert_eq!(eval(&holds), cond.eval(&slots), "{cond:?} on {values:?}");
                solver.pop(1);
                checked += 1;
            }
        }
        assert!(checked > 500, "{checked}");
    }
}
