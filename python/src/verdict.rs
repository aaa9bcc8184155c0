//! What Python gets back from the engine: `Decision` (a verdict: the outcome to follow,
//! the reason, the rule, the explanation, the escalation to wait on), `Escalation` (a
//! call waiting for a human) and `Resolution` (how one ended). Plain data; the rule's
//! name and the explanation are formatted only when read, so `decide` stays cheap.

use std::sync::Arc;

use pyo3::prelude::*;

use agentpolicy_runtime::engine::{CallRef, Escalation, Reason, Resolved, SessionId, Verdict};
use agentpolicy_runtime::wire::missing_name;
use agentpolicy_runtime::{DecisionTable, Outcome};

/// `s3:2`: session 3, call 2 (how the engine names calls and escalations).
pub fn call_id(c: CallRef) -> String {
    c.to_string()
}

/// `s3:2` or `3:2` back to the call.
pub fn parse_call_id(text: &str) -> Option<CallRef> {
    let (session, n) = text.trim().split_once(':')?;
    let session = session.strip_prefix('s').unwrap_or(session).parse().ok()?;
    Some(CallRef {
        session: SessionId(session),
        n: n.parse().ok()?,
    })
}

/// The engine's answer to one call.
///
/// `outcome` is what the caller must do: `"allow"` (run the tool), `"escalate"` (wait
/// for a human: `escalation` names the pending escalation) or `"deny"` (do not run it).
/// In shadow mode `outcome` is `"allow"` and `policy_outcome` holds what the policy
/// would have decided.
#[pyclass(name = "Decision", module = "agentpolicy", frozen)]
#[derive(Debug)]
pub struct PyDecision {
    pub verdict: Verdict,
    /// The table in force when the call was decided (its hash may differ from the
    /// verdict's after a concurrent swap; then no rule is named).
    pub table: Arc<DecisionTable>,
    pub tool: String,
    pub agent: String,
}

impl PyDecision {
    fn same_table(&self) -> bool {
        self.table.source_hash() == self.verdict.table
    }
}

#[pymethods]
impl PyDecision {
    /// `"allow"`, `"escalate"` or `"deny"`: what the caller must do.
    #[getter]
    fn outcome(&self) -> &'static str {
        self.verdict.outcome.keyword()
    }

    /// The policy's own outcome; differs from `outcome` only in shadow mode.
    #[getter]
    fn policy_outcome(&self) -> &'static str {
        self.verdict.decision.outcome.keyword()
    }

    #[getter]
    fn allowed(&self) -> bool {
        self.verdict.outcome == Outcome::Allow
    }

    #[getter]
    fn denied(&self) -> bool {
        self.verdict.outcome == Outcome::Deny
    }

    #[getter]
    fn escalated(&self) -> bool {
        self.verdict.outcome == Outcome::Escalate
    }

    /// Why: `rule`, `no_rule`, `flow`, `limit`, `suspended`, `not_granted`, `fault`,
    /// `request`, `session` or `internal`.
    #[getter]
    fn reason(&self) -> &'static str {
        self.verdict.reason_code()
    }

    /// The id of the rule that decided (`"billing/escalate/transfer_from_trust#1"`), or
    /// `None` when a built-in check decided.
    #[getter]
    fn rule(&self) -> Option<String> {
        if !self.same_table() || self.verdict.reason != Reason::Policy {
            return None;
        }
        let rule = self.table.rule(self.verdict.decision.rule?)?;
        Some(rule.id.clone())
    }

    /// Where the deciding rule is written: `(file, line, column)`, 1-based.
    #[getter]
    fn rule_location(&self) -> Option<(String, u32, u32)> {
        if !self.same_table() || self.verdict.reason != Reason::Policy {
            return None;
        }
        let rule = self.table.rule(self.verdict.decision.rule?)?;
        let file = self.table.data().files.get(rule.span.file.index())?;
        Some((file.clone(), rule.span.line, rule.span.column))
    }

    /// The routes a human is asked on (escalations), in declaration order.
    #[getter]
    fn routes(&self) -> Vec<String> {
        if !self.same_table() {
            return Vec::new();
        }
        let data = self.table.data();
        self.verdict
            .decision
            .routes
            .as_slice()
            .iter()
            .filter_map(|r| data.routes.get(r.index()).map(|r| r.name.clone()))
            .collect()
    }

    /// The value whose absence made the deciding rule match (`"confidence"`, an
    /// argument's name), or `None`.
    #[getter]
    fn missing(&self) -> Option<String> {
        let slot = self.verdict.decision.missing?;
        Some(missing_name(&self.table, &self.tool, slot))
    }

    /// One sentence: the outcome, the rule or check, where it is written, and why.
    #[getter]
    fn explanation(&self) -> String {
        match &self.verdict.reason {
            Reason::Policy if self.same_table() => {
                self.verdict.decision.explain(self.table.data()).to_string()
            }
            Reason::Policy => format!(
                "{} by the table {}",
                self.verdict.decision.outcome.keyword(),
                self.verdict.table
            ),
            Reason::Request(e) => format!("deny (request): {e}"),
            Reason::Session(e) => format!("deny (session): {e}"),
            Reason::Internal(e) => format!("deny (internal): {e}"),
        }
    }

    /// The pending escalation's id (`"s3:2"`) when `outcome` is `"escalate"`.
    #[getter]
    fn escalation(&self) -> Option<String> {
        self.verdict.escalation.map(call_id)
    }

    /// The call's id in its session (`"s3:2"`), for `report` and `record_human`.
    #[getter]
    fn call(&self) -> Option<String> {
        self.verdict.call.map(call_id)
    }

    #[getter]
    fn shadow(&self) -> bool {
        self.verdict.shadow
    }

    #[getter]
    fn tool(&self) -> &str {
        &self.tool
    }

    #[getter]
    fn agent(&self) -> &str {
        &self.agent
    }

    /// The content hash of the policy that decided (`"sha256:..."`).
    #[getter]
    fn table_hash(&self) -> String {
        self.verdict.table.to_string()
    }

    /// The sequence number of the call's audit record, once durable; `None` without an
    /// audit log.
    #[getter]
    fn audit_seq(&self) -> Option<u64> {
        self.verdict.audit.map(|a| a.seq)
    }

    fn __bool__(&self) -> bool {
        self.allowed()
    }

    fn __repr__(&self) -> String {
        let mut s = format!(
            "<Decision {} ({}) {}",
            self.outcome(),
            self.reason(),
            self.tool
        );
        if let Some(rule) = self.rule() {
            s.push_str(&format!(" by {rule}"));
        }
        if let Some(e) = self.escalation() {
            s.push_str(&format!(" escalation={e}"));
        }
        if self.verdict.shadow {
            s.push_str(&format!(" shadow policy_outcome={}", self.policy_outcome()));
        }
        s.push('>');
        s
    }

    fn __str__(&self) -> String {
        self.explanation()
    }
}

/// A call waiting for a human.
#[pyclass(
    name = "Escalation",
    module = "agentpolicy",
    frozen,
    get_all,
    skip_from_py_object
)]
#[derive(Debug, Clone)]
pub struct PyEscalation {
    /// `"s3:2"`: pass it to `Engine.approve`, `reject` or `wait`.
    pub id: String,
    /// The session's name.
    pub session: String,
    pub agent: String,
    pub tool: String,
    /// The first matching escalate rule's id.
    pub rule: Option<String>,
    pub routes: Vec<String>,
    /// The routes' `notify` targets (`"queue:ops-leads"`).
    pub notify: Vec<String>,
    /// Engine-clock milliseconds since the Unix epoch.
    pub raised_ms: i64,
    /// When it times out (the earliest route timeout), or `None`.
    pub deadline_ms: Option<i64>,
    /// What a timeout decides: `"allow"` or `"deny"`.
    pub timeout_outcome: &'static str,
}

impl PyEscalation {
    pub fn of(e: &Escalation) -> PyEscalation {
        PyEscalation {
            id: call_id(e.id),
            session: e.session.clone(),
            agent: e.agent.clone(),
            tool: e.tool.clone(),
            rule: e.rule.clone(),
            routes: e.routes.clone(),
            notify: e.notify.clone(),
            raised_ms: e.raised_ms,
            deadline_ms: e.deadline_ms,
            timeout_outcome: e.timeout_outcome.keyword(),
        }
    }
}

#[pymethods]
impl PyEscalation {
    fn __repr__(&self) -> String {
        format!(
            "<Escalation {} {} {} to {}>",
            self.id,
            self.agent,
            self.tool,
            self.routes.join(", ")
        )
    }
}

/// How an escalation ended: approved, rejected or timed out, and what the caller may
/// now do (`outcome` `"allow"` or `"deny"`: an approval re-checks the kill switch and the
/// flow, so it can still deny).
#[pyclass(
    name = "Resolution",
    module = "agentpolicy",
    frozen,
    get_all,
    skip_from_py_object
)]
#[derive(Debug, Clone)]
pub struct PyResolution {
    pub escalation: PyEscalation,
    /// `"approve"`, `"reject"` or `"timeout"`.
    pub resolution: &'static str,
    /// `"allow"` or `"deny"`.
    pub outcome: &'static str,
    pub why: String,
}

impl PyResolution {
    pub fn of(r: &Resolved) -> PyResolution {
        PyResolution {
            escalation: PyEscalation::of(&r.escalation),
            resolution: r.resolution.keyword(),
            outcome: r.outcome.keyword(),
            why: r.why.clone(),
        }
    }
}

#[pymethods]
impl PyResolution {
    #[getter]
    fn allowed(&self) -> bool {
        self.outcome == "allow"
    }

    fn __repr__(&self) -> String {
        format!(
            "<Resolution {} {} -> {}: {}>",
            self.escalation.id, self.resolution, self.outcome, self.why
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn call_ids_read_back() {
        let c = CallRef {
            session: SessionId(3),
            n: 2,
        };
        assert_eq!(call_id(c), "s3:2");
        assert_eq!(parse_call_id("s3:2"), Some(c));
        assert_eq!(parse_call_id(" 3:2 "), Some(c));
        assert_eq!(parse_call_id("s3"), None);
        assert_eq!(parse_call_id("sx:2"), None);
        assert_eq!(parse_call_id("s3:-1"), None);
    }
}
