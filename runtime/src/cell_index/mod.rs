//! Interval tables for cells with many threshold rules, built once per table by
//! [`crate::DecisionTable::new`] so `decide` stays flat however many rules a cell holds.
//!
//! A threshold rule is an entry whose condition is one comparison of an argument with a
//! constant (`amount > $10,000`). For each argument, the constants of a list's
//! threshold entries cut the number line into regions (the open interval between two
//! neighbouring constants, and each constant itself) on which every one of those
//! comparisons has a fixed truth value; the table stores, per region, the first entry
//! (in list order) that holds there. Deciding reads one binary search per argument and
//! then scans only the other entries that come before the best candidate, so the first
//! match, its rule and its missing value are exactly what the linear scan finds:
//! `decide`'s tests hold the two to each other.
//!
//! Only deny and allow lists are indexed; escalate lists are scanned (every matching
//! escalation contributes its route, so there is no first match to look up). Small
//! lists are scanned too: an index pays off from [`MIN_INDEXED`] threshold entries.

use crate::condition::{CmpOp, Op, SLOTS, Slot};
use crate::request::Request;
use crate::table::{Cell, Entry, TableData};

/// The fewest threshold entries of one list for which an index is built.
pub const MIN_INDEXED: usize = 16;

/// No entry: larger than every position.
const NONE: u32 = u32::MAX;

/// The indexes of one cell's lists.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct CellIndex {
    pub deny: Option<ListIndex>,
    pub allow: Option<ListIndex>,
}

/// One list's threshold entries, grouped by the argument they compare, and the
/// positions of the entries that are not threshold entries.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ListIndex {
    groups: Vec<SlotGroup>,
    /// Positions of the other entries, ascending.
    rest: Vec<u32>,
}

/// The threshold entries of one list on one argument.
#[derive(Debug, Clone, PartialEq, Eq)]
struct SlotGroup {
    slot: Slot,
    /// The first position in the group: what matches when the argument is missing
    /// (a deny list's missing value matches).
    first: u32,
    /// The distinct constants, ascending: `k` constants make `2k + 1` regions, region
    /// `2j + 1` being `bounds[j]` itself and region `2j` the values between
    /// `bounds[j - 1]` and `bounds[j]`.
    bounds: Vec<i64>,
    /// Per region, the first position whose comparison holds there, or [`NONE`].
    best: Vec<u32>,
}

impl SlotGroup {
    /// Positions and comparisons of the group, ascending by position.
    /// `bounds`: the sorted distinct constants the cell's deny and allow lists compare
    /// this slot with (the same for both lists, so one search serves both).
    fn new(slot: Slot, entries: &[Threshold], bounds: Vec<i64>) -> SlotGroup {
        let regions = 2 * bounds.len() + 1;
        let mut best = vec![NONE; regions];
        // `next[r]`: the first region at or after `r` not painted yet (path-compressed),
        // so each region is painted once, by the first entry that holds there.
        let mut next: Vec<usize> = (0..=regions).collect();
        for &(pos, op, value) in entries {
            let point = 2 * bounds.partition_point(|b| *b < value) + 1;
            let ranges = match op {
                CmpOp::Lt => [(0, point), (0, 0)],
                CmpOp::Le => [(0, point + 1), (0, 0)],
                CmpOp::Gt => [(point + 1, regions), (0, 0)],
                CmpOp::Ge => [(point, regions), (0, 0)],
                CmpOp::Eq => [(point, point + 1), (0, 0)],
                CmpOp::Ne => [(0, point), (point + 1, regions)],
            };
            for (start, end) in ranges {
                let mut r = find(&mut next, start);
                while r < end {
                    if let Some(b) = best.get_mut(r) {
                        *b = pos;
                    }
                    if let Some(n) = next.get_mut(r) {
                        *n = r + 1;
                    }
                    r = find(&mut next, r + 1);
                }
            }
        }
        SlotGroup {
            slot,
            first: entries.first().map_or(NONE, |(pos, _, _)| *pos),
            bounds,
            best,
        }
    }

    /// The first position whose comparison holds for `value`; the region of `value` is
    /// searched once per request and slot and kept in `regions` for the other list.
    #[inline]
    fn lookup(&self, value: i64, regions: &mut Regions) -> u32 {
        let cached = regions.0.get(usize::from(self.slot.0)).copied();
        let region = match cached {
            Some(r) if r != NONE => r as usize,
            _ => {
                let j = self.bounds.partition_point(|b| *b < value);
                let r = if self.bounds.get(j) == Some(&value) {
                    2 * j + 1
                } else {
                    2 * j
                };
                if let Some(slot) = regions.0.get_mut(usize::from(self.slot.0)) {
                    *slot = u32::try_from(r).unwrap_or(NONE);
                }
                r
            }
        };
        self.best.get(region).copied().unwrap_or(NONE)
    }
}

/// The region of each slot's value among the cell's constants, found by the first list
/// that searches it (deny) and reused by the next (allow): one search per argument.
pub(crate) struct Regions([u32; SLOTS]);

impl Regions {
    #[inline]
    pub(crate) fn new() -> Regions {
        Regions([NONE; SLOTS])
    }
}

/// The first unpainted region at or after `r`.
fn find(next: &mut [usize], r: usize) -> usize {
    let mut root = r;
    while let Some(&n) = next.get(root) {
        if n == root {
            break;
        }
        root = n;
    }
    let mut at = r;
    while let Some(n) = next.get_mut(at) {
        if *n == at || *n == root {
            break;
        }
        let following = *n;
        *n = root;
        at = following;
    }
    root
}

/// A threshold entry of a list: its position and comparison.
type Threshold = (u32, CmpOp, i64);

/// An entry's comparison when it is a threshold entry.
fn threshold(entry: &Entry) -> Option<(Slot, CmpOp, i64)> {
    match entry.condition.as_ref()?.code.as_slice() {
        [Op::Compare { slot, op, value }] => Some((*slot, *op, *value)),
        _ => None,
    }
}

/// Per slot, the sorted distinct constants of the threshold entries of `lists`.
fn slot_bounds(lists: &[&[Entry]]) -> Vec<(Slot, Vec<i64>)> {
    let mut out: Vec<(Slot, Vec<i64>)> = Vec::new();
    for (slot, _, value) in lists.iter().flat_map(|l| l.iter()).filter_map(threshold) {
        match out.iter_mut().find(|(s, _)| *s == slot) {
            Some((_, bounds)) => bounds.push(value),
            None => out.push((slot, vec![value])),
        }
    }
    for (_, bounds) in &mut out {
        bounds.sort_unstable();
        bounds.dedup();
    }
    out
}

fn index_list(entries: &[Entry], bounds: &[(Slot, Vec<i64>)]) -> Option<ListIndex> {
    let thresholds = entries.iter().filter_map(threshold).count();
    if thresholds < MIN_INDEXED {
        return None;
    }
    let mut by_slot: Vec<(Slot, Vec<Threshold>)> = Vec::new();
    let mut rest = Vec::new();
    for (pos, entry) in entries.iter().enumerate() {
        let pos = u32::try_from(pos).ok()?;
        match threshold(entry) {
            Some((slot, op, value)) => match by_slot.iter_mut().find(|(s, _)| *s == slot) {
                Some((_, group)) => group.push((pos, op, value)),
                None => by_slot.push((slot, vec![(pos, op, value)])),
            },
            None => rest.push(pos),
        }
    }
    Some(ListIndex {
        groups: by_slot
            .iter()
            .map(|(slot, group)| {
                let b = bounds
                    .iter()
                    .find(|(s, _)| s == slot)
                    .map(|(_, b)| b.clone())
                    .unwrap_or_default();
                SlotGroup::new(*slot, group, b)
            })
            .collect(),
        rest,
    })
}

/// The index of every cell, in the table's cell order.
pub(crate) fn build(data: &TableData) -> Vec<CellIndex> {
    data.cells.iter().map(index_cell).collect()
}

fn index_cell(cell: &Cell) -> CellIndex {
    let bounds = slot_bounds(&[&cell.deny, &cell.allow]);
    CellIndex {
        deny: index_list(&cell.deny, &bounds),
        allow: index_list(&cell.allow, &bounds),
    }
}

/// How an indexed list was matched: the position of the first entry that matches (and
/// the slot whose absence made it match), or a condition that could not be evaluated.
pub(crate) enum First {
    None,
    At { pos: usize, missing: Option<Slot> },
    Fault,
}

impl ListIndex {
    /// The first entry of `entries` (the list this index was built from) that matches
    /// `request`, as the linear scan defines it: `missing_matches` for deny lists (a
    /// condition reading a missing value matches), not for allow lists.
    #[inline]
    pub(crate) fn first(
        &self,
        entries: &[Entry],
        request: &Request,
        missing_matches: bool,
        regions: &mut Regions,
    ) -> First {
        let mut best = NONE;
        let mut best_missing = None;
        for g in &self.groups {
            let (pos, missing) = match request.value(g.slot) {
                Some(v) => (g.lookup(v, regions), None),
                None if missing_matches => (g.first, Some(g.slot)),
                None => (NONE, None),
            };
            if pos < best {
                best = pos;
                best_missing = missing;
            }
        }
        for &pos in &self.rest {
            if pos >= best {
                break;
            }
            let Some(entry) = entries.get(pos as usize) else {
                return First::Fault;
            };
            let Some(cond) = &entry.condition else {
                return First::At {
                    pos: pos as usize,
                    missing: None,
                };
            };
            if let Some(slot) = cond.first_missing(request.present) {
                if missing_matches {
                    return First::At {
                        pos: pos as usize,
                        missing: Some(slot),
                    };
                }
                continue;
            }
            match cond.eval_request(request) {
                Some(true) => {
                    return First::At {
                        pos: pos as usize,
                        missing: None,
                    };
                }
                Some(false) => {}
                None => return First::Fault,
            }
        }
        if best == NONE {
            First::None
        } else {
            First::At {
                pos: best as usize,
                missing: best_missing,
            }
        }
    }
}

#[cfg(test)]
mod tests;
