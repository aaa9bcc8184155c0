//! Checks a [`TableData`] before it becomes a [`crate::DecisionTable`]: every id in range,
//! every condition well formed and typed, every cell consistent with its rules. A table
//! that passes can be decided on without a fault; one that fails is never used.

use std::collections::HashSet;
use std::fmt;

use crate::condition::{MAX_PARAMS, Op, Slot};
use crate::decision::MAX_ROUTES;
use crate::ids::{AgentId, RouteId, ToolId};
use crate::request::{MAX_KEYS, MAX_LIMITS};
use crate::table::{Cell, Entry, RuleKind, TableData, Target, Tool, ValueType};
use crate::{FORMAT_VERSION, ids::KeyId};

/// Why a table was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidTable {
    pub reason: String,
}

impl fmt::Display for InvalidTable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid decision table: {}", self.reason)
    }
}

impl std::error::Error for InvalidTable {}

fn invalid(reason: impl Into<String>) -> InvalidTable {
    InvalidTable {
        reason: reason.into(),
    }
}

fn check(ok: bool, reason: impl FnOnce() -> String) -> Result<(), InvalidTable> {
    if ok { Ok(()) } else { Err(invalid(reason())) }
}

pub(crate) fn validate(t: &TableData) -> Result<(), InvalidTable> {
    check(t.format_version == FORMAT_VERSION, || {
        format!(
            "format version {} (this runtime reads {FORMAT_VERSION})",
            t.format_version
        )
    })?;
    unique("tier", t.tiers.iter().map(String::as_str))?;
    unique("isolation key", t.keys.iter().map(String::as_str))?;
    unique("resource", t.resources.iter().map(|r| r.name.as_str()))?;
    unique("sink", t.sinks.iter().map(|s| s.name.as_str()))?;
    unique("route", t.routes.iter().map(|r| r.name.as_str()))?;
    unique("text constant", t.texts.iter().map(String::as_str))?;
    unique("tool", t.tools.iter().map(|x| x.name.as_str()))?;
    unique("agent", t.agents.iter().map(|a| a.name.as_str()))?;
    check(t.keys.len() <= MAX_KEYS, || {
        format!("{} isolation keys (at most {MAX_KEYS})", t.keys.len())
    })?;
    check(u32::try_from(t.texts.len()).is_ok(), || {
        "too many text constants".into()
    })?;

    let tier_ok = |tier: crate::TierId| tier.index() < t.tiers.len();
    let keys_ok = |keys: &[KeyId]| keys.iter().all(|k| k.index() < t.keys.len());
    for r in &t.resources {
        check(tier_ok(r.tier) && keys_ok(&r.keyed), || {
            format!("resource `{}` names an unknown tier or key", r.name)
        })?;
    }
    for s in &t.sinks {
        check(tier_ok(s.clearance) && keys_ok(&s.keyed), || {
            format!("sink `{}` names an unknown tier or key", s.name)
        })?;
    }
    for tool in &t.tools {
        check(tool.params.len() <= MAX_PARAMS, || {
            format!(
                "tool `{}` has {} parameters (at most {MAX_PARAMS})",
                tool.name,
                tool.params.len()
            )
        })?;
        unique("parameter", tool.params.iter().map(|p| p.name.as_str()))?;
        check(
            tool.reads.iter().all(|r| r.index() < t.resources.len())
                && tool.writes.iter().all(|s| s.index() < t.sinks.len()),
            || format!("tool `{}` names an unknown resource or sink", tool.name),
        )?;
    }
    unique("set", t.sets.iter().map(|s| s.name.as_str()))?;
    for set in &t.sets {
        check(set.members.windows(2).all(|w| w[0] < w[1]), || {
            format!(
                "the members of set `{}` are not sorted and distinct",
                set.name
            )
        })?;
        check(set.deploy || set.bound, || {
            format!(
                "set `{}` is neither bound nor bound at deploy time",
                set.name
            )
        })?;
    }
    for (i, test) in t.text_tests.iter().enumerate() {
        let param = t
            .tools
            .get(test.tool.index())
            .and_then(|tool| tool.params.get(usize::from(test.param)));
        check(
            param.is_some_and(|p| matches!(p.ty, ValueType::Text | ValueType::TextList)),
            || format!("text test #{i} names a parameter that is not text"),
        )?;
        match &test.kind {
            crate::TextTestKind::InSet(s) => check((*s as usize) < t.sets.len(), || {
                format!("text test #{i} names an unknown set")
            })?,
            crate::TextTestKind::Matches(p) => check(crate::glob_tokens(p).is_ok(), || {
                format!("text test #{i} has a malformed pattern")
            })?,
            crate::TextTestKind::Equals(_) => {}
        }
        let same = t
            .text_tests
            .iter()
            .filter(|x| x.tool == test.tool && x.param == test.param)
            .count();
        check(same <= 32, || {
            format!("more than 32 text tests on one parameter (test #{i})")
        })?;
    }
    check(
        t.untrusted_resources.windows(2).all(|w| w[0] < w[1])
            && t.untrusted_resources
                .iter()
                .all(|r| r.index() < t.resources.len())
            && t.untrusted_tools.windows(2).all(|w| w[0] < w[1])
            && t.untrusted_tools.iter().all(|x| x.index() < t.tools.len()),
        || "untrusted resources or tools are out of range or unsorted".into(),
    )?;
    for agent in &t.agents {
        check(agent.max_tier.is_none_or(tier_ok), || {
            format!("agent `{}` has an unknown max tier", agent.name)
        })?;
        check(agent.limits.len() <= MAX_LIMITS, || {
            format!(
                "agent `{}` has {} limits (at most {MAX_LIMITS})",
                agent.name,
                agent.limits.len()
            )
        })?;
    }
    for (i, rule) in t.rules.iter().enumerate() {
        check(rule.agent.index() < t.agents.len(), || {
            format!("rule #{i} (`{}`) names an unknown agent", rule.id)
        })?;
        if let Target::Tool(tool) = rule.target {
            check(tool.index() < t.tools.len(), || {
                format!("rule `{}` names an unknown tool", rule.id)
            })?;
        }
        match (rule.kind, rule.route) {
            (RuleKind::Escalate, Some(route)) => check(route.index() < t.routes.len(), || {
                format!("rule `{}` names an unknown route", rule.id)
            })?,
            (RuleKind::Escalate, None) => {
                return Err(invalid(format!("escalate rule `{}` has no route", rule.id)));
            }
            (_, Some(_)) => {
                return Err(invalid(format!(
                    "{} rule `{}` has a route",
                    rule.kind.keyword(),
                    rule.id
                )));
            }
            (_, None) => {}
        }
        check(rule.span.file.index() < t.files.len(), || {
            format!("rule `{}` points into an unknown file", rule.id)
        })?;
    }

    validate_retention(t)?;

    let expected = t.agents.len().checked_mul(t.tools.len());
    check(expected == Some(t.cells.len()), || {
        format!(
            "{} cells for {} agents and {} tools",
            t.cells.len(),
            t.agents.len(),
            t.tools.len()
        )
    })?;
    for (a, agent) in t.agents.iter().enumerate() {
        for (k, tool) in t.tools.iter().enumerate() {
            let (agent_id, tool_id) = (AgentId(a as u32), ToolId(k as u32));
            let cell = t
                .cell(agent_id, tool_id)
                .ok_or_else(|| invalid("cell out of range"))?;
            validate_cell(t, agent_id, tool_id, tool, cell).map_err(|e| {
                invalid(format!(
                    "cell ({}, {}): {}",
                    agent.name, tool.name, e.reason
                ))
            })?;
        }
    }
    Ok(())
}

/// Every period positive and at most [`crate::MAX_RETENTION_YEARS`], every tier known and
/// named once.
fn validate_retention(t: &TableData) -> Result<(), InvalidTable> {
    let r = &t.retention;
    let max_ms = i64::from(crate::MAX_RETENTION_YEARS) * 366 * 86_400_000;
    let period_ok = |p: crate::Period| {
        p.years <= crate::MAX_RETENTION_YEARS
            && p.ms >= 0
            && (p.years > 0 || p.ms > 0)
            && p.max_ms() <= max_ms
    };
    if let Some(p) = r.default {
        check(period_ok(p), || {
            format!("the default retention period {p} is out of range")
        })?;
    }
    let mut seen = HashSet::new();
    for clause in &r.tiers {
        check(clause.tier.index() < t.tiers.len(), || {
            "a retention clause names an unknown tier".into()
        })?;
        check(seen.insert(clause.tier), || {
            format!(
                "tier `{}` has two retention clauses",
                t.tiers[clause.tier.index()]
            )
        })?;
        check(period_ok(clause.period), || {
            format!("the retention period {} is out of range", clause.period)
        })?;
    }
    Ok(())
}

fn unique<'a>(what: &str, names: impl Iterator<Item = &'a str>) -> Result<(), InvalidTable> {
    let mut seen = HashSet::new();
    for name in names {
        if !seen.insert(name) {
            return Err(invalid(format!("{what} `{name}` appears twice")));
        }
    }
    Ok(())
}

fn validate_cell(
    t: &TableData,
    agent: AgentId,
    tool_id: ToolId,
    tool: &Tool,
    cell: &Cell,
) -> Result<(), InvalidTable> {
    let lists = [
        (RuleKind::Deny, &cell.deny),
        (RuleKind::Escalate, &cell.escalate),
        (RuleKind::Allow, &cell.allow),
    ];
    let mut granted_by_name = false;
    for (kind, entries) in lists {
        for entry in entries.iter() {
            let rule = t
                .rules
                .get(entry.rule.index())
                .ok_or_else(|| invalid(format!("entry names unknown rule #{}", entry.rule.0)))?;
            check(rule.agent == agent && rule.kind == kind, || {
                format!("rule `{}` is filed under the wrong agent or kind", rule.id)
            })?;
            match rule.target {
                Target::Tool(t) => {
                    check(t == tool_id, || {
                        format!("rule `{}` is filed under the wrong tool", rule.id)
                    })?;
                    granted_by_name |= kind != RuleKind::Deny;
                }
                Target::All => {}
            }
            validate_entry(t, tool_id, tool, entry)
                .map_err(|e| invalid(format!("rule `{}`: {}", rule.id, e.reason)))?;
        }
    }
    check(cell.granted == granted_by_name, || {
        "the granted flag disagrees with the cell's allow and escalate rules".into()
    })?;
    check(
        cell.granted || (cell.deny.is_empty() && cell.escalate.is_empty() && cell.allow.is_empty()),
        || "a cell that is not granted holds rules".into(),
    )?;
    let mut routes: Vec<RouteId> = Vec::new();
    for entry in &cell.escalate {
        if let Some(route) = t.rules.get(entry.rule.index()).and_then(|r| r.route)
            && !routes.contains(&route)
        {
            routes.push(route);
        }
    }
    check(routes.len() <= MAX_ROUTES, || {
        format!(
            "{} distinct escalation routes can match (at most {MAX_ROUTES})",
            routes.len()
        )
    })
}

fn validate_entry(
    t: &TableData,
    tool_id: ToolId,
    tool: &Tool,
    entry: &Entry,
) -> Result<(), InvalidTable> {
    let Some(cond) = &entry.condition else {
        return Ok(());
    };
    cond.check()
        .map_err(|e| invalid(format!("malformed condition: {e}")))?;
    let slot_type = |slot: Slot| -> Result<Option<ValueType>, InvalidTable> {
        if slot.is_confidence() {
            return Ok(None);
        }
        slot.param()
            .and_then(|i| tool.params.get(i))
            .map(|p| Some(p.ty))
            .ok_or_else(|| {
                invalid(format!(
                    "condition reads argument #{} but tool `{}` has {} parameters",
                    slot.0,
                    tool.name,
                    tool.params.len()
                ))
            })
    };
    for op in &cond.code {
        match *op {
            Op::Compare { slot, op, value } => {
                if slot_type(slot)? == Some(ValueType::Text) {
                    check(op.is_equality(), || {
                        format!("text compared with `{}`", op.symbol())
                    })?;
                    check(
                        usize::try_from(value).is_ok_and(|v| v < t.texts.len()),
                        || format!("text constant id {value} out of range"),
                    )?;
                }
            }
            Op::CompareSlots { left, op, right } => {
                let (l, r) = (slot_type(left)?, slot_type(right)?);
                if l == Some(ValueType::Text) || r == Some(ValueType::Text) {
                    check(op.is_equality() && l == r, || {
                        "text compared with a non-text value or by order".into()
                    })?;
                }
            }
            Op::Truthy { slot } => {
                slot_type(slot)?;
            }
            Op::Any { slot, bit } | Op::All { slot, bit } => {
                slot_type(slot)?;
                let tests = t
                    .text_tests
                    .iter()
                    .filter(|x| x.tool == tool_id && usize::from(x.param) == usize::from(slot.0))
                    .count();
                check(usize::from(bit) < tests, || {
                    format!(
                        "condition reads text test #{bit} of argument #{}, which has {tests}",
                        slot.0
                    )
                })?;
            }
            Op::Untrusted { slot } | Op::Present { slot } => {
                slot_type(slot)?;
            }
            Op::Const(_) | Op::Tainted | Op::Not | Op::And | Op::Or => {}
        }
    }
    Ok(())
}
