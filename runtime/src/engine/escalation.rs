//! Escalations: a call the policy sends to a human waits here until it is approved,
//! rejected, or times out with its route's timeout outcome. Each resolution is audited.
//! Approval is not a blank cheque: the kill switch, breakers and the flow check are
//! applied again at the moment of approval, since the session may have read other data
//! while the human was deciding.

use super::call::{Call, CallRef, Labels};
use crate::decision::{Decision, Outcome};
use crate::decision_table::DecisionTable;
use crate::hash::ContentHash;
use crate::table::TimeoutOutcome;

/// A call waiting for a human.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Escalation {
    pub id: CallRef,
    /// The session's name.
    pub session: String,
    pub agent: String,
    pub tool: String,
    /// The first matching escalate rule.
    pub rule: Option<String>,
    /// Every matching escalate rule's route, in declaration order.
    pub routes: Vec<String>,
    /// The routes' `notify` targets.
    pub notify: Vec<String>,
    pub raised_ms: i64,
    /// The earliest of the routes' timeouts; `None` when no route has one.
    pub deadline_ms: Option<i64>,
    /// What a timeout decides: Allow only when every route with a timeout says allow.
    pub timeout_outcome: Outcome,
    pub table: ContentHash,
}

/// How a human (or the clock) answered.
///
/// ```
/// use agentpolicy_runtime::engine::Resolution;
/// assert_eq!(Resolution::TimedOut.keyword(), "timeout");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Resolution {
    Approve,
    Reject,
    TimedOut,
}

impl Resolution {
    pub fn keyword(self) -> &'static str {
        match self {
            Resolution::Approve => "approve",
            Resolution::Reject => "reject",
            Resolution::TimedOut => "timeout",
        }
    }
}

/// A resolved escalation: what the caller may now do, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Resolved {
    pub escalation: Escalation,
    pub resolution: Resolution,
    /// Allow or Deny.
    pub outcome: Outcome,
    pub why: String,
    pub audit: Option<crate::audit::Ack>,
}

/// Labels kept past the call that named them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct OwnedLabels {
    pub target: String,
    pub keys: Vec<(String, String)>,
}

impl OwnedLabels {
    fn of(labels: &Labels<'_>) -> OwnedLabels {
        OwnedLabels {
            target: labels.target.to_owned(),
            keys: labels
                .keys
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
        }
    }

    pub(crate) fn pairs(&self) -> Vec<(&str, &str)> {
        self.keys
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect()
    }
}

/// Lends `f` a call of `tool` with the labels kept for it (not its arguments, which are
/// not kept): what re-checking an escalation and restoring a call from the log need.
pub(crate) fn with_call<R>(
    tool: &str,
    read: Option<&OwnedLabels>,
    write: Option<&OwnedLabels>,
    f: impl FnOnce(&Call<'_>) -> R,
) -> R {
    let read_keys = read.map(OwnedLabels::pairs);
    let write_keys = write.map(OwnedLabels::pairs);
    let mut call = Call::new(tool);
    if let (Some(l), Some(keys)) = (read, &read_keys) {
        call.read = Some(Labels {
            target: &l.target,
            keys,
        });
    }
    if let (Some(l), Some(keys)) = (write, &write_keys) {
        call.write = Some(Labels {
            target: &l.target,
            keys,
        });
    }
    f(&call)
}

/// A pending escalation and what re-checking it at approval needs.
#[derive(Debug, Clone)]
pub(crate) struct Pending {
    pub escalation: Escalation,
    pub read: Option<OwnedLabels>,
    pub write: Option<OwnedLabels>,
}

impl Pending {
    pub(crate) fn new(escalation: Escalation, call: &Call<'_>) -> Pending {
        Pending {
            escalation,
            read: call.read.as_ref().map(OwnedLabels::of),
            write: call.write.as_ref().map(OwnedLabels::of),
        }
    }
}

/// The escalation a decision raises.
pub(crate) struct Raise<'a> {
    pub table: &'a DecisionTable,
    pub hash: ContentHash,
    pub id: CallRef,
    pub session: &'a str,
    pub agent: &'a str,
    pub tool: &'a str,
    pub decision: &'a Decision,
    pub now: i64,
}

/// What an escalation to `routes` becomes when nobody answers: every route is notified,
/// the earliest timeout of any route ends it, and the call then runs (Allow) only when
/// every route that has a timeout says `then allow`; otherwise it is denied. `None` when
/// no route has a timeout (the escalation waits for a person). The engine resolves
/// timeouts with this, and the verifier asks it which escalations can end in an allow
/// without a human.
///
/// ```
/// use agentpolicy_runtime::engine::unattended;
/// use agentpolicy_runtime::{Outcome, Route, RouteId, TableData, TimeoutOutcome};
///
/// let mut data = TableData::default();
/// data.routes.push(Route {
///     name: "owner_phone".into(),
///     notify: Some("push:owner".into()),
///     timeout_ms: Some(600_000),
///     timeout_outcome: Some(TimeoutOutcome::Allow),
/// });
/// data.routes.push(Route {
///     name: "treasury".into(),
///     notify: None,
///     timeout_ms: Some(3_600_000),
///     timeout_outcome: Some(TimeoutOutcome::Deny),
/// });
/// let alone = unattended(&data, &[RouteId(0)]).unwrap();
/// assert_eq!((alone.after_ms, alone.outcome), (600_000, Outcome::Allow));
/// // One route that denies on timeout is enough to deny, at the earliest deadline.
/// let both = unattended(&data, &[RouteId(0), RouteId(1)]).unwrap();
/// assert_eq!((both.after_ms, both.outcome), (600_000, Outcome::Deny));
/// ```
pub fn unattended(
    data: &crate::table::TableData,
    routes: &[crate::ids::RouteId],
) -> Option<Timeout> {
    let routes: Vec<(crate::ids::RouteId, &crate::table::Route)> = routes
        .iter()
        .filter_map(|id| data.routes.get(id.index()).map(|r| (*id, r)))
        .collect();
    let (first, after_ms) = routes
        .iter()
        .filter_map(|(id, route)| route.timeout_ms.map(|t| (*id, t)))
        .min_by_key(|(_, t)| *t)?;
    let all_allow = routes
        .iter()
        .filter(|(_, route)| route.timeout_ms.is_some())
        .all(|(_, route)| route.timeout_outcome == Some(TimeoutOutcome::Allow));
    Some(Timeout {
        after_ms,
        outcome: if all_allow {
            Outcome::Allow
        } else {
            Outcome::Deny
        },
        first,
    })
}

/// How an unanswered escalation ends: see [`unattended`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout {
    /// The earliest timeout of the routes, in milliseconds.
    pub after_ms: i64,
    /// Allow or Deny.
    pub outcome: Outcome,
    /// The route whose timeout comes first.
    pub first: crate::ids::RouteId,
}

pub(crate) fn raise(r: &Raise<'_>) -> Escalation {
    let data = r.table.data();
    let routes: Vec<&crate::table::Route> = r
        .decision
        .routes
        .as_slice()
        .iter()
        .filter_map(|id| data.routes.get(id.index()))
        .collect();
    let timeout = unattended(data, r.decision.routes.as_slice());
    Escalation {
        id: r.id,
        session: r.session.to_owned(),
        agent: r.agent.to_owned(),
        tool: r.tool.to_owned(),
        rule: r
            .decision
            .rule
            .and_then(|rule| r.table.rule(rule))
            .map(|rule| rule.id.clone()),
        routes: routes.iter().map(|route| route.name.clone()).collect(),
        notify: routes
            .iter()
            .filter_map(|route| route.notify.clone())
            .collect(),
        raised_ms: r.now,
        deadline_ms: timeout.map(|t| r.now.saturating_add(t.after_ms)),
        timeout_outcome: timeout.map_or(Outcome::Deny, |t| t.outcome),
        table: r.hash,
    }
}

/// The audit form of an escalation.
pub(crate) fn info(e: &Escalation) -> crate::audit::EscalationInfo {
    crate::audit::EscalationInfo {
        id: e.id.to_string(),
        routes: e.routes.clone(),
        notify: e.notify.clone(),
        deadline_ms: e.deadline_ms,
        timeout_outcome: e.timeout_outcome,
    }
}
