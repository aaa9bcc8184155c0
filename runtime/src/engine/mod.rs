//! The engine around [`crate::decide`]: sessions and their flow labels, limits, circuit
//! breakers, the kill switch, shadow mode, escalations and the audit log, for many
//! threads at once. Built from a [`DecisionTable`] and an [`EngineConfig`].
//!
//! # Concurrency
//!
//! Sessions live in `shards` independently locked maps (by session id); a decision
//! locks only its session's shard. The table in force sits behind an `RwLock` that the
//! decide path does not take: each shard caches the table with its generation number,
//! and a decision compares that number with one atomic. A swap writes the new table,
//! then bumps the generation; each shard picks the new table up (and carries its
//! sessions over by name) on its next use. Kill switches and breaker flags are atomics.
//! With an audit log, records are queued under the log's own short lock (the chain has
//! one order) and the durable write happens after the shard lock is released, shared
//! by concurrent callers (group commit).
//!
//! # Failing closed
//!
//! A poisoned lock, an audit write that fails, a session that cannot be carried over to
//! a new table: each is a Deny with reason `internal`. Nothing the engine does on error
//! can turn into an Allow.

mod admin;
mod breaker;
mod call;
mod calls;
mod clock;
mod config;
mod control;
mod escalation;
mod human;
mod lifecycle;
mod records;
mod resolve;
mod restore;
mod session;
mod shared;
mod shared_escalation;
mod state;
mod usage;

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex, MutexGuard, RwLock, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

pub use admin::Suspensions;
pub use call::{Call, CallRef, CallResult, Internal, Labels, Reason, SessionId, Verdict};
pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{BreakerSettings, EngineConfig, KillFile, Notify, Redact, RedactRule, Redaction};
pub use escalation::{Escalation, Resolution, Resolved, Timeout, unattended};
pub use records::{MAX_AUDIT_ARG_BYTES, MAX_AUDIT_LIST_ITEMS, MAX_REASONING_BYTES};
pub use restore::Restored;
pub use session::{LimitUsage, SessionState};
pub use state::{OnEvent, SharedControls, SharedEvent, StateError, StateStore, Stored};

use crate::audit::{Ack, AuditLog, HumanAction, Record, RecordKind};
use crate::decision_table::DecisionTable;
use crate::hash::ContentHash;
use control::AgentControl;
use escalation::Pending;
use session::Session;

/// What went wrong with an engine operation other than a decision (a decision always
/// answers with a [`Verdict`]).
///
/// ```
/// use agentpolicy_runtime::engine::{EngineError, SessionId};
/// assert_eq!(EngineError::UnknownSession(SessionId(4)).to_string(), "no session s4");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineError {
    UnknownAgent(String),
    UnknownKey(String),
    UnknownSession(SessionId),
    SessionClosed(SessionId),
    /// No call with this number was decided in the session.
    UnknownCall(CallRef),
    /// Not pending: never raised, or already resolved.
    NoSuchEscalation(CallRef),
    Internal(Internal),
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            EngineError::UnknownAgent(a) => {
                write!(f, "unknown agent `{a}`: the table has no such agent")
            }
            EngineError::UnknownKey(k) => write!(f, "unknown isolation key `{k}`"),
            EngineError::UnknownSession(s) => write!(f, "no session {s}"),
            EngineError::SessionClosed(s) => write!(f, "session {s} is closed"),
            EngineError::UnknownCall(c) => write!(f, "no call {c}"),
            EngineError::NoSuchEscalation(c) => write!(f, "no pending escalation {c}"),
            EngineError::Internal(e) => write!(f, "internal error: {e}"),
        }
    }
}

impl std::error::Error for EngineError {}

impl From<Internal> for EngineError {
    fn from(e: Internal) -> Self {
        EngineError::Internal(e)
    }
}

/// How a session starts.
///
/// ```
/// use agentpolicy_runtime::engine::SessionOptions;
/// let o = SessionOptions {
///     name: Some("case-42"),
///     bind: &[("matter", "M-1")],
///     context: Some("user:alice@firm.example"),
/// };
/// assert_eq!(SessionOptions::default().bind.len(), 0);
/// assert_eq!(o.name, Some("case-42"));
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct SessionOptions<'a> {
    /// The name audit records use; `s` and the session number when `None`.
    pub name: Option<&'a str>,
    /// Isolation keys bound from the start (`[("matter", "M-1")]`): the session can
    /// only ever read that matter's data.
    pub bind: &'a [(&'a str, &'a str)],
    /// The triggering context: who or what started the run (`user:alice@firm`,
    /// `schedule:nightly-billing`, `webhook:intake-form`). Written to the session's
    /// `session` records and to every decision record of the session.
    pub context: Option<&'a str>,
}

/// A table generation, with the controls of its agents by [`crate::AgentId`].
#[derive(Debug)]
pub(crate) struct Loaded {
    pub table: Arc<DecisionTable>,
    pub hash: ContentHash,
    pub controls: Vec<Arc<AgentControl>>,
    pub generation: u64,
}

/// A shard on its own cache lines, so two threads deciding in neighbouring shards do
/// not contend for one line (false sharing) when they take their locks.
#[derive(Debug)]
#[repr(align(128))]
pub(crate) struct ShardSlot(pub Mutex<Shard>);

/// Hashes session ids, which the engine hands out in sequence (never chosen by a
/// caller, so no collision attack): one multiply instead of SipHash on every call.
#[derive(Debug, Default, Clone, Copy)]
pub(crate) struct SessionIdHasher(u64);

impl std::hash::Hasher for SessionIdHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0.rotate_left(8) ^ u64::from(b)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = (self.0 ^ n).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

pub(crate) type Sessions = HashMap<u64, Session, std::hash::BuildHasherDefault<SessionIdHasher>>;

#[derive(Debug)]
pub(crate) struct Shard {
    pub loaded: Arc<Loaded>,
    pub sessions: Sessions,
    pub pending: BTreeMap<CallRef, Pending>,
}

#[derive(Debug)]
pub(crate) struct Inner {
    pub clock: Arc<dyn Clock>,
    pub current: RwLock<Arc<Loaded>>,
    pub generation: AtomicU64,
    pub shards: Box<[ShardSlot]>,
    /// Every agent's controls by name, across table generations.
    pub controls: Mutex<HashMap<String, Arc<AgentControl>>>,
    pub kill_all: AtomicBool,
    pub file_kill_all: AtomicBool,
    /// Agents whose open breaker suspends the whole engine.
    pub engine_breakers: AtomicUsize,
    pub next_session: AtomicU64,
    pub audit: Option<AuditLog>,
    pub redaction: Redaction,
    pub breakers: BreakerSettings,
    pub kill_file: Option<KillFile>,
    pub notify: Option<Arc<dyn Notify>>,
    /// Size limits on a call's arguments.
    pub limits: crate::RequestLimits,
    /// The shared state store, when engines share one.
    pub state: Option<Arc<dyn StateStore>>,
    /// The replica id every record this engine appends carries.
    pub replica: Option<String>,
    /// Whether the store holds this engine's table as the table in force since it
    /// started or last swapped (retried on the timer until it does).
    pub table_announced: AtomicBool,
}

/// The embedded engine. `Send + Sync`: share it by reference or in an `Arc`.
///
/// ```
/// use agentpolicy_runtime::*;
/// use agentpolicy_runtime::engine::{Call, CallResult, Engine, EngineConfig, SessionOptions};
///
/// let mut data = TableData { format_version: FORMAT_VERSION, ..TableData::default() };
/// data.files.push("firm.agentpolicy".into());
/// data.tools.push(Tool {
///     name: "search".into(), params: vec![], effects: vec![], reads: vec![], writes: vec![],
/// });
/// data.agents.push(Agent {
///     name: "intake".into(), owner: None, mode: Mode::Enforce, max_tier: None,
///     limits: vec![Limit { count: 2, unit: LimitUnit::Calls, window: LimitWindow::Task }],
///     breakers: vec![],
/// });
/// data.rules.push(Rule {
///     id: "intake/allow/search#1".into(), agent: AgentId(0), kind: RuleKind::Allow,
///     target: Target::Tool(ToolId(0)), route: None, span: Span::default(),
/// });
/// data.cells.push(Cell {
///     granted: true,
///     allow: vec![Entry { rule: RuleIndex(0), condition: None }],
///     ..Cell::default()
/// });
/// let engine = Engine::new(DecisionTable::new(data).unwrap(), EngineConfig::default()).unwrap();
///
/// let s = engine.open_session("intake", SessionOptions::default()).unwrap();
/// let first = engine.decide(s, &Call::new("search"));
/// assert!(first.is_allow());
/// engine.report(first.call.unwrap(), CallResult::ok(120, 30)).unwrap();
/// assert!(engine.decide(s, &Call::new("search")).is_allow());
/// let third = engine.decide(s, &Call::new("search"));
/// assert_eq!(third.reason_code(), "limit");
/// engine.start_task(s).unwrap();
/// assert!(engine.decide(s, &Call::new("search")).is_allow());
/// ```
pub struct Engine {
    inner: Arc<Inner>,
    housekeeper: Option<Housekeeper>,
    restored: Restored,
}

impl fmt::Debug for Engine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Engine")
            .field("table", &self.inner.current_hash())
            .field("shards", &self.inner.shards.len())
            .finish_non_exhaustive()
    }
}

#[derive(Debug)]
struct Housekeeper {
    stop: Option<mpsc::Sender<()>>,
    thread: Option<JoinHandle<()>>,
}

impl Engine {
    /// Starts an engine on a table. Writes a `control` record naming the table when
    /// there is an audit log, reads the kill file once (so an existing one holds from
    /// the first decision), and starts the background thread when a kill file or
    /// housekeeping interval is configured.
    pub fn new(table: DecisionTable, config: EngineConfig) -> Result<Engine, EngineError> {
        let EngineConfig {
            clock,
            shards,
            audit,
            redaction,
            breakers,
            kill_file,
            notify,
            housekeeping,
            restore,
            limits,
            state,
            replica,
        } = config;
        let mut controls = HashMap::new();
        let agents: Vec<Arc<AgentControl>> = table
            .data()
            .agents
            .iter()
            .map(|a| {
                Arc::clone(
                    controls
                        .entry(a.name.clone())
                        .or_insert_with(|| Arc::new(AgentControl::new(&a.name))),
                )
            })
            .collect();
        let loaded = Arc::new(Loaded {
            hash: table.source_hash(),
            table: Arc::new(table),
            controls: agents,
            generation: 0,
        });
        let shards = (0..shards.max(1))
            .map(|_| {
                ShardSlot(Mutex::new(Shard {
                    loaded: Arc::clone(&loaded),
                    sessions: Sessions::default(),
                    pending: BTreeMap::new(),
                }))
            })
            .collect();
        let interval = [kill_file.as_ref().map(|k| k.poll_interval), housekeeping]
            .into_iter()
            .flatten()
            .min();
        let inner = Arc::new(Inner {
            clock,
            current: RwLock::new(Arc::clone(&loaded)),
            generation: AtomicU64::new(0),
            shards,
            controls: Mutex::new(controls),
            kill_all: AtomicBool::new(false),
            file_kill_all: AtomicBool::new(false),
            engine_breakers: AtomicUsize::new(0),
            next_session: AtomicU64::new(0),
            audit,
            redaction,
            breakers,
            kill_file,
            notify,
            limits,
            state,
            replica: replica.map(|r| r.to_string()),
            table_announced: AtomicBool::new(false),
        });
        inner.announce_table();
        let mut start = Record::new(RecordKind::Control, inner.clock.now_ms());
        start.table = Some(loaded.hash);
        let policy = &loaded.table.data().policy;
        start.detail = Some(
            format!(
                "engine started with policy `{}`{} ({})",
                policy.name,
                policy
                    .version
                    .as_ref()
                    .map(|v| format!(" version {v}"))
                    .unwrap_or_default(),
                loaded.hash
            ) + &loaded.table.deploy_sets_summary(),
        );
        inner.append(start)?;
        let restored = inner.restore(restore)?;
        inner.poll_kill_file()?;
        let housekeeper = match interval {
            Some(interval) => Some(spawn_housekeeper(&inner, interval)?),
            None => None,
        };
        Ok(Engine {
            inner,
            housekeeper,
            restored,
        })
    }

    /// Decides a call of the session's agent. Never fails: every problem is a Deny
    /// naming its reason. With an audit log, returns only after the call's record is
    /// durable as configured; if it cannot be written, the call is denied.
    pub fn decide(&self, session: SessionId, call: &Call<'_>) -> Verdict {
        self.inner.decide(session, call)
    }

    /// Reports the result of a call the agent ran: counts its tokens against the
    /// session's limits, feeds the agent's breakers, and audits the result.
    pub fn report(&self, call: CallRef, result: CallResult) -> Result<Option<Ack>, EngineError> {
        self.inner.report(call, result)
    }

    /// Opens a session of `agent`.
    pub fn open_session(
        &self,
        agent: &str,
        options: SessionOptions<'_>,
    ) -> Result<SessionId, EngineError> {
        self.inner.open_session(agent, options)
    }

    /// Closes a session; its pending escalations are rejected.
    pub fn close_session(&self, session: SessionId) -> Result<(), EngineError> {
        self.inner.close_session(session)
    }

    /// Starts the session's next task: per-task counters start from zero. Returns the
    /// new task number.
    pub fn start_task(&self, session: SessionId) -> Result<u64, EngineError> {
        self.inner.start_task(session)
    }

    /// A copy of a session's state.
    pub fn session(&self, session: SessionId) -> Result<SessionState, EngineError> {
        self.inner.session_state(session)
    }

    /// The name of a session's agent. With a shared state store, a session this
    /// engine has seen is answered from its copy (a session's agent never changes);
    /// another is looked up in the store.
    pub fn session_agent(&self, session: SessionId) -> Result<String, EngineError> {
        self.inner.session_agent(session)
    }

    /// Every session's state, by id.
    pub fn sessions(&self) -> Result<Vec<SessionState>, EngineError> {
        self.inner.all_sessions()
    }

    /// Escalations waiting for a human, oldest first.
    pub fn pending_escalations(&self) -> Result<Vec<Escalation>, EngineError> {
        self.inner.pending_escalations()
    }

    /// Acts on an event of the shared state store (see [`StateStore::watch`]): applies
    /// a claim on an escalation this engine holds, takes in the kill switch. Returns the
    /// escalations resolved here. Without a store, or for another engine's call,
    /// nothing happens; the housekeeping timer does the same for events missed.
    pub fn on_shared_event(&self, event: &SharedEvent) -> Vec<Resolved> {
        match event {
            SharedEvent::Claimed(id) => match parse_call_ref(id) {
                Some(id) => self.inner.apply_claims(Some(id)),
                None => Vec::new(),
            },
            SharedEvent::Kill => {
                let _ = self.inner.pull_controls();
                Vec::new()
            }
            SharedEvent::Finished(_) | SharedEvent::Table(_) => Vec::new(),
        }
    }

    /// Records what a human did for the same task as a decided call (shadow
    /// comparison): a `human` record naming the call's session and number, with the
    /// action and who took it. Reports compare it with the policy's outcome (in shadow
    /// mode, the would-be outcome). Returns the record's acknowledgement once durable;
    /// `None` without an audit log.
    pub fn record_human(
        &self,
        call: CallRef,
        action: HumanAction,
        by: &str,
    ) -> Result<Option<Ack>, EngineError> {
        self.inner.record_human(call, action, by)
    }

    /// Approves or rejects a pending escalation. An approval re-checks suspension and
    /// the flow at this moment, so it can still come out as Deny.
    pub fn resolve(
        &self,
        escalation: CallRef,
        resolution: Resolution,
        by: &str,
    ) -> Result<Resolved, EngineError> {
        self.inner.resolve(escalation, resolution, by, None)
    }

    /// [`Engine::resolve`] with the resolver's reason, which the resolution record's
    /// `why` carries after who resolved it (`approved by alice (reason: conflict
    /// cleared)`).
    pub fn resolve_with_reason(
        &self,
        escalation: CallRef,
        resolution: Resolution,
        by: &str,
        reason: &str,
    ) -> Result<Resolved, EngineError> {
        self.inner.resolve(escalation, resolution, by, Some(reason))
    }

    /// Resolves every escalation whose deadline has passed with its timeout outcome.
    /// The background thread calls this every interval; call it yourself without one.
    pub fn expire_escalations(&self) -> Vec<Resolved> {
        self.inner.expire_escalations()
    }

    /// Suspends every agent, effective on the next decision of any thread.
    pub fn kill_all(&self, by: &str) -> Result<Option<Ack>, EngineError> {
        self.inner.set_kill_all(true, by)
    }

    /// Lifts [`Engine::kill_all`]; the kill file and breakers keep their own hold.
    pub fn resume_all(&self, by: &str) -> Result<Option<Ack>, EngineError> {
        self.inner.set_kill_all(false, by)
    }

    /// Suspends one agent, effective on its next decision in any thread.
    pub fn kill_agent(&self, agent: &str, by: &str) -> Result<Option<Ack>, EngineError> {
        self.inner.set_kill_agent(agent, true, by)
    }

    pub fn resume_agent(&self, agent: &str, by: &str) -> Result<Option<Ack>, EngineError> {
        self.inner.set_kill_agent(agent, false, by)
    }

    /// Closes an agent's tripped breaker by hand.
    pub fn reset_breaker(&self, agent: &str, by: &str) -> Result<Option<Ack>, EngineError> {
        self.inner.reset_breaker(agent, by)
    }

    /// Overrides an agent's mode (`None` goes back to the table's).
    pub fn set_mode(
        &self,
        agent: &str,
        mode: Option<crate::Mode>,
        by: &str,
    ) -> Result<Option<Ack>, EngineError> {
        self.inner.set_mode(agent, mode, by)
    }

    /// Swaps in a new table atomically; decisions from now on use it and name its
    /// hash. Sessions carry over by agent, tier and key names. Returns the old hash.
    pub fn swap_table(&self, table: DecisionTable, by: &str) -> Result<ContentHash, EngineError> {
        self.inner.swap_table(table, by)
    }

    /// Audits a refusal: a caller a service in front of the engine turned away (no or
    /// bad credentials, a role or scope that does not allow the action). `who` is the
    /// caller as far as known (a token's name, or `anonymous`), `what` the action asked
    /// for, `why` the reason. Writes a `refusal` record; `None` without an audit log.
    pub fn record_refusal(
        &self,
        who: &str,
        what: &str,
        why: &str,
    ) -> Result<Option<Ack>, EngineError> {
        self.inner.record_refusal(who, what, why)
    }

    /// Why the audit log takes no more records, if a write failed; `None` when it is
    /// healthy or there is no log. Every decision is denied while this is `Some`.
    pub fn audit_failure(&self) -> Option<String> {
        self.inner.audit.as_ref().and_then(|a| a.failed())
    }

    /// Why the shared state store does not answer now; `None` when it does, or when
    /// the engine has no store. Every decision is denied while the store fails.
    pub fn state_failure(&self) -> Option<String> {
        let store = self.inner.state.as_ref()?;
        store.ping().err().map(|e| e.0)
    }

    /// `true` when the engine shares its state through a store.
    pub fn shares_state(&self) -> bool {
        self.inner.state.is_some()
    }

    /// Reads the kill file now; `true` when that changed a suspension.
    pub fn poll_kill_file(&self) -> Result<bool, EngineError> {
        self.inner.poll_kill_file()
    }

    /// The table in force.
    pub fn table(&self) -> Result<Arc<DecisionTable>, EngineError> {
        Ok(Arc::clone(&self.inner.current()?.table))
    }

    /// The hash of the table in force.
    /// The kill switches and tripped breakers in force.
    pub fn suspensions(&self) -> Result<Suspensions, EngineError> {
        Ok(self.inner.suspensions()?)
    }

    /// What the engine rebuilt from `EngineConfig::restore` when it started.
    pub fn restored(&self) -> &Restored {
        &self.restored
    }

    pub fn table_hash(&self) -> ContentHash {
        self.inner.current_hash()
    }

    /// The audit log's head (last record's number and hash), to keep elsewhere as an
    /// anchor against truncation.
    pub fn audit_head(&self) -> Option<Ack> {
        self.inner.audit.as_ref().and_then(|a| a.head().ok())
    }

    /// How long the audit log's flushes took, and how many failed.
    pub fn audit_flush_stats(&self) -> Option<crate::audit::FlushStats> {
        self.inner.audit.as_ref().map(AuditLog::flush_stats)
    }

    /// The sequence number up to which the audit log's records are acknowledged.
    pub fn audit_acknowledged(&self) -> Option<u64> {
        self.inner
            .audit
            .as_ref()
            .and_then(|a| a.acknowledged().ok())
    }

    /// Stops the background thread and closes the audit log (a `close` record, fsync).
    /// Dropping the engine does the same but cannot report an error.
    pub fn shutdown(mut self) -> Result<(), EngineError> {
        self.stop_housekeeper();
        self.inner.close_audit()
    }

    fn stop_housekeeper(&mut self) {
        if let Some(mut h) = self.housekeeper.take() {
            h.stop.take();
            if let Some(thread) = h.thread.take() {
                let _ = thread.join();
            }
        }
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        self.stop_housekeeper();
        let _ = self.inner.close_audit();
    }
}

/// `s3:2` as a call reference.
fn parse_call_ref(text: &str) -> Option<CallRef> {
    let (session, n) = text.split_once(':')?;
    Some(CallRef {
        session: SessionId(session.strip_prefix('s')?.parse().ok()?),
        n: n.parse().ok()?,
    })
}

fn spawn_housekeeper(inner: &Arc<Inner>, interval: Duration) -> Result<Housekeeper, EngineError> {
    let (stop, stopped) = mpsc::channel::<()>();
    let weak: Weak<Inner> = Arc::downgrade(inner);
    let thread = std::thread::Builder::new()
        .name("agentpolicy-housekeeping".into())
        .spawn(move || {
            // Nothing is ever sent: the engine drops the sender to stop the thread.
            while let Err(RecvTimeoutError::Timeout) = stopped.recv_timeout(interval) {
                let Some(inner) = weak.upgrade() else { break };
                // Failures are audited or fail closed where they happen; the thread
                // keeps going so the kill file is honoured while anything runs.
                let _ = inner.poll_kill_file();
                inner.announce_table();
                let _ = inner.pull_controls();
                inner.apply_claims(None);
                inner.expire_escalations();
                if let Some(audit) = &inner.audit
                    && matches!(
                        audit.durability(),
                        crate::audit::Durability::OsBuffered { .. }
                    )
                {
                    let _ = audit.sync();
                }
            }
        })
        .map_err(|e| {
            EngineError::Internal(Internal::Audit(format!(
                "cannot start the housekeeping thread: {e}"
            )))
        })?;
    Ok(Housekeeper {
        stop: Some(stop),
        thread: Some(thread),
    })
}

impl Inner {
    pub(crate) fn shard(&self, session: SessionId) -> Option<&Mutex<Shard>> {
        let n = self.shards.len() as u64;
        self.shards
            .get((session.0 % n.max(1)) as usize)
            .map(|s| &s.0)
    }

    /// Locks a session's shard and brings it to the table in force.
    pub(crate) fn lock_shard(&self, session: SessionId) -> Result<MutexGuard<'_, Shard>, Internal> {
        let shard = self.shard(session).ok_or(Internal::PoisonedLock)?;
        let mut guard = shard.lock().map_err(|_| Internal::PoisonedLock)?;
        if guard.loaded.generation != self.generation.load(Ordering::Acquire) {
            self.refresh(&mut guard)?;
        }
        Ok(guard)
    }

    fn refresh(&self, shard: &mut Shard) -> Result<(), Internal> {
        let next = self.current()?;
        let old = Arc::clone(&shard.loaded);
        for session in shard.sessions.values_mut() {
            if session.broken.is_none()
                && let Err(why) = session.remap(old.table.data(), &next.table)
            {
                session.broken = Some(why);
            }
        }
        shard.loaded = next;
        Ok(())
    }

    pub(crate) fn current(&self) -> Result<Arc<Loaded>, Internal> {
        self.current
            .read()
            .map(|c| Arc::clone(&c))
            .map_err(|_| Internal::PoisonedLock)
    }

    pub(crate) fn current_hash(&self) -> ContentHash {
        self.current().map(|l| l.hash).unwrap_or_default()
    }

    /// An agent's controls by name, made on first use.
    pub(crate) fn control(&self, name: &str) -> Result<Arc<AgentControl>, Internal> {
        let mut controls = self.controls.lock().map_err(|_| Internal::PoisonedLock)?;
        Ok(Arc::clone(
            controls
                .entry(name.to_owned())
                .or_insert_with(|| Arc::new(AgentControl::new(name))),
        ))
    }

    /// Queues a record; `None` without an audit log.
    pub(crate) fn enqueue(&self, mut record: Record) -> Result<Option<Ack>, Internal> {
        match &self.audit {
            None => Ok(None),
            Some(log) => {
                if record.replica.is_none() {
                    record.replica.clone_from(&self.replica);
                }
                log.enqueue(record)
                    .map(Some)
                    .map_err(|e| Internal::Audit(e.0))
            }
        }
    }

    /// Waits for a queued record to be durable.
    pub(crate) fn wait(&self, ack: Option<Ack>) -> Result<Option<Ack>, Internal> {
        match (&self.audit, ack) {
            (Some(log), Some(ack)) => log.wait(ack).map(Some).map_err(|e| Internal::Audit(e.0)),
            _ => Ok(ack),
        }
    }

    pub(crate) fn append(&self, record: Record) -> Result<Option<Ack>, Internal> {
        let ack = self.enqueue(record)?;
        self.wait(ack)
    }

    fn close_audit(&self) -> Result<(), EngineError> {
        match &self.audit {
            Some(log) if log.failed().is_none() => log
                .close(self.clock.now_ms())
                .map(|_| ())
                .map_err(|e| EngineError::Internal(Internal::Audit(e.0))),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one_tool_table() -> DecisionTable {
        use crate::*;
        let mut data = TableData {
            format_version: FORMAT_VERSION,
            ..TableData::default()
        };
        data.files.push("t.agentpolicy".into());
        data.tools.push(Tool {
            name: "search".into(),
            params: vec![],
            effects: vec![],
            reads: vec![],
            writes: vec![],
        });
        data.agents.push(Agent {
            name: "a".into(),
            owner: None,
            mode: Mode::Shadow,
            max_tier: None,
            limits: vec![],
            breakers: vec![],
        });
        data.rules.push(Rule {
            id: "a/allow/search#1".into(),
            agent: AgentId(0),
            kind: RuleKind::Allow,
            target: Target::Tool(ToolId(0)),
            route: None,
            span: Span::default(),
        });
        data.cells.push(Cell {
            granted: true,
            allow: vec![Entry {
                rule: RuleIndex(0),
                condition: None,
            }],
            ..Cell::default()
        });
        DecisionTable::new(data).unwrap()
    }

    #[test]
    fn a_poisoned_shard_denies_with_reason_internal_even_in_shadow_mode() {
        let engine = Engine::new(
            one_tool_table(),
            EngineConfig {
                shards: 1,
                ..EngineConfig::default()
            },
        )
        .unwrap();
        let s = engine.open_session("a", SessionOptions::default()).unwrap();
        assert!(engine.decide(s, &Call::new("search")).is_allow());
        let shard = &engine.inner.shards[0].0;
        let poisoned = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            let _guard = shard.lock();
            panic!("a bug while holding the shard");
        }));
        assert!(poisoned.is_err());
        let v = engine.decide(s, &Call::new("search"));
        assert_eq!(v.outcome, crate::Outcome::Deny);
        assert_eq!(v.reason, Reason::Internal(Internal::PoisonedLock));
        assert_eq!(v.reason_code(), "internal");
        assert!(matches!(
            engine.report(CallRef { session: s, n: 1 }, CallResult::ok(1, 1)),
            Err(EngineError::Internal(Internal::PoisonedLock))
        ));
    }

    #[test]
    fn the_engine_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Engine>();
        check::<Verdict>();
    }
}
