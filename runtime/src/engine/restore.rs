//! Restarting from the audit log: a new engine reads the records an earlier engine
//! wrote to the same log and rebuilds what it held in memory, so a crash (SIGKILL, power
//! loss) and a restart do not reset limits, clear taint, unbind a matter, lift a kill
//! switch or drop a pending approval.
//!
//! The log is the engine's journal. Each record that changed state is applied again with
//! the steps the live paths use ([`Session::absorb_read`], the usage counters, the
//! breaker state machine fed at the record's own time), but with the outcome the record
//! states instead of a new decision: arguments may be redacted in the log, and the
//! decision that was acknowledged is the one that counts. What is rebuilt:
//!
//! - sessions (by `session_id`): agent, name, context, bound keys, tier, taint, task,
//!   call count, closed, and the usage behind every limit (sliding windows at their
//!   exact times);
//! - pending escalations with their routes, deadlines and labels; an escalation whose
//!   deadline passed while the engine was down is timed out by the housekeeping thread
//!   at the next poll;
//! - the kill switch (all agents and per agent) and mode overrides set through the API;
//!   the kill file is read again instead;
//! - breaker windows and trips, by feeding the recorded decisions and results in order.
//!
//! Names resolve against the table in force now, as a table swap would: a session whose
//! agent is gone is not rebuilt, and one whose tier or key is gone is marked broken (its
//! calls are denied). Records an older engine wrote without `session_id` fall back to
//! session names of the form `s12`.
//!
//! Must not: write records (the log already holds them), decide, or notify.

use std::sync::atomic::Ordering;

use serde_json::{Map, Value};

use super::admin::{RESET_BY_HAND, kill_detail, mode_detail};
use super::breaker::Event;
use super::call::{CallRef, SessionId};
use super::calls::build_request;
use super::escalation::{Escalation, OwnedLabels, Pending, with_call};
use super::session::Session;
use super::{EngineError, Inner, Shard};
use crate::audit::{Record, RecordKind};
use crate::decision::Outcome;
use crate::table::Mode;

/// What [`super::Engine::new`] rebuilt from `EngineConfig::restore`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Restored {
    /// Records read.
    pub records: u64,
    /// Sessions rebuilt, closed ones included.
    pub sessions: usize,
    /// Of those, still open.
    pub open_sessions: usize,
    /// Escalations still pending.
    pub pending: usize,
    /// The engine-wide kill switch is on.
    pub kill_all: bool,
    /// Agents suspended through the API.
    pub killed: Vec<String>,
    /// Agents whose breaker is tripped.
    pub tripped: Vec<String>,
    /// Records that could not be applied to the table in force, and why (a session of
    /// an agent the table no longer has, ...). At most 100 are kept.
    pub skipped: Vec<String>,
}

const MAX_SKIPPED: usize = 100;

impl Restored {
    fn skip(&mut self, r: &Record, why: impl Into<String>) {
        if self.skipped.len() < MAX_SKIPPED {
            self.skipped.push(format!(
                "record {} ({}): {}",
                r.seq,
                r.kind.keyword(),
                why.into()
            ));
        }
    }
}

/// The session a record is about: `session_id`, or a name like `s12`.
fn session_of(r: &Record) -> Option<SessionId> {
    r.session_id.map(SessionId).or_else(|| {
        r.session
            .as_deref()?
            .strip_prefix('s')?
            .parse()
            .ok()
            .map(SessionId)
    })
}

/// `read` or `write` labels of a decision record: target and key values.
fn owned_labels(r: &Record, which: &str, target_field: &str) -> Option<OwnedLabels> {
    let l = r.labels.as_ref()?.get(which)?.as_object()?;
    Some(OwnedLabels {
        target: l.get(target_field)?.as_str()?.to_owned(),
        keys: l
            .get("keys")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                    .collect()
            })
            .unwrap_or_default(),
    })
}

fn bound_keys(r: &Record) -> Vec<(String, String)> {
    r.labels
        .as_ref()
        .and_then(|l| l.get("bound"))
        .and_then(Value::as_object)
        .map(|m: &Map<String, Value>| {
            m.iter()
                .filter_map(|(k, v)| Some((k.clone(), v.as_str()?.to_owned())))
                .collect()
        })
        .unwrap_or_default()
}

/// Reason codes of decisions the policy made (the engine ran its checks, counted usage
/// and fed breakers); the others were refused before that.
fn decided_by_policy(reason: &str) -> bool {
    matches!(
        reason,
        "suspended" | "not_granted" | "flow" | "limit" | "rule" | "no_rule" | "fault"
    )
}

impl Inner {
    /// Applies an earlier engine's records, in order. Called by `Engine::new` before
    /// the housekeeping thread starts and before any session is opened.
    pub(crate) fn restore(
        &self,
        records: impl IntoIterator<Item = Record>,
    ) -> Result<Restored, EngineError> {
        let mut out = Restored::default();
        let mut max_session = 0;
        for r in records {
            out.records += 1;
            if let Some(id) = session_of(&r) {
                max_session = max_session.max(id.0);
            }
            match r.kind {
                RecordKind::Session => self.restore_session(&r, &mut out)?,
                RecordKind::Decision => self.restore_decision(&r, &mut out)?,
                RecordKind::Result => self.restore_result(&r, &mut out)?,
                RecordKind::Resolution => self.restore_resolution(&r, &mut out)?,
                RecordKind::Control => self.restore_control(&r, &mut out)?,
                _ => {}
            }
        }
        self.next_session.fetch_max(max_session, Ordering::SeqCst);
        for shard in &*self.shards {
            let shard = shard.0.lock().map_err(|_| super::Internal::PoisonedLock)?;
            out.sessions += shard.sessions.len();
            out.open_sessions += shard.sessions.values().filter(|s| !s.closed).count();
            out.pending += shard.pending.len();
        }
        let now = self.suspensions()?;
        out.kill_all = now.kill_all;
        out.killed = now.killed;
        out.tripped = now.tripped.into_iter().map(|(agent, _)| agent).collect();
        Ok(out)
    }

    fn restore_session(&self, r: &Record, out: &mut Restored) -> Result<(), EngineError> {
        let (Some(id), Some(detail)) = (session_of(r), r.detail.as_deref()) else {
            return Ok(());
        };
        let mut guard = self.lock_shard(id)?;
        let Shard {
            loaded, sessions, ..
        } = &mut *guard;
        let table = &*loaded.table;
        if detail.starts_with("opened") {
            let agent = r.agent.as_deref().unwrap_or_default();
            let Some(agent_id) = table.agent_id(agent) else {
                out.skip(r, format!("agent `{agent}` is not in the table in force"));
                return Ok(());
            };
            let name = r.session.clone().unwrap_or_else(|| id.to_string());
            let mut session = Session::new(name, agent_id, table.data());
            session.context = r.context.clone();
            for (key, value) in bound_keys(r) {
                match table
                    .key_id(&key)
                    .and_then(|k| session.bound.get_mut(k.index()))
                {
                    Some(slot) => *slot = Some(value.into()),
                    None => {
                        session.broken = Some(format!(
                            "isolation key `{key}` is not in the table in force"
                        ));
                    }
                }
            }
            sessions.insert(id.0, session);
            return Ok(());
        }
        let Some(session) = sessions.get_mut(&id.0) else {
            return Ok(());
        };
        if detail == "closed" {
            session.closed = true;
        } else if let Some(task) = detail
            .strip_prefix("task ")
            .and_then(|t| t.strip_suffix(" started"))
            .and_then(|t| t.parse().ok())
        {
            session.task = task;
            session.usage.new_task();
        }
        Ok(())
    }

    fn restore_decision(&self, r: &Record, out: &mut Restored) -> Result<(), EngineError> {
        let (Some(id), Some(n), Some(tool)) = (session_of(r), r.call, r.tool.as_deref()) else {
            return Ok(());
        };
        let now = r.time_ms;
        let call_ref = CallRef { session: id, n };
        let mut guard = self.lock_shard(id)?;
        let Shard {
            loaded,
            sessions,
            pending,
        } = &mut *guard;
        let Some(session) = sessions.get_mut(&id.0) else {
            return Ok(());
        };
        session.calls = session.calls.max(n);
        let reason = r.reason.as_deref().unwrap_or_default();
        if !decided_by_policy(reason) || session.closed || session.broken.is_some() {
            return Ok(());
        }
        let table = &*loaded.table;
        let data = table.data();
        let read = owned_labels(r, "read", "resource");
        let write = owned_labels(r, "write", "sink");
        let (Some(ctl), Some(agent)) = (
            loaded.controls.get(session.agent.index()),
            data.agents.get(session.agent.index()),
        ) else {
            return Ok(());
        };
        let known_tool = table.tool_id(tool).is_some();
        let suspended = reason == "suspended";
        // The live path asked the breaker's gate (which may pick this call as the
        // half-open probe) for every call of a known tool.
        if known_tool && ctl.tripped.load(Ordering::SeqCst) {
            let mut b = ctl
                .breaker
                .lock()
                .map_err(|_| super::Internal::PoisonedLock)?;
            let _ = b.gate(now, self.cooldown_ms(), call_ref);
        }
        let reported = r.reported.or(r.outcome).unwrap_or(Outcome::Deny);
        if reported != Outcome::Deny {
            session.usage.add_call(now);
        }
        if reported == Outcome::Allow {
            absorb(table, session, tool, read.as_ref(), write.as_ref(), r, out);
        }
        if known_tool && !suspended && super::calls::counts_decisions(&agent.breakers) {
            let event = Event::Decided {
                denied: r.outcome == Some(Outcome::Deny),
            };
            // The transitions' records are in the log already.
            let _ = self.feed_breaker(
                ctl,
                &agent.breakers,
                event,
                call_ref,
                None,
                now,
                loaded.hash,
            );
        }
        if let Some(info) = &r.escalation {
            let escalation = Escalation {
                id: call_ref,
                session: session.name.clone(),
                agent: session.agent_name.clone(),
                tool: tool.to_owned(),
                rule: r.rule.clone(),
                routes: info.routes.clone(),
                notify: info.notify.clone(),
                raised_ms: now,
                deadline_ms: info.deadline_ms,
                timeout_outcome: info.timeout_outcome,
                table: r.table.unwrap_or(loaded.hash),
            };
            pending.insert(
                call_ref,
                Pending {
                    escalation,
                    read,
                    write,
                },
            );
        }
        Ok(())
    }

    fn restore_result(&self, r: &Record, _out: &mut Restored) -> Result<(), EngineError> {
        let (Some(id), Some(n), Some(result)) = (session_of(r), r.call, r.result) else {
            return Ok(());
        };
        let now = r.time_ms;
        let mut guard = self.lock_shard(id)?;
        let Shard {
            loaded, sessions, ..
        } = &mut *guard;
        let Some(session) = sessions.get_mut(&id.0) else {
            return Ok(());
        };
        // The transitions' records are in the log already.
        let _ = self.take_result(
            loaded,
            session,
            CallRef { session: id, n },
            result.ok,
            result.tokens,
            now,
        );
        Ok(())
    }

    fn restore_resolution(&self, r: &Record, out: &mut Restored) -> Result<(), EngineError> {
        let (Some(id), Some(n)) = (session_of(r), r.call) else {
            return Ok(());
        };
        let call_ref = CallRef { session: id, n };
        let mut guard = self.lock_shard(id)?;
        let Shard {
            loaded,
            sessions,
            pending,
        } = &mut *guard;
        let Some(p) = pending.remove(&call_ref) else {
            return Ok(());
        };
        if r.outcome == Some(Outcome::Allow)
            && let Some(session) = sessions.get_mut(&id.0)
        {
            absorb(
                &loaded.table,
                session,
                &p.escalation.tool,
                p.read.as_ref(),
                p.write.as_ref(),
                r,
                out,
            );
        }
        Ok(())
    }

    fn restore_control(&self, r: &Record, _out: &mut Restored) -> Result<(), EngineError> {
        let Some(detail) = r.detail.as_deref() else {
            return Ok(());
        };
        let agent = r.agent.as_deref();
        for on in [true, false] {
            if detail == kill_detail(agent, on) {
                match agent {
                    None => self.kill_all.store(on, Ordering::SeqCst),
                    Some(a) => self.control(a)?.killed.store(on, Ordering::SeqCst),
                }
                return Ok(());
            }
        }
        let Some(agent) = agent else {
            return Ok(());
        };
        for mode in [Some(Mode::Shadow), Some(Mode::Enforce), None] {
            if detail == mode_detail(agent, mode) {
                self.control(agent)?.set_mode(mode);
                return Ok(());
            }
        }
        if detail.contains(RESET_BY_HAND) {
            let ctl = self.control(agent)?;
            let ended = ctl
                .breaker
                .lock()
                .map_err(|_| super::Internal::PoisonedLock)?
                .reset();
            if let Some(trip) = ended {
                self.trip_flags(&ctl, &trip, false);
            }
        }
        Ok(())
    }
}

/// The session takes in what an allowed call read, as the live path did.
fn absorb(
    table: &crate::DecisionTable,
    session: &mut Session,
    tool: &str,
    read: Option<&OwnedLabels>,
    write: Option<&OwnedLabels>,
    r: &Record,
    out: &mut Restored,
) {
    let absorbed = with_call(tool, read, write, |call| {
        match build_request(table, session, call, crate::RequestLimits::default()) {
            Ok(request) => {
                session.absorb_read(table, &request, call.read);
                true
            }
            Err(_) => false,
        }
    });
    if !absorbed {
        // What the call read is not in the table in force: fail closed, as a session
        // that cannot be carried over to a new table does.
        session.broken = Some(format!(
            "a call of tool `{tool}` it made before the restart names what the table in force does not have"
        ));
        out.skip(
            r,
            "the call's tool, resource or key is not in the table in force",
        );
    }
}
