//! What the agent loop hands the engine ([`Call`], [`CallResult`]) and what it gets back
//! ([`Verdict`]). Calls name things by string and borrow everything, so building one
//! allocates nothing; the engine resolves names against the table in force.

use std::fmt;

use crate::audit::Ack;
use crate::builder::{ArgValue, RequestError};
use crate::decision::{Decision, Outcome};
use crate::hash::ContentHash;

/// A session, engine-wide; shown as `s` and its number unless the session was named.
///
/// ```
/// use agentpolicy_runtime::engine::{CallRef, SessionId};
/// assert_eq!(SessionId(7).to_string(), "s7");
/// assert_eq!(CallRef { session: SessionId(7), n: 3 }.to_string(), "s7:3");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SessionId(pub u64);

impl fmt::Display for SessionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "s{}", self.0)
    }
}

/// One call in a session: the session and the call's number in it (from 1). Reports
/// and escalations refer to calls by this.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallRef {
    pub session: SessionId,
    pub n: u64,
}

impl fmt::Display for CallRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.session, self.n)
    }
}

/// The data a call reads from or writes to, with its isolation-key values
/// (`[("matter", "M-1")]`).
///
/// ```
/// use agentpolicy_runtime::engine::{Call, Labels};
/// let keys = [("matter", "M-1")];
/// let call = Call::new("search_docs").reads("document", &keys);
/// assert_eq!(call.read, Some(Labels { target: "document", keys: &keys }));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Labels<'a> {
    pub target: &'a str,
    pub keys: &'a [(&'a str, &'a str)],
}

/// A tool call to decide, by name.
///
/// ```
/// use agentpolicy_runtime::ArgValue;
/// use agentpolicy_runtime::engine::Call;
/// let args = [("amount", ArgValue::Money(25_000_00))];
/// let call = Call::new("wire_funds").args(&args).confidence(600_000);
/// assert_eq!(call.tool, "wire_funds");
/// assert_eq!(call.confidence, Some(600_000));
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Call<'a> {
    pub tool: &'a str,
    pub args: &'a [(&'a str, ArgValue<'a>)],
    /// In millionths (0.85 is 850_000).
    pub confidence: Option<i64>,
    /// The resource read; `None` means every resource the tool declares, for the tier.
    pub read: Option<Labels<'a>>,
    /// The sink written; `None` means every sink the tool declares, for the tier.
    pub write: Option<Labels<'a>>,
    /// Arguments the agent framework says came from untrusted content.
    pub untrusted: &'a [&'a str],
    /// The agent framework's reasoning snapshot for this call, for the audit record
    /// only (`decide` never reads it): redacted like an argument named `reasoning`
    /// and cut to [`super::MAX_REASONING_BYTES`].
    pub reasoning: Option<&'a str>,
}

impl<'a> Call<'a> {
    pub fn new(tool: &'a str) -> Call<'a> {
        Call {
            tool,
            args: &[],
            confidence: None,
            read: None,
            write: None,
            untrusted: &[],
            reasoning: None,
        }
    }

    /// Names the arguments that came from untrusted content (`ARG from untrusted`).
    pub fn untrusted(mut self, args: &'a [&'a str]) -> Call<'a> {
        self.untrusted = args;
        self
    }

    pub fn reasoning(mut self, text: &'a str) -> Call<'a> {
        self.reasoning = Some(text);
        self
    }

    pub fn args(mut self, args: &'a [(&'a str, ArgValue<'a>)]) -> Call<'a> {
        self.args = args;
        self
    }

    pub fn confidence(mut self, millionths: i64) -> Call<'a> {
        self.confidence = Some(millionths);
        self
    }

    pub fn reads(mut self, resource: &'a str, keys: &'a [(&'a str, &'a str)]) -> Call<'a> {
        self.read = Some(Labels {
            target: resource,
            keys,
        });
        self
    }

    pub fn writes(mut self, sink: &'a str, keys: &'a [(&'a str, &'a str)]) -> Call<'a> {
        self.write = Some(Labels { target: sink, keys });
        self
    }
}

/// What the agent loop reports after running a call.
///
/// ```
/// use agentpolicy_runtime::engine::CallResult;
/// let r = CallResult::ok(1_200, 35);
/// assert!(r.ok);
/// assert!(!CallResult::error(0, 10).ok);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallResult {
    pub ok: bool,
    /// Tokens the call cost (model tokens spent for it, or its output's size).
    pub tokens: u64,
    pub latency_ms: u64,
}

impl CallResult {
    pub fn ok(tokens: u64, latency_ms: u64) -> CallResult {
        CallResult {
            ok: true,
            tokens,
            latency_ms,
        }
    }

    pub fn error(tokens: u64, latency_ms: u64) -> CallResult {
        CallResult {
            ok: false,
            tokens,
            latency_ms,
        }
    }
}

/// A fault inside the engine. Every one of them is a Deny with reason `internal`.
///
/// ```
/// use agentpolicy_runtime::engine::Internal;
/// assert_eq!(Internal::PoisonedLock.to_string(), "engine state was poisoned by a panic");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Internal {
    /// A thread panicked while holding engine state.
    PoisonedLock,
    /// The audit log could not take the record.
    Audit(String),
    /// The session's state cannot be carried over to the table in force (its agent,
    /// tier or an isolation key is gone).
    SessionUnmappable(String),
    /// The shared state store failed or answered too late ([`super::StateStore`]).
    State(String),
}

impl fmt::Display for Internal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Internal::PoisonedLock => f.write_str("engine state was poisoned by a panic"),
            Internal::Audit(e) => write!(f, "the audit log failed: {e}"),
            Internal::State(e) => write!(f, "the shared state store is unavailable: {e}"),
            Internal::SessionUnmappable(e) => {
                write!(f, "the session does not fit the table in force: {e}")
            }
        }
    }
}

/// Why a verdict came out as it did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The table decided; [`Verdict::decision`] says how.
    Policy,
    /// The call does not fit the table (unknown parameter, wrong type, unknown
    /// resource): denied.
    Request(RequestError),
    /// The session is unknown or closed: denied.
    Session(String),
    /// A fault inside the engine: denied.
    Internal(Internal),
}

/// The engine's answer to a call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// What the caller must do: run the call (Allow), wait for a human (Escalate), or
    /// not run it (Deny).
    pub outcome: Outcome,
    /// The table's decision; in shadow mode the would-be outcome the caller was not
    /// held to. For non-policy reasons a deny with [`crate::Why::Fault`].
    pub decision: Decision,
    pub reason: Reason,
    /// The agent runs in shadow mode: `outcome` is Allow whatever `decision` says.
    pub shadow: bool,
    /// The hash of the table that decided.
    pub table: ContentHash,
    /// The call, for [`super::Engine::report`]; `None` when the session is unknown.
    pub call: Option<CallRef>,
    /// The pending escalation, when `outcome` is Escalate.
    pub escalation: Option<CallRef>,
    /// The call's audit record, durable as configured.
    pub audit: Option<Ack>,
}

impl Verdict {
    pub fn is_allow(&self) -> bool {
        self.outcome == Outcome::Allow
    }

    /// A short code for the reason: `rule`, `no_rule`, `flow`, `limit`, `suspended`,
    /// `not_granted`, `fault`, `request`, `session` or `internal`.
    ///
    /// ```
    /// use agentpolicy_runtime::engine::{Internal, Reason, Verdict};
    /// use agentpolicy_runtime::ContentHash;
    /// let v = Verdict::deny(Reason::Internal(Internal::PoisonedLock), ContentHash::default(), None);
    /// assert_eq!(v.reason_code(), "internal");
    /// assert!(!v.is_allow());
    /// ```
    pub fn reason_code(&self) -> &'static str {
        match &self.reason {
            Reason::Policy => stage_code(&self.decision),
            Reason::Request(_) => "request",
            Reason::Session(_) => "session",
            Reason::Internal(_) => "internal",
        }
    }

    /// A deny for a reason outside the policy.
    pub fn deny(reason: Reason, table: ContentHash, call: Option<CallRef>) -> Verdict {
        Verdict {
            outcome: Outcome::Deny,
            decision: Decision::deny(crate::Why::Fault),
            reason,
            shadow: false,
            table,
            call,
            escalation: None,
            audit: None,
        }
    }
}

/// The reason code of a table decision.
pub(crate) fn stage_code(decision: &Decision) -> &'static str {
    use crate::decision::Stage;
    match decision.stage() {
        Stage::Suspended => "suspended",
        Stage::NotGranted => "not_granted",
        Stage::Flow => "flow",
        Stage::Limit => "limit",
        Stage::Rule => "rule",
        Stage::NoRule => "no_rule",
        Stage::Fault => "fault",
    }
}
