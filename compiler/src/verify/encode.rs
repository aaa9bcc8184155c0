//! The emitted decision table as formulas (translation validation: what is encoded is the
//! table `decide` runs, not the source). A request's value slots become symbolic integers
//! with presence flags; a compiled [`Condition`] (the runtime's postfix bytecode) becomes a
//! formula by running its stack symbolically; a cell's rule stage becomes "which lists
//! match" and an outcome rank. Missing values follow the runtime exactly: a condition that
//! reads an absent slot matches for deny and escalate entries and not for allow entries.
//!
//! It must not know about properties: those live in the sibling modules.

use agentpolicy_runtime::{
    self as rt, CmpOp, Condition, Op, SLOTS, Slot, TableData, UNKNOWN_TEXT_BASE, ValueType,
};
use z3::ast::{Bool, Int};

use crate::model::{Cond, Model, Term, Value};
use crate::syntax::ast::CompareOp;

/// Outcome ranks, least permissive last: Allow < Escalate < Deny.
pub const ALLOW: i64 = 0;
pub const ESCALATE: i64 = 1;
pub const DENY: i64 = 2;

/// Texts a request can carry, as integers: the table's dictionary `0..n`, then texts that
/// only the policy's asserts and exemptions mention `n..n+m` (the runtime sees those as
/// unlisted), then unlisted texts from [`UNKNOWN_TEXT_BASE`].
#[derive(Debug, Clone, Default)]
pub struct TextDomain {
    table: Vec<String>,
    extra: Vec<String>,
}

/// Distinct unlisted texts one request can carry (the runtime's request builder limit).
const UNLISTED: i64 = 16;

impl TextDomain {
    pub fn new(table: &TableData, model: &Model) -> TextDomain {
        let mut domain = TextDomain {
            table: table.texts.clone(),
            extra: Vec::new(),
        };
        let mut conds: Vec<&Cond> = Vec::new();
        for agent in &model.agents {
            conds.extend(agent.autonomy.iter().map(|a| &a.condition));
        }
        for a in &model.asserts {
            if let crate::model::AssertDef::NeverCalls {
                condition: Some(c), ..
            } = a
            {
                conds.push(c);
            }
        }
        for c in conds {
            for term in c.terms() {
                if let Term::Const {
                    value: Value::Text(t),
                    ..
                } = term
                    && !domain.table.contains(t)
                    && !domain.extra.contains(t)
                {
                    domain.extra.push(t.clone());
                }
            }
        }
        domain
    }

    /// One domain for two tables (`diff`): the old dictionary, then the new one's texts
    /// the old lacks; with the new table's text ids renumbered into it.
    pub fn unified(old: &TableData, new: &TableData) -> (TextDomain, Vec<i64>) {
        let mut table = old.texts.clone();
        let mut remap = Vec::new();
        for t in &new.texts {
            match table.iter().position(|x| x == t) {
                Some(i) => remap.push(i as i64),
                None => {
                    remap.push(table.len() as i64);
                    table.push(t.clone());
                }
            }
        }
        (
            TextDomain {
                table,
                extra: Vec::new(),
            },
            remap,
        )
    }

    pub fn id(&self, text: &str) -> i64 {
        match self.table.iter().position(|t| t == text) {
            Some(i) => i as i64,
            None => match self.extra.iter().position(|t| t == text) {
                Some(i) => (self.table.len() + i) as i64,
                None => UNKNOWN_TEXT_BASE + UNLISTED,
            },
        }
    }

    fn listed(&self) -> i64 {
        (self.table.len() + self.extra.len()) as i64
    }

    /// The text of a value from a model; unlisted values get a readable name that the
    /// runtime's dictionary does not hold, distinct per value.
    pub fn text(&self, value: i64) -> String {
        let n = self.table.len() as i64;
        if (0..n).contains(&value) {
            return self.table[value as usize].clone();
        }
        if (n..self.listed()).contains(&value) {
            return self.extra[(value - n) as usize].clone();
        }
        format!(
            "unlisted-{}",
            value.wrapping_sub(UNKNOWN_TEXT_BASE).max(0) + 1
        )
    }

    fn constraint(&self, v: &Int) -> Bool {
        let listed = Bool::and(&[v.ge(Int::from_i64(0)), v.lt(Int::from_i64(self.listed()))]);
        let unlisted = Bool::and(&[
            v.ge(Int::from_i64(UNKNOWN_TEXT_BASE)),
            v.lt(Int::from_i64(UNKNOWN_TEXT_BASE + UNLISTED)),
        ]);
        Bool::or(&[listed, unlisted])
    }
}

/// One value slot of a symbolic request.
#[derive(Debug, Clone)]
pub struct SlotVar {
    pub value: Int,
    pub present: Bool,
    pub ty: ValueType,
    /// The parameter name, or `confidence`.
    pub name: String,
    pub optional: bool,
}

/// A request's value slots as symbols: one per parameter of the tool, and the confidence.
#[derive(Debug, Clone)]
pub struct SymRequest {
    /// Indexed by runtime slot; `None` for slots the tool does not have.
    pub slots: Vec<Option<SlotVar>>,
}

impl SymRequest {
    /// Fresh symbols for a call of `tool`; `prefix` keeps two requests in one formula apart.
    pub fn new(prefix: &str, tool: &rt::Tool) -> SymRequest {
        let mut slots: Vec<Option<SlotVar>> = vec![None; SLOTS];
        for (i, p) in tool.params.iter().enumerate() {
            if let Some(slot) = slots.get_mut(i) {
                *slot = Some(SlotVar {
                    value: Int::new_const(format!("{prefix}.{}", p.name)),
                    present: Bool::new_const(format!("{prefix}.{}?", p.name)),
                    ty: p.ty,
                    name: p.name.clone(),
                    optional: p.optional,
                });
            }
        }
        slots[Slot::CONFIDENCE.0 as usize] = Some(SlotVar {
            value: Int::new_const(format!("{prefix}.confidence")),
            present: Bool::new_const(format!("{prefix}.confidence?")),
            ty: ValueType::Number,
            name: "confidence".into(),
            optional: true,
        });
        SymRequest { slots }
    }

    pub fn slot(&self, slot: usize) -> Option<&SlotVar> {
        self.slots.get(slot).and_then(Option::as_ref)
    }

    pub fn confidence(&self) -> Option<&SlotVar> {
        self.slot(Slot::CONFIDENCE.0 as usize)
    }

    /// The values the runtime can be given: `i64` numbers, 0 / 1 booleans, texts from
    /// the dictionary or unlisted ones.
    pub fn domain(&self, texts: &TextDomain) -> Bool {
        let mut parts = Vec::new();
        for s in self.slots.iter().flatten() {
            parts.push(match s.ty {
                ValueType::Text => texts.constraint(&s.value),
                ValueType::Bool => {
                    Bool::or(&[s.value.eq(Int::from_i64(0)), s.value.eq(Int::from_i64(1))])
                }
                _ => Bool::and(&[
                    s.value.ge(Int::from_i64(i64::MIN)),
                    s.value.le(Int::from_i64(i64::MAX)),
                ]),
            });
        }
        Bool::and(&parts)
    }

    /// What a reader expects of a request, preferred in counterexamples but never
    /// assumed in proofs: required arguments present, confidence within 0..=1, money
    /// not negative.
    pub fn preferences(&self) -> Vec<Bool> {
        let mut out = Vec::new();
        for s in self.slots.iter().flatten() {
            if !s.optional {
                out.push(s.present.clone());
            }
            if s.name == "confidence" {
                out.push(s.value.ge(Int::from_i64(0)));
                out.push(s.value.le(Int::from_i64(1_000_000)));
            }
            if s.ty == ValueType::Money {
                out.push(s.value.ge(Int::from_i64(0)));
            }
        }
        out
    }
}

/// How constants of text slots are renumbered (the identity, except in `diff`, where two
/// tables' dictionaries are mapped onto one).
pub type TextMap<'a> = &'a dyn Fn(i64) -> i64;

fn cmp(op: CmpOp, l: &Int, r: &Int) -> Bool {
    match op {
        CmpOp::Lt => l.lt(r),
        CmpOp::Le => l.le(r),
        CmpOp::Gt => l.gt(r),
        CmpOp::Ge => l.ge(r),
        CmpOp::Eq => l.eq(r),
        CmpOp::Ne => l.eq(r).not(),
    }
}

/// A compiled condition: `(holds, every slot it reads is present)`. `None` for a
/// malformed program, which a validated table never has.
pub fn condition(cond: &Condition, req: &SymRequest, texts: TextMap<'_>) -> Option<(Bool, Bool)> {
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
    for op in &cond.code {
        match *op {
            Op::Compare { slot, op, value: c } => {
                let (v, p, ty) = value(slot);
                let c = if ty == Some(ValueType::Text) {
                    texts(c)
                } else {
                    c
                };
                present.push(p);
                stack.push(cmp(op, &v, &Int::from_i64(c)));
            }
            Op::CompareSlots { left, op, right } => {
                let (l, pl, _) = value(left);
                let (r, pr, _) = value(right);
                present.push(pl);
                present.push(pr);
                stack.push(cmp(op, &l, &r));
            }
            Op::Truthy { slot } => {
                let (v, p, _) = value(slot);
                present.push(p);
                stack.push(v.eq(&zero).not());
            }
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

/// Which entries of a cell match, and what that makes the rule stage decide.
#[derive(Debug, Clone)]
pub struct RuleStage {
    pub deny: Vec<Bool>,
    pub escalate: Vec<Bool>,
    pub allow: Vec<Bool>,
    pub any_deny: Bool,
    pub any_escalate: Bool,
    pub any_allow: Bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Deny,
    Escalate,
    Allow,
}

fn entry(e: &rt::Entry, kind: Kind, req: &SymRequest, texts: TextMap<'_>) -> Option<Bool> {
    let Some(cond) = &e.condition else {
        return Some(Bool::from_bool(true));
    };
    let (holds, known) = condition(cond, req, texts)?;
    Some(match kind {
        // Fail safe: an unknown condition matches for deny and escalate.
        Kind::Deny | Kind::Escalate => Bool::or(&[known.not(), holds]),
        Kind::Allow => Bool::and(&[known, holds]),
    })
}

impl RuleStage {
    pub fn new(cell: &rt::Cell, req: &SymRequest, texts: TextMap<'_>) -> Option<RuleStage> {
        let list = |entries: &[rt::Entry], kind| -> Option<Vec<Bool>> {
            entries.iter().map(|e| entry(e, kind, req, texts)).collect()
        };
        let deny = list(&cell.deny, Kind::Deny)?;
        let escalate = list(&cell.escalate, Kind::Escalate)?;
        let allow = list(&cell.allow, Kind::Allow)?;
        Some(RuleStage {
            any_deny: Bool::or(&deny),
            any_escalate: Bool::or(&escalate),
            any_allow: Bool::or(&allow),
            deny,
            escalate,
            allow,
        })
    }

    pub fn is_allow(&self) -> Bool {
        Bool::and(&[
            self.any_deny.not(),
            self.any_escalate.not(),
            self.any_allow.clone(),
        ])
    }

    pub fn is_escalate(&self) -> Bool {
        Bool::and(&[self.any_deny.not(), self.any_escalate.clone()])
    }

    /// Not a deny: allow or escalate.
    pub fn is_permitted(&self) -> Bool {
        Bool::or(&[self.is_allow(), self.is_escalate()])
    }

    /// The outcome as a rank: [`ALLOW`], [`ESCALATE`] or [`DENY`] (a matching deny, or no
    /// matching rule).
    pub fn rank(&self) -> Int {
        self.any_deny.ite(
            &Int::from_i64(DENY),
            &self.any_escalate.ite(
                &Int::from_i64(ESCALATE),
                &self
                    .any_allow
                    .ite(&Int::from_i64(ALLOW), &Int::from_i64(DENY)),
            ),
        )
    }

    fn matches(&self, kind: Kind) -> &[Bool] {
        match kind {
            Kind::Deny => &self.deny,
            Kind::Escalate => &self.escalate,
            Kind::Allow => &self.allow,
        }
    }

    /// The entry at `index` of the `kind` list takes part in the decision: it is the
    /// deciding deny or allow entry, or a matching escalate entry (whose route is added)
    /// when no deny matches.
    pub fn decides(&self, kind: Kind, index: usize) -> Bool {
        let list = self.matches(kind);
        let Some(this) = list.get(index) else {
            return Bool::from_bool(false);
        };
        let earlier: Vec<Bool> = list.iter().take(index).map(Bool::not).collect();
        let mut parts = vec![this.clone()];
        match kind {
            Kind::Deny => parts.extend(earlier),
            Kind::Escalate => parts.push(self.any_deny.not()),
            Kind::Allow => {
                parts.push(self.any_deny.not());
                parts.push(self.any_escalate.not());
                parts.extend(earlier);
            }
        }
        Bool::and(&parts)
    }
}

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
/// `tool`: `(holds, every value it reads is present)`. Arguments are found by name in the
/// table's tool, so this is independent of how codegen numbered them.
pub fn source_condition(
    cond: &Cond,
    model_tool: Option<&crate::model::ToolDef>,
    table_tool: &rt::Tool,
    req: &SymRequest,
    texts: &TextDomain,
) -> (Bool, Bool) {
    let mut present = Vec::new();
    let holds = source(cond, model_tool, table_tool, req, texts, &mut present);
    (holds, Bool::and(&present))
}

fn source(
    cond: &Cond,
    model_tool: Option<&crate::model::ToolDef>,
    table_tool: &rt::Tool,
    req: &SymRequest,
    texts: &TextDomain,
    present: &mut Vec<Bool>,
) -> Bool {
    match cond {
        Cond::Or(cs) => Bool::or(
            &cs.iter()
                .map(|c| source(c, model_tool, table_tool, req, texts, present))
                .collect::<Vec<_>>(),
        ),
        Cond::And(cs) => Bool::and(
            &cs.iter()
                .map(|c| source(c, model_tool, table_tool, req, texts, present))
                .collect::<Vec<_>>(),
        ),
        Cond::Not(c) => source(c, model_tool, table_tool, req, texts, present).not(),
        Cond::Compare { left, op, right } => {
            let l = term(left, model_tool, table_tool, req, texts, present);
            let r = term(right, model_tool, table_tool, req, texts, present);
            compare(*op, &l, &r)
        }
        Cond::Truthy(t) => term(t, model_tool, table_tool, req, texts, present)
            .eq(Int::from_i64(0))
            .not(),
    }
}

fn term(
    t: &Term,
    model_tool: Option<&crate::model::ToolDef>,
    table_tool: &rt::Tool,
    req: &SymRequest,
    texts: &TextDomain,
    present: &mut Vec<Bool>,
) -> Int {
    let slot = match t {
        Term::Confidence => req.confidence(),
        Term::Arg(i) => model_tool
            .and_then(|m| m.params.get(*i))
            .and_then(|p| table_tool.param(&p.name))
            .and_then(|i| req.slot(i)),
        Term::Const { value, .. } => {
            return Int::from_i64(match value {
                Value::Money(v) | Value::Number(v) | Value::Duration(v) => *v,
                Value::Bool(b) => i64::from(*b),
                Value::Text(s) => texts.id(s),
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

#[cfg(test)]
mod tests {
    use agentpolicy_runtime::{Param, Tool};

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
        let req = SymRequest::new("t", &tool);
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let mut checked = 0;
        let solver = crate::verify::solver::solver(crate::verify::Budget::default());
        for _ in 0..150 {
            let Ok(cond) = Condition::new(program(&mut rng, 3)) else {
                continue;
            };
            let Some((holds, known)) = condition(&cond, &req, &|v| v) else {
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
