//! Resolving escalations: listing them, approving or rejecting one, and timing out the
//! overdue. An approval (or a timeout whose outcome is allow) re-checks suspension and
//! the flow against the session as it is now.

use std::sync::atomic::Ordering;

use super::call::{CallRef, Internal, SessionId};
use super::calls::{Build, build_request};
use super::escalation::{self, Escalation, Pending, Resolution, Resolved, with_call};
use super::session::Session;
use super::state::MAX_ATTEMPTS;
use super::{EngineError, Inner, Loaded, Shard};
use crate::audit::{Record, RecordKind};
use crate::decision::Outcome;
use crate::request::SessionView;

impl Inner {
    pub(crate) fn pending_escalations(&self) -> Result<Vec<Escalation>, EngineError> {
        if let Some(store) = &self.state {
            return self.shared_escalations(&**store);
        }
        let mut out = Vec::new();
        for shard in &*self.shards {
            let shard = shard.0.lock().map_err(|_| Internal::PoisonedLock)?;
            out.extend(shard.pending.values().map(|p| p.escalation.clone()));
        }
        out.sort_by_key(|e| (e.raised_ms, e.id));
        Ok(out)
    }

    /// Resolves an escalation: here without a store; with one, claimed in the store
    /// and applied by the engine holding the call (this one, or another that answers
    /// through the store).
    pub(crate) fn resolve(
        &self,
        id: CallRef,
        resolution: Resolution,
        by: &str,
        note: Option<&str>,
    ) -> Result<Resolved, EngineError> {
        match &self.state {
            None => self.apply(id, resolution, by, note),
            Some(store) => self
                .resolve_shared(&**store, id, resolution, by, note, true)?
                .ok_or(EngineError::NoSuchEscalation(id)),
        }
    }

    /// Resolves an escalation this engine holds: re-checks, audits, notifies.
    pub(crate) fn apply(
        &self,
        id: CallRef,
        resolution: Resolution,
        by: &str,
        note: Option<&str>,
    ) -> Result<Resolved, EngineError> {
        let now = self.clock.now_ms();
        let mut guard = self.lock_shard(id.session)?;
        let p = guard
            .pending
            .remove(&id)
            .ok_or(EngineError::NoSuchEscalation(id))?;
        let (outcome, why) = match resolution {
            Resolution::Reject => (Outcome::Deny, format!("rejected by {by}{}", noted(note))),
            Resolution::TimedOut if p.escalation.timeout_outcome == Outcome::Deny => (
                Outcome::Deny,
                "timed out; the route's timeout outcome is deny".to_owned(),
            ),
            Resolution::Approve | Resolution::TimedOut => {
                let granted = match resolution {
                    Resolution::Approve => format!("approved by {by}{}", noted(note)),
                    _ => "timed out; the route's timeout outcome is allow".to_owned(),
                };
                match self.recheck_now(&mut guard, id.session, &p) {
                    Ok(()) => (Outcome::Allow, granted),
                    Err(None) => (Outcome::Deny, "the session is gone".to_owned()),
                    Err(Some(why)) => (Outcome::Deny, format!("{granted}, but denied now: {why}")),
                }
            }
        };
        let Shard {
            loaded,
            sessions,
            pending,
        } = &mut *guard;
        let mut ack = None;
        if self.audit.is_some() {
            let mut r = Record::new(RecordKind::Resolution, now);
            r.table = Some(loaded.hash);
            r.session = Some(p.escalation.session.clone());
            r.session_id = Some(id.session.0);
            r.agent = Some(p.escalation.agent.clone());
            r.tool = Some(p.escalation.tool.clone());
            r.call = Some(id.n);
            r.outcome = Some(outcome);
            r.reported = Some(outcome);
            r.rule = p.escalation.rule.clone();
            r.escalation = Some(escalation::info(&p.escalation));
            r.resolution = Some(resolution.keyword().to_owned());
            r.by = Some(by.to_owned());
            r.why = Some(why.clone());
            r.tier = sessions
                .get(&id.session.0)
                .and_then(|s| super::records::tier_name(&loaded.table, s.tier));
            match self.enqueue(r) {
                Ok(a) => ack = a,
                Err(e) => {
                    // Not recorded, so not resolved: the escalation stays pending.
                    pending.insert(id, p);
                    return Err(e.into());
                }
            }
        }
        drop(guard);
        let ack = self.wait(ack)?;
        if let Some(notify) = &self.notify {
            notify.resolved(&p.escalation, outcome);
        }
        Ok(Resolved {
            escalation: p.escalation,
            resolution,
            outcome,
            why,
            audit: ack,
        })
    }

    /// [`Inner::recheck`] on the session as it is now: with a store, as stored, and
    /// the read it absorbs committed (run again on a conflict). `Err(None)`: no such
    /// session.
    fn recheck_now(
        &self,
        shard: &mut Shard,
        sid: SessionId,
        p: &Pending,
    ) -> Result<(), Option<String>> {
        let Some(store) = &self.state else {
            let Shard {
                loaded, sessions, ..
            } = shard;
            let session = sessions.get_mut(&sid.0).ok_or(None)?;
            return self.recheck(loaded, session, p).map_err(Some);
        };
        for _ in 0..MAX_ATTEMPTS {
            let version = self
                .pull(&**store, shard, sid)
                .map_err(|e| Some(e.to_string()))?;
            let Shard {
                loaded, sessions, ..
            } = &mut *shard;
            let session = sessions.get_mut(&sid.0).ok_or(None)?;
            self.recheck(loaded, session, p).map_err(Some)?;
            if self
                .push(&**store, shard, sid, version)
                .map_err(|e| Some(e.to_string()))?
            {
                return Ok(());
            }
        }
        Err(Some(format!(
            "session {sid} was changed by other engines {MAX_ATTEMPTS} times in a row"
        )))
    }

    /// Suspension and flow at approval time; on success the session absorbs the read.
    fn recheck(&self, loaded: &Loaded, session: &mut Session, p: &Pending) -> Result<(), String> {
        if session.closed {
            return Err("the session is closed".into());
        }
        if let Some(why) = &session.broken {
            return Err(why.clone());
        }
        let table = &*loaded.table;
        let data = table.data();
        let (Some(ctl), Some(agent)) = (
            loaded.controls.get(session.agent.index()),
            data.agents.get(session.agent.index()),
        ) else {
            return Err("the agent is not in the table".into());
        };
        if self.kill_all.load(Ordering::SeqCst)
            || self.file_kill_all.load(Ordering::SeqCst)
            || self.engine_breakers.load(Ordering::SeqCst) > 0
        {
            return Err("the engine is suspended".into());
        }
        if ctl.killed() || ctl.tripped.load(Ordering::SeqCst) {
            return Err("the agent is suspended".into());
        }
        with_call(
            &p.escalation.tool,
            p.read.as_ref(),
            p.write.as_ref(),
            |call| {
                let mut request = match build_request(table, session, call, self.limits) {
                    Ok(r) => r,
                    Err(Build::UnknownTool) => {
                        return Err("the tool is no longer in the table".to_owned());
                    }
                    Err(Build::Request(e)) => return Err(e.to_string()),
                };
                request.session = SessionView {
                    tier: session.tier,
                    bound: session.bindings(),
                    ..SessionView::default()
                };
                let tool = data
                    .tools
                    .get(request.tool.index())
                    .ok_or("the tool is not in the table")?;
                if let Err(why) = crate::flow::check(data, agent, tool, &request) {
                    return Err(crate::Decision::deny(why).explain(data).to_string());
                }
                session.absorb_read(table, &request, call.read);
                Ok(())
            },
        )
    }

    pub(crate) fn expire_escalations(&self) -> Vec<crate::engine::Resolved> {
        if let Some(store) = &self.state {
            return self.expire_shared(&**store);
        }
        let now = self.clock.now_ms();
        let mut due = Vec::new();
        for shard in &*self.shards {
            // A poisoned shard's escalations cannot be resolved; its calls are denied.
            if let Ok(shard) = shard.0.lock() {
                due.extend(
                    shard
                        .pending
                        .iter()
                        .filter(|(_, p)| p.escalation.deadline_ms.is_some_and(|d| d <= now))
                        .map(|(id, _)| *id),
                );
            }
        }
        due.into_iter()
            .filter_map(|id| self.apply(id, Resolution::TimedOut, "timeout", None).ok())
            .collect()
    }
}

/// A resolver's reason as the resolution's `why` carries it.
fn noted(note: Option<&str>) -> String {
    note.map(|n| format!(" (reason: {n})")).unwrap_or_default()
}
