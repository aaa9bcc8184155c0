//! Requests as symbolic slots: one integer per value slot with presence and provenance
//! (`untrusted`) flags, text slots' strings linked to their ids, a free `tainted`.
//!
//! It must not encode conditions or rule stages (`condition.rs`, `stage.rs`).

use agentpolicy_runtime::{self as rt, SLOTS, Slot, ValueSet, ValueType};

use z3::ast::{Bool, Int, String as ZString};

use super::*;

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
    /// Text slots are read as ids only (they have no strings; sets written in the
    /// policy are tested as intervals of their members' ids, [`TextDomain::member_id`]),
    /// so their domain includes the members' ids.
    pub members: bool,
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
            members: false,
        }
    }

    pub fn slot(&self, slot: usize) -> Option<&SlotVar> {
        self.slots.get(slot).and_then(Option::as_ref)
    }

    /// Reads every text slot as an id only: drops its string and puts the ids of set
    /// members in its domain. Only for a request whose formulas test no text but by
    /// membership in sets written in the policy (and `==` on ids).
    pub fn ids_only(&mut self) {
        for s in self.slots.iter_mut().flatten() {
            if s.ty == ValueType::Text {
                s.strings.clear();
            }
        }
        self.strings = false;
        self.members = true;
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
                ValueType::Text => texts.constraint(&s.value, self.members),
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
