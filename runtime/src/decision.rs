//! What `decide` answers: an outcome, what decided it, and why, as small `Copy` data.
//! Human text is formatted lazily, by [`Decision::explain`], never by `decide`.

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::condition::Slot;
use crate::ids::{KeyId, ResourceId, RouteId, RuleIndex, SinkId};
use crate::table::TableData;

/// Escalation routes a single decision can name; a table whose cell could match more is
/// rejected when built or loaded.
pub const MAX_ROUTES: usize = 8;

/// Allow, escalate to a human, or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Outcome {
    Allow,
    Escalate,
    Deny,
}

impl Outcome {
    pub fn keyword(self) -> &'static str {
        match self {
            Outcome::Allow => "allow",
            Outcome::Escalate => "escalate",
            Outcome::Deny => "deny",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

/// The step of the fixed decision order that decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Stage {
    /// 1: the engine or the agent is suspended.
    Suspended,
    /// 2: the tool is not granted to the agent (or the agent or tool is unknown).
    NotGranted,
    /// 3: the flow check failed.
    Flow,
    /// 4: a limit is exhausted.
    Limit,
    /// 5: a rule matched.
    Rule,
    /// 5: no rule matched.
    NoRule,
    /// The table or request is malformed; the decision is a deny.
    Fault,
}

impl Stage {
    pub fn keyword(self) -> &'static str {
        match self {
            Stage::Suspended => "suspended",
            Stage::NotGranted => "not granted",
            Stage::Flow => "flow",
            Stage::Limit => "limit",
            Stage::Rule => "rule",
            Stage::NoRule => "no rule",
            Stage::Fault => "fault",
        }
    }
}

/// Why the decision came out as it did; [`fmt::Display`] gives a short static sentence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Why {
    EngineSuspended,
    AgentSuspended,
    UnknownAgent,
    UnknownTool,
    NotGranted,
    /// The request names a resource the tool does not declare it reads.
    ReadUndeclared {
        resource: ResourceId,
    },
    /// The resource's tier is above the agent's `max tier`.
    ReadAboveMaxTier {
        resource: ResourceId,
    },
    /// The read names no value for a key the resource is keyed by.
    ReadKeyMissing {
        resource: ResourceId,
        key: KeyId,
    },
    /// The read's key value differs from the one the session is bound to.
    ReadCrossesKey {
        resource: ResourceId,
        key: KeyId,
    },
    /// The request names a sink the tool does not declare it writes.
    WriteUndeclared {
        sink: SinkId,
    },
    /// The session's tier (after this call's reads) is above the sink's clearance.
    WriteDown {
        sink: SinkId,
    },
    /// The tool writes a keyed sink, and the request names no write, or names it without
    /// a value for this key.
    WriteKeyMissing {
        sink: SinkId,
        key: KeyId,
    },
    WriteCrossesKey {
        sink: SinkId,
        key: KeyId,
    },
    /// The agent's limit at this index is exhausted.
    LimitExhausted {
        limit: u8,
    },
    /// A rule matched: its condition held, or it has none.
    RuleMatched,
    /// A deny or escalate rule matched because its condition reads a value the request
    /// does not carry (fail safe).
    RuleMatchedOnMissingValue,
    NoRuleMatched,
    /// The table or request is malformed; never reached with a validated table and
    /// a request built for it.
    Fault,
}

impl Why {
    pub fn stage(self) -> Stage {
        match self {
            Why::EngineSuspended | Why::AgentSuspended => Stage::Suspended,
            Why::UnknownAgent | Why::UnknownTool | Why::NotGranted => Stage::NotGranted,
            Why::ReadUndeclared { .. }
            | Why::ReadAboveMaxTier { .. }
            | Why::ReadKeyMissing { .. }
            | Why::ReadCrossesKey { .. }
            | Why::WriteUndeclared { .. }
            | Why::WriteDown { .. }
            | Why::WriteKeyMissing { .. }
            | Why::WriteCrossesKey { .. } => Stage::Flow,
            Why::LimitExhausted { .. } => Stage::Limit,
            Why::RuleMatched | Why::RuleMatchedOnMissingValue => Stage::Rule,
            Why::NoRuleMatched => Stage::NoRule,
            Why::Fault => Stage::Fault,
        }
    }
}

impl fmt::Display for Why {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Why::EngineSuspended => "the engine is suspended",
            Why::AgentSuspended => "the agent is suspended",
            Why::UnknownAgent => "the agent is not in the policy",
            Why::UnknownTool => "the tool is not in the policy",
            Why::NotGranted => "no allow or escalate rule grants the tool to the agent",
            Why::ReadUndeclared { .. } => "the tool does not declare that it reads this resource",
            Why::ReadAboveMaxTier { .. } => "the resource is above the agent's max tier",
            Why::ReadKeyMissing { .. } => "the read does not say which isolation key value it is for",
            Why::ReadCrossesKey { .. } => {
                "the read is for another isolation key value than the session's"
            }
            Why::WriteUndeclared { .. } => "the tool does not declare that it writes this sink",
            Why::WriteDown { .. } => "the session's data is above the sink's clearance",
            Why::WriteKeyMissing { .. } => {
                "the write does not say which isolation key value it is for"
            }
            Why::WriteCrossesKey { .. } => {
                "the write is for another isolation key value than the session's"
            }
            Why::LimitExhausted { .. } => "a limit of the agent is exhausted",
            Why::RuleMatched => "the rule's condition holds",
            Why::RuleMatchedOnMissingValue => {
                "the rule's condition reads a value the request does not carry, which counts as a match for deny and escalate rules"
            }
            Why::NoRuleMatched => "no rule matched",
            Why::Fault => "internal fault: the table or request is malformed",
        })
    }
}

/// The escalation routes of a decision, in the order of the rules that named them,
/// without repeats. Fixed size, so a decision never allocates.
///
/// ```
/// use agentpolicy_runtime::{RouteId, Routes};
/// let routes = Routes::default();
/// assert!(routes.is_empty());
/// assert_eq!(routes.as_slice(), &[] as &[RouteId]);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Routes {
    ids: [RouteId; MAX_ROUTES],
    len: u8,
}

impl Routes {
    pub fn as_slice(&self) -> &[RouteId] {
        self.ids.get(..usize::from(self.len)).unwrap_or(&[])
    }

    pub fn len(&self) -> usize {
        usize::from(self.len)
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    pub fn contains(&self, route: RouteId) -> bool {
        self.as_slice().contains(&route)
    }

    /// Adds a route unless present; `false` when full.
    pub(crate) fn push(&mut self, route: RouteId) -> bool {
        if self.contains(route) {
            return true;
        }
        match self.ids.get_mut(usize::from(self.len)) {
            Some(slot) => {
                *slot = route;
                self.len += 1;
                true
            }
            None => false,
        }
    }
}

/// The answer to one request.
///
/// ```
/// use agentpolicy_runtime::{Decision, Outcome, Stage, Why};
/// let d = Decision::deny(Why::NotGranted);
/// assert_eq!(d.outcome, Outcome::Deny);
/// assert_eq!(d.stage(), Stage::NotGranted);
/// assert_eq!(d.rule, None);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Decision {
    pub outcome: Outcome,
    /// The rule that decided (the first matching one of the deciding kind), if a rule did.
    pub rule: Option<RuleIndex>,
    pub why: Why,
    /// The value whose absence made the deciding rule match.
    pub missing: Option<Slot>,
    /// For [`Outcome::Escalate`]: every matching escalate rule's route.
    pub routes: Routes,
}

impl Decision {
    /// A deny by a built-in check.
    pub fn deny(why: Why) -> Decision {
        Decision {
            outcome: Outcome::Deny,
            rule: None,
            why,
            missing: None,
            routes: Routes::default(),
        }
    }

    pub fn stage(&self) -> Stage {
        self.why.stage()
    }

    pub fn is_allow(&self) -> bool {
        self.outcome == Outcome::Allow
    }

    /// A displayable explanation with names and source positions from `table`.
    ///
    /// ```
    /// use agentpolicy_runtime::{Decision, TableData, Why};
    /// let text = Decision::deny(Why::NotGranted).explain(&TableData::default()).to_string();
    /// assert_eq!(text, "deny (not granted): no allow or escalate rule grants the tool to the agent");
    /// ```
    pub fn explain<'a>(&'a self, table: &'a TableData) -> Explanation<'a> {
        Explanation {
            decision: self,
            table,
        }
    }
}

/// A decision with the names to show it; see [`Decision::explain`].
#[derive(Debug, Clone, Copy)]
pub struct Explanation<'a> {
    decision: &'a Decision,
    table: &'a TableData,
}

impl fmt::Display for Explanation<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.decision;
        let t = self.table;
        write!(f, "{}", d.outcome)?;
        if d.outcome == Outcome::Escalate {
            f.write_str(" to ")?;
            for (i, route) in d.routes.as_slice().iter().enumerate() {
                if i > 0 {
                    f.write_str(", ")?;
                }
                f.write_str(name(t.routes.get(route.index()).map(|r| r.name.as_str())))?;
            }
        }
        match d.rule.and_then(|r| t.rules.get(r.index())) {
            Some(rule) => {
                let file = t
                    .files
                    .get(rule.span.file.index())
                    .map_or("?", String::as_str);
                write!(
                    f,
                    " by rule `{}` at {}:{}:{}",
                    rule.id, file, rule.span.line, rule.span.column
                )?;
            }
            None => write!(f, " ({})", d.stage().keyword())?,
        }
        write!(f, ": {}", d.why)?;
        if let Some(slot) = d.missing {
            write!(
                f,
                " (missing: {})",
                SlotName {
                    slot,
                    table: t,
                    decision: d
                }
            )?;
        }
        match d.why {
            Why::ReadUndeclared { resource } | Why::ReadAboveMaxTier { resource } => {
                write!(
                    f,
                    " (resource `{}`)",
                    name(t.resources.get(resource.index()).map(|r| r.name.as_str()))
                )?;
            }
            Why::ReadKeyMissing { resource, key } | Why::ReadCrossesKey { resource, key } => {
                write!(
                    f,
                    " (resource `{}`, key `{}`)",
                    name(t.resources.get(resource.index()).map(|r| r.name.as_str())),
                    name(t.keys.get(key.index()).map(String::as_str))
                )?;
            }
            Why::WriteUndeclared { sink } | Why::WriteDown { sink } => {
                write!(
                    f,
                    " (sink `{}`)",
                    name(t.sinks.get(sink.index()).map(|s| s.name.as_str()))
                )?;
            }
            Why::WriteKeyMissing { sink, key } | Why::WriteCrossesKey { sink, key } => {
                write!(
                    f,
                    " (sink `{}`, key `{}`)",
                    name(t.sinks.get(sink.index()).map(|s| s.name.as_str())),
                    name(t.keys.get(key.index()).map(String::as_str))
                )?;
            }
            Why::LimitExhausted { limit } => write!(f, " (limit #{})", limit + 1)?,
            _ => {}
        }
        Ok(())
    }
}

fn name(n: Option<&str>) -> &str {
    n.unwrap_or("?")
}

/// A slot shown by its parameter name, which needs the tool of the deciding rule's cell.
struct SlotName<'a> {
    slot: Slot,
    table: &'a TableData,
    decision: &'a Decision,
}

impl fmt::Display for SlotName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.slot.is_confidence() {
            return f.write_str("confidence");
        }
        let tool = self
            .decision
            .rule
            .and_then(|r| self.table.rules.get(r.index()))
            .and_then(|rule| match rule.target {
                crate::table::Target::Tool(tool) => self.table.tools.get(tool.index()),
                crate::table::Target::All => None,
            });
        let param = tool.and_then(|t| self.slot.param().and_then(|i| t.params.get(i)));
        match param {
            Some(p) => write!(f, "argument `{}`", p.name),
            None => write!(f, "argument #{}", self.slot.0),
        }
    }
}
