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
//! disjunction of equalities with its members, and a set bound at deploy time an
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

use agentpolicy_runtime::{
    self as rt, CmpOp, Condition, GlobToken, Op, SLOTS, Slot, TableData, TextTestKind,
    UNKNOWN_TEXT_BASE, ValueSet, ValueType,
};
use std::str::FromStr as _;

use z3::ast::{Bool, Int, Regexp, String as ZString};

use crate::alphabet::Alphabet;

use agentpolicy::model::{Cond, ElementTest, Model, Term, Value};
use agentpolicy::syntax::ast::{CompareOp, Quantifier};

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
    /// How the run's texts are written as Z3 strings.
    pub alphabet: Alphabet,
}

/// Distinct unlisted texts one request can carry (the runtime's request builder limit).
const UNLISTED: i64 = 16;

impl TextDomain {
    pub fn new(table: &TableData, model: &Model) -> TextDomain {
        let mut domain = TextDomain {
            table: table.texts.clone(),
            extra: Vec::new(),
            alphabet: Alphabet::of_json(&[
                serde_json::to_value(table),
                serde_json::to_value(model),
            ]),
        };
        let mut conds: Vec<&Cond> = Vec::new();
        for agent in &model.agents {
            conds.extend(agent.autonomy.iter().map(|a| &a.condition));
        }
        for a in &model.asserts {
            if let agentpolicy::model::AssertDef::NeverCalls {
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
    /// the old lacks; with the new table's text ids renumbered into it. The alphabet is
    /// that of both tables and both `models`.
    pub fn unified(
        old: &TableData,
        new: &TableData,
        models: [&Model; 2],
    ) -> (TextDomain, Vec<i64>) {
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
                alphabet: Alphabet::of_json(&[
                    serde_json::to_value(old),
                    serde_json::to_value(new),
                    serde_json::to_value(models[0]),
                    serde_json::to_value(models[1]),
                ]),
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

    /// Every listed text, in id order.
    pub fn all(&self) -> impl Iterator<Item = &str> {
        self.table.iter().chain(&self.extra).map(String::as_str)
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
    /// The slot's integer: the value, the text id, or a list's length.
    pub value: Int,
    pub present: Bool,
    pub ty: ValueType,
    /// The parameter name, or `confidence`.
    pub name: String,
    pub optional: bool,
    /// A text slot's string; a list slot's element strings.
    pub strings: Vec<ZString>,
    /// The caller marks the argument as coming from untrusted content.
    pub untrusted: Bool,
}

/// A request's value slots as symbols: one per parameter of the tool, and the confidence.
#[derive(Debug, Clone)]
pub struct SymRequest {
    /// Indexed by runtime slot; `None` for slots the tool does not have.
    pub slots: Vec<Option<SlotVar>>,
    /// The session has taken in untrusted content.
    pub tainted: Bool,
    /// Text slots are read as strings (the formulas test texts): their strings are
    /// linked to their ids and give counterexamples their texts.
    pub strings: bool,
}

impl SymRequest {
    /// Fresh symbols for a call of `tool`; `prefix` keeps two requests in one formula
    /// apart. `witnesses(i)` is how many element strings the list parameter `i` needs
    /// (see the module docs).
    pub fn new(prefix: &str, tool: &rt::Tool, witnesses: &dyn Fn(usize) -> usize) -> SymRequest {
        let mut slots: Vec<Option<SlotVar>> = vec![None; SLOTS];
        for (i, p) in tool.params.iter().enumerate() {
            let strings = match p.ty {
                ValueType::Text => vec![ZString::new_const(format!("{prefix}.{}$", p.name))],
                ValueType::TextList => (0..witnesses(i))
                    .map(|j| ZString::new_const(format!("{prefix}.{}[{j}]", p.name)))
                    .collect(),
                _ => Vec::new(),
            };
            if let Some(slot) = slots.get_mut(i) {
                *slot = Some(SlotVar {
                    value: Int::new_const(format!("{prefix}.{}", p.name)),
                    present: Bool::new_const(format!("{prefix}.{}?", p.name)),
                    ty: p.ty,
                    name: p.name.clone(),
                    optional: p.optional,
                    strings,
                    untrusted: Bool::new_const(format!("{prefix}.{}!untrusted", p.name)),
                });
            }
        }
        slots[Slot::CONFIDENCE.0 as usize] = Some(SlotVar {
            value: Int::new_const(format!("{prefix}.confidence")),
            present: Bool::new_const(format!("{prefix}.confidence?")),
            ty: ValueType::Number,
            name: "confidence".into(),
            optional: true,
            strings: Vec::new(),
            untrusted: Bool::from_bool(false),
        });
        SymRequest {
            slots,
            tainted: Bool::new_const(format!("{prefix}.tainted")),
            strings: false,
        }
    }

    pub fn slot(&self, slot: usize) -> Option<&SlotVar> {
        self.slots.get(slot).and_then(Option::as_ref)
    }

    pub fn confidence(&self) -> Option<&SlotVar> {
        self.slot(Slot::CONFIDENCE.0 as usize)
    }

    /// The values the runtime can be given: `i64` numbers, 0 / 1 booleans, texts from
    /// the dictionary or unlisted ones, lists of at most their witness count. With
    /// `strings`, each text slot's string agrees with its id.
    pub fn domain(&self, texts: &TextDomain) -> Bool {
        let strings = self.strings;
        let mut parts = Vec::new();
        let text_slots: Vec<&SlotVar> = self
            .slots
            .iter()
            .flatten()
            .filter(|s| s.ty == ValueType::Text)
            .collect();
        if strings {
            for s in &text_slots {
                let Some(string) = s.strings.first() else {
                    continue;
                };
                for (id, text) in texts.all().enumerate() {
                    if let Some(lit) = z3_text(&texts.alphabet, text) {
                        parts.push(s.value.eq(Int::from_i64(id as i64)).iff(string.eq(&lit)));
                    }
                }
            }
            for (i, a) in text_slots.iter().enumerate() {
                for b in &text_slots[i + 1..] {
                    if let (Some(x), Some(y)) = (a.strings.first(), b.strings.first()) {
                        parts.push(a.value.eq(&b.value).iff(x.eq(y)));
                    }
                }
            }
        }
        for s in self.slots.iter().flatten() {
            if strings {
                for string in &s.strings {
                    // Engages the string theory for every string, so models give
                    // literals for strings no test reads.
                    parts.push(string.length().ge(Int::from_i64(0)));
                }
            }
            parts.push(match s.ty {
                ValueType::Text => texts.constraint(&s.value),
                ValueType::TextList => Bool::and(&[
                    s.value.ge(Int::from_i64(0)),
                    s.value.le(Int::from_i64(s.strings.len() as i64)),
                ]),
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

    /// Membership in a `from deploy` set is a function of the text: equal strings are
    /// in the same sets.
    pub fn set_consistency(&self, sets: &[ValueSet]) -> Bool {
        let strings: Vec<&ZString> = self
            .slots
            .iter()
            .flatten()
            .flat_map(|s| s.strings.iter())
            .collect();
        let mut parts = Vec::new();
        for set in sets.iter().filter(|s| s.deploy && !s.bound) {
            for (i, a) in strings.iter().enumerate() {
                for b in &strings[i + 1..] {
                    let (ma, mb) = (unbound_member(set, a), unbound_member(set, b));
                    parts.push(ZString::eq(a, (*b).clone()).implies(ma.iff(&mb)));
                }
            }
        }
        Bool::and(&parts)
    }

    /// What a reader expects of a request, preferred in counterexamples but never
    /// assumed in proofs: required arguments present, confidence within 0..=1, money
    /// not negative.
    pub fn preferences(&self) -> Vec<Bool> {
        // An untainted session and trusted arguments, unless the property needs them.
        let mut out = vec![self.tainted.not()];
        out.extend(self.slots.iter().flatten().map(|s| s.untrusted.not()));
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

/// A Z3 string literal for `text`; `None` when the alphabet has no code for one of its
/// characters (the test reading it is then not encoded: unknown, never proved).
pub fn z3_text(alphabet: &Alphabet, text: &str) -> Option<ZString> {
    ZString::from_str(&alphabet.literal(text)?).ok()
}

/// A glob as a regular expression.
pub fn glob_regex(alphabet: &Alphabet, pattern: &str) -> Option<Regexp> {
    let tokens = rt::glob_tokens(pattern).ok()?;
    let mut parts: Vec<Regexp> = Vec::new();
    let mut run = String::new();
    let flush = |run: &mut String, parts: &mut Vec<Regexp>| -> Option<()> {
        if !run.is_empty() {
            parts.push(Regexp::literal(&alphabet.literal(run)?));
            run.clear();
        }
        Some(())
    };
    for t in tokens {
        match t {
            GlobToken::Char(c) => run.push(c),
            GlobToken::Star => {
                flush(&mut run, &mut parts)?;
                parts.push(Regexp::full());
            }
            GlobToken::One => {
                flush(&mut run, &mut parts)?;
                parts.push(one_char());
            }
        }
    }
    flush(&mut run, &mut parts)?;
    Some(match parts.len() {
        0 => Regexp::literal(""),
        1 => parts.pop()?,
        _ => Regexp::concat(&parts),
    })
}

/// Exactly one character, built from complements (Z3 4.8's C API has no `re.allchar`):
/// a non-empty string that is not two non-empty strings in a row.
fn one_char() -> Regexp {
    let non_empty = Regexp::literal("").complement();
    let two_or_more = Regexp::concat(&[non_empty.clone(), non_empty.clone()]);
    Regexp::intersect(&[non_empty, two_or_more.complement()])
}

/// One text test on one string.
pub fn text_test(
    alphabet: &Alphabet,
    kind: &TextTestKind,
    sets: &[ValueSet],
    s: &ZString,
) -> Option<Bool> {
    Some(match kind {
        TextTestKind::InSet(i) => member(alphabet, sets.get(*i as usize)?, s)?,
        TextTestKind::Matches(p) => s.regex_matches(&glob_regex(alphabet, p)?),
        TextTestKind::Equals(t) => s.eq(&z3_text(alphabet, t)?),
    })
}

/// Membership of a string in a set: equality with one of its members, or for a set
/// bound at deploy time a free boolean per string variable (any contents), kept a
/// function by [`SymRequest::set_consistency`]. (An uninterpreted function would say the
/// same, but Z3 then gives the strings abstract values that no request can carry.)
pub fn member(alphabet: &Alphabet, set: &ValueSet, s: &ZString) -> Option<Bool> {
    if set.deploy && !set.bound {
        return Some(unbound_member(set, s));
    }
    let eqs: Option<Vec<Bool>> = set
        .members
        .iter()
        .map(|m| z3_text(alphabet, m).map(|lit| s.eq(&lit)))
        .collect();
    Some(Bool::or(&eqs?))
}

/// Membership in a set bound at deploy time: a free boolean per string variable.
pub fn unbound_member(set: &ValueSet, s: &ZString) -> Bool {
    Bool::new_const(format!("set.{}.has.{s}", set.name))
}

/// A test over a slot's strings: for a text, the test itself; for a list, whether some
/// (`all == false`) or every (`all == true`) element below the length passes.
pub fn over_elements(
    slot: &SlotVar,
    all: bool,
    test: &dyn Fn(&ZString) -> Option<Bool>,
) -> Option<Bool> {
    if slot.ty == ValueType::Text {
        return test(slot.strings.first()?);
    }
    let mut parts = Vec::new();
    for (j, s) in slot.strings.iter().enumerate() {
        let inside = slot.value.gt(Int::from_i64(j as i64));
        let passes = test(s)?;
        parts.push(if all {
            inside.implies(&passes)
        } else {
            Bool::and(&[inside, passes])
        });
    }
    Some(if all {
        Bool::and(&parts)
    } else {
        Bool::or(&parts)
    })
}

/// The text tests of one tool of one table, as conditions read them (`Any` / `All`
/// name a test by its bit among the tests of its parameter).
#[derive(Clone, Copy)]
pub struct TextTests<'a> {
    pub data: &'a TableData,
    pub tool: usize,
    pub alphabet: &'a Alphabet,
}

impl TextTests<'_> {
    fn kind(&self, slot: Slot, bit: u8) -> Option<&TextTestKind> {
        self.data
            .text_tests
            .iter()
            .filter(|t| t.tool.index() == self.tool && t.param == slot.0)
            .nth(usize::from(bit))
            .map(|t| &t.kind)
    }

    /// How many text tests the tool's parameter has.
    pub fn count(data: &TableData, tool: usize, param: usize) -> usize {
        data.text_tests
            .iter()
            .filter(|t| t.tool.index() == tool && usize::from(t.param) == param)
            .count()
    }
}

/// A compiled condition: `(holds, every slot it reads is present)`. `None` for a
/// malformed program, which a validated table never has.
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
            Op::Any { slot, bit } | Op::All { slot, bit } => {
                let var = req.slot(slot.0 as usize)?;
                let kind = tests.kind(slot, bit)?;
                present.push(var.present.clone());
                let all = matches!(op, Op::All { .. });
                stack.push(over_elements(var, all, &|s| {
                    text_test(tests.alphabet, kind, &tests.data.sets, s)
                })?);
            }
            Op::Untrusted { slot } => {
                let var = req.slot(slot.0 as usize)?;
                present.push(var.present.clone());
                stack.push(var.untrusted.clone());
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

fn entry(
    e: &rt::Entry,
    kind: Kind,
    req: &SymRequest,
    texts: TextMap<'_>,
    tests: TextTests<'_>,
) -> Option<Bool> {
    let Some(cond) = &e.condition else {
        return Some(Bool::from_bool(true));
    };
    let (holds, known) = condition(cond, req, texts, tests)?;
    Some(match kind {
        // Fail safe: an unknown condition matches for deny and escalate.
        Kind::Deny | Kind::Escalate => Bool::or(&[known.not(), holds]),
        Kind::Allow => Bool::and(&[known, holds]),
    })
}

impl RuleStage {
    pub fn new(
        cell: &rt::Cell,
        req: &SymRequest,
        texts: TextMap<'_>,
        tests: TextTests<'_>,
    ) -> Option<RuleStage> {
        let list = |entries: &[rt::Entry], kind| -> Option<Vec<Bool>> {
            entries
                .iter()
                .map(|e| entry(e, kind, req, texts, tests))
                .collect()
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

    /// The cell escalates, and the escalation ends in an allow if nobody answers: as
    /// the engine resolves timeouts (`engine::unattended`), some matching escalate
    /// entry's route has a timeout, and every matching entry's route that has a timeout
    /// says `then allow`. `cell` is the cell this stage was built from.
    pub fn is_unattended_allow(&self, data: &rt::TableData, cell: &rt::Cell) -> Bool {
        let mut allows = Vec::new();
        let mut denies = Vec::new();
        for (entry, matched) in cell.escalate.iter().zip(&self.escalate) {
            let route = data
                .rules
                .get(entry.rule.index())
                .and_then(|r| r.route)
                .and_then(|id| data.routes.get(id.index()));
            let Some(route) = route.filter(|r| r.timeout_ms.is_some()) else {
                continue;
            };
            if route.timeout_outcome == Some(rt::TimeoutOutcome::Allow) {
                allows.push(matched.clone());
            } else {
                denies.push(matched.not());
            }
        }
        Bool::and(&[self.any_deny.not(), Bool::or(&allows), Bool::and(&denies)])
    }

    /// Allowed without a human: allowed, or escalated to routes whose timeout allows.
    pub fn is_allow_without_human(&self, data: &rt::TableData, cell: &rt::Cell) -> Bool {
        Bool::or(&[self.is_allow(), self.is_unattended_allow(data, cell)])
    }

    /// [`rank`](Self::rank) with an escalation that times out to allow between allow and
    /// an escalation that waits for a person: `ALLOW` 0, unattended allow 1, `ESCALATE`
    /// 2, `DENY` 3 (monotone thresholds compare outcomes by how permissive they are).
    pub fn permissiveness(&self, data: &rt::TableData, cell: &rt::Cell) -> Int {
        self.any_deny.ite(
            &Int::from_i64(3),
            &self.is_unattended_allow(data, cell).ite(
                &Int::from_i64(1),
                &self.any_escalate.ite(
                    &Int::from_i64(2),
                    &self.any_allow.ite(&Int::from_i64(0), &Int::from_i64(3)),
                ),
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
                    present.push(v.present.clone());
                    v.untrusted.clone()
                }
                None => {
                    present.push(Bool::from_bool(false));
                    Bool::from_bool(false)
                }
            },
            Cond::HasEffect(effect) => {
                Bool::from_bool(self.model_tool.is_some_and(|t| t.has_effect(*effect)))
            }
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
                    present.push(v.present.clone());
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
        let req = SymRequest::new("t", &tool, &|_| 0);
        let data = TableData::default();
        let mut rng = Rng(0x2545_F491_4F6C_DD1D);
        let mut checked = 0;
        let solver = crate::solver::solver(crate::Budget::default());
        for _ in 0..150 {
            let Ok(cond) = Condition::new(program(&mut rng, 3)) else {
                continue;
            };
            let alphabet = Alphabet::default();
            let tests = TextTests {
                data: &data,
                tool: 0,
                alphabet: &alphabet,
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
