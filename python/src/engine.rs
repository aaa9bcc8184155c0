//! `Engine`: the runtime's `Engine` for Python, built from a table or compiled from a
//! policy folder, with its options (audit log, clock, shadow mode, deploy-time sets,
//! kill file, restart from the log); sessions; escalations (list, approve, reject,
//! expire, wait); the kill switch and breakers; human actions for shadow comparison.
//! It maps arguments and errors; the engine decides and audits everything.

use std::collections::{HashMap, VecDeque};
use std::io::BufReader;
use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex, RwLock, RwLockReadGuard};
use std::time::Duration;

use pyo3::prelude::*;
use pyo3::types::{PyBytes, PyDict, PyString};

use agentpolicy_runtime::audit::{AuditLog, Durability, HumanAction, read_records};
use agentpolicy_runtime::engine::{
    BreakerSettings, CallRef, Clock, Engine, EngineConfig, Escalation, KillFile, ManualClock,
    Notify, Resolution, SessionOptions, SystemClock,
};
use agentpolicy_runtime::{DecisionTable, Mode, Outcome};

use crate::errors::{engine_error, invalid, raise};
use crate::policy::{table_from_bytes, table_from_policy};
use crate::session::PySession;
use crate::verdict::{PyDecision, PyEscalation, PyResolution, parse_call_id};

/// A clock that moves only when told to, for tests of limits, rate windows, breakers
/// and escalation timeouts: `ManualClock(start_ms)`, `.advance(ms)`, `.set(ms)`.
#[pyclass(name = "ManualClock", module = "agentpolicy", frozen)]
#[derive(Debug)]
pub struct PyManualClock {
    pub clock: Arc<ManualClock>,
}

#[pymethods]
impl PyManualClock {
    #[new]
    #[pyo3(signature = (start_ms=0))]
    fn new(start_ms: i64) -> Self {
        PyManualClock {
            clock: Arc::new(ManualClock::new(start_ms)),
        }
    }

    /// Milliseconds since the Unix epoch, as the engine sees them.
    fn now_ms(&self) -> i64 {
        self.clock.now_ms()
    }

    fn advance(&self, ms: i64) {
        self.clock.advance(ms);
    }

    fn set(&self, ms: i64) {
        self.clock.set(ms);
    }

    fn __repr__(&self) -> String {
        format!("ManualClock({})", self.clock.now_ms())
    }
}

/// How many resolved escalations are remembered for `wait` (oldest forgotten first).
const REMEMBERED: usize = 100_000;

/// Resolutions as the engine announces them, for `Engine.wait`.
#[derive(Debug, Default)]
struct Waits {
    resolved: Mutex<(HashMap<CallRef, Outcome>, VecDeque<CallRef>)>,
    changed: Condvar,
}

impl Notify for Waits {
    fn escalated(&self, _: &Escalation) {}

    fn resolved(&self, escalation: &Escalation, outcome: Outcome) {
        if let Ok(mut guard) = self.resolved.lock() {
            let (map, order) = &mut *guard;
            map.insert(escalation.id, outcome);
            order.push_back(escalation.id);
            while order.len() > REMEMBERED {
                if let Some(old) = order.pop_front() {
                    map.remove(&old);
                }
            }
        }
        self.changed.notify_all();
    }
}

impl Waits {
    fn take(&self, id: CallRef) -> Option<Outcome> {
        self.resolved
            .lock()
            .ok()
            .and_then(|g| g.0.get(&id).copied())
    }

    /// Waits up to `slice` for a resolution to be announced.
    fn wait_slice(&self, slice: Duration) {
        if let Ok(guard) = self.resolved.lock() {
            let _ = self.changed.wait_timeout(guard, slice);
        }
    }
}

/// The engine. Share one per process (or per policy); it is safe to use from many
/// threads, and it releases the GIL while it decides.
#[pyclass(name = "Engine", module = "agentpolicy", frozen)]
#[derive(Debug)]
pub struct PyEngine {
    /// `None` once closed.
    engine: RwLock<Option<Arc<Engine>>>,
    waits: Arc<Waits>,
    agents: Vec<String>,
}

impl PyEngine {
    /// The engine, or `EngineClosed`.
    pub fn live(&self, py: Python<'_>) -> PyResult<EngineRef<'_>> {
        let guard = self.engine.read().map_err(|_| {
            raise(
                py,
                "EngineFault",
                "the engine's state was poisoned by a panic",
                &[],
            )
        })?;
        if guard.is_none() {
            return Err(raise(py, "EngineClosed", "the engine was closed", &[]));
        }
        Ok(EngineRef(guard))
    }

    pub fn agent_names(&self) -> Vec<&str> {
        self.agents.iter().map(String::as_str).collect()
    }

    pub fn error(&self, py: Python<'_>, e: &agentpolicy_runtime::engine::EngineError) -> PyErr {
        engine_error(py, e, &self.agent_names())
    }
}

/// A read guard on a live engine.
#[derive(Debug)]
pub struct EngineRef<'a>(RwLockReadGuard<'a, Option<Arc<Engine>>>);

impl std::ops::Deref for EngineRef<'_> {
    type Target = Engine;

    fn deref(&self) -> &Engine {
        // `live` checked it is `Some`, and the guard keeps it so.
        match &*self.0 {
            Some(e) => e,
            None => unreachable_engine(),
        }
    }
}

#[expect(
    clippy::panic,
    reason = "EngineRef is only built around Some; this cannot run"
)]
fn unreachable_engine() -> ! {
    panic!("EngineRef built around a closed engine")
}

/// An escalation or call named by its id (`"s3:2"`), a `Decision` or an `Escalation`.
pub fn call_ref_of(
    py: Python<'_>,
    argument: &str,
    value: &Bound<'_, PyAny>,
    escalation: bool,
) -> PyResult<CallRef> {
    if let Ok(d) = value.cast::<PyDecision>() {
        let v = &d.get().verdict;
        let found = if escalation { v.escalation } else { v.call };
        return found.ok_or_else(|| {
            invalid(
                py,
                argument,
                if escalation {
                    format!(
                        "`{argument}`: this decision raised no escalation (its outcome is {})",
                        v.outcome.keyword()
                    )
                } else {
                    format!("`{argument}`: this decision has no call (its session was not open)")
                },
            )
        });
    }
    if let Ok(e) = value.cast::<PyEscalation>()
        && let Some(c) = parse_call_id(&e.get().id)
    {
        return Ok(c);
    }
    if let Ok(s) = value.cast::<PyString>() {
        let text = s.to_cow()?;
        return parse_call_id(&text).ok_or_else(|| {
            invalid(
                py,
                argument,
                format!("`{argument}`: `{text}` is not a call id like \"s3:2\""),
            )
        });
    }
    Err(invalid(
        py,
        argument,
        format!(
            "`{argument}`: expected a Decision, an Escalation or an id like \"s3:2\", found {}",
            value
                .get_type()
                .name()
                .map(|n| n.to_string())
                .unwrap_or_default()
        ),
    ))
}

fn resolution_of(py: Python<'_>, text: &str) -> PyResult<Resolution> {
    match text {
        "approve" | "approved" | "allow" => Ok(Resolution::Approve),
        "reject" | "rejected" | "deny" => Ok(Resolution::Reject),
        _ => Err(invalid(
            py,
            "resolution",
            format!("`resolution`: expected \"approve\" or \"reject\", found {text:?}"),
        )),
    }
}

fn seconds(py: Python<'_>, argument: &str, value: f64) -> PyResult<Duration> {
    Duration::try_from_secs_f64(value).map_err(|_| {
        invalid(
            py,
            argument,
            format!("`{argument}`: expected a number of seconds >= 0, found {value}"),
        )
    })
}

#[pymethods]
impl PyEngine {
    /// Starts an engine on a decision table (`table`: a path to a file `agentpolicy
    /// build` wrote, or its bytes) or on a policy compiled now (`policy`: a policy
    /// folder or file; compile errors raise `PolicyCompileError`).
    ///
    /// Options: `audit` (path of the hash-chained audit log), `durability` (`"fsync"`,
    /// the default, or `"buffered"`), `restore` (rebuild sessions, escalations and
    /// switches from the audit log first), `clock` (a `ManualClock`; default the system
    /// clock), `shadow` (`True` for every agent, or agent names: decide and log, report
    /// allow), `sets` (deploy-time sets, `{"SET": ["member", ...]}`), `kill_file` (a file
    /// whose presence suspends agents), `housekeeping` (seconds between background
    /// expiry of escalations), `breaker_min_results`, `breaker_cooldown` (seconds),
    /// `shards`.
    #[new]
    #[pyo3(signature = (
        table=None, *, policy=None, audit=None, durability="fsync", restore=false,
        clock=None, shadow=None, sets=None, kill_file=None, housekeeping=None,
        breaker_min_results=None, breaker_cooldown=None, shards=None
    ))]
    #[expect(clippy::too_many_arguments, reason = "Python keyword arguments")]
    fn new(
        py: Python<'_>,
        table: Option<&Bound<'_, PyAny>>,
        policy: Option<PathBuf>,
        audit: Option<PathBuf>,
        durability: &str,
        restore: bool,
        clock: Option<&Bound<'_, PyManualClock>>,
        shadow: Option<&Bound<'_, PyAny>>,
        sets: Option<&Bound<'_, PyDict>>,
        kill_file: Option<PathBuf>,
        housekeeping: Option<f64>,
        breaker_min_results: Option<u32>,
        breaker_cooldown: Option<f64>,
        shards: Option<usize>,
    ) -> PyResult<Self> {
        let table = match (table, policy) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    py,
                    "policy",
                    "pass either `table` or `policy`, not both",
                ));
            }
            (None, None) => {
                return Err(invalid(
                    py,
                    "table",
                    "pass `table` (a table file or its bytes) or `policy` (a policy folder or file)",
                ));
            }
            (None, Some(path)) => table_from_policy(py, &path)?,
            (Some(t), None) => {
                if let Ok(b) = t.cast::<PyBytes>() {
                    table_from_bytes(py, b.as_bytes(), "the bytes given")?
                } else {
                    let path: PathBuf = t
                        .extract()
                        .map_err(|_| invalid(py, "table", "`table`: expected a path or bytes"))?;
                    let bytes = std::fs::read(&path).map_err(|e| {
                        pyo3::exceptions::PyOSError::new_err(format!(
                            "cannot read `{}`: {e}",
                            path.display()
                        ))
                    })?;
                    table_from_bytes(py, &bytes, &format!("`{}`", path.display()))?
                }
            }
        };
        let table = bind_sets(py, table, sets)?;
        let agents: Vec<String> = table.data().agents.iter().map(|a| a.name.clone()).collect();
        let shadowed = shadow_agents(py, shadow, &agents)?;
        let clock: Arc<dyn Clock> = match clock {
            Some(c) => c.get().clock.clone(),
            None => Arc::new(SystemClock),
        };
        let durability = match durability {
            "fsync" => Durability::default(),
            "buffered" => Durability::OsBuffered {
                fsync_interval: Duration::from_secs(1),
            },
            other => {
                return Err(invalid(
                    py,
                    "durability",
                    format!("`durability`: expected \"fsync\" or \"buffered\", found {other:?}"),
                ));
            }
        };
        let mut restored = Vec::new();
        let log = match &audit {
            None => {
                if restore {
                    return Err(invalid(
                        py,
                        "restore",
                        "`restore=True` needs an `audit` log to restore from",
                    ));
                }
                None
            }
            Some(path) => {
                if restore && path.exists() {
                    let file = std::fs::File::open(path).map_err(|e| {
                        raise(
                            py,
                            "AuditError",
                            format!("cannot read the audit log `{}`: {e}", path.display()),
                            &[],
                        )
                    })?;
                    restored = read_records(BufReader::new(file)).map_err(|e| {
                        raise(
                            py,
                            "AuditError",
                            format!("cannot restore from `{}`: {e}", path.display()),
                            &[],
                        )
                    })?;
                }
                let clock = clock.clone();
                let opened = py.detach(|| AuditLog::open(path, durability, &*clock));
                Some(opened.map_err(|e| {
                    raise(
                        py,
                        "AuditError",
                        format!("cannot open the audit log `{}`: {e}", path.display()),
                        &[],
                    )
                })?)
            }
        };
        let mut breakers = BreakerSettings::default();
        if let Some(n) = breaker_min_results {
            breakers.min_results = n;
        }
        if let Some(s) = breaker_cooldown {
            breakers.cooldown = Some(seconds(py, "breaker_cooldown", s)?);
        }
        let waits = Arc::new(Waits::default());
        let config = EngineConfig {
            clock,
            shards: shards.unwrap_or(64),
            audit: log,
            redaction: Default::default(),
            breakers,
            kill_file: kill_file.map(KillFile::new),
            notify: Some(waits.clone() as Arc<dyn Notify>),
            housekeeping: housekeeping
                .map(|s| seconds(py, "housekeeping", s))
                .transpose()?,
            restore: restored,
            // The runtime's default argument size limits (256 KiB per text or list,
            // 4,096 list elements): an oversized argument is denied with reason
            // `request`.
            limits: Default::default(),
            state: None,
            replica: None,
        };
        let engine = py
            .detach(|| Engine::new(table, config))
            .map_err(|e| engine_error(py, &e, &[]))?;
        for agent in &shadowed {
            py.detach(|| engine.set_mode(agent, Some(Mode::Shadow), "python: Engine(shadow=...)"))
                .map_err(|e| engine_error(py, &e, &[]))?;
        }
        Ok(PyEngine {
            engine: RwLock::new(Some(Arc::new(engine))),
            waits,
            agents,
        })
    }

    /// `Engine.from_policy(path, **options)`: compile the policy at `path` and start.
    #[classmethod]
    #[pyo3(signature = (path, **options))]
    fn from_policy<'py>(
        cls: &Bound<'py, pyo3::types::PyType>,
        path: &Bound<'py, PyAny>,
        options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        let kwargs = options.map_or_else(|| PyDict::new(cls.py()), |o| o.clone());
        kwargs.set_item("policy", path)?;
        cls.call((), Some(&kwargs))
    }

    /// `Engine.from_table(path_or_bytes, **options)`: start on a built table.
    #[classmethod]
    #[pyo3(signature = (table, **options))]
    fn from_table<'py>(
        cls: &Bound<'py, pyo3::types::PyType>,
        table: &Bound<'py, PyAny>,
        options: Option<&Bound<'py, PyDict>>,
    ) -> PyResult<Bound<'py, PyAny>> {
        cls.call((table,), options)
    }

    /// Opens a session of `agent`, optionally named (audit records use the name),
    /// bound to isolation-key values from the start (`bind={"matter": "M-1"}`), and with
    /// the triggering context (`"user:alice@firm.example"`). Use it as a context manager
    /// to close it at the end.
    #[pyo3(signature = (name=None, *, agent, bind=None, context=None))]
    fn session(
        slf: &Bound<'_, Self>,
        name: Option<String>,
        agent: String,
        bind: Option<&Bound<'_, PyDict>>,
        context: Option<String>,
    ) -> PyResult<PySession> {
        let py = slf.py();
        let this = slf.get();
        let mut pairs: Vec<(String, String)> = Vec::new();
        if let Some(bind) = bind {
            for (k, v) in bind.iter() {
                let (Ok(k), Ok(v)) = (k.extract::<String>(), v.extract::<String>()) else {
                    return Err(invalid(
                        py,
                        "bind",
                        "`bind`: keys and values must be str, like {\"matter\": \"M-1\"}",
                    ));
                };
                pairs.push((k, v));
            }
        }
        let engine = this.live(py)?;
        let borrowed: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        let options = SessionOptions {
            name: name.as_deref(),
            bind: &borrowed,
            context: context.as_deref(),
        };
        let id = py
            .detach(|| engine.open_session(&agent, options))
            .map_err(|e| this.error(py, &e))?;
        let name = name.unwrap_or_else(|| id.to_string());
        Ok(PySession::new(slf.clone().unbind(), id, name, agent))
    }

    /// Escalations waiting for a human, oldest first.
    fn pending_escalations(&self, py: Python<'_>) -> PyResult<Vec<PyEscalation>> {
        let engine = self.live(py)?;
        let list = py
            .detach(|| engine.pending_escalations())
            .map_err(|e| self.error(py, &e))?;
        Ok(list.iter().map(PyEscalation::of).collect())
    }

    /// Approves a pending escalation (an id, a `Decision` or an `Escalation`). The
    /// approval re-checks the kill switch and the flow, so the returned `Resolution`
    /// can still be a deny.
    #[pyo3(signature = (escalation, *, by, reason=None))]
    fn approve(
        &self,
        py: Python<'_>,
        escalation: &Bound<'_, PyAny>,
        by: &str,
        reason: Option<&str>,
    ) -> PyResult<PyResolution> {
        self.resolve_as(py, escalation, Resolution::Approve, by, reason)
    }

    /// Rejects a pending escalation: the call is denied.
    #[pyo3(signature = (escalation, *, by, reason=None))]
    fn reject(
        &self,
        py: Python<'_>,
        escalation: &Bound<'_, PyAny>,
        by: &str,
        reason: Option<&str>,
    ) -> PyResult<PyResolution> {
        self.resolve_as(py, escalation, Resolution::Reject, by, reason)
    }

    /// `resolve(escalation, "approve" | "reject", by=..., reason=None)`.
    #[pyo3(signature = (escalation, resolution, *, by, reason=None))]
    fn resolve(
        &self,
        py: Python<'_>,
        escalation: &Bound<'_, PyAny>,
        resolution: &str,
        by: &str,
        reason: Option<&str>,
    ) -> PyResult<PyResolution> {
        let resolution = resolution_of(py, resolution)?;
        self.resolve_as(py, escalation, resolution, by, reason)
    }

    /// Times out every escalation whose deadline has passed on the engine's clock, with
    /// its route's timeout outcome; returns the resolutions.
    fn expire_escalations(&self, py: Python<'_>) -> PyResult<Vec<PyResolution>> {
        let engine = self.live(py)?;
        let resolved = py.detach(|| engine.expire_escalations());
        Ok(resolved.iter().map(PyResolution::of).collect())
    }

    /// Blocks (without the GIL) until the escalation is resolved, by another thread's
    /// `approve` / `reject` or by its timeout (expired here as the clock passes its
    /// deadline), and returns the outcome: `"allow"` or `"deny"`. With `timeout`
    /// (seconds) it raises `TimeoutError` if still pending then.
    #[pyo3(signature = (escalation, timeout=None))]
    fn wait(
        &self,
        py: Python<'_>,
        escalation: &Bound<'_, PyAny>,
        timeout: Option<f64>,
    ) -> PyResult<&'static str> {
        let id = call_ref_of(py, "escalation", escalation, true)?;
        let limit = timeout.map(|t| seconds(py, "timeout", t)).transpose()?;
        let started = std::time::Instant::now();
        let slice = Duration::from_millis(50);
        let mut absent_once = false;
        loop {
            if let Some(outcome) = self.waits.take(id) {
                return Ok(outcome.keyword());
            }
            let still_pending = {
                let engine = self.live(py)?;
                py.detach(|| {
                    engine.expire_escalations();
                    engine
                        .session(id.session)
                        .map(|s| s.pending.contains(&id))
                        .unwrap_or(false)
                })
            };
            if let Some(outcome) = self.waits.take(id) {
                return Ok(outcome.keyword());
            }
            if !still_pending {
                // Resolved between the two looks, its announcement not yet made: one
                // more slice, then it is not an escalation of this engine.
                if absent_once {
                    return Err(raise(
                        py,
                        "EscalationError",
                        format!("no pending escalation {id}"),
                        &[],
                    ));
                }
                absent_once = true;
            }
            if let Some(limit) = limit
                && started.elapsed() >= limit
            {
                return Err(pyo3::exceptions::PyTimeoutError::new_err(format!(
                    "escalation {id} is still pending after {} s",
                    limit.as_secs_f64()
                )));
            }
            let waits = self.waits.clone();
            py.detach(|| waits.wait_slice(slice));
            py.check_signals()?;
        }
    }

    /// Reports the result of a call that ran (a `Decision` or a call id): counts its
    /// tokens against limits, feeds the agent's breakers, and audits it. Returns the
    /// result record's sequence number (`None` without an audit log).
    #[pyo3(signature = (call, *, ok=true, tokens=0, latency_ms=0))]
    fn report(
        &self,
        py: Python<'_>,
        call: &Bound<'_, PyAny>,
        ok: bool,
        tokens: u64,
        latency_ms: u64,
    ) -> PyResult<Option<u64>> {
        let id = call_ref_of(py, "call", call, false)?;
        let engine = self.live(py)?;
        let result = agentpolicy_runtime::engine::CallResult {
            ok,
            tokens,
            latency_ms,
        };
        let ack = py
            .detach(|| engine.report(id, result))
            .map_err(|e| self.error(py, &e))?;
        Ok(ack.map(|a| a.seq))
    }

    /// Records what a human did for the same task as a decided call (`"allow"`,
    /// `"deny"` or `"escalate"`), for shadow comparison (`agentpolicy audit
    /// shadow-report`, `promote-check`).
    #[pyo3(signature = (call, action, *, by))]
    fn record_human(
        &self,
        py: Python<'_>,
        call: &Bound<'_, PyAny>,
        action: &str,
        by: &str,
    ) -> PyResult<Option<u64>> {
        let id = call_ref_of(py, "call", call, false)?;
        let action = match action {
            "allow" => HumanAction::Allow,
            "deny" => HumanAction::Deny,
            "escalate" => HumanAction::Escalate,
            other => {
                return Err(invalid(
                    py,
                    "action",
                    format!(
                        "`action`: expected \"allow\", \"deny\" or \"escalate\", found {other:?}"
                    ),
                ));
            }
        };
        let engine = self.live(py)?;
        let ack = py
            .detach(|| engine.record_human(id, action, by))
            .map_err(|e| self.error(py, &e))?;
        Ok(ack.map(|a| a.seq))
    }

    /// Suspends every agent, effective on the next decision of any thread.
    #[pyo3(signature = (*, by))]
    fn kill_all(&self, py: Python<'_>, by: &str) -> PyResult<()> {
        let engine = self.live(py)?;
        py.detach(|| engine.kill_all(by))
            .map_err(|e| self.error(py, &e))?;
        Ok(())
    }

    /// Lifts `kill_all` (the kill file and breakers keep their own hold).
    #[pyo3(signature = (*, by))]
    fn resume_all(&self, py: Python<'_>, by: &str) -> PyResult<()> {
        let engine = self.live(py)?;
        py.detach(|| engine.resume_all(by))
            .map_err(|e| self.error(py, &e))?;
        Ok(())
    }

    /// Suspends one agent, effective on its next decision in any thread.
    #[pyo3(signature = (agent, *, by))]
    fn kill_agent(&self, py: Python<'_>, agent: &str, by: &str) -> PyResult<()> {
        self.known_agent(py, agent)?;
        let engine = self.live(py)?;
        py.detach(|| engine.kill_agent(agent, by))
            .map_err(|e| self.error(py, &e))?;
        Ok(())
    }

    #[pyo3(signature = (agent, *, by))]
    fn resume_agent(&self, py: Python<'_>, agent: &str, by: &str) -> PyResult<()> {
        self.known_agent(py, agent)?;
        let engine = self.live(py)?;
        py.detach(|| engine.resume_agent(agent, by))
            .map_err(|e| self.error(py, &e))?;
        Ok(())
    }

    /// Closes an agent's tripped circuit breaker by hand.
    #[pyo3(signature = (agent, *, by))]
    fn reset_breaker(&self, py: Python<'_>, agent: &str, by: &str) -> PyResult<()> {
        self.known_agent(py, agent)?;
        let engine = self.live(py)?;
        py.detach(|| engine.reset_breaker(agent, by))
            .map_err(|e| self.error(py, &e))?;
        Ok(())
    }

    /// Overrides an agent's mode: `"shadow"`, `"enforce"`, or `None` for the policy's.
    #[pyo3(signature = (agent, mode, *, by))]
    fn set_mode(&self, py: Python<'_>, agent: &str, mode: Option<&str>, by: &str) -> PyResult<()> {
        self.known_agent(py, agent)?;
        let mode = match mode {
            None => None,
            Some("shadow") => Some(Mode::Shadow),
            Some("enforce") => Some(Mode::Enforce),
            Some(other) => {
                return Err(invalid(
                    py,
                    "mode",
                    format!("`mode`: expected \"shadow\", \"enforce\" or None, found {other:?}"),
                ));
            }
        };
        let engine = self.live(py)?;
        py.detach(|| engine.set_mode(agent, mode, by))
            .map_err(|e| self.error(py, &e))?;
        Ok(())
    }

    /// The kill switches and tripped breakers in force: `{"kill_all": bool, "killed":
    /// [agent, ...], "tripped": [(agent, breaker), ...]}`.
    fn suspensions<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let engine = self.live(py)?;
        let s = engine.suspensions().map_err(|e| self.error(py, &e))?;
        let d = PyDict::new(py);
        d.set_item("kill_all", s.kill_all)?;
        d.set_item("killed", s.killed)?;
        d.set_item("tripped", s.tripped)?;
        Ok(d)
    }

    /// Reads the kill file now; `True` when that changed a suspension.
    fn poll_kill_file(&self, py: Python<'_>) -> PyResult<bool> {
        let engine = self.live(py)?;
        py.detach(|| engine.poll_kill_file())
            .map_err(|e| self.error(py, &e))
    }

    /// The content hash of the policy in force (`"sha256:..."`), as audit records carry it.
    #[getter]
    fn table_hash(&self, py: Python<'_>) -> PyResult<String> {
        Ok(self.live(py)?.table_hash().to_string())
    }

    /// The policy's name and version.
    #[getter]
    fn policy(&self, py: Python<'_>) -> PyResult<(String, Option<String>)> {
        let table = self.table(py)?;
        let p = &table.data().policy;
        Ok((p.name.clone(), p.version.clone()))
    }

    /// The agents the policy declares.
    #[getter]
    fn agents(&self) -> Vec<String> {
        self.agents.clone()
    }

    /// The tools the policy declares, with their parameters and types:
    /// `{"send_invoice": {"amount": "money", "matter_code": "text"}, ...}`.
    #[getter]
    fn tools<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyDict>> {
        let table = self.table(py)?;
        let out = PyDict::new(py);
        for tool in &table.data().tools {
            let params = PyDict::new(py);
            for p in &tool.params {
                params.set_item(&p.name, p.ty.keyword())?;
            }
            out.set_item(&tool.name, params)?;
        }
        Ok(out)
    }

    /// The audit log's last record number, once durable; `None` without a log.
    #[getter]
    fn audit_head(&self, py: Python<'_>) -> PyResult<Option<u64>> {
        Ok(self.live(py)?.audit_head().map(|a| a.seq))
    }

    /// Stops the background thread and closes the audit log (a `close` record, fsync).
    /// Later calls raise `EngineClosed`. Also done when the engine is garbage collected.
    fn close(&self, py: Python<'_>) -> PyResult<()> {
        let taken = self
            .engine
            .write()
            .map_err(|_| {
                raise(
                    py,
                    "EngineFault",
                    "the engine's state was poisoned by a panic",
                    &[],
                )
            })?
            .take();
        if let Some(arc) = taken {
            // Another thread still inside a call holds a reference: the log closes
            // when that call returns and drops it.
            if let Ok(engine) = Arc::try_unwrap(arc) {
                py.detach(|| engine.shutdown())
                    .map_err(|e| self.error(py, &e))?;
            }
        }
        Ok(())
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_exc))]
    fn __exit__(&self, py: Python<'_>, _exc: &Bound<'_, pyo3::types::PyTuple>) -> PyResult<bool> {
        self.close(py)?;
        Ok(false)
    }

    fn __repr__(&self, py: Python<'_>) -> String {
        match self.live(py) {
            Ok(e) => format!("<Engine {}>", e.table_hash()),
            Err(_) => "<Engine closed>".to_string(),
        }
    }
}

impl PyEngine {
    pub fn table(&self, py: Python<'_>) -> PyResult<Arc<DecisionTable>> {
        let engine = self.live(py)?;
        engine.table().map_err(|e| self.error(py, &e))
    }

    fn known_agent(&self, py: Python<'_>, agent: &str) -> PyResult<()> {
        if self.agents.iter().any(|a| a == agent) {
            Ok(())
        } else {
            Err(crate::errors::unknown_name(
                py,
                "agent",
                agent,
                &self.agent_names(),
            ))
        }
    }

    fn resolve_as(
        &self,
        py: Python<'_>,
        escalation: &Bound<'_, PyAny>,
        resolution: Resolution,
        by: &str,
        reason: Option<&str>,
    ) -> PyResult<PyResolution> {
        let id = call_ref_of(py, "escalation", escalation, true)?;
        let engine = self.live(py)?;
        let resolved = py
            .detach(|| match reason {
                Some(r) => engine.resolve_with_reason(id, resolution, by, r),
                None => engine.resolve(id, resolution, by),
            })
            .map_err(|e| self.error(py, &e))?;
        Ok(PyResolution::of(&resolved))
    }
}

/// The table with the deploy-time sets bound (`bind_sets` takes their JSON).
fn bind_sets(
    py: Python<'_>,
    table: DecisionTable,
    sets: Option<&Bound<'_, PyDict>>,
) -> PyResult<DecisionTable> {
    let Some(sets) = sets else {
        return Ok(table);
    };
    let mut object = serde_json::Map::new();
    for (name, members) in sets.iter() {
        let name: String = name
            .extract()
            .map_err(|_| invalid(py, "sets", "`sets`: keys must be set names (str)"))?;
        let members: Vec<String> = if members.is_instance_of::<PyString>() {
            None
        } else {
            members.extract().ok()
        }
        .ok_or_else(|| {
            invalid(
                py,
                "sets",
                format!("`sets[{name:?}]`: expected a list of str"),
            )
        })?;
        object.insert(
            name,
            serde_json::Value::Array(members.into_iter().map(serde_json::Value::String).collect()),
        );
    }
    let json = serde_json::Value::Object(object).to_string();
    table
        .bind_sets(&json)
        .map(|(t, _)| t)
        .map_err(|e| invalid(py, "sets", format!("`sets`: {e}")))
}

/// The agents to run in shadow mode: `True` for all, or a list of names.
fn shadow_agents(
    py: Python<'_>,
    shadow: Option<&Bound<'_, PyAny>>,
    agents: &[String],
) -> PyResult<Vec<String>> {
    let Some(shadow) = shadow else {
        return Ok(Vec::new());
    };
    if let Ok(b) = shadow.cast::<pyo3::types::PyBool>() {
        return Ok(if b.is_true() {
            agents.to_vec()
        } else {
            Vec::new()
        });
    }
    let names: Vec<String> = if shadow.is_instance_of::<PyString>() {
        vec![shadow.extract()?]
    } else {
        shadow.extract().map_err(|_| {
            invalid(
                py,
                "shadow",
                "`shadow`: expected True, an agent name or a list of agent names",
            )
        })?
    };
    let known: Vec<&str> = agents.iter().map(String::as_str).collect();
    for name in &names {
        if !agents.contains(name) {
            return Err(crate::errors::unknown_name(py, "agent", name, &known));
        }
    }
    Ok(names)
}
