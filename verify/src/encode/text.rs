//! The text domain: which texts a request can carry, as integers and as Z3 strings through
//! the run's [`Alphabet`]; globs as regular expressions; sets written in the policy as
//! disjunctions of equalities and deploy-time sets as uninterpreted predicates; the text
//! tests of a `list<text>` over its bounded witness elements.
//!
//! It must not know about requests' slots or the condition bytecode (`request.rs`,
//! `condition.rs`).

use agentpolicy_runtime::{
    self as rt, GlobToken, Slot, TableData, TextTestKind, UNKNOWN_TEXT_BASE, ValueSet, ValueType,
};
use std::str::FromStr as _;

use z3::ast::{Bool, Int, Regexp, String as ZString};

use crate::alphabet::Alphabet;

use agentpolicy::model::{Cond, Model, Term, Value};

use super::*;

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

    pub(super) fn constraint(&self, v: &Int) -> Bool {
        let listed = Bool::and(&[v.ge(Int::from_i64(0)), v.lt(Int::from_i64(self.listed()))]);
        let unlisted = Bool::and(&[
            v.ge(Int::from_i64(UNKNOWN_TEXT_BASE)),
            v.lt(Int::from_i64(UNKNOWN_TEXT_BASE + UNLISTED)),
        ]);
        Bool::or(&[listed, unlisted])
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
    pub(super) fn kind(&self, slot: Slot, bit: u8) -> Option<&TextTestKind> {
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
