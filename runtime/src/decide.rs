//! `decide`: one request against one table, in the fixed order of the contract. No
//! allocation, no hashing, no string comparison: array reads, integer compares and the
//! condition bit stack.

use crate::cell_index::{CellIndex, First, Regions};
use crate::condition::Slot;
use crate::decision::{Decision, Outcome, Routes, Why};
use crate::decision_table::DecisionTable;
use crate::flow;
use crate::request::Request;
use crate::table::{Cell, Entry, TableData};

/// Decides one request.
///
/// The order is fixed, whatever the order of rules in the policy:
/// 1. engine or agent suspended: deny;
/// 2. unknown agent or tool, or tool not granted to the agent: deny;
/// 3. flow check fails: deny;
/// 4. a limit is exhausted: deny;
/// 5. a matching deny rule: deny; else matching escalate rules: escalate to all their
///    routes; else a matching allow rule: allow; else deny (no rule).
///
/// A condition that reads a value the request does not carry matches for deny and
/// escalate rules and does not match for allow rules; [`Decision::missing`] says which.
///
/// ```
/// use agentpolicy_runtime::*;
///
/// let mut data = TableData { format_version: FORMAT_VERSION, ..TableData::default() };
/// data.files.push("firm.agentpolicy".into());
/// data.tools.push(Tool {
///     name: "wire_funds".into(),
///     params: vec![Param { name: "amount".into(), ty: ValueType::Money, optional: false }],
///     effects: vec![Effect::Financial, Effect::Irreversible],
///     reads: vec![],
///     writes: vec![],
/// });
/// data.agents.push(Agent {
///     name: "intake".into(),
///     owner: None,
///     mode: Mode::Enforce,
///     max_tier: None,
///     limits: vec![],
///     breakers: vec![],
/// });
/// data.routes.push(Route {
///     name: "ops".into(),
///     notify: None,
///     timeout_ms: Some(900_000),
///     timeout_outcome: Some(TimeoutOutcome::Deny),
/// });
/// data.rules.push(Rule {
///     id: "intake/escalate/wire_funds#1".into(),
///     agent: AgentId(0),
///     kind: RuleKind::Escalate,
///     target: Target::Tool(ToolId(0)),
///     route: Some(RouteId(0)),
///     span: Span::default(),
/// });
/// // escalate wire_funds to ops when amount > $100
/// data.cells.push(Cell {
///     granted: true,
///     escalate: vec![Entry {
///         rule: RuleIndex(0),
///         condition: Some(
///             Condition::new(vec![Op::Compare { slot: Slot(0), op: CmpOp::Gt, value: 100_00 }])
///                 .unwrap(),
///         ),
///     }],
///     ..Cell::default()
/// });
/// let table = DecisionTable::new(data).unwrap();
///
/// let big = table.request("intake", "wire_funds").unwrap()
///     .arg("amount", ArgValue::Money(250_00)).unwrap()
///     .build();
/// let d = decide(&table, &big);
/// assert_eq!(d.outcome, Outcome::Escalate);
/// assert_eq!(d.routes.as_slice(), &[RouteId(0)]);
/// assert_eq!(d.rule, Some(RuleIndex(0)));
///
/// let small = table.request("intake", "wire_funds").unwrap()
///     .arg("amount", ArgValue::Money(50_00)).unwrap()
///     .build();
/// assert_eq!(decide(&table, &small).why, Why::NoRuleMatched);
///
/// // No amount: the escalate rule's condition is unknown, so it matches (fail safe).
/// let unknown = table.request("intake", "wire_funds").unwrap().build();
/// let d = decide(&table, &unknown);
/// assert_eq!(d.outcome, Outcome::Escalate);
/// assert_eq!(d.missing, Some(Slot(0)));
/// ```
pub fn decide(table: &DecisionTable, request: &Request) -> Decision {
    decide_data(table, request, true)
}

/// `decide` with every list scanned in order, ignoring the interval tables: the
/// reference the indexed path is tested against.
#[cfg(test)]
pub(crate) fn decide_linear(table: &DecisionTable, request: &Request) -> Decision {
    decide_data(table, request, false)
}

#[inline]
fn decide_data(table: &DecisionTable, request: &Request, indexed: bool) -> Decision {
    let t = table.data();
    let session = &request.session;
    if session.engine_suspended {
        return Decision::deny(Why::EngineSuspended);
    }
    if session.agent_suspended {
        return Decision::deny(Why::AgentSuspended);
    }
    let Some(agent) = t.agents.get(request.agent.index()) else {
        return Decision::deny(Why::UnknownAgent);
    };
    let Some(tool) = t.tools.get(request.tool.index()) else {
        return Decision::deny(Why::UnknownTool);
    };
    let Some(cell) = t.cell(request.agent, request.tool) else {
        return Decision::deny(Why::Fault);
    };
    if !cell.granted {
        return Decision::deny(Why::NotGranted);
    }
    if let Err(why) = flow::check(t, agent, tool, request) {
        return Decision::deny(why);
    }
    for (i, limit) in agent.limits.iter().enumerate() {
        let used = session.usage.get(i).copied().unwrap_or(u64::MAX);
        if used >= limit.count {
            return Decision::deny(Why::LimitExhausted { limit: i as u8 });
        }
    }
    let index = if indexed {
        t.cell_position(request.agent, request.tool)
            .and_then(|i| table.cell_index(i))
    } else {
        None
    };
    by_rules(t, cell, index, request)
}

enum Match {
    Yes,
    No,
    /// The condition reads this slot, which the request does not carry.
    Missing(Slot),
    Fault,
}

#[inline]
fn test(entry: &Entry, request: &Request) -> Match {
    let Some(cond) = &entry.condition else {
        return Match::Yes;
    };
    if let Some(slot) = cond.first_missing(request.present) {
        return Match::Missing(slot);
    }
    match cond.eval_request(request) {
        Some(true) => Match::Yes,
        Some(false) => Match::No,
        None => Match::Fault,
    }
}

fn by_rule(outcome: Outcome, entry: &Entry, missing: Option<Slot>) -> Decision {
    Decision {
        outcome,
        rule: Some(entry.rule),
        why: if missing.is_some() {
            Why::RuleMatchedOnMissingValue
        } else {
            Why::RuleMatched
        },
        missing,
        routes: Routes::default(),
    }
}

/// The entry an indexed list matched, as a decision; `None` when none did.
fn indexed(outcome: Outcome, entries: &[Entry], first: First) -> Option<Decision> {
    match first {
        First::None => None,
        First::At { pos, missing } => Some(match entries.get(pos) {
            Some(entry) => by_rule(outcome, entry, missing),
            None => Decision::deny(Why::Fault),
        }),
        First::Fault => Some(Decision::deny(Why::Fault)),
    }
}

#[inline]
fn by_rules(t: &TableData, cell: &Cell, index: Option<&CellIndex>, request: &Request) -> Decision {
    let mut regions = Regions::new();
    if let Some(ix) = index.and_then(|i| i.deny.as_ref()) {
        let first = ix.first(&cell.deny, request, true, &mut regions);
        if let Some(d) = indexed(Outcome::Deny, &cell.deny, first) {
            return d;
        }
    } else {
        for entry in &cell.deny {
            match test(entry, request) {
                Match::Yes => return by_rule(Outcome::Deny, entry, None),
                Match::Missing(slot) => return by_rule(Outcome::Deny, entry, Some(slot)),
                Match::No => {}
                Match::Fault => return Decision::deny(Why::Fault),
            }
        }
    }
    let mut escalation: Option<Decision> = None;
    for entry in &cell.escalate {
        let missing = match test(entry, request) {
            Match::Yes => None,
            Match::Missing(slot) => Some(slot),
            Match::No => continue,
            Match::Fault => return Decision::deny(Why::Fault),
        };
        let decision = escalation.get_or_insert_with(|| by_rule(Outcome::Escalate, entry, missing));
        let Some(route) = t.rules.get(entry.rule.index()).and_then(|r| r.route) else {
            return Decision::deny(Why::Fault);
        };
        if !decision.routes.push(route) {
            return Decision::deny(Why::Fault);
        }
    }
    if let Some(decision) = escalation {
        return decision;
    }
    if let Some(ix) = index.and_then(|i| i.allow.as_ref()) {
        let first = ix.first(&cell.allow, request, false, &mut regions);
        return indexed(Outcome::Allow, &cell.allow, first)
            .unwrap_or_else(|| Decision::deny(Why::NoRuleMatched));
    }
    for entry in &cell.allow {
        match test(entry, request) {
            Match::Yes => return by_rule(Outcome::Allow, entry, None),
            Match::No | Match::Missing(_) => {}
            Match::Fault => return Decision::deny(Why::Fault),
        }
    }
    Decision::deny(Why::NoRuleMatched)
}
