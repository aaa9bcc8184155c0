//! The decide path and the report path: a call in, a verdict out; a result in, counters
//! and breakers updated. Both lock only the session's shard (and, when the agent has
//! breakers, that agent's breaker state), and queue their audit records before
//! unlocking so a session's records are in the order its state changed.

use std::sync::atomic::Ordering;

use super::breaker::{Event, Gate, Transition, Trip};
use super::call::{Call, CallRef, CallResult, Internal, Reason, SessionId, Verdict};
use super::control::AgentControl;
use super::escalation::{self, Escalation, Pending, Raise};
use super::records::{self, DecisionParts};
use super::session::{Session, key_values};
use super::{EngineError, Inner, Loaded, Shard};
use crate::audit::{Ack, Record, RecordKind, ReportedResult};
use crate::builder::{RequestBuilder, RequestError};
use crate::decision::{Decision, Outcome, Stage, Why};
use crate::decision_table::DecisionTable;
use crate::request::{Access, Request, SessionView};
use crate::table::{Breaker, BreakerMetric, Mode, SuspendScope};

/// A decision made under the shard lock, with the records to queue for it.
pub(crate) struct Decided {
    pub verdict: Verdict,
    pub records: Vec<Record>,
    pub escalation: Option<Escalation>,
    /// A breaker event not yet fed (with a state store: fed after the commit).
    pub breaker: Option<super::shared::Deferred>,
}

impl Inner {
    pub(crate) fn decide(&self, id: SessionId, call: &Call<'_>) -> Verdict {
        let now = self.clock.now_ms();
        let mut guard = match self.lock_shard(id) {
            Ok(g) => g,
            Err(e) => return Verdict::deny(Reason::Internal(e), self.current_hash(), None),
        };
        let decided = match &self.state {
            None => self.decide_locked(&mut guard, id, call, now, false),
            Some(store) => {
                let mut decided = self.decide_shared(&**store, &mut guard, id, call, now);
                self.feed_deferred(&guard, id, &mut decided, now);
                decided
            }
        };
        let mut verdict = decided.verdict;
        let mut last: Option<Ack> = None;
        for (i, record) in decided.records.into_iter().enumerate() {
            match self.enqueue(record) {
                Ok(ack) => {
                    if i == 0 {
                        verdict.audit = ack;
                    }
                    last = ack.or(last);
                }
                Err(e) => {
                    return self.undo_escalation(guard, verdict, Reason::Internal(e));
                }
            }
        }
        drop(guard);
        if let Err(e) = self.wait(last) {
            let guard = self.lock_shard(id);
            return match guard {
                Ok(guard) => self.undo_escalation(guard, verdict, Reason::Internal(e)),
                Err(_) => Verdict::deny(Reason::Internal(e), verdict.table, verdict.call),
            };
        }
        if let (Some(notify), Some(e)) = (&self.notify, &decided.escalation) {
            notify.escalated(e);
        }
        verdict
    }

    /// The call could not be audited: it is denied, and an escalation it raised is
    /// withdrawn (nobody may approve a call the log does not show).
    fn undo_escalation(
        &self,
        mut guard: std::sync::MutexGuard<'_, Shard>,
        verdict: Verdict,
        reason: Reason,
    ) -> Verdict {
        if let Some(id) = verdict.escalation {
            guard.pending.remove(&id);
            if let Some(store) = &self.state {
                // Not withdrawn from the store: a claim on it finds no call to apply
                // to here, and its resolver is told the claim is not applied.
                let _ = store.drop_escalation(&id.to_string());
            }
        }
        Verdict::deny(reason, verdict.table, verdict.call)
    }

    /// `defer_breaker`: leave the breaker event in [`Decided::breaker`] instead of
    /// feeding it now.
    pub(crate) fn decide_locked(
        &self,
        shard: &mut Shard,
        id: SessionId,
        call: &Call<'_>,
        now: i64,
        defer_breaker: bool,
    ) -> Decided {
        let Shard {
            loaded,
            sessions,
            pending,
        } = shard;
        let table = &*loaded.table;
        let audit = self.audit.is_some();
        let Some(session) = sessions.get_mut(&id.0) else {
            let verdict = Verdict::deny(
                Reason::Session(format!("session {id} is not open")),
                loaded.hash,
                None,
            );
            let records = self.decision_records(table, id, "", call, &verdict, now);
            return Decided {
                verdict,
                records,
                escalation: None,
                breaker: None,
            };
        };
        let refused = if session.closed {
            Some(Reason::Session(format!("session {id} is closed")))
        } else {
            session
                .broken
                .clone()
                .map(|why| Reason::Internal(Internal::SessionUnmappable(why)))
        };
        session.calls += 1;
        let call_ref = CallRef {
            session: id,
            n: session.calls,
        };
        let mut after = After {
            records: Vec::new(),
            defer: defer_breaker,
            breaker: None,
        };
        let tainted_before = session.tainted;
        let verdict = match refused {
            Some(reason) => Verdict::deny(reason, loaded.hash, Some(call_ref)),
            None => self.evaluate(loaded, session, call, call_ref, now, &mut after),
        };
        let mut escalation = None;
        if verdict.outcome == Outcome::Escalate {
            let e = escalation::raise(&Raise {
                table,
                hash: loaded.hash,
                id: call_ref,
                session: &session.name,
                agent: &session.agent_name,
                tool: call.tool,
                decision: &verdict.decision,
                now,
            });
            pending.insert(call_ref, Pending::new(e.clone(), call));
            escalation = Some(e);
        }
        let mut verdict = verdict;
        if escalation.is_some() {
            verdict.escalation = Some(call_ref);
        }
        let mut records = Vec::new();
        if audit {
            let mut r = records::decision(
                table,
                &self.redaction,
                &DecisionParts {
                    now,
                    tainted: tainted_before,
                    session: &session.name,
                    session_id: id.0,
                    agent: &session.agent_name,
                    call,
                    verdict: &verdict,
                },
            );
            r.escalation = escalation.as_ref().map(escalation::info);
            r.context = session.context.clone();
            r.tier = records::call_tier(table, session.tier, call);
            records.push(r);
            records.extend(after.records);
        }
        Decided {
            verdict,
            records,
            escalation,
            breaker: after.breaker,
        }
    }

    pub(crate) fn decision_records(
        &self,
        table: &DecisionTable,
        id: SessionId,
        agent: &str,
        call: &Call<'_>,
        verdict: &Verdict,
        now: i64,
    ) -> Vec<Record> {
        if self.audit.is_none() {
            return Vec::new();
        }
        let mut r = records::decision(
            table,
            &self.redaction,
            &DecisionParts {
                now,
                session: &id.to_string(),
                session_id: id.0,
                agent,
                call,
                verdict,
                tainted: false,
            },
        );
        if agent.is_empty() {
            r.agent = None;
        }
        vec![r]
    }

    /// Decides a call of an open session and updates the session for it. `after` gets
    /// breaker records (or, when deferring, the breaker event).
    fn evaluate(
        &self,
        loaded: &Loaded,
        session: &mut Session,
        call: &Call<'_>,
        call_ref: CallRef,
        now: i64,
        after: &mut After,
    ) -> Verdict {
        let table = &*loaded.table;
        let data = table.data();
        let hash = loaded.hash;
        let internal = |e: Internal| Verdict::deny(Reason::Internal(e), hash, Some(call_ref));
        let (Some(ctl), Some(agent)) = (
            loaded.controls.get(session.agent.index()),
            data.agents.get(session.agent.index()),
        ) else {
            return internal(Internal::SessionUnmappable(
                "the session's agent is not in the table".into(),
            ));
        };
        let mut request = match build_request(table, session, call, self.limits) {
            Ok(r) => r,
            Err(Build::UnknownTool) => {
                return Verdict {
                    outcome: Outcome::Deny,
                    decision: Decision::deny(Why::UnknownTool),
                    reason: Reason::Policy,
                    shadow: false,
                    table: hash,
                    call: Some(call_ref),
                    escalation: None,
                    audit: None,
                };
            }
            Err(Build::Request(e)) => {
                return Verdict::deny(Reason::Request(e), hash, Some(call_ref));
            }
        };
        let (engine_suspended, agent_suspended) = match self.suspension(ctl, now, call_ref) {
            Ok(s) => s,
            Err(e) => return internal(e),
        };
        request.session = SessionView {
            engine_suspended,
            agent_suspended,
            tier: session.tier,
            bound: session.bindings(),
            usage: session.usage.view(&agent.limits, now),
            tainted: session.tainted,
        };
        let decision = crate::decide(table, &request);
        let suspended = decision.stage() == Stage::Suspended;
        // Shadow mode never overrides a suspension: the kill switch and breakers stop
        // shadowed agents too.
        let shadow = !suspended && ctl.mode(agent.mode) == Mode::Shadow;
        let outcome = if shadow {
            Outcome::Allow
        } else {
            decision.outcome
        };
        if outcome != Outcome::Deny {
            session.usage.add_call(now);
        }
        if outcome == Outcome::Allow {
            session.absorb_read(table, &request, call.read);
        }
        if !suspended && counts_decisions(&agent.breakers) {
            let event = Event::Decided {
                denied: decision.outcome == Outcome::Deny,
            };
            if after.defer {
                after.breaker = Some((event, call_ref));
            } else {
                match self.feed_breaker(ctl, &agent.breakers, event, call_ref, None, now, hash) {
                    Ok(records) => after.records.extend(records),
                    Err(e) => return internal(e),
                }
            }
        }
        Verdict {
            outcome,
            decision,
            reason: Reason::Policy,
            shadow,
            table: hash,
            call: Some(call_ref),
            escalation: None,
            audit: None,
        }
    }

    /// (engine suspended, agent suspended) for a call of this agent; in a half-open
    /// breaker the call may become the probe.
    fn suspension(
        &self,
        ctl: &AgentControl,
        now: i64,
        call: CallRef,
    ) -> Result<(bool, bool), Internal> {
        let mut engine =
            self.kill_all.load(Ordering::SeqCst) || self.file_kill_all.load(Ordering::SeqCst);
        let mut agent = ctl.killed();
        let mut holds_engine_trip = false;
        if ctl.tripped.load(Ordering::SeqCst) {
            let mut b = ctl.breaker.lock().map_err(|_| Internal::PoisonedLock)?;
            holds_engine_trip = b.trip.is_some_and(|t| t.scope() == SuspendScope::Engine);
            match b.gate(now, self.cooldown_ms(), call) {
                Gate::Closed | Gate::Probe => {}
                Gate::Open(SuspendScope::Agent) => agent = true,
                Gate::Open(SuspendScope::Engine) => engine = true,
            }
        }
        let others = self
            .engine_breakers
            .load(Ordering::SeqCst)
            .saturating_sub(usize::from(holds_engine_trip));
        Ok((engine || others > 0, agent))
    }

    pub(crate) fn cooldown_ms(&self) -> Option<i64> {
        self.breakers
            .cooldown
            .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
    }

    /// Counts an event in the agent's breakers (or a probe's result) and returns the
    /// records of any transition.
    #[expect(
        clippy::too_many_arguments,
        reason = "one place feeds breakers from both paths"
    )]
    pub(crate) fn feed_breaker(
        &self,
        ctl: &AgentControl,
        defs: &[Breaker],
        event: Event,
        call: CallRef,
        result_ok: Option<bool>,
        now: i64,
        hash: crate::ContentHash,
    ) -> Result<Vec<Record>, Internal> {
        let mut b = ctl.breaker.lock().map_err(|_| Internal::PoisonedLock)?;
        let transition = match result_ok.and_then(|ok| b.probe_result(call, ok, now)) {
            Some(t) => Some(t),
            None => b.record(defs, event, now, self.breakers.min_results),
        };
        drop(b);
        let Some(transition) = transition else {
            return Ok(Vec::new());
        };
        let (trip, text) = match transition {
            Transition::Tripped(trip) => {
                self.trip_flags(ctl, &trip, true);
                (trip, format!("tripped at {}", observed(&trip)))
            }
            Transition::Closed(trip) => {
                self.trip_flags(ctl, &trip, false);
                (trip, "closed: the probe call succeeded".to_owned())
            }
            Transition::Reopened(trip) => (trip, "re-opened: the probe call failed".to_owned()),
        };
        let mut r = Record::new(RecordKind::Breaker, now);
        r.table = Some(hash);
        r.agent = Some(ctl.name.clone());
        r.detail = Some(format!(
            "breaker `{}` {text}; {}",
            trip.def,
            match (trip.scope(), ctl.tripped.load(Ordering::SeqCst)) {
                (SuspendScope::Agent, true) => format!("agent `{}` suspended", ctl.name),
                (SuspendScope::Engine, true) => "every agent suspended".to_owned(),
                (_, false) => "suspension lifted".to_owned(),
            }
        ));
        Ok(vec![r])
    }

    /// Sets or clears the flags that make a trip suspend.
    pub(crate) fn trip_flags(&self, ctl: &AgentControl, trip: &Trip, on: bool) {
        ctl.tripped.store(on, Ordering::SeqCst);
        if trip.scope() == SuspendScope::Engine {
            if on {
                self.engine_breakers.fetch_add(1, Ordering::SeqCst);
            } else {
                let _ =
                    self.engine_breakers
                        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| {
                            Some(n.saturating_sub(1))
                        });
            }
        }
    }

    pub(crate) fn report(
        &self,
        call: CallRef,
        result: CallResult,
    ) -> Result<Option<Ack>, EngineError> {
        let now = self.clock.now_ms();
        let mut guard = self.lock_shard(call.session)?;
        self.session_change(&mut guard, call.session, |session| {
            if call.n == 0 || call.n > session.calls {
                return Err(EngineError::UnknownCall(call));
            }
            session.usage.add_tokens(now, result.tokens);
            Ok(())
        })?;
        let Shard {
            loaded, sessions, ..
        } = &mut *guard;
        let session = sessions
            .get_mut(&call.session.0)
            .ok_or(EngineError::UnknownSession(call.session))?;
        let mut records = Vec::new();
        if self.audit.is_some() {
            let mut r = Record::new(RecordKind::Result, now);
            r.table = Some(loaded.hash);
            r.session = Some(session.name.clone());
            r.session_id = Some(call.session.0);
            r.agent = Some(session.agent_name.clone());
            r.call = Some(call.n);
            r.tier = records::tier_name(&loaded.table, session.tier);
            r.result = Some(ReportedResult {
                ok: result.ok,
                tokens: result.tokens,
                latency_ms: result.latency_ms,
            });
            records.push(r);
        }
        records.extend(self.feed_result(loaded, session, call, result.ok, result.tokens, now)?);
        let mut first = None;
        let mut last = None;
        for r in records {
            let ack = self.enqueue(r)?;
            first = first.or(ack);
            last = ack.or(last);
        }
        drop(guard);
        self.wait(last)?;
        Ok(first)
    }
}

impl Inner {
    /// What a reported result does to a session and its agent: the tokens count against
    /// limits, the result feeds the breakers (or decides a half-open breaker's probe).
    /// Returns the records of a breaker transition. The live path and a restart share it.
    pub(crate) fn take_result(
        &self,
        loaded: &Loaded,
        session: &mut super::session::Session,
        call: CallRef,
        ok: bool,
        tokens: u64,
        now: i64,
    ) -> Result<Vec<Record>, Internal> {
        session.usage.add_tokens(now, tokens);
        self.feed_result(loaded, session, call, ok, tokens, now)
    }

    /// The breaker half of [`Inner::take_result`].
    pub(crate) fn feed_result(
        &self,
        loaded: &Loaded,
        session: &super::session::Session,
        call: CallRef,
        ok: bool,
        tokens: u64,
        now: i64,
    ) -> Result<Vec<Record>, Internal> {
        let data = loaded.table.data();
        match (
            loaded.controls.get(session.agent.index()),
            data.agents.get(session.agent.index()),
        ) {
            (Some(ctl), Some(agent))
                if !agent.breakers.is_empty() || ctl.tripped.load(Ordering::SeqCst) =>
            {
                let event = Event::Reported { ok, tokens };
                self.feed_breaker(
                    ctl,
                    &agent.breakers,
                    event,
                    call,
                    Some(ok),
                    now,
                    loaded.hash,
                )
            }
            _ => Ok(Vec::new()),
        }
    }
}

/// What a decision leaves for after it: breaker records, or the breaker event itself
/// when `defer` (a decision on a shared store feeds breakers only once committed).
pub(crate) struct After {
    records: Vec<Record>,
    defer: bool,
    breaker: Option<super::shared::Deferred>,
}

pub(crate) fn counts_decisions(breakers: &[Breaker]) -> bool {
    breakers
        .iter()
        .any(|b| matches!(b.metric, BreakerMetric::Calls | BreakerMetric::Denials))
}

fn observed(trip: &Trip) -> String {
    match trip.def.metric {
        BreakerMetric::ErrorRate => format!(
            "an error rate of {}",
            trip.def.metric.value_text(trip.observed)
        ),
        metric => format!(
            "{} {}",
            trip.def.metric.value_text(trip.observed),
            metric.keyword()
        ),
    }
}

pub(crate) enum Build {
    UnknownTool,
    Request(RequestError),
}

impl From<RequestError> for Build {
    fn from(e: RequestError) -> Self {
        Build::Request(e)
    }
}

/// The request for a call, in the table's ids, with key values relative to the session.
pub(crate) fn build_request(
    table: &DecisionTable,
    session: &Session,
    call: &Call<'_>,
    limits: crate::RequestLimits,
) -> Result<Request, Build> {
    let tool = table.tool_id(call.tool).ok_or(Build::UnknownTool)?;
    let mut b = RequestBuilder::for_ids(table, session.agent, tool);
    b.set_limits(limits);
    for (name, value) in call.args {
        b.set_arg(name, *value)?;
    }
    for name in call.untrusted {
        b.set_untrusted(name)?;
    }
    let read = match &call.read {
        None => None,
        Some(read) => Some(Access {
            target: table
                .resource_id(read.target)
                .ok_or_else(|| RequestError::UnknownResource(read.target.to_owned()))?,
            keys: key_values(table, session, read, None)?,
        }),
    };
    let write = match &call.write {
        None => None,
        Some(write) => Some(Access {
            target: table
                .sink_id(write.target)
                .ok_or_else(|| RequestError::UnknownSink(write.target.to_owned()))?,
            keys: key_values(table, session, write, call.read.as_ref())?,
        }),
    };
    Ok(b.finish(call.confidence, read, write))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn breakers_describe_themselves_as_written() {
        let b = Breaker {
            metric: BreakerMetric::ErrorRate,
            op: crate::CmpOp::Gt,
            value: 200_000,
            window_ms: 300_000,
            scope: SuspendScope::Agent,
        };
        // One vocabulary: the record reads as the policy, the matrix and the hover do.
        assert_eq!(b.to_string(), "error_rate > 20% over 5m then suspend agent");
        assert_eq!(b.metric.value_text(272_727), "27.2727%");
    }
}
