//! The boundary to a shared state store, for several engines (service replicas) that
//! act as one: [`StateStore`] and the session snapshot it keeps.
//!
//! Without a store (the default) nothing here runs: sessions live in the engine's
//! shards only. With one, the store is the truth for each session's state (label,
//! bound keys, taint, task and session counters, sliding windows, call numbers,
//! closed) and for the kill switch; the shards hold a copy. Each step that changes a
//! session loads its snapshot and version, runs the engine's usual step on it, and
//! commits only if the version is still the one loaded (compare-and-set); on a
//! conflict the step is run again on the newer state. So a limit of N calls allows N
//! across every engine sharing the store, whatever the interleaving.
//!
//! The runtime does no network IO: the store is a trait, implemented outside (the
//! server's Redis store). A store that fails or answers too late makes the step fail
//! closed: a decision is a Deny with [`Internal::State`].

use std::fmt;

use serde::{Deserialize, Serialize};

use super::call::Internal;
use super::session::Session;
use super::usage::Usage;
use crate::decision_table::DecisionTable;
use crate::table::LimitUnit;

/// Why the store could not do a step: unreachable, too slow, or an answer that makes
/// no sense. Every one fails the step closed.
///
/// ```
/// use agentpolicy_runtime::engine::StateError;
/// let e = StateError("connection refused".into());
/// assert_eq!(e.to_string(), "connection refused");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateError(pub String);

impl fmt::Display for StateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for StateError {}

impl From<StateError> for Internal {
    fn from(e: StateError) -> Self {
        Internal::State(e.0)
    }
}

/// The kill switch as the store holds it, shared by every engine.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SharedControls {
    pub kill_all: bool,
    /// Agents suspended by the kill switch, by name.
    pub killed: Vec<String>,
    /// The hash of the table in force (the table the engine that started or swapped
    /// last runs); an engine on another table refuses to decide. `None`: not set yet.
    pub table: Option<String>,
}

/// What a store tells its engines as it happens (Redis: pub/sub); engines also poll on
/// their timer, so a store without events, or an event lost, only delays.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SharedEvent {
    /// A pending escalation (`s3:2`) was claimed for a resolution: the engine that
    /// holds its call applies it.
    Claimed(String),
    /// An engine applied an escalation's resolution (`s3:2`).
    Finished(String),
    /// The kill switch changed.
    Kill,
    /// An engine started on, or swapped to, the table with this hash.
    Table(String),
}

/// Called with each event (`None`: nothing happened for a while); returning `false`
/// stops the delivery.
pub type OnEvent = Box<dyn Fn(Option<SharedEvent>) -> bool + Send>;

/// A session's stored state with the version it was read at (versions start at 1; a
/// session that does not exist is version 0).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Stored {
    pub version: u64,
    /// The snapshot's bytes (JSON); opaque to the store.
    pub bytes: Vec<u8>,
}

/// A shared store of the engine's state. Implementations must make
/// [`StateStore::commit`] atomic (compare the version and write in one step) and answer
/// within a bounded time, returning an error rather than waiting on.
pub trait StateStore: Send + Sync + fmt::Debug {
    /// A new session number, never handed out before by any engine on this store.
    fn next_session(&self) -> Result<u64, StateError>;
    /// The session's snapshot (`None`: no such session, or it expired) and the kill
    /// switch, read together.
    fn load(&self, session: u64) -> Result<(Option<Stored>, SharedControls), StateError>;
    /// Writes the session's snapshot if its version is still `version` (0: the session
    /// must not exist yet). `Ok(false)`: another engine wrote first; nothing written.
    fn commit(&self, session: u64, version: u64, bytes: &[u8]) -> Result<bool, StateError>;
    /// The kill switch alone (for the background refresh and status).
    fn controls(&self) -> Result<SharedControls, StateError>;
    /// Sets the engine-wide kill switch (`agent` `None`) or one agent's.
    fn set_kill(&self, agent: Option<&str>, on: bool) -> Result<(), StateError>;
    /// `Ok` when the store answers now; for readiness probes.
    fn ping(&self) -> Result<(), StateError>;
    /// Sets the table in force to `hash` and tells every engine.
    fn set_table(&self, hash: &str) -> Result<(), StateError>;

    /// Stores a pending escalation (`id` like `s3:2`) so every engine lists it.
    fn put_escalation(&self, id: &str, bytes: &[u8]) -> Result<(), StateError>;
    /// Withdraws a pending escalation whose call could not be audited.
    fn drop_escalation(&self, id: &str) -> Result<(), StateError>;
    /// Every pending escalation not yet claimed.
    fn escalations(&self) -> Result<Vec<Vec<u8>>, StateError>;
    /// Claims a pending escalation for a resolution, atomically: the first claim takes
    /// it off the list (and tells every engine); the escalation's bytes, or `None`
    /// when it is not pending (never raised, claimed or resolved).
    fn claim_escalation(&self, id: &str, claim: &[u8]) -> Result<Option<Vec<u8>>, StateError>;
    /// The claims on these escalations, in the same order (`None`: no claim).
    fn claims(&self, ids: &[String]) -> Result<Vec<Option<Vec<u8>>>, StateError>;
    /// Records what the engine holding the call decided on a claim, drops the claim,
    /// and tells every engine.
    fn finish_escalation(&self, id: &str, result: &[u8]) -> Result<(), StateError>;
    /// What the engine holding the call decided, once it has.
    fn escalation_result(&self, id: &str) -> Result<Option<Vec<u8>>, StateError>;
    /// Starts delivering the store's events to `on` (on a thread of the store's own)
    /// until it returns `false`. `Ok(false)`: this store has no events; the engines'
    /// timer is all there is.
    fn watch(&self, on: OnEvent) -> Result<bool, StateError>;
}

/// How many times a step is run again after losing a compare-and-set before it fails
/// closed: enough for heavy contention on one session, bounded so no call waits on.
pub(crate) const MAX_ATTEMPTS: usize = 64;

/// A session as stored: by names, so it fits any engine's table that has the names.
#[derive(Debug, Serialize, Deserialize)]
struct Snapshot {
    name: String,
    agent: String,
    tier: Option<String>,
    tainted: bool,
    bound: Vec<(String, String)>,
    task: u64,
    calls: u64,
    closed: bool,
    context: Option<String>,
    usage: UsageSnapshot,
}

/// One sliding window as stored: its unit, its span in ms, and its events as (ms,
/// amount), oldest first.
pub(crate) type WindowSnapshot = (LimitUnit, i64, Vec<(i64, u64)>);

/// Usage counters, with every window's events.
#[derive(Debug, Serialize, Deserialize)]
pub(crate) struct UsageSnapshot {
    pub task_calls: u64,
    pub task_tokens: u64,
    pub session_calls: u64,
    pub session_tokens: u64,
    pub windows: Vec<WindowSnapshot>,
}

/// A session's snapshot bytes.
pub(crate) fn encode(session: &Session, table: &DecisionTable) -> Result<Vec<u8>, Internal> {
    let data = table.data();
    let snapshot = Snapshot {
        name: session.name.clone(),
        agent: session.agent_name.clone(),
        tier: session
            .tier
            .and_then(|t| data.tiers.get(t.index()))
            .cloned(),
        tainted: session.tainted,
        bound: session
            .bound
            .iter()
            .enumerate()
            .filter_map(|(i, v)| Some((data.keys.get(i)?.clone(), v.as_deref()?.to_owned())))
            .collect(),
        task: session.task,
        calls: session.calls,
        closed: session.closed,
        context: session.context.clone(),
        usage: session.usage.snapshot(),
    };
    serde_json::to_vec(&snapshot)
        .map_err(|e| Internal::State(format!("cannot encode the session's state: {e}")))
}

/// The session a snapshot describes, in the ids of `table`. A name the table lacks
/// (another engine runs another policy) leaves the session broken: every call denied.
pub(crate) fn decode(bytes: &[u8], table: &DecisionTable) -> Result<Session, Internal> {
    let s: Snapshot = serde_json::from_slice(bytes)
        .map_err(|e| Internal::State(format!("the stored session state is not readable: {e}")))?;
    let data = table.data();
    let Some(agent) = table.agent_id(&s.agent) else {
        let mut session = Session::new(s.name, crate::AgentId(0), data);
        session.agent_name = s.agent.clone();
        session.closed = s.closed;
        session.calls = s.calls;
        session.broken = Some(format!("agent `{}` is not in this table", s.agent));
        return Ok(session);
    };
    let mut session = Session::new(s.name, agent, data);
    session.tainted = s.tainted;
    session.task = s.task;
    session.calls = s.calls;
    session.closed = s.closed;
    session.context = s.context;
    let mut broken = None;
    if let Some(tier) = &s.tier {
        match data.tiers.iter().position(|t| t == tier) {
            Some(rank) => session.tier = Some(crate::TierId(rank as u32)),
            None => broken = Some(format!("tier `{tier}` is not in this table")),
        }
    }
    for (key, value) in s.bound {
        match table
            .key_id(&key)
            .and_then(|k| session.bound.get_mut(k.index()))
        {
            Some(slot) => *slot = Some(value.into()),
            None => broken = Some(format!("isolation key `{key}` is not in this table")),
        }
    }
    let limits = data
        .agents
        .get(agent.index())
        .map(|a| a.limits.as_slice())
        .unwrap_or_default();
    session.usage = Usage::from_snapshot(s.usage, limits);
    session.broken = broken;
    Ok(session)
}
