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
use std::collections::HashMap;
use std::str::FromStr as _;

use z3::ast::{Bool, Int, Regexp, String as ZString};

use crate::alphabet::Alphabet;

use agentpolicy::model::{Cond, Model, Term, Value};

use super::*;

/// Texts a request can carry, as integers: the table's dictionary `0..n`, then texts that
/// only the policy's asserts and exemptions mention `n..n+m` (the runtime sees those as
/// unlisted), then unlisted texts from [`UNKNOWN_TEXT_BASE`]. For requests whose text
/// slots are read as ids only ([`SymRequest::members`]), the members of the policy's
/// literal sets that neither list holds follow at `n+m..n+m+k`, set by set, so that a
/// set's members are a few intervals of ids and membership is integer arithmetic.
#[derive(Debug, Clone, Default)]
pub struct TextDomain {
    table: Vec<String>,
    extra: Vec<String>,
    /// Members of literal sets that `table` and `extra` do not hold.
    members: Vec<String>,
    /// The id of every text of `table`, `extra` and `members`.
    index: HashMap<String, i64>,
    /// Per set of the table, its members' ids as sorted closed intervals; `None` for a
    /// set bound at deploy time whose members are not known.
    ranges: Vec<Option<Vec<(i64, i64)>>>,
    /// How the run's texts are written as Z3 strings.
    pub alphabet: Alphabet,
}

/// Distinct unlisted texts one request can carry (the runtime's request builder limit).
const UNLISTED: i64 = 16;

impl TextDomain {
    pub fn new(table: &TableData, model: &Model) -> TextDomain {
        let mut domain = TextDomain {
            table: table.texts.clone(),
            alphabet: Alphabet::of_json(&[
                serde_json::to_value(table),
                serde_json::to_value(model),
            ]),
            ..TextDomain::default()
        };
        domain.reindex();
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
                    && !domain.index.contains_key(t)
                {
                    domain
                        .index
                        .insert(t.clone(), (domain.table.len() + domain.extra.len()) as i64);
                    domain.extra.push(t.clone());
                }
            }
        }
        for set in &table.sets {
            if set.deploy && !set.bound {
                domain.ranges.push(None);
                continue;
            }
            let mut ids: Vec<i64> = Vec::with_capacity(set.members.len());
            for m in &set.members {
                let next = domain.listed() + domain.members.len() as i64;
                let id = *domain.index.entry(m.clone()).or_insert(next);
                if id == next {
                    domain.members.push(m.clone());
                }
                ids.push(id);
            }
            ids.sort_unstable();
            ids.dedup();
            let mut ranges: Vec<(i64, i64)> = Vec::new();
            for id in ids {
                match ranges.last_mut() {
                    Some((_, hi)) if *hi + 1 == id => *hi = id,
                    _ => ranges.push((id, id)),
                }
            }
            domain.ranges.push(Some(ranges));
        }
        domain
    }

    /// Rebuilds the index of `table` and `extra` (first occurrence wins).
    fn reindex(&mut self) {
        self.index.clear();
        for (i, t) in self.table.iter().chain(&self.extra).enumerate() {
            self.index.entry(t.clone()).or_insert(i as i64);
        }
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
        let mut domain = TextDomain {
            table,
            alphabet: Alphabet::of_json(&[
                serde_json::to_value(old),
                serde_json::to_value(new),
                serde_json::to_value(models[0]),
                serde_json::to_value(models[1]),
            ]),
            ..TextDomain::default()
        };
        domain.reindex();
        (domain, remap)
    }

    /// The id of a listed text (of the dictionary, or mentioned by an assert or
    /// exemption); for any other text an id outside every request's domain.
    pub fn id(&self, text: &str) -> i64 {
        match self.index.get(text) {
            Some(&i) if i < self.listed() => i,
            _ => UNKNOWN_TEXT_BASE + UNLISTED,
        }
    }

    /// Membership of a text slot read as an id (`v`, in a request with
    /// [`SymRequest::members`]) in the table's set `set`: `v` in one of the intervals
    /// of its members' ids. `None` for a set bound at deploy time (its members are
    /// not known; such a set is tested on strings).
    pub fn member_id(&self, set: usize, v: &Int) -> Option<Bool> {
        let ranges = self.ranges.get(set)?.as_ref()?;
        let parts: Vec<Bool> = ranges
            .iter()
            .map(|&(lo, hi)| {
                if lo == hi {
                    v.eq(Int::from_i64(lo))
                } else {
                    Bool::and(&[v.ge(Int::from_i64(lo)), v.le(Int::from_i64(hi))])
                }
            })
            .collect();
        Some(Bool::or(&parts))
    }

    /// Whether membership in the table's set `set` can be read on ids.
    pub fn set_has_ids(&self, set: usize) -> bool {
        self.ranges.get(set).is_some_and(Option::is_some)
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
        if let Some(m) = value
            .checked_sub(self.listed())
            .and_then(|i| usize::try_from(i).ok())
            .and_then(|i| self.members.get(i))
        {
            return m.clone();
        }
        format!(
            "unlisted-{}",
            value.wrapping_sub(UNKNOWN_TEXT_BASE).max(0) + 1
        )
    }

    /// The ids a text slot can hold; with `members`, the ids of set members too (only
    /// for requests whose text slots have no strings: a string is linked to the listed
    /// texts only, and a set member is an unlisted text for it).
    pub(super) fn constraint(&self, v: &Int, members: bool) -> Bool {
        let end = if members {
            self.listed() + self.members.len() as i64
        } else {
            self.listed()
        };
        let listed = Bool::and(&[v.ge(Int::from_i64(0)), v.lt(Int::from_i64(end))]);
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
    pub texts: &'a TextDomain,
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
